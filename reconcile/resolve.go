package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/amicopier/amicopier/internal/cloud"
)

// orgView is the organisation as read once per run: every account with
// its state, and the OUs the run had to expand (lazily, cached), so the
// cost is one ListAccounts walk plus the OUs metadata actually names.
//
// A partial view (partialOrg) lists no accounts at all: a run scoped to a
// few images whose metadata names no "*" (an event) looks up the accounts
// it names one by one (DescribeAccount) and lists the OUs it names, so
// its cost is what the event names, not the organisation's size. Its
// accounts are those it looked up or found under an expanded OU, each
// with the State Organizations reported; members and active are empty.
type orgView struct {
	org      cloud.Organization
	accounts map[string]cloud.Account
	partial  bool
	// lookups holds, in a partial view, why an account named could not
	// be confirmed a member: errNotMember, or the error of the lookup.
	lookups map[string]error
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
	// ouParent is the parent of each OU listed, and childOUs the OUs
	// listed under each root or OU: the tree as far as it was read;
	// failed remembers the listings that failed, so a run asks once.
	ouParent map[string]string
	childOUs map[string][]string
	failed   map[string]error
	roots    []string
	info     *cloud.OrgInfo
}

// accountOU names the OU an account sits in, "" when unknown or at a root.
func (v *orgView) accountOU(account string) string { return v.ouName[v.parent[account]] }

// rootIDs lists the organisation's roots (once per run).
func (v *orgView) rootIDs(ctx context.Context) ([]string, error) {
	if v.roots != nil {
		return v.roots, nil
	}
	roots, err := v.org.ListRoots(ctx)
	if err != nil {
		return nil, fmt.Errorf("list organisation roots: %w", err)
	}
	v.roots = roots
	return roots, nil
}

// orgInfo identifies the organisation (once per run).
func (v *orgView) orgInfo(ctx context.Context) (cloud.OrgInfo, error) {
	if v.info != nil {
		return *v.info, nil
	}
	info, err := v.org.DescribeOrganization(ctx)
	if err != nil {
		return cloud.OrgInfo{}, fmt.Errorf("describe the organisation: %w", err)
	}
	v.info = &info
	return info, nil
}

// standsIn reports whether an account under an OU granted whole does not
// stop the grant: a target, the source account (it owns the image), or an
// account that can use nothing (suspended, closing, closed). An ACTIVE
// account that is not a target (excluded, say), or one still being
// created (PENDING_ACTIVATION), does.
func (v *orgView) standsIn(account, source string, ts *targetSet) bool {
	if account == source || ts.isTarget(account) {
		return true
	}
	switch v.accounts[account].State {
	case cloud.AccountSuspended, cloud.AccountPendingClosure, cloud.AccountClosed:
		return true
	}
	return false
}

// cover returns the grants that may stand for an image's targets: the
// organisation (for a root the metadata names; "*" names every root) or
// OUs under the named roots and OUs, wherever every account under them
// stands in (standsIn) and one at least is a target. Only what metadata
// names is granted whole, so an account that joins such an OU later is a
// target by the same metadata. It reads the OU tree as far as it must.
func (v *orgView) cover(ctx context.Context, ts *targetSet, source string) ([]CoverGrant, error) {
	groups := slices.Clone(ts.Groups)
	if ts.Whole {
		roots, err := v.rootIDs(ctx)
		if err != nil {
			return nil, err
		}
		groups = append(groups, roots...)
	}
	if len(groups) == 0 {
		return nil, nil
	}
	info, err := v.orgInfo(ctx)
	if err != nil {
		return nil, err
	}
	var out []CoverGrant
	covered := map[string]bool{}
	var visit func(node string) error
	visit = func(node string) error {
		if covered[node] || (len(v.roots) == 1 && covered[v.roots[0]]) {
			return nil // under the organisation's grant
		}
		var accts []string
		if cloud.IsRootID(node) && len(v.roots) == 1 && !v.partial && !slices.ContainsFunc(v.members, func(a string) bool { return !v.standsIn(a, source, ts) }) {
			// The one root holds every member ListAccounts listed: when
			// all of them stand in, the organisation is granted without
			// reading the OU tree.
			accts = v.members
		} else {
			var err error
			if accts, err = v.expand(ctx, node); err != nil {
				return err
			}
		}
		whole, any := true, false
		for _, a := range accts {
			if !v.standsIn(a, source, ts) {
				whole = false
				break
			}
			any = any || ts.isTarget(a)
		}
		if whole && any {
			arn := info.OUARN(node)
			if cloud.IsRootID(node) {
				arn = info.ARN
			}
			out = append(out, CoverGrant{ARN: arn, Accounts: accts})
			v.markCovered(node, covered)
			return nil
		}
		for _, child := range v.childOUs[node] {
			if err := visit(child); err != nil {
				return err
			}
		}
		return nil
	}
	// Roots first, then OUs: an OU under a root granted whole is already
	// covered.
	slices.SortFunc(groups, func(a, b string) int {
		return cmp.Compare(boolRank(!cloud.IsRootID(a)), boolRank(!cloud.IsRootID(b)))
	})
	for _, g := range groups {
		if err := visit(g); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b CoverGrant) int { return strings.Compare(a.ARN, b.ARN) })
	return out, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// markCovered marks node and every OU under it covered.
