package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// Pruning removes copies amicopier made whose source AMI no longer exists.
// It is off by default, and even when on it only ever touches copies that
// carry amicopier's marker and were made for this source account, only
// after the grace period (counted from the first run that saw the source
// gone, remembered in an "orphaned" state record), and never while an
// instance in the account still uses the copy.

// OrphanFacts is what is known about one orphaned copy.
type OrphanFacts struct {
	Key    state.PairKey
	CopyID string
	// Record is the pair's orphaned record, nil the first time.
	Record *state.Pair
	Source string
	// InUse is the number of instances launched from the copy; -1 when
	// not checked (the copy is not due for pruning). Templates, read with
	// it, lists the launch template versions that name the copy (or name
	// a parameter EC2 did not resolve).
	InUse     int
	Templates []string
}

// PrunePolicy is the prune configuration and the time.
type PrunePolicy struct {
	Enabled bool
	Grace   time.Duration
	Now     time.Time
}

// OrphanDecision is what to do about an orphaned copy.
type OrphanDecision struct {
	Reason string
	// Due: the grace period is over; the instance check decides.
	Due bool
	// Prune: deregister the copy and delete its snapshots.
	Prune bool
	// Record to write (nil: unchanged).
	Record *state.Pair
}

// PlanOrphan decides about one orphaned copy. It is pure.
func PlanOrphan(f OrphanFacts, p PrunePolicy) OrphanDecision {
	base := fmt.Sprintf("copy %s was made by amicopier from %s, which no longer exists", f.CopyID, f.Key.SourceImage)
	if !p.Enabled {
		return OrphanDecision{Reason: base + "; pruning is off (prune.enabled)"}
	}
	if f.Record == nil || f.Record.Status != state.PairOrphaned {
		r := state.Pair{Key: f.Key, Source: f.Source}
		if f.Record != nil {
			r = *f.Record
		}
		r.Status = state.PairOrphaned
		r.CopyImageID = f.CopyID
		r.NextRetry = p.Now.Add(p.Grace)
		r.LastErrorCode, r.LastError = "SourceGone", base
		return OrphanDecision{
			Reason: fmt.Sprintf("%s; it may be pruned after %s (prune.grace_period)", base, r.NextRetry.UTC().Format(time.RFC3339)),
			Record: &r,
		}
	}
	if p.Now.Before(f.Record.NextRetry) {
		return OrphanDecision{Reason: fmt.Sprintf("%s; it may be pruned after %s (prune.grace_period)", base, f.Record.NextRetry.UTC().Format(time.RFC3339))}
	}
	switch {
	case f.InUse < 0:
		return OrphanDecision{Reason: base + "; the grace period is over", Due: true}
	case f.InUse > 0:
		return OrphanDecision{Reason: fmt.Sprintf("%s; %d instance(s) in the account still use it, so it is kept", base, f.InUse), Due: true}
	case len(f.Templates) > 0:
		return OrphanDecision{Reason: fmt.Sprintf("%s; launch template %s, so it is kept", base, strings.Join(f.Templates, "; ")), Due: true}
	}
	return OrphanDecision{Reason: base + "; the grace period is over and no instance uses it: prune (deregister, delete its snapshots)", Due: true, Prune: true}
}

// pruneWork is an orphaned copy and what the run decided about it.
type pruneWork struct {
	o      orphanCandidate
	key    state.PairKey
	dec    OrphanDecision
	stored *state.Pair
	// item is the orphaned copy's line in the report.
	item report.Item
}

