package awsapi

import (
	"cmp"
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/organizations/types"

	"github.com/amicopier/amicopier/internal/cloud"
)

// orgAdapter is the engine's Organization port.
type orgAdapter struct {
	api *organizations.Client
}

// ListAccounts lists every account of the organisation with its State
// (the deprecated Status only fills in when State is missing).
func (o *orgAdapter) ListAccounts(ctx context.Context) ([]cloud.Account, error) {
	return o.ListAccountsPages(ctx, func([]cloud.Account) {})
}

// ListAccountsPages lists the accounts as ListAccounts does, handing each
// page to page as it arrives.
func (o *orgAdapter) ListAccountsPages(ctx context.Context, page func([]cloud.Account)) ([]cloud.Account, error) {
	var out []cloud.Account
	p := organizations.NewListAccountsPaginator(o.api, &organizations.ListAccountsInput{})
	for p.HasMorePages() {
		got, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiError("ListAccounts", err)
		}
		n := len(out)
		for _, a := range got.Accounts {
			out = append(out, convertAccount(a))
		}
		page(out[n:])
	}
	return out, nil
}

func convertAccount(a types.Account) cloud.Account {
	st := cloud.AccountState(a.State)
	if st == "" {
		// Status predates State and only knows ACTIVE, SUSPENDED and
		// PENDING_CLOSURE, which State spells the same way.
		st = cloud.AccountState(a.Status)
	}
	return cloud.Account{ID: aws.ToString(a.Id), Name: aws.ToString(a.Name), State: st}
}

// DescribeOrganization identifies the organisation: its id, ARN and
// management account (which the ARNs of its OUs are built from).
func (o *orgAdapter) DescribeOrganization(ctx context.Context) (cloud.OrgInfo, error) {
	out, err := o.api.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	if err != nil {
		return cloud.OrgInfo{}, apiError("DescribeOrganization", err)
	}
	if out.Organization == nil {
		return cloud.OrgInfo{}, fmt.Errorf("DescribeOrganization: the answer names no organization")
	}
	return cloud.OrgInfo{
		ID:                aws.ToString(out.Organization.Id),
		ARN:               aws.ToString(out.Organization.Arn),
		ManagementAccount: aws.ToString(out.Organization.MasterAccountId),
	}, nil
}

// DescribeAccount returns one member account with its State; a
// non-member fails with AccountNotFoundException.
func (o *orgAdapter) DescribeAccount(ctx context.Context, accountID string) (cloud.Account, error) {
	out, err := o.api.DescribeAccount(ctx, &organizations.DescribeAccountInput{AccountId: aws.String(accountID)})
	if err != nil {
		return cloud.Account{}, apiError("DescribeAccount", err)
	}
	if out.Account == nil {
		return cloud.Account{}, fmt.Errorf("DescribeAccount %s: the answer names no account", accountID)
	}
	return convertAccount(*out.Account), nil
}

// ListRoots returns the ids of the organisation's roots.
func (o *orgAdapter) ListRoots(ctx context.Context) ([]string, error) {
	var out []string
	p := organizations.NewListRootsPaginator(o.api, &organizations.ListRootsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiError("ListRoots", err)
		}
		for _, r := range page.Roots {
			out = append(out, aws.ToString(r.Id))
		}
	}
	return out, nil
}

// ListChildren returns the OUs and the accounts directly under a root or
// OU: ListOrganizationalUnitsForParent and ListAccountsForParent, the two
// at once (neither needs the other's answer, and an OU's expansion then
// costs one round trip rather than two).
func (o *orgAdapter) ListChildren(ctx context.Context, parentID string) (cloud.OrgChildren, error) {
	var out cloud.OrgChildren
	var ouErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		ous := organizations.NewListOrganizationalUnitsForParentPaginator(o.api,
			&organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(parentID)})
		for ous.HasMorePages() {
			page, err := ous.NextPage(ctx)
			if err != nil {
				ouErr = apiError("ListOrganizationalUnitsForParent", err)
				return
			}
			for _, ou := range page.OrganizationalUnits {
				out.OUs = append(out.OUs, cloud.OU{ID: aws.ToString(ou.Id), Name: aws.ToString(ou.Name)})
			}
		}
	})
	accounts, acctErr := o.accountsForParent(ctx, parentID)
	wg.Wait()
	if err := cmp.Or(ouErr, acctErr); err != nil {
		return cloud.OrgChildren{}, err
	}
	out.Accounts = accounts
	return out, nil
}

// accountsForParent lists the accounts directly under a root or OU.
func (o *orgAdapter) accountsForParent(ctx context.Context, parentID string) ([]cloud.Account, error) {
	var out []cloud.Account
	accts := organizations.NewListAccountsForParentPaginator(o.api,
		&organizations.ListAccountsForParentInput{ParentId: aws.String(parentID)})
	for accts.HasMorePages() {
		page, err := accts.NextPage(ctx)
		if err != nil {
			return nil, apiError("ListAccountsForParent", err)
		}
		for _, a := range page.Accounts {
			out = append(out, convertAccount(a))
		}
	}
	return out, nil
}