func (v *orgView) markCovered(node string, covered map[string]bool) {
	covered[node] = true
	for _, child := range v.childOUs[node] {
		v.markCovered(child, covered)
	}
}

// walkTree expands every root, so that every account's OU is known: the
// drift matrix groups accounts by OU. It costs the OU listing calls of the
// whole tree, so only runs that draw the matrix make it.
func (v *orgView) walkTree(ctx context.Context) error {
	roots, err := v.rootIDs(ctx)
	if err != nil {
		return err
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
func loadOrg(ctx context.Context, org cloud.Organization, page func([]cloud.Account)) (*orgView, error) {
	var accts []cloud.Account
	var err error
	if p, ok := org.(accountPager); ok && page != nil {
		accts, err = p.ListAccountsPages(ctx, page)
	} else if accts, err = org.ListAccounts(ctx); err == nil && page != nil {
		page(accts)
	}
	if err != nil {
		return nil, fmt.Errorf("list organisation accounts: %w", err)
	}
	v := newOrgView(org, len(accts))
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

func newOrgView(org cloud.Organization, accounts int) *orgView {
	return &orgView{
		org:        org,
		accounts:   make(map[string]cloud.Account, accounts),
		lookups:    map[string]error{},
		ouAccounts: map[string][]string{},
		parent:     map[string]string{},
		ouName:     map[string]string{},
		ouParent:   map[string]string{},
		childOUs:   map[string][]string{},
		failed:     map[string]error{},
	}
}

// errNotMember is a lookup's answer for an account outside the
// organisation; errNotLookedUp marks a lookup a stop skipped.
var (
	errNotMember   = errors.New("not a member of the organisation")
	errNotLookedUp = errors.New("not looked up")
)

// partialOrg reads only what the target references name (see orgView):
// each named account with DescribeAccount and each named OU or root with
// its own listing, a few at a time. An account or OU that cannot be read
// is remembered, and resolution reports it (unreachable, or rejected when
// Organizations says it does not exist).
func partialOrg(ctx context.Context, org cloud.Organization, refs []cloud.TargetRef, concurrency int) *orgView {
	v := newOrgView(org, len(refs))
	v.partial = true
	var accounts, groups []string
	for _, ref := range refs {
		switch ref.Kind {
		case cloud.TargetAccount:
			accounts = append(accounts, ref.ID)
		case cloud.TargetOU:
			groups = append(groups, ref.ID)
		}
	}
	slices.Sort(accounts)
	accounts = slices.Compact(accounts)
	slices.Sort(groups)
	groups = slices.Compact(groups)
	found := make([]cloud.Account, len(accounts))
	errs := make([]error, len(accounts))
	var wg sync.WaitGroup
	wg.Go(func() {
		// The OUs one after the other: expand caches into the view.
		for _, g := range groups {
			_, _ = v.expand(ctx, g) // a failure is remembered in v.failed
		}
	})
	for i := range errs {
		// Until looked up: a stop skips the lookups not started yet.
		errs[i] = errNotLookedUp
	}
	parallel(ctx, len(accounts), concurrency, func(ctx context.Context, i int) {
		found[i], errs[i] = org.DescribeAccount(ctx, accounts[i])
	})
	wg.Wait()
	for i := range errs {
		if errs[i] == errNotLookedUp {
			errs[i] = fmt.Errorf("not looked up: %w", context.Cause(ctx))
		}
	}
	for i, id := range accounts {
		switch err := errs[i]; {
		case err == nil:
			if _, listed := v.accounts[id]; !listed {
				v.accounts[id] = found[i]
			}
		case cloud.ClassOf(err) == cloud.ClassNotFound:
			v.lookups[id] = errNotMember
		default:
			v.lookups[id] = fmt.Errorf("look up account %s: %w", id, err)
		}
	}
	return v
}

// expand returns every account under an OU or root, recursively.
func (v *orgView) expand(ctx context.Context, id string) ([]string, error) {
	if got, ok := v.ouAccounts[id]; ok {
		return got, nil
	}
	if err, ok := v.failed[id]; ok {
		return nil, err
	}
	children, err := v.org.ListChildren(ctx, id)
	if err != nil {
		err = fmt.Errorf("list children of %s: %w", id, err)
		v.failed[id] = err
		return nil, err
	}
	out := children.AccountIDs()
	for _, a := range children.Accounts {
		v.parent[a.ID] = id
		if _, known := v.accounts[a.ID]; v.partial && !known {
			// A partial view knows the accounts it found, with the
			// State the listing reports; a full one keeps ListAccounts'.
			v.accounts[a.ID] = a
		}
	}
	for _, ou := range children.OUs {
		v.ouName[ou.ID] = ou.Name
		v.ouParent[ou.ID] = id
		v.childOUs[id] = append(v.childOUs[id], ou.ID)
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
	// Accounts are the run's target accounts (its shard's), sorted; All
	// the targets in every shard, sorted (the same slice when the run is
	// not sharded).
	Accounts []string
	All      []string
	Regions  []string
	Rejected []rejection
	// Groups are the roots and OUs the metadata named ("*" names every
	// root): only those, and OUs under them, may be granted whole.
	Groups []string
	Whole  bool
	// CutShort says the caller's stop cut the resolution short (an OU
	// not listed): accounts may be missing, as when an OU is unreachable.
	CutShort bool
}

// isTarget reports whether account is a target in any shard.
func (ts *targetSet) isTarget(account string) bool {
	_, ok := slices.BinarySearch(ts.All, account)
	return ok
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
	// cutShort tells (and counts) an error that is the caller's stop,
	// not a failure (interrupt.go); nil: none is.
	cutShort func(error) bool
}

// resolve checks an image's target references against the organisation:
// only ACTIVE member accounts that are not excluded survive; everything
// else becomes a rejection with a reason naming the value and its origin.
func (v *orgView) resolve(ctx context.Context, specs []cloud.TargetSpec, sourceRegion string, opt resolveOptions) targetSet {
	rs := &resolution{v: v, opt: opt, picked: map[string]bool{}, all: map[string]bool{}, rejected: map[string]bool{},
		regions: map[string]bool{sourceRegion: true}}
	for _, r := range opt.regions {
		rs.regions[r] = true
	}
	for _, spec := range specs {
		for _, r := range spec.Regions {
			rs.regions[r] = true
		}
		for _, bad := range spec.Invalid {
			rs.reject(bad.Token, fmt.Sprintf("target %s (from %s): %s", bad.Token, bad.Origin, bad.Reason), false)
		}
		for _, ref := range spec.Refs {
			rs.ref(ctx, ref)
		}
	}
	return rs.targets()
}

// resolution is one image's targets as resolve works them out.
type resolution struct {
	v   *orgView
	opt resolveOptions
	ts  targetSet
	// picked are the accounts admitted in the run's scope, all those
	// admitted in any shard; rejected the targets refused.
	picked, all, rejected map[string]bool
	regions               map[string]bool
}

func (rs *resolution) add(id string) {
	rs.all[id] = true
	if (rs.opt.onlyAccounts != nil && !rs.opt.onlyAccounts[id]) || !rs.opt.shard.Contains(id) {
		return
	}
	rs.picked[id] = true
}

func (rs *resolution) reject(target, reason string, unreachable bool) {
	switch {
	case rs.opt.onlyAccounts != nil && cloud.IsAccountID(target) && !rs.opt.onlyAccounts[target]:
	case !rs.opt.shard.Contains(target): // another shard reports it
	case rs.rejected[target]:
	default:
		rs.rejected[target] = true
		rs.ts.Rejected = append(rs.ts.Rejected, rejection{Target: target, Reason: reason, Unreachable: unreachable})
	}
}

// checkAccount admits an account named by metadata (explicitly, or as a
// member of "*", a root or an OU: grouped). The source account holds the
// originals and is never a target: named explicitly it is reported, a
// group just leaves it out.
func (rs *resolution) checkAccount(id, origin string, grouped bool) {
	a, ok := rs.v.accounts[id]
	lookup := rs.v.lookups[id]
	switch {
	case id == rs.opt.source && grouped:
	case id == rs.opt.source:
		rs.reject(id, fmt.Sprintf("account %s (from %s) is the source account: it holds the original AMI, and amicopier copies only into other accounts", id, origin), false)
	case !ok && lookup != nil && rs.opt.cutShort != nil && rs.opt.cutShort(lookup):
		// The run was stopped while looking the account up: it is left
		// to the next run, not reported unreachable.
		rs.ts.CutShort = true
	case !ok && lookup != nil && !errors.Is(lookup, errNotMember):
		// Neither confirmed nor refused: never shared with this run,
		// reported unreachable, and the next run tries again.
		rs.reject(id, fmt.Sprintf("account %s (from %s) could not be checked against the organisation this run, so it was not reconciled: %v", id, origin, lookup), true)
	case !ok:
		rs.reject(id, fmt.Sprintf("account %s (from %s) is not a member of the organisation; never shared with", id, origin), false)
	case a.State != cloud.AccountActive:
		rs.reject(id, fmt.Sprintf("account %s (from %s) is %s, not ACTIVE", id, origin, a.State), false)
	case rs.opt.exclude[id]:
		rs.reject(id, fmt.Sprintf("account %s (from %s) is excluded by targets.exclude_accounts", id, origin), false)
	default:
		rs.add(id)
	}
}

// ref resolves one target reference: the organisation, an account, or an
// OU (or root), expanded.
func (rs *resolution) ref(ctx context.Context, ref cloud.TargetRef) {
	switch ref.Kind {
	case cloud.TargetOrganization:
		rs.ts.Whole = true
		// Every member, in the order ListAccounts gave them: the ACTIVE
		// ones are targets, the others are reported exactly as an OU's
		// would be.
		for _, id := range rs.v.members {
			rs.checkAccount(id, ref.Origin+" via *", true)
		}
	case cloud.TargetAccount:
		rs.checkAccount(ref.ID, ref.Origin, false)
	case cloud.TargetOU:
		ids, err := rs.v.expand(ctx, ref.ID)
		if err != nil {
			if rs.opt.cutShort != nil && rs.opt.cutShort(err) {
				// The run was stopped while listing the OU: its accounts
				// are left to the next run, not reported unreachable.
				rs.ts.CutShort = true
				return
			}
			if cloud.ClassOf(err) == cloud.ClassNotFound {
				rs.reject(ref.ID, fmt.Sprintf("%s (from %s) is not an OU or root of the organisation", ref.ID, ref.Origin), false)
			} else {
				rs.reject(ref.ID, fmt.Sprintf("%s (from %s) could not be listed this run, so its accounts were not reconciled: %v", ref.ID, ref.Origin, err), true)
			}
			return
		}
		rs.ts.Groups = append(rs.ts.Groups, ref.ID)
		for _, id := range ids {
			rs.checkAccount(id, ref.Origin+" via "+ref.ID, true)
		}
	}
}

// targets is the resolution's outcome. An account both picked and
// rejected (say, excluded but also under a named OU) stays rejected:
// exclusion and state checks always win.
func (rs *resolution) targets() targetSet {
	ts := rs.ts
	for id := range rs.picked {
		if !rs.rejected[id] {
			ts.Accounts = append(ts.Accounts, id)
		}
	}
	slices.Sort(ts.Accounts)
	ts.All = ts.Accounts
	if len(rs.all) != len(rs.picked) {
		ts.All = make([]string, 0, len(rs.all))
		for id := range rs.all {
			if !rs.rejected[id] {
				ts.All = append(ts.All, id)
			}
		}
		slices.Sort(ts.All)
	}
	slices.Sort(ts.Groups)
	ts.Groups = slices.Compact(ts.Groups)
	for r := range rs.regions {
		ts.Regions = append(ts.Regions, r)
	}
	slices.Sort(ts.Regions)
	slices.SortFunc(ts.Rejected, func(a, b rejection) int { return strings.Compare(a.Target, b.Target) })
	return ts
}