// findOrphans checks, with one describe per source Region, which candidate
// sources really no longer exist, reports those copies as orphaned and
// plans their pruning. It also retires the records of pairs whose copy is
// left by a source that still exists, and orphaned records whose copy is
// gone; neither in a scoped run (it saw only part of the world) nor when
// discovery was incomplete (a pair that looks untargeted may be wanted).
func (r *run) findOrphans(ctx context.Context) {
	if r.scoped {
		return
	}
	exists, ok := r.sourcesExist(ctx)
	if !ok {
		return
	}
	settle := !r.found.incomplete
	retired := retirements{}
	// candidate holds every pair with a copy left by an undiscovered
	// source: whatever becomes of its record, it is decided once, here.
	candidate := map[state.PairKey]bool{}
	var orphans []orphanCandidate
	for _, o := range r.seen.orphans {
		key := state.PairKey{SourceImage: o.sourceID, Account: o.account, Region: o.region}
		candidate[key] = true
		switch {
		case !exists[o.sourceID] && slices.Contains(r.e.set.SourceRegions, o.sourceRegion):
			orphans = append(orphans, o)
		case settle:
			// The source exists but no longer targets the account: the
			// copy stays, and its pair's record leaves the unsettled
			// index.
			k := [2]string{o.account, o.region}
			if rec, ok := r.seen.records[k][key]; ok {
				retired.add(k, retire(rec, "NoLongerTargeted", "the source no longer targets this account and Region; its copy is kept"))
			}
		}
	}
	r.seen.orphans = nil // what prune needs is in pruneWork now
	seen := r.planOrphans(ctx, orphans, settle)
	if settle {
		r.retireGoneOrphans(seen, candidate, retired)
	}
	for _, k := range sortedKeys2(retired) {
		r.seen.work = append(r.seen.work, retired[k])
	}
}

// retirements collects the records to retire, by account and Region.
type retirements map[[2]string]*regionWork

func (rt retirements) add(k [2]string, pw *pairWork) {
	rw := rt[k]
	if rw == nil {
		rw = &regionWork{account: k[0], region: k[1]}
		rt[k] = rw
	}
	rw.pairs = append(rw.pairs, pw)
}

// planOrphans decides about each orphaned copy (PlanOrphan), asks whether
// instances use the ones due for pruning, and makes their lines of the
// report; it returns the pairs it decided about.
func (r *run) planOrphans(ctx context.Context, orphans []orphanCandidate, settle bool) map[state.PairKey]bool {
	slices.SortFunc(orphans, func(a, b orphanCandidate) int {
		return cmp.Or(strings.Compare(a.account, b.account), strings.Compare(a.region, b.region), strings.Compare(a.copyID, b.copyID))
	})
	policy := r.e.set.Prune
	policy.Now = r.policy.Now
	seen := map[state.PairKey]bool{}
	var due []*pruneWork
	for _, o := range orphans {
		key := state.PairKey{SourceImage: o.sourceID, Account: o.account, Region: o.region}
		seen[key] = true
		var rec *state.Pair
		if p, ok := r.seen.records[[2]string{o.account, o.region}][key]; ok {
			rec = &p
		}
		pw := &pruneWork{o: o, key: key, stored: rec}
		pw.dec = PlanOrphan(OrphanFacts{Key: key, CopyID: o.copyID, Record: rec, Source: r.e.set.SourceAccount, InUse: -1}, policy)
		if !policy.Enabled && rec != nil && rec.Status == state.PairOrphaned && settle {
			// Pruning was turned off: the grace period it measured no
			// longer matters; the record leaves the unsettled index.
			next := Retire(*rec, "PruneOff", "pruning is off; the orphaned copy is only reported")
			pw.dec.Record = &next
		}
		if pw.dec.Due {
			due = append(due, pw)
		}
		r.pruneWork = append(r.pruneWork, pw)
	}
	r.checkInstances(ctx, due, policy)
	for _, pw := range r.pruneWork {
		action := "none"
		if pw.dec.Prune {
			action = "prune"
		}
		pw.item = report.Item{
			SourceImage: pw.key.SourceImage, SourceRegion: pw.o.sourceRegion, Account: pw.key.Account,
			AccountName: r.accountName(pw.key.Account), Region: pw.key.Region, Category: report.Orphaned,
			Reason: pw.dec.Reason, CopyImages: []string{pw.o.copyID}, Copies: []report.Copy{{ImageID: pw.o.copyID, Managed: true}}, Action: action,
		}
	}
	return seen
}

