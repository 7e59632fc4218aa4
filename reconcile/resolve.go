package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/amicopier/amicopier/internal/cloud"
)

// orgView is the organisation as read once per run: every account with
// its state, and the OUs the run had to expand (lazily, cached), so the
// cost is one ListAccounts walk plus the OUs metadata actually names.
type orgView struct {
	org      cloud.Organization
	accounts map[string]cloud.Account
	// active lists ACTIVE account ids, sorted; members every account id,
	// sorted.
	active, members []string
	// ouAccounts caches the recursive expansion of each OU or root.
	ouAccounts map[string][]string
	// parent is the OU (or root) an account sits in, and ouName the name
	// of each OU seen listed under its parent: together they name an
	// account's OU in reports, for the accounts of expanded OUs.
	parent map[string]string
	ouName map[string]string
}

// accountOU names the OU an account sits in, "" when unknown or at a root.
func (v *orgView) accountOU(account string) string { return v.ouName[v.parent[account]] }

// walkTree expands every root, so that every account's OU is known: the
// drift matrix groups accounts by OU. It costs the OU listing calls of the
// whole tree, so only runs that draw the matrix make it.
func (v *orgView) walkTree(ctx context.Context) error {
	roots, err := v.org.ListRoots(ctx)
	if err != nil {
		return fmt.Errorf("list organisation roots: %w", err)
	}
	for _, root := range roots {
		if _, err := v.expand(ctx, root); err != nil {
			return err
		}
	}
	return nil
}

// loadOrg lists the organisation's accounts. The connector retries each
// Organizations call by itself (each page), never a walk of them.
func loadOrg(ctx context.Context, org cloud.Organization) (*orgView, error) {
	accts, err := org.ListAccounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list organisation accounts: %w", err)
	}
	v := &orgView{
		org:        org,
		accounts:   make(map[string]cloud.Account, len(accts)),
		ouAccounts: map[string][]string{},
		parent:     map[string]string{},
		ouName:     map[string]string{},
	}
	for _, a := range accts {
		v.accounts[a.ID] = a
		v.members = append(v.members, a.ID)
		if a.State == cloud.AccountActive {
			v.active = append(v.active, a.ID)
		}
	}
	slices.Sort(v.active)
	slices.Sort(v.members)
	return v, nil
}

