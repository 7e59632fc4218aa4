package reconcile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/state"
)

// Sharing, and taking it back. A target account can copy a source AMI
// only while the source account grants it launch permission on the AMI
// and create-volume permission on every snapshot behind it ("the owner of
// the source AMI must grant you read permissions for the storage that
// backs the AMI", Copy an AMI, EC2 User Guide,
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html).
// Two AWS facts shape how amicopier grants:
//
//   - An AMI may be shared with at most 1,000 entities per Region, an OU
//     or an organisation counting once whatever it holds (AMI quotas, EC2
//     User Guide). Account by account, an AMI for a few thousand accounts
//     could not be shared at all. So where the metadata names an OU (or
//     the whole organisation, or a root) and every ACTIVE account under it
//     is a target, amicopier grants the OU's ARN (the organisation's), and
//     keeps that grant while the OU stays wholly targeted; every other
//     account is granted just in time, when it copies, and the grant is
//     taken back once its copies are available. Create-volume permission
//     takes account ids only (CreateVolumePermission, Amazon EC2 API
//     Reference), so it is always just in time.
//   - A grant amicopier no longer needs is a hole: an account that left
//     the organisation, was suspended or excluded, or stopped being a
//     target, would keep access to the golden AMI. Taking a grant back
//     does not touch the copies made with it: "You can change or
//     deregister the source AMI with no effect on the target AMI" (Copy
//     an AMI, EC2 User Guide).
//
// EC2 tells who holds a permission, never who gave it, so amicopier
// remembers its own grants in the state store (state.Grants, one record
// per image and run scope, written before it adds a permission). Only
// those are ever taken back; what other tools granted is reported, and
// taken back only with sharing.revoke_foreign.

// CoverGrant is an OU or organisation grant that stands for every account
// under it.
type CoverGrant struct {
	// ARN is the OU's (or, for a root, the organisation's) ARN.
	ARN string
	// Accounts are the accounts under it, sorted.
	Accounts []string
}

// GrantFacts is what is known about the sharing of one source image in
// one run.
type GrantFacts struct {
	Image     string
	Snapshots []string
	// Cover is the OU and organisation grants the image's targets allow;
	// CoverKnown says it could be worked out this run (the OU tree was
	// read), without which no OU grant is added or taken back.
	Cover      []CoverGrant
	CoverKnown bool
	// Need lists the accounts copying the image in this run, sorted:
	// they need launch and create-volume permission now.
	Need []string
	// Keep reports whether an account still needs its grant: a copy in
	// flight, or one still to make.
	Keep func(account string) bool
	// Judged reports whether this run may take an account's grants back:
	// an account of its shard whose pairs it observed, or that is no
	// target any more.
	Judged func(account string) bool
	// Revoke allows taking grants back at all: the run saw every source
	// and target (not scoped, nothing left undiscovered).
	Revoke bool
	// Mine is this scope's record of the grants amicopier made (zero
	// when there is none); Ours every entity the records of any scope
	// list, which no scope reports as foreign.
	Mine state.Grants
	Ours map[string]bool
	// Current is the image's launch permission as read, CurrentVolume
	// each snapshot's create-volume permission; Read says they were read
	// this run (without them the plan lists what it would do).
	Current       cloud.LaunchPermission
	CurrentVolume map[string][]string
	Read          bool
	// IsTarget reports whether an account is a target of the image in
	// any shard; foreign grants to others are reported.
	IsTarget func(account string) bool
	// Room is how many entities the run may add to the launch
	// permission: its share of what the sharing quota leaves.
	Room int
	// RevokeForeign takes back what other tools granted to accounts and
	// OUs that are not targets.
	RevokeForeign bool
}

// GrantPlan is what to change in the sharing of one image.
type GrantPlan struct {
	AddLaunch, RemoveLaunch cloud.LaunchPermission
	// AddVolume and RemoveVolume hold, per snapshot, the accounts whose
	// create-volume permission to add or take back.
	AddVolume, RemoveVolume map[string][]string
	// Deferred holds the accounts of Need whose copies must wait: the
	// sharing quota leaves no room for them. Every other account of Need
	// can copy once the additions are made.
	Deferred map[string]string
	// Ahead is the record to write before the additions (nil: no
	// addition, or nothing new to remember); After the record once every
	// change is made (nil: unchanged).
	Ahead, After *state.Grants
	// Foreign lists the grantees other tools granted that are not
	// targets (RevokeForeign also takes them back).
	Foreign []string
	// Revoked lists the grantees taken back, for the report.
	Revoked []string
}

// Changes reports whether the plan changes anything in EC2 or the store.
func (p GrantPlan) Changes() bool {
	return p.AddLaunch.Len() > 0 || p.RemoveLaunch.Len() > 0 || len(p.AddVolume) > 0 || len(p.RemoveVolume) > 0 ||
		p.Ahead != nil || p.After != nil
}