// retireGoneOrphans retires the orphaned records whose copy is gone
// (pruned by hand, say); gone means the account/Region's copies were
// listed without it. A record another path decides about (its copy is
// still listed, or its source is discovered) is not its.
func (r *run) retireGoneOrphans(seen, candidate map[state.PairKey]bool, retired retirements) {
	for _, k := range sortedKeys2(r.seen.records) {
		if !r.seen.wasDescribed(k[0], k[1]) {
			continue
		}
		for key, rec := range r.seen.records[k] {
			if rec.Status == state.PairOrphaned && !seen[key] && !candidate[key] && r.found.byID[key.SourceImage] == nil {
				retired.add(k, retire(rec, "CopyGone", "the orphaned copy no longer exists"))
			}
		}
	}
}

// sourcesExist describes the candidates' sources by id, in batches, per
// source Region. ok is false when the check could not be made.
func (r *run) sourcesExist(ctx context.Context) (map[string]bool, bool) {
	exists := map[string]bool{}
	if len(r.seen.orphans) == 0 {
		return exists, true
	}
	byRegion := map[string][]string{}
	for _, o := range r.seen.orphans {
		byRegion[o.sourceRegion] = append(byRegion[o.sourceRegion], o.sourceID)
	}
	for _, region := range sortedKeys(byRegion) {
		if !slices.Contains(r.e.set.SourceRegions, region) {
			continue
		}
		ids := byRegion[region]
		slices.Sort(ids)
		ids = slices.Compact(ids)
		c, err := r.sourceClient(ctx, region)
		if err != nil {
			r.fail(fmt.Sprintf("check orphan sources in %s", region), err)
			return nil, false
		}
		imgs, err := c.DescribeImages(ctx, cloud.ImageQuery{ImageIDs: ids})
		if err != nil {
			r.fail(fmt.Sprintf("check orphan sources in %s", region), err)
			return nil, false
		}
		for _, im := range imgs {
			// EC2 lists a deregistered image for a while, in that state
			// (DescribeImages, Amazon EC2 API Reference): it is gone.
			exists[im.ID] = im.State != cloud.ImageDeregistered
		}
	}
	return exists, true
}

// checkInstances asks, once per account and Region, which due copies
// instances still use or launch templates name, and settles those
// decisions.
func (r *run) checkInstances(ctx context.Context, due []*pruneWork, policy PrunePolicy) {
	groups := map[[2]string][]*pruneWork{}
	for _, pw := range due {
		k := [2]string{pw.o.account, pw.o.region}
		groups[k] = append(groups[k], pw)
	}
	for _, k := range sortedKeys2(groups) {
		ws := groups[k]
		ids := make([]string, len(ws))
		for i, pw := range ws {
			ids[i] = pw.o.copyID
		}
		use, err := readImageUse(ctx, ws[0].o.client, ids) // lifecycle.go
		for _, pw := range ws {
			if err != nil {
				// Unknown use means keep: never prune what might be running.
				pw.dec = OrphanDecision{Reason: pw.dec.Reason + "; could not check the instances and launch templates using it (" + err.Error() + "), so it is kept"}
				continue
			}
			pw.dec = PlanOrphan(OrphanFacts{Key: pw.key, CopyID: pw.o.copyID, Record: pw.stored,
				Source: r.e.set.SourceAccount, InUse: use.instances[pw.o.copyID], Templates: use.templatesNaming(pw.o.copyID)}, policy)
		}
		if err != nil {
			r.fail(fmt.Sprintf("check instances and launch templates using orphaned copies in %s/%s", k[0], k[1]), err)
		}
	}
}

func sortedKeys2[V any](m map[[2]string]V) [][2]string {
	keys := make([][2]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1])) })
	return keys
}

// prune deregisters due orphaned copies and deletes their snapshots, and
// writes the orphan records.
func (r *run) prune(ctx context.Context) {
	for _, pw := range r.pruneWork {
		if ctx.Err() != nil {
			return
		}
		r.carryOut(ctx, removal{key: pw.key, stored: pw.stored, prune: pw.dec.Prune, reason: pw.dec.Reason,
			record: &pw.dec.Record, item: &pw.item, what: "orphaned copy",
			remove: func() ([]string, bool) { return r.pruneCopy(ctx, pw) }})
	}
}

