package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// share grants the launch permission of each source image that needs
// copies, and the create-volume permission of its snapshots, to every
// account about to copy it: one describe and at most one modify per image
// and per snapshot, for all targets at once, skipping accounts already
// granted. The source account's mutating token bucket is shared by every
// target, so this is where per-pair sharing would collapse.
func (r *run) share(ctx context.Context) {
	need := map[string]map[string]bool{}
	for _, rw := range r.work {
		if rw.account == r.e.cfg.Source.AccountID {
			continue // the owner needs no permission
		}
		for _, pw := range rw.pairs {
			if !pw.dec.Copy {
				continue
			}
			id := pw.src.img.ID
			if need[id] == nil {
				need[id] = map[string]bool{}
			}
			need[id][rw.account] = true
		}
	}
	ids := sortedKeys(need)
	r.e.progress.Phase("share", len(ids))
	// A few images at a time: the source account's mutating bucket is the
	// bottleneck, more parallelism would only be throttled.
	parallel(ctx, len(ids), min(4, r.e.cfg.Limits.Concurrency), func(ctx context.Context, i int) {
		src := r.byID[ids[i]]
		accounts := sortedKeys(need[ids[i]])
		if err := r.shareImage(ctx, src, accounts); err != nil {
			r.mu.Lock()
			r.shareErr[src.img.ID] = err
			r.mu.Unlock()
			r.errorf("share %s with %d account(s): %v", src.img.ID, len(accounts), err)
		}
		r.e.progress.Step(1)
	})
}

func (r *run) shareImage(ctx context.Context, src *sourceImage, accounts []string) error {
	if r.outOfTime() {
		return errTimeBudget
	}
	c, err := r.sourceClient(ctx, src.img.Region)
	if err != nil {
		return err
	}
	var granted []string
	if err := r.call(ctx, func() error {
		var err error
		granted, err = c.ImageLaunchPermissions(ctx, src.img.ID)
		return err
	}); err != nil {
		return errorf(err, "read launch permission of %s", src.img.ID)
	}
	for batch := range slices.Chunk(missing(accounts, granted), MaxShareBatch) {
		if err := r.call(ctx, func() error { return c.AddImageLaunchPermissions(ctx, src.img.ID, batch) }); err != nil {
			return errorf(err, "grant launch permission of %s", src.img.ID)
		}
		r.count("share_launch_permission", 1)
	}
	for _, snap := range src.img.SnapshotIDs() {
		if err := r.call(ctx, func() error {
			var err error
			granted, err = c.SnapshotVolumePermissions(ctx, snap)
			return err
		}); err != nil {
			return errorf(err, "read create-volume permission of %s (snapshot of %s)", snap, src.img.ID)
		}
		for batch := range slices.Chunk(missing(accounts, granted), MaxShareBatch) {
			if err := r.call(ctx, func() error { return c.AddSnapshotVolumePermissions(ctx, snap, batch) }); err != nil {
				return errorf(err, "grant create-volume permission of %s (snapshot of %s)", snap, src.img.ID)
			}
			r.count("share_snapshot", 1)
		}
	}
	return nil
}

// missing returns want minus have.
func missing(want, have []string) []string {
	h := make(map[string]bool, len(have))
	for _, a := range have {
		h[a] = true
	}
	var out []string
	for _, a := range want {
		if !h[a] {
			out = append(out, a)
		}
	}
	return out
}

var errTimeBudget = errors.New("time budget reached; the next run continues")

// apply works through every account and Region with work, a bounded
// number at a time.
func (r *run) apply(ctx context.Context) {
	slices.SortFunc(r.work, func(a, b *regionWork) int {
		if a.account != b.account {
			return compareStr(a.account, b.account)
		}
		return compareStr(a.region, b.region)
	})
	total := 0
	for _, rw := range r.work {
		total += len(rw.pairs)
	}
	r.e.progress.Phase("copy", total)
	parallel(ctx, len(r.work), r.e.cfg.Limits.Concurrency, func(ctx context.Context, i int) {
		r.applyRegion(ctx, r.work[i])
	})
	if ctx.Err() != nil {
		r.errorf("run interrupted before all work was done: %v", context.Cause(ctx))
	}
}

func (r *run) applyRegion(ctx context.Context, rw *regionWork) {
	slices.SortFunc(rw.pairs, func(a, b *pairWork) int { return compareStr(a.key.SourceImage, b.key.SourceImage) })
	capacity := r.e.cfg.Limits.InFlightCopies
	quotaFull := false
	for _, pw := range rw.pairs {
		if ctx.Err() != nil {
			return
		}
		r.applyPair(ctx, rw, pw, capacity, &quotaFull)
		r.e.progress.Step(1)
	}
}

