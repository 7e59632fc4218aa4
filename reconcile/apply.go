package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// share grants the launch permission of each source image that is copied
// in this run, and the create-volume permission of its snapshots, to every
// account about to copy it: one describe and at most one modify per image
// and per snapshot (per MaxShareBatch accounts), for all targets at once,
// skipping accounts already granted. The source account's mutating token
// bucket is shared by every target, so this is where per-pair sharing
// would collapse.
//
// Only the accounts that copy an image in this run are granted: a pair the
// in-flight cap will defer is granted in the run that copies it, still in
// one batch per image. Sharing runs in the background, alongside the
// copies: share returns at once, each copy waits only for its own source
// (shareOutcome), and the returned function waits for the whole step.
func (r *run) share(ctx context.Context) (wait func()) {
	source := r.e.cfg.Source.AccountID
	capacity := r.e.cfg.Limits.InFlightCopies
	need := map[string]map[string]bool{}
	for _, rw := range r.work {
		sortPairs(rw.pairs) // the order applyAll copies in
		if rw.account == source {
			continue // the owner needs no permission
		}
		slots := capacity - rw.inFlight
		for _, pw := range rw.pairs {
			if !pw.dec.Copy {
				continue
			}
			if slots <= 0 {
				break
			}
			slots--
			id := pw.src.img.ID
			if need[id] == nil {
				need[id] = map[string]bool{}
			}
			need[id][rw.account] = true
		}
	}
	ids := sortedKeys(need)
	r.shareNeed = need
	r.shareDone = make(map[string]chan struct{}, len(ids))
	for _, id := range ids {
		r.shareDone[id] = make(chan struct{})
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		// A few images at a time: the source account's mutating bucket
		// is the bottleneck, more parallelism would only wait on it.
		parallel(ctx, len(ids), min(4, r.e.cfg.Limits.Concurrency), func(ctx context.Context, i int) {
			defer close(r.shareDone[ids[i]])
			src := r.byID[ids[i]]
			accounts := sortedKeys(need[ids[i]])
			if err := r.shareImage(ctx, src, accounts); err != nil {
				r.mu.Lock()
				r.shareErr[src.img.ID] = err
				r.mu.Unlock()
				r.errorf("share %s with %d account(s): %v", src.img.ID, len(accounts), err)
			}
		})
		// parallel stops early when the run's context ends: never leave
		// a copy waiting for an image nobody shares.
		for _, id := range ids {
			select {
			case <-r.shareDone[id]:
			default:
				r.mu.Lock()
				if r.shareErr[id] == nil {
					r.shareErr[id] = fmt.Errorf("share %s: not attempted: %w", id, context.Cause(ctx))
				}
				r.mu.Unlock()
				close(r.shareDone[id])
			}
		}
	}()
	return func() { <-finished }
}

// shareOutcome waits until the sharing of image id is over and returns its
// error; shared is false when account is not granted in this run.
func (r *run) shareOutcome(ctx context.Context, id, account string) (shared bool, err error) {
	done, ok := r.shareDone[id]
	if !ok {
		return false, nil
	}
	select {
	case <-done:
	case <-ctx.Done():
		return true, context.Cause(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shareNeed[id][account], r.shareErr[id]
}

func sortPairs(pairs []*pairWork) {
	slices.SortFunc(pairs, func(a, b *pairWork) int { return strings.Compare(a.key.SourceImage, b.key.SourceImage) })
}

func (r *run) shareImage(ctx context.Context, src *sourceImage, accounts []string) error {
	if r.outOfTime() {
		return errTimeBudget
	}
	c, err := r.sourceClient(ctx, src.img.Region)
	if err != nil {
		return err
	}
	owner, region := r.e.cfg.Source.AccountID, src.img.Region
	var granted []string
	if err := r.callAt(ctx, owner, region, describeCall, func() error {
		var err error
		granted, err = c.ImageLaunchPermissions(ctx, src.img.ID)
		return err
	}); err != nil {
		return errorf(err, "read launch permission of %s", src.img.ID)
	}
	for batch := range slices.Chunk(missing(accounts, granted), MaxShareBatch) {
		if err := r.callAt(ctx, owner, region, mutatingCall, func() error { return c.AddImageLaunchPermissions(ctx, src.img.ID, batch) }); err != nil {
			return errorf(err, "grant launch permission of %s", src.img.ID)
		}
		r.count("share_launch_permission", 1)
	}
	for _, snap := range src.img.SnapshotIDs() {
		if err := r.callAt(ctx, owner, region, describeCall, func() error {
			var err error
			granted, err = c.SnapshotVolumePermissions(ctx, snap)
			return err
		}); err != nil {
			return errorf(err, "read create-volume permission of %s (snapshot of %s)", snap, src.img.ID)
		}
		for batch := range slices.Chunk(missing(accounts, granted), MaxShareBatch) {
			if err := r.callAt(ctx, owner, region, mutatingCall, func() error { return c.AddSnapshotVolumePermissions(ctx, snap, batch) }); err != nil {
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
			return strings.Compare(a.account, b.account)
		}
		return strings.Compare(a.region, b.region)
	})
	total := 0
	for _, rw := range r.work {
		total += len(rw.pairs)
	}
	r.e.progress.Phase("copy", total)
	r.applyAll(ctx, r.work, r.e.cfg.Limits.Concurrency) // schedule.go
	if ctx.Err() != nil {
		r.errorf("run interrupted before all work was done: %v", context.Cause(ctx))
	}
}

func (r *run) applyPair(ctx context.Context, rw *regionWork, pw *pairWork, capacity int, quotaFull *bool) {
	for _, id := range pw.dec.Deregister {
		if r.outOfTime() {
			break
		}
		if err := r.callAt(ctx, rw.account, rw.region, mutatingCall, func() error { return rw.client.DeregisterImage(ctx, id) }); err != nil {
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

	defer_ := func(reason string, capped bool) {
		r.count("deferred", 1)
		if capped {
			// Counted apart: the cap deferring a copy is the design
			// working, every other deferral is a problem postponed.
			r.count("deferred_in_flight_cap", 1)
		}
		r.updateItem(pw.item, func(it *report.Item) {
			it.Action = "deferred"
			it.Reason += "; deferred: " + reason
		})
	}
	granted := true
	if rw.account != r.e.cfg.Source.AccountID {
		shared, err := r.shareOutcome(ctx, pw.src.img.ID, rw.account)
		// A permanent refusal (an aws/ebs snapshot) rejects every pair of
		// the image; any other failure matters only to pairs that needed it.
		if err != nil && (shared || cloud.ClassOf(err) == cloud.ClassPermanent) {
			r.shareFailed(ctx, pw, err)
			return
		}
		granted = shared
	}
	switch {
	case r.outOfTime():
		defer_("the time budget is spent; the next run continues", false)
		return
	case *quotaFull:
		defer_("EC2 refused more concurrent copies in this account and Region (ResourceLimitExceeded)", false)
		return
	case rw.inFlight >= capacity:
		defer_(fmt.Sprintf("%d copies are already in flight in %s/%s (limits.in_flight_copies)", rw.inFlight, rw.account, rw.region), true)
		return
	case !granted || trimmed(pw):
		// Sharing (and trimDeferred) expected the cap to be full by now;
		// a copy before this one failed and left its slot free.
		defer_(fmt.Sprintf("the source was not shared with %s in this run, which expected limits.in_flight_copies to be reached; the next run continues", rw.account), true)
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
	callErr := r.callAt(ctx, rw.account, rw.region, mutatingCall, func() error {
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
		r.errorf("pair %s: %v", pw.key, callErr)
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