// PlanGrants decides the sharing of one image. It is pure: it works out
// the additions (OU grants first, each serves many, then accounts, within
// the room the quota leaves; create-volume for every account that copies),
// the removals of amicopier's own grants, the grants of other tools, and
// the ledger records to write before and after.
func PlanGrants(f GrantFacts) GrantPlan {
	g := &grantPlanner{f: f, present: entitySet(f.Current), cover: map[string]CoverGrant{}, coverOf: map[string]string{},
		mine: map[string]bool{}, need: map[string]bool{}, addedOU: map[string]bool{},
		plan: GrantPlan{AddVolume: map[string][]string{}, RemoveVolume: map[string][]string{}, Deferred: map[string]string{}}}
	if f.CoverKnown {
		for _, c := range f.Cover {
			g.cover[c.ARN] = c
			for _, a := range c.Accounts {
				g.coverOf[a] = c.ARN
			}
		}
	}
	for _, e := range f.Mine.Launch {
		g.mine[e] = true
	}
	for _, a := range f.Need {
		g.need[a] = true
	}
	volumeAdded := g.additions()
	if f.Revoke {
		g.removals()
	}
	if f.Read {
		g.foreign()
	}
	g.finishRemovals()
	g.records(volumeAdded)
	return g.plan
}

// grantPlanner is one PlanGrants at work.
type grantPlanner struct {
	f       GrantFacts
	present map[string]bool // the launch permission as read
	cover   map[string]CoverGrant
	coverOf map[string]string // account -> the cover grant standing for it
	mine    map[string]bool   // launch entities this scope's ledger lists
	need    map[string]bool
	addedOU map[string]bool
	// removeLaunch and removeVolume are the entities and accounts to take
	// back, as found.
	removeLaunch, removeVolume []string
	plan                       GrantPlan
}

// additions grants each account of Need launch permission (its OU's, or
// its own) and create-volume permission on every snapshot, within the
// room the quota leaves; it returns the accounts given create-volume
// permission.
func (g *grantPlanner) additions() (volumeAdded []string) {
	f := g.f
	room := f.Room
	var addOUs, addAccounts []string
	for _, a := range f.Need {
		arn, covered := g.coverOf[a]
		switch {
		case f.Read && g.present[a], covered && f.Read && g.present[arn], covered && g.addedOU[arn]:
			continue
		case covered:
			if room == 0 {
				g.plan.Deferred[a] = quotaReason(f.Image, f.Current.Len())
				continue
			}
			room--
			g.addedOU[arn] = true
			addOUs = append(addOUs, arn)
		}
	}
	for _, a := range f.Need {
		if _, covered := g.coverOf[a]; covered || (f.Read && g.present[a]) {
			continue
		}
		if room == 0 {
			g.plan.Deferred[a] = quotaReason(f.Image, f.Current.Len())
			continue
		}
		room--
		addAccounts = append(addAccounts, a)
	}
	g.plan.AddLaunch = splitEntities(append(addOUs, addAccounts...))
	for _, a := range f.Need {
		if _, deferred := g.plan.Deferred[a]; deferred {
			continue
		}
		added := false
		for _, snap := range f.Snapshots {
			if !f.Read || !slices.Contains(f.CurrentVolume[snap], a) {
				g.plan.AddVolume[snap] = append(g.plan.AddVolume[snap], a)
				added = true
			}
		}
		if added {
			volumeAdded = append(volumeAdded, a)
		}
	}
	return volumeAdded
}

// removals takes back only what amicopier granted: an OU grant no longer
// exact, an account grant no longer needed (or stood for by its OU now),
// and the create-volume grants of accounts done.
func (g *grantPlanner) removals() {
	f := g.f
	stillNeeded := func(a string) bool { return g.need[a] || f.Keep(a) || !f.Judged(a) }
	for _, e := range f.Mine.Launch {
		switch {
		case isOrgEntity(e):
			if f.CoverKnown && g.cover[e].ARN == "" {
				g.removeLaunch = append(g.removeLaunch, e) // no longer wholly targeted
			}
		case !stillNeeded(e):
			g.removeLaunch = append(g.removeLaunch, e)
		case f.Judged(e) && g.coverOf[e] != "" && (g.present[g.coverOf[e]] || g.addedOU[g.coverOf[e]]):
			g.removeLaunch = append(g.removeLaunch, e) // its OU stands for it now
		}
	}
	// OU grants other scopes of amicopier made are taken back by any
	// scope that sees them no longer wholly targeted.
	if f.CoverKnown && f.Read {
		for e := range f.Ours {
			if isOrgEntity(e) && g.present[e] && !g.mine[e] && g.cover[e].ARN == "" {
				g.removeLaunch = append(g.removeLaunch, e)
			}
		}
	}
	for _, a := range f.Mine.Volume {
		if !stillNeeded(a) {
			g.removeVolume = append(g.removeVolume, a)
		}
	}
}