// removal is a pair whose copies the prune step decided about (orphaned
// or superseded): remove them (prune), and write its record.
type removal struct {
	key    state.PairKey
	stored *state.Pair
	prune  bool
	reason string
	record **state.Pair
	item   *report.Item
	what   string
	// remove deregisters the copies; it returns the snapshots EC2 could
	// not delete, and ok false when a copy could not be removed.
	remove func() (left []string, ok bool)
}

// carryOut removes the copies of a removal when due (the time budget
// allowing), then writes its record: settled once removed (or still
// listing the snapshots EC2 kept), or as decided.
func (r *run) carryOut(ctx context.Context, rm removal) {
	if rm.prune {
		if r.outOfTime() {
			rm.item.Action = "deferred"
			return
		}
		left, ok := rm.remove()
		if !ok {
			return
		}
		next := AfterPrune(rm.key, r.e.set.SourceAccount, rm.stored, rm.reason, left)
		*rm.record = &next
	}
	if *rm.record != nil {
		if _, err := r.writePair(ctx, nil, &pairWork{key: rm.key, stored: rm.stored}, **rm.record); err != nil {
			r.fail(fmt.Sprintf("%s %s", rm.what, rm.key), err)
		}
	}
}

// pruneCopy deregisters an orphaned copy and deletes its snapshots in the
// same call (DeleteAssociatedSnapshots: deleting them after the image
// races with EC2 releasing them, and fails InvalidSnapshot.InUse); it
// returns the snapshots EC2 could not delete, which later runs delete.
func (r *run) pruneCopy(ctx context.Context, pw *pruneWork) (left []string, ok bool) {
	o := &pw.o
	left, err := o.client.DeregisterImage(ctx, o.copyID, true)
	if err != nil {
		r.fail(fmt.Sprintf("prune %s in %s/%s: deregister", o.copyID, o.account, o.region), err)
		pw.item.Action = "prune_failed"
		pw.item.LastError = err.Error()
		return nil, false
	}
	r.count("prune", 1)
	return left, true
}

// cleanLeftovers deletes the snapshots records list as left behind by a
// copy amicopier removed (EC2 could not delete them with it), in the
// accounts and Regions the run observed; a record whose snapshots are all
// gone no longer lists them, and a pruned one settles.
func (r *run) cleanLeftovers(ctx context.Context) {
	for _, k := range sortedKeys2(r.seen.records) {
		if !r.seen.wasDescribed(k[0], k[1]) {
			continue
		}
		for _, key := range sortedPairKeys(r.seen.records[k]) {
			rec := r.seen.records[k][key]
			if len(rec.Snapshots) == 0 || ctx.Err() != nil || r.outOfTime() {
				continue
			}
			if cur, ok := r.out.writtenRecord(key); ok {
				rec = cur // this run wrote it since
			}
			client, err := r.conn.Target(ctx, k[0], k[1])
			if err != nil {
				continue
			}
			var left []string
			for _, snap := range rec.Snapshots {
				err := client.DeleteSnapshot(ctx, snap)
				switch {
				case err == nil || cloud.ClassOf(err) == cloud.ClassNotFound:
					r.count("delete_leftover_snapshot", 1)
				default:
					left = append(left, snap)
					r.fail(fmt.Sprintf("pair %s: delete leftover snapshot %s", key, snap), err)
				}
			}
			if _, err := r.putPair(ctx, &rec, AfterLeftovers(rec, left)); err != nil {
				r.fail(fmt.Sprintf("pair %s", key), err)
			}
		}
	}
}

// hasLeftovers reports whether a record lists snapshots to delete.
func (r *run) hasLeftovers() bool {
	for k, recs := range r.seen.records {
		if !r.seen.wasDescribed(k[0], k[1]) {
			continue
		}
		for _, rec := range recs {
			if len(rec.Snapshots) > 0 {
				return true
			}
		}
	}
	return false
}

func sortedPairKeys(m map[state.PairKey]state.Pair) []state.PairKey {
	keys := make([]state.PairKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, comparePairKeys)
	return keys
}
