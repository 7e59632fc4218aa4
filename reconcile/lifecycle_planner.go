package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/state"
)

// The pure decisions of a copy's lifecycle beside the planner: its
// deprecation time, which builds source.keep_latest keeps, and when a copy
// of a superseded build may go. Like PlanPair they do no I/O and read no
// clock.

// DeprecationFacts is what is known of the deprecation of one copy
// amicopier made.
type DeprecationFacts struct {
	// Current is the copy's deprecation time as DescribeImages reports
	// it, Created when the copy was made; zero: none.
	Current, Created time.Time
	// Source is the source's deprecation time (zero: none).
	Source time.Time
	// After is copy.deprecate_after (0: none).
	After time.Duration
}

// DeprecationDecision is what to do about a copy's deprecation time.
type DeprecationDecision struct {
	// Want is the time the copy should have (zero: none).
	Want time.Time
	// Enable sets it (at DeprecateAt's time), Disable cancels it; with
	// neither the copy's time is right (or cannot be helped: Reason).
	Enable, Disable bool
	Reason          string
}

// Changes reports whether the decision calls EC2.
func (d DeprecationDecision) Changes() bool { return d.Enable || d.Disable }

// WantedDeprecation is the deprecation time a copy should have: its
// source's, or its creation plus after when that is earlier (the earlier
// is the safe reading: a copy is never offered longer than its source,
// nor longer than deprecate_after). In whole minutes as EC2 keeps them:
// the source's is EC2's already, the other is cut to the minute (earlier,
// never later). Zero: none.
func WantedDeprecation(source, created time.Time, after time.Duration) time.Time {
	want := cloud.DeprecationMinute(source)
	if after > 0 && !created.IsZero() {
		own := created.UTC().Add(after).Truncate(time.Minute)
		if want.IsZero() || own.Before(want) {
			want = own
		}
	}
	return want
}

// PlanDeprecation decides about the deprecation time of one copy
// amicopier made. EC2 takes no time in the past: a copy whose time has
// come while it had none (or a later one) is deprecated as soon as EC2
// allows (DeprecateAt), and one deprecated already stays so.
func PlanDeprecation(f DeprecationFacts, now time.Time) DeprecationDecision {
	cur := cloud.DeprecationMinute(f.Current)
	d := DeprecationDecision{Want: WantedDeprecation(f.Source, f.Created, f.After)}
	why := deprecationWhy(f, d.Want)
	switch {
	case d.Want.Equal(cur):
		d.Reason = why
	case d.Want.IsZero():
		d.Disable = true
		d.Reason = "its source is no longer scheduled for deprecation"
	case !d.Want.After(now):
		if !cur.IsZero() && !cur.After(now) {
			d.Reason = why + "; the copy is deprecated already" // both passed: nothing EC2 would take
			return d
		}
		d.Enable = true
		d.Reason = why + ", which has passed: the copy is deprecated at the first minute EC2 takes"
	case d.Want.After(now.Add(cloud.MaxDeprecationAhead)):
		d.Reason = why + ", more than 10 years ahead, which EC2 does not take; left as it is"
	default:
		d.Enable = true
		d.Reason = why
	}
	return d
}

// deprecationWhy says where the wanted time comes from.
func deprecationWhy(f DeprecationFacts, want time.Time) string {
	switch {
	case want.IsZero():
		return "neither its source nor copy.deprecate_after deprecates it"
	case !f.Source.IsZero() && want.Equal(cloud.DeprecationMinute(f.Source)):
		return "its source's deprecation time"
	}
	return fmt.Sprintf("copy.deprecate_after (%s after the copy was made)", days(f.After))
}

// days writes a duration as config.yaml does when it is whole days
// ("180d"), else as Go does.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}

// DeprecateAt is the time EnableImageDeprecation asks for at now: the
// wanted time, or the first whole minute after now when that has passed
// (or passes before the call arrives).
func DeprecateAt(d DeprecationDecision, now time.Time) time.Time {
	first := now.UTC().Truncate(time.Minute).Add(time.Minute)
	if d.Want.Before(first) {
		return first
	}
	return d.Want
}

// BuildRank is where a source AMI stands among the builds of its group
// (source.keep_latest): the builds of one source Region with the same
// value of the group_by tag, newest first by creation date.
type BuildRank struct {
	// Group is the group_by tag's value; Rank the build's place (1: the
	// newest) of Of.
	Group    string
	Rank, Of int
	// Kept lists the ids of the group's builds keep_latest keeps, newest
	// first.
	Kept []string
}

// Superseded reports whether keep_latest keeps the build no longer.
func (b BuildRank) Superseded() bool { return b.Rank > len(b.Kept) }