// expand returns every account under an OU or root, recursively.
func (v *orgView) expand(ctx context.Context, id string) ([]string, error) {
	if got, ok := v.ouAccounts[id]; ok {
		return got, nil
	}
	children, err := v.org.ListChildren(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("list children of %s: %w", id, err)
	}
	out := slices.Clone(children.Accounts)
	for _, a := range children.Accounts {
		v.parent[a] = id
	}
	for _, ou := range children.OUs {
		v.ouName[ou.ID] = ou.Name
	}
	for _, ou := range children.OUs {
		sub, err := v.expand(ctx, ou.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	v.ouAccounts[id] = out
	return out, nil
}

// rejection is a target that metadata named but that may not receive the
// image.
type rejection struct {
	// Target is the account id, or the offending token or OU id.
	Target string
	Reason string
	// Unreachable: the target could not be checked this run (an OU the
	// organisation would not list); it is reported unreachable, not
	// rejected, and the next run tries again.
	Unreachable bool
}

// targetSet is the resolved targets of one image.
type targetSet struct {
	Accounts []string
	Regions  []string
	Rejected []rejection
}

// resolveOptions narrow resolution to a run's scope.
type resolveOptions struct {
	// source is the source account: it holds the originals and is never a
	// target, whichever form names it.
	source string
	// regions are added to every image's target Regions.
	regions      []string
	exclude      map[string]bool
	onlyAccounts map[string]bool
	// shard keeps only the accounts (and rejections) of one shard.
	shard Shard
}

// resolve checks an image's target references against the organisation:
// only ACTIVE member accounts that are not excluded survive; everything
// else becomes a rejection with a reason naming the value and its origin.
func (v *orgView) resolve(ctx context.Context, specs []cloud.TargetSpec, sourceRegion string, opt resolveOptions) targetSet {
	var ts targetSet
	picked := map[string]bool{}
	add := func(id string) {
		if (opt.onlyAccounts != nil && !opt.onlyAccounts[id]) || !opt.shard.Contains(id) {
			return
		}
		picked[id] = true
	}
	rejected := map[string]bool{}
	reject := func(target, reason string, unreachable ...bool) {
		if opt.onlyAccounts != nil && cloud.IsAccountID(target) && !opt.onlyAccounts[target] {
			return
		}
		if !opt.shard.Contains(target) {
			return // another shard reports it
		}
		if rejected[target] {
			return
		}
		rejected[target] = true
		ts.Rejected = append(ts.Rejected, rejection{Target: target, Reason: reason, Unreachable: len(unreachable) > 0 && unreachable[0]})
	}
	// checkAccount admits an account named by metadata (explicitly, or
	// as a member of "*", a root or an OU: grouped). The source account
	// holds the originals and is never a target: named explicitly it is
	// reported, a group just leaves it out.
	checkAccount := func(id, origin string, grouped bool) {
		a, ok := v.accounts[id]
		switch {
		case !ok:
			reject(id, fmt.Sprintf("account %s (from %s) is not a member of the organisation; never shared with", id, origin))
		case id == opt.source && grouped:
		case id == opt.source:
			reject(id, fmt.Sprintf("account %s (from %s) is the source account: it holds the original AMI, and amicopier copies only into other accounts", id, origin))
		case a.State != cloud.AccountActive:
			reject(id, fmt.Sprintf("account %s (from %s) is %s, not ACTIVE", id, origin, a.State))
		case opt.exclude[id]:
			reject(id, fmt.Sprintf("account %s (from %s) is excluded by targets.exclude_accounts", id, origin))
		default:
			add(id)
		}
	}
	regions := map[string]bool{sourceRegion: true}
	for _, r := range opt.regions {
		regions[r] = true
	}
	for _, spec := range specs {
		for _, r := range spec.Regions {
			regions[r] = true
		}
		for _, bad := range spec.Invalid {
			reject(bad.Token, fmt.Sprintf("target %s (from %s): %s", bad.Token, bad.Origin, bad.Reason))
		}
		for _, ref := range spec.Refs {
			switch ref.Kind {
			case cloud.TargetOrganization:
				// Every member, in the order ListAccounts gave them: the
				// ACTIVE ones are targets, the others are reported
				// exactly as an OU's would be.
				for _, id := range v.members {
					checkAccount(id, ref.Origin+" via *", true)
				}
			case cloud.TargetAccount:
				checkAccount(ref.ID, ref.Origin, false)
			case cloud.TargetOU:
				ids, err := v.expand(ctx, ref.ID)
				if err != nil {
					if cloud.ClassOf(err) == cloud.ClassNotFound {
						reject(ref.ID, fmt.Sprintf("%s (from %s) is not an OU or root of the organisation", ref.ID, ref.Origin))
					} else {
						reject(ref.ID, fmt.Sprintf("%s (from %s) could not be listed this run, so its accounts were not reconciled: %v", ref.ID, ref.Origin, err), true)
					}
					continue
				}
				for _, id := range ids {
					checkAccount(id, ref.Origin+" via "+ref.ID, true)
				}
			}
		}
	}
	// An account both picked and rejected (say, excluded but also under a
	// named OU) stays rejected: exclusion and state checks always win.
	for id := range picked {
		if !rejected[id] {
			ts.Accounts = append(ts.Accounts, id)
		}
	}
	slices.Sort(ts.Accounts)
	for r := range regions {
		ts.Regions = append(ts.Regions, r)
	}
	slices.Sort(ts.Regions)
	slices.SortFunc(ts.Rejected, func(a, b rejection) int { return strings.Compare(a.Target, b.Target) })
	return ts
}
