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

// PlanGrants decides the sharing of one image. It is pure.
func PlanGrants(f GrantFacts) GrantPlan {
	plan := GrantPlan{AddVolume: map[string][]string{}, RemoveVolume: map[string][]string{}, Deferred: map[string]string{}}
	present := entitySet(f.Current)
	cover := map[string]CoverGrant{}
	coverOf := map[string]string{} // account -> the cover grant standing for it
	if f.CoverKnown {
		for _, c := range f.Cover {
			cover[c.ARN] = c
			for _, a := range c.Accounts {
				coverOf[a] = c.ARN
			}
		}
	}
	mine := map[string]bool{}
	for _, e := range f.Mine.Launch {
		mine[e] = true
	}
	need := map[string]bool{}
	for _, a := range f.Need {
		need[a] = true
	}

	// Additions: each account of Need gets launch permission (its OU's, or
	// its own) and create-volume permission on every snapshot, within the
	// room the quota leaves. OU grants go first: each serves many.
	room := f.Room
	var addOUs, addAccounts []string
	addedOU := map[string]bool{}
	for _, a := range f.Need {
		arn, covered := coverOf[a]
		switch {
		case f.Read && present[a], covered && f.Read && present[arn], covered && addedOU[arn]:
			continue
		case covered:
			if room == 0 {
				plan.Deferred[a] = quotaReason(f.Image, f.Current.Len())
				continue
			}
			room--
			addedOU[arn] = true
			addOUs = append(addOUs, arn)
		}
	}
	for _, a := range f.Need {
		if _, covered := coverOf[a]; covered || (f.Read && present[a]) {
			continue
		}
		if room == 0 {
			plan.Deferred[a] = quotaReason(f.Image, f.Current.Len())
			continue
		}
		room--
		addAccounts = append(addAccounts, a)
	}
	plan.AddLaunch = splitEntities(append(addOUs, addAccounts...))
	var volumeAdded []string
	for _, a := range f.Need {
		if _, deferred := plan.Deferred[a]; deferred {
			continue
		}
		added := false
		for _, snap := range f.Snapshots {
			if !f.Read || !slices.Contains(f.CurrentVolume[snap], a) {
				plan.AddVolume[snap] = append(plan.AddVolume[snap], a)
				added = true
			}
		}
		if added {
			volumeAdded = append(volumeAdded, a)
		}
	}

	// Removals, only of what amicopier granted.
	var removeLaunch, removeVolume []string
	if f.Revoke {
		stillNeeded := func(a string) bool { return need[a] || f.Keep(a) || !f.Judged(a) }
		for _, e := range f.Mine.Launch {
			switch {
			case isOrgEntity(e):
				if f.CoverKnown && cover[e].ARN == "" {
					removeLaunch = append(removeLaunch, e) // no longer wholly targeted
				}
			case !stillNeeded(e):
				removeLaunch = append(removeLaunch, e)
			case f.Judged(e) && coverOf[e] != "" && (present[coverOf[e]] || addedOU[coverOf[e]]):
				removeLaunch = append(removeLaunch, e) // its OU stands for it now
			}
		}
		// OU grants other scopes of amicopier made are taken back by any
		// scope that sees them no longer wholly targeted.
		if f.CoverKnown && f.Read {
			for e := range f.Ours {
				if isOrgEntity(e) && present[e] && !mine[e] && cover[e].ARN == "" {
					removeLaunch = append(removeLaunch, e)
				}
			}
		}
		for _, a := range f.Mine.Volume {
			if !stillNeeded(a) {
				removeVolume = append(removeVolume, a)
			}
		}
	}

	// What other tools granted, to accounts and OUs that are not targets.
	if f.Read {
		for _, e := range f.Current.Entities() {
			if f.Ours[e] || mine[e] {
				continue
			}
			if isOrgEntity(e) {
				if cover[e].ARN == "" {
					plan.Foreign = append(plan.Foreign, e)
				}
			} else if !f.IsTarget(e) {
				plan.Foreign = append(plan.Foreign, e)
			}
		}
		if f.Current.Public {
			plan.Foreign = append(plan.Foreign, "all (public)")
		}
		slices.Sort(plan.Foreign)
		if f.RevokeForeign {
			for _, e := range plan.Foreign {
				if e != "all (public)" {
					removeLaunch = append(removeLaunch, e)
				}
			}
		}
	}
	slices.Sort(removeLaunch)
	removeLaunch = slices.Compact(removeLaunch)
	if f.Read {
		removeLaunch = slices.DeleteFunc(removeLaunch, func(e string) bool { return !present[e] })
	}
	plan.RemoveLaunch = splitEntities(removeLaunch)
	for _, a := range removeVolume {
		for _, snap := range f.Snapshots {
			if !f.Read || slices.Contains(f.CurrentVolume[snap], a) {
				plan.RemoveVolume[snap] = append(plan.RemoveVolume[snap], a)
			}
		}
	}
	plan.Revoked = append(slices.Clone(removeLaunch), removeVolume...)
	slices.Sort(plan.Revoked)
	plan.Revoked = slices.Compact(plan.Revoked)

	// The records: ahead of the additions, what will be ours; after
	// every change, what is.
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
	after.Launch = minus(ahead.Launch, removeLaunch)
	after.Volume = minus(ahead.Volume, removeVolume)
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
	return plan
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