// RankBuilds ranks the images that carry k.GroupBy (copies are no builds:
// leave them out) within their group; images without the tag are in no
// group. Creation dates tie-break by id, newest-looking first, so the
// verdict is stable. Nil when keep_latest is off.
func RankBuilds(imgs []cloud.Image, k KeepLatest) map[string]BuildRank {
	if k.Count < 1 || k.GroupBy == "" {
		return nil
	}
	groups := map[[2]string][]*cloud.Image{}
	for i := range imgs {
		if v, ok := imgs[i].Tags[k.GroupBy]; ok {
			key := [2]string{imgs[i].Region, v}
			groups[key] = append(groups[key], &imgs[i])
		}
	}
	out := make(map[string]BuildRank, len(imgs))
	for key, g := range groups {
		slices.SortFunc(g, func(a, b *cloud.Image) int {
			return cmp.Or(b.CreationDate.Compare(a.CreationDate), strings.Compare(b.ID, a.ID))
		})
		kept := make([]string, 0, min(k.Count, len(g)))
		for _, im := range g[:min(k.Count, len(g))] {
			kept = append(kept, im.ID)
		}
		for i, im := range g {
			out[im.ID] = BuildRank{Group: key[1], Rank: i + 1, Of: len(g), Kept: kept}
		}
	}
	return out
}

// SupersededFacts is what is known of the copies amicopier made of a
// superseded build in one account and Region (one pair).
type SupersededFacts struct {
	Key     state.PairKey
	CopyIDs []string
	// Record is the pair's stored record, nil if none.
	Record *state.Pair
	Source string
	// Group names the build's group ("Recipe=web"); Newer is a good copy
	// of a build the group keeps in the same account and Region, ""
	// when there is none yet.
	Group, Newer string
	// Checked says InUse and Templates were read: the instances launched
	// from the copies, and the launch template versions that name them
	// (or name a parameter EC2 did not resolve).
	Checked   bool
	InUse     int
	Templates []string
}

// SupersededDecision is what to do about the copies of a superseded build
// in one account and Region.
type SupersededDecision struct {
	Reason string
	// Due: the grace period is over and a newer copy is there; the
	// instances and launch templates decide.
	Due bool
	// Prune: deregister the copies and delete their snapshots.
	Prune bool
	// Record to write (nil: unchanged).
	Record *state.Pair
}

// PlanSuperseded decides about the copies of a superseded build, under the
// prune policy's rules: only with prune.enabled, after the grace period
// counted from the first run that saw them superseded (remembered in a
// superseded record), never while an instance uses one or a launch
// template's default or latest version names one, and never before a copy
// of a build the group keeps is good in the same account and Region: a
// group is never left without a copy.
func PlanSuperseded(f SupersededFacts, p PrunePolicy) SupersededDecision {
	base := fmt.Sprintf("copy %s was made by amicopier from %s, a build of %s that newer builds supersede (source.keep_latest)",
		strings.Join(f.CopyIDs, ", "), f.Key.SourceImage, f.Group)
	if !p.Enabled {
		return SupersededDecision{Reason: base + "; pruning is off (prune.enabled), so it is only reported"}
	}
	if f.Record == nil || f.Record.Status != state.PairSuperseded {
		next := Supersede(f.Key, f.Source, f.Record, f.CopyIDs[0], base, p.Now.Add(p.Grace))
		return SupersededDecision{Record: &next,
			Reason: fmt.Sprintf("%s; it may be removed after %s (prune.grace_period)", base, next.NextRetry.UTC().Format(time.RFC3339))}
	}
	if p.Now.Before(f.Record.NextRetry) {
		return SupersededDecision{Reason: fmt.Sprintf("%s; it may be removed after %s (prune.grace_period)", base, f.Record.NextRetry.UTC().Format(time.RFC3339))}
	}
	switch {
	case f.Newer == "":
		return SupersededDecision{Reason: base + "; kept: no copy of a build " + f.Group + " keeps is available in this account and Region yet, and a group is never left without a copy"}
	case !f.Checked:
		return SupersededDecision{Reason: base + "; the grace period is over", Due: true}
	case f.InUse > 0:
		return SupersededDecision{Reason: fmt.Sprintf("%s; kept: %d instance(s) in the account use it", base, f.InUse), Due: true}
	case len(f.Templates) > 0:
		return SupersededDecision{Reason: fmt.Sprintf("%s; kept: launch template %s", base, strings.Join(f.Templates, "; ")), Due: true}
	}
	return SupersededDecision{Due: true, Prune: true,
		Reason: fmt.Sprintf("%s; the grace period is over, %s of a newer build is available, and no instance or launch template uses it: prune (deregister, delete its snapshots)", base, f.Newer)}
}