func (r *run) applyPair(ctx context.Context, rw *regionWork, pw *pairWork, capacity int, quotaFull *bool) {
	for _, id := range pw.dec.Deregister {
		if r.outOfTime() {
			break
		}
		if err := r.call(ctx, func() error { return rw.client.DeregisterImage(ctx, id) }); err != nil {
			r.errorf("pair %s: deregister failed copy %s: %v", pw.key, id, err)
			continue
		}
		r.count("deregister_failed", 1)
	}
	if !pw.dec.Copy {
		if pw.dec.Record != nil {
			if _, err := r.putPair(ctx, pw, *pw.dec.Record); err != nil {
				r.errorf("pair %s: %v", pw.key, err)
			}
		}
		return
	}

	defer_ := func(reason string) {
		r.count("deferred", 1)
		r.updateItem(pw.item, func(it *report.Item) {
			it.Action = "deferred"
			it.Reason += "; deferred: " + reason
		})
	}
	if err := r.shareErr[pw.src.img.ID]; err != nil && rw.account != r.e.cfg.Source.AccountID {
		r.shareFailed(ctx, pw, err)
		return
	}
	switch {
	case r.outOfTime():
		defer_("the time budget is spent; the next run continues")
		return
	case *quotaFull:
		defer_("EC2 refused more concurrent copies in this account and Region (ResourceLimitExceeded)")
		return
	case rw.inFlight >= capacity:
		defer_(fmt.Sprintf("%d copies are already in flight in %s/%s (limits.in_flight_copies)", rw.inFlight, rw.account, rw.region))
		return
	}

	// Write ahead: the attempt and its ClientToken are recorded before
	// the call, so a crash after the call repeats the same token.
	want := pw.dec.Record
	if want == nil {
		want = pw.stored // the same attempt again: its record is already written
	}
	rec, err := r.putPair(ctx, pw, *want)
	if err != nil {
		r.errorf("pair %s: not copied: %v", pw.key, err)
		r.updateItem(pw.item, func(it *report.Item) { it.Action = "none"; it.LastError = err.Error() })
		return
	}
	in := pw.plan.Input
	in.ClientToken = rec.ClientToken
	in.Tags = maps.Clone(in.Tags)
	in.Tags[TagAttempt] = strconv.Itoa(rec.Attempts)
	var imageID string
	callErr := r.call(ctx, func() error {
		var err error
		imageID, err = rw.client.CopyImage(ctx, in)
		return err
	})
	after := AfterCopy(rec, imageID, callErr, r.policy)
	if _, err := r.putPair(ctx, &pairWork{key: pw.key, stored: &rec}, after); err != nil {
		r.errorf("pair %s: record copy result: %v", pw.key, err)
	}
	if callErr != nil {
		if cloud.ClassOf(callErr) == cloud.ClassLimit {
			*quotaFull = true
		}
		r.count("copy_failed", 1)
		r.errorf("pair %s: CopyImage: %v", pw.key, callErr)
		r.updateItem(pw.item, func(it *report.Item) {
			it.Action = "copy_failed"
			it.LastError = callErr.Error()
		})
		return
	}
	rw.inFlight++
	r.count("copy", 1)
	r.updateItem(pw.item, func(it *report.Item) {
		it.CopyImages = append(it.CopyImages, imageID)
	})
}

// shareFailed handles a pair whose source could not be shared. EC2
// refusing the share for good (a snapshot under the AWS-managed aws/ebs
// key cannot be shared at all) rejects the target and remembers why, so
// the next plan shows it without trying; anything else is retried by the
// next run.
func (r *run) shareFailed(ctx context.Context, pw *pairWork, err error) {
	switch cloud.ClassOf(err) {
	case cloud.ClassPermanent:
		reason := fmt.Sprintf("the source cannot be shared with account %s: %v", pw.key.Account, err)
		r.recategorize(pw.item, pw.dec.Category, report.RejectedTarget, reason)
		rec := state.Pair{Key: pw.key, Source: r.e.cfg.Source.AccountID, Fingerprint: pw.plan.Fingerprint}
		if pw.dec.Record != nil {
			rec = *pw.dec.Record
		} else if pw.stored != nil {
			rec = *pw.stored
		}
		rec.Status = state.PairRejected
		rec.Attempts = 0
		if pw.stored != nil {
			rec.Attempts = pw.stored.Attempts
		}
		rec.ClientToken = ""
		rec.LastErrorCode = cloud.CodeOf(err)
		rec.LastError = reason
		if _, werr := r.putPair(ctx, pw, rec); werr != nil {
			r.errorf("pair %s: %v", pw.key, werr)
		}
		r.updateItem(pw.item, func(it *report.Item) { it.Action = "none" })
	default:
		r.count("deferred", 1)
		r.updateItem(pw.item, func(it *report.Item) {
			it.Action = "deferred"
			it.Reason += "; deferred: sharing the source failed: " + err.Error()
		})
	}
}

// putPair writes a record if it differs from the stored one, guarded by
// the stored version: a lost condition means another run touched the
// pair, and the caller must not act on it.
func (r *run) putPair(ctx context.Context, pw *pairWork, want state.Pair) (state.Pair, error) {
	if pw.stored != nil && pw.stored.SameContent(want) {
		return *pw.stored, nil
	}
	want.Version = 0
	if pw.stored != nil {
		want.Version = pw.stored.Version
	}
	want.RunID = r.id
	want.UpdatedAt = r.e.clock.Now()
	got, err := r.e.store.PutPair(ctx, want)
	if err != nil && want.Version == 0 && errors.Is(err, state.ErrConflict) {
		// Only unsettled records are read up front; the pair has a
		// settled (audit) record from an earlier life, which it may
		// reopen. An unsettled one means another writer: back off.
		cur, ok, gerr := r.e.store.GetPair(ctx, want.Key)
		if gerr == nil && ok && cur.Status.Settled() {
			want.Version = cur.Version
			got, err = r.e.store.PutPair(ctx, want)
		}
	}
	if err != nil {
		return state.Pair{}, errorf(err, "state store: write pair %s", want.Key)
	}
	r.writes.Add(1)
	stored := got
	pw.stored = &stored
	return got, nil
}