// foreign lists what other tools granted to accounts and OUs that are not
// targets, and takes it back with RevokeForeign (never a public grant).
func (g *grantPlanner) foreign() {
	f := g.f
	for _, e := range f.Current.Entities() {
		if f.Ours[e] || g.mine[e] {
			continue
		}
		if isOrgEntity(e) {
			if g.cover[e].ARN == "" {
				g.plan.Foreign = append(g.plan.Foreign, e)
			}
		} else if !f.IsTarget(e) {
			g.plan.Foreign = append(g.plan.Foreign, e)
		}
	}
	if f.Current.Public {
		g.plan.Foreign = append(g.plan.Foreign, "all (public)")
	}
	slices.Sort(g.plan.Foreign)
	if f.RevokeForeign {
		for _, e := range g.plan.Foreign {
			if e != "all (public)" {
				g.removeLaunch = append(g.removeLaunch, e)
			}
		}
	}
}

// finishRemovals turns the removals found into the plan's changes: only
// what is there (when read) is taken off.
func (g *grantPlanner) finishRemovals() {
	f := g.f
	slices.Sort(g.removeLaunch)
	g.removeLaunch = slices.Compact(g.removeLaunch)
	if f.Read {
		g.removeLaunch = slices.DeleteFunc(g.removeLaunch, func(e string) bool { return !g.present[e] })
	}
	g.plan.RemoveLaunch = splitEntities(g.removeLaunch)
	for _, a := range g.removeVolume {
		for _, snap := range f.Snapshots {
			if !f.Read || slices.Contains(f.CurrentVolume[snap], a) {
				g.plan.RemoveVolume[snap] = append(g.plan.RemoveVolume[snap], a)
			}
		}
	}
	g.plan.Revoked = append(slices.Clone(g.removeLaunch), g.removeVolume...)
	slices.Sort(g.plan.Revoked)
	g.plan.Revoked = slices.Compact(g.plan.Revoked)
}

// records are the ledger records: ahead of the additions, what will be
// amicopier's; after every change, what is.
func (g *grantPlanner) records(volumeAdded []string) {
	f, plan := g.f, &g.plan
	ahead := f.Mine
	ahead.Launch = union(f.Mine.Launch, plan.AddLaunch.Entities())
	ahead.Volume = union(f.Mine.Volume, volumeAdded)
	if len(volumeAdded) > 0 {
		ahead.Snapshots = union(f.Mine.Snapshots, f.Snapshots)
	}
	if !ahead.SameContent(f.Mine) {
		plan.Ahead = &ahead
	}
	after := ahead
	after.Launch = minus(ahead.Launch, g.removeLaunch)
	after.Volume = minus(ahead.Volume, g.removeVolume)
	if len(after.Volume) == 0 {
		after.Snapshots = nil
	}
	if !after.SameContent(ahead) {
		plan.After = &after
	}
	for snap, accts := range plan.AddVolume {
		if len(accts) == 0 {
			delete(plan.AddVolume, snap)
		}
	}
	for snap, accts := range plan.RemoveVolume {
		if len(accts) == 0 {
			delete(plan.RemoveVolume, snap)
		}
	}
}

func quotaReason(image string, have int) string {
	return fmt.Sprintf("image %s is shared with %d entities, and the AMI sharing quota of %d per Region leaves no room this run; the copy waits until copies in flight finish and their grants are taken back",
		image, have, cloud.SharingQuota)
}

// isOrgEntity reports whether a launch permission entity is an OU or
// organisation ARN (else an account id).
func isOrgEntity(e string) bool { return len(e) > 4 && e[:4] == "arn:" }

func isOrganizationARN(e string) bool { return isOrgEntity(e) && strings.Contains(e, ":organization/") }

// splitEntities sorts a list of entities into a LaunchPermission.
func splitEntities(es []string) cloud.LaunchPermission {
	var p cloud.LaunchPermission
	for _, e := range es {
		switch {
		case isOrganizationARN(e):
			p.Organizations = append(p.Organizations, e)
		case isOrgEntity(e):
			p.OUs = append(p.OUs, e)
		default:
			p.Accounts = append(p.Accounts, e)
		}
	}
	return p
}

func entitySet(p cloud.LaunchPermission) map[string]bool {
	m := make(map[string]bool, p.Len())
	for _, e := range p.Entities() {
		m[e] = true
	}
	return m
}

func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

func minus(a, b []string) []string {
	if len(b) == 0 {
		return slices.Clone(a)
	}
	drop := map[string]bool{}
	for _, x := range b {
		drop[x] = true
	}
	return slices.DeleteFunc(slices.Clone(a), func(x string) bool { return drop[x] })
}
