package sim

import (
	"cmp"
	"context"
	"sync"

	"github.com/amicopier/amicopier/internal/cloud"
)

// Organization is the Organizations client of a Connector; it implements
// the engine's Organization port. Calls are attributed to the connector's
// source account with an empty Region (Organizations is global).
type Organization struct {
	cloud  *Cloud
	conn   *Connector
	caller string
	counts *cell
}

func (o *Organization) do(ctx context.Context, op opCode, resource string, fn func() error) error {
	return o.cloud.do(ctx, o.conn, o.counts, op, o.caller, "", resource, fn)
}

// pages returns how many pages n items take (at least one: an empty list
// is still one call).
func pages(n, size int) int {
	if n <= size {
		return 1
	}
	return (n + size - 1) / size
}

// paged makes the first call of a listing with fn (which reads the whole
// list under the lock and returns its length), then one more counted call
// per further page (retried, as the SDK would, when a bucket refuses it).
func (o *Organization) paged(ctx context.Context, op opCode, resource string, fn func() (int, error)) error {
	var n int
	err := o.do(ctx, op, resource, func() error {
		var err error
		n, err = fn()
		return err
	})
	if err != nil {
		return err
	}
	for p := 1; p < pages(n, o.cloud.cfg.orgPageSize); p++ {
		if err := o.do(ctx, op, resource, nil); err != nil {
			return err
		}
	}
	return nil
}

// ListAccounts lists every account of the organisation, whatever its state,
// in the order they were added; one ListAccounts call per page.
func (o *Organization) ListAccounts(ctx context.Context) ([]cloud.Account, error) {
	var out []cloud.Account
	err := o.paged(ctx, opListAccounts, "", func() (int, error) {
		o.cloud.mu.RLock()
		defer o.cloud.mu.RUnlock()
		out = make([]cloud.Account, len(o.cloud.accountOrder))
		for i, a := range o.cloud.accountOrder {
			out[i] = cloud.Account{ID: a.id, Name: a.name, State: a.state}
		}
		return len(out), nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListAccountsPages lists the accounts as ListAccounts does
// (https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccounts.html:
// pages of at most MaxResults accounts, each a call, the next asked for
// with the previous page's NextToken), handing each page to page once its
// call has answered, and returns them all. The
// accounts are read at the first call, so the pages agree with each
// other.
func (o *Organization) ListAccountsPages(ctx context.Context, page func([]cloud.Account)) ([]cloud.Account, error) {
	var out []cloud.Account
	err := o.do(ctx, opListAccounts, "", func() error {
		o.cloud.mu.RLock()
		defer o.cloud.mu.RUnlock()
		out = make([]cloud.Account, len(o.cloud.accountOrder))
		for i, a := range o.cloud.accountOrder {
			out[i] = cloud.Account{ID: a.id, Name: a.name, State: a.state}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	size := o.cloud.cfg.orgPageSize
	for p := range pages(len(out), size) {
		if p > 0 {
			if err := o.do(ctx, opListAccounts, "", nil); err != nil {
				return nil, err
			}
		}
		page(out[min(p*size, len(out)):min((p+1)*size, len(out))])
	}
	return out, nil
}

// DescribeOrganization identifies the simulated organisation (OrganizationID,
// OrganizationARN, ManagementAccount); one DescribeOrganization call.
func (o *Organization) DescribeOrganization(ctx context.Context) (cloud.OrgInfo, error) {
	if err := o.do(ctx, opDescribeOrganization, "", nil); err != nil {
		return cloud.OrgInfo{}, err
	}
	return cloud.OrgInfo{ID: OrganizationID, ARN: OrganizationARN(), ManagementAccount: ManagementAccount}, nil
}

// DescribeAccount returns one member account with its State, as
// Organizations' DescribeAccount does
// (https://docs.aws.amazon.com/organizations/latest/APIReference/API_DescribeAccount.html):
// one call, whatever the account's state. An id that is not 12 digits
// fails with InvalidInputException (the AccountId pattern ^\d{12}$), and
// an account that is not a member of the organisation with
// AccountNotFoundException ("We can't find an AWS account with the
// AccountId that you specified"), never with an empty answer: the engine
// rejects such a target.
func (o *Organization) DescribeAccount(ctx context.Context, accountID string) (cloud.Account, error) {
	var out cloud.Account
	err := o.do(ctx, opDescribeAccount, accountID, func() error {
		if !cloud.IsAccountID(accountID) {
			return cloud.Errorf(cloud.OpDescribeAccount, "InvalidInputException",
				"1 validation error detected: Value '%s' at 'accountId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^\\d{12}$", accountID)
		}
		o.cloud.mu.RLock()
		defer o.cloud.mu.RUnlock()
		a, ok := o.cloud.accounts[accountID]
		if !ok {
			return cloud.Errorf(cloud.OpDescribeAccount, "AccountNotFoundException",
				"You specified an account that doesn't exist: %s is not a member of the organization", accountID)
		}
		out = cloud.Account{ID: a.id, Name: a.name, State: a.state}
		return nil
	})
	if err != nil {
		return cloud.Account{}, err
	}
	return out, nil
}

// ListRoots returns the organisation's root id; one ListRoots call.
func (o *Organization) ListRoots(ctx context.Context) ([]string, error) {
	err := o.do(ctx, opListRoots, "", nil)
	if err != nil {
		return nil, err
	}
	return []string{RootID}, nil
}

// ListChildren returns the OUs and accounts directly under a root or OU:
// ListOrganizationalUnitsForParent pages and ListAccountsForParent pages,
// the two listings at once (neither needs the other's answer). An unknown
// parent fails both with ParentNotFoundException, as each API documents
// (https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListOrganizationalUnitsForParent.html,
// https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccountsForParent.html).
func (o *Organization) ListChildren(ctx context.Context, parentID string) (cloud.OrgChildren, error) {
	var out cloud.OrgChildren
	var ouErr, acctErr error
	var wg sync.WaitGroup
	wg.Go(func() { out.OUs, ouErr = o.ListOUsForParent(ctx, parentID) })
	var accounts []cloud.Account
	acctErr = o.paged(ctx, opListAccountsForParent, parentID, func() (int, error) {
		o.cloud.mu.RLock()
		defer o.cloud.mu.RUnlock()
		node := o.cloud.nodes[parentID]
		if node == nil {
			return 0, parentNotFound(cloud.OpListAccountsForParent, parentID)
		}
		accounts = make([]cloud.Account, 0, len(node.accounts))
		for _, id := range node.accounts {
			a := o.cloud.accounts[id]
			accounts = append(accounts, cloud.Account{ID: a.id, Name: a.name, State: a.state})
		}
		return len(accounts), nil
	})
	wg.Wait()
	if err := cmp.Or(ouErr, acctErr); err != nil {
		return cloud.OrgChildren{}, err
	}
	out.Accounts = accounts
	return out, nil
}
