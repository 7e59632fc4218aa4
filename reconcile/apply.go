package reconcile

import (
	"cmp"
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

// apply works through every account and Region with work, a bounded
// number at a time.
func (r *run) apply(ctx context.Context) {
	slices.SortFunc(r.seen.work, func(a, b *regionWork) int {
		return cmp.Or(strings.Compare(a.account, b.account), strings.Compare(a.region, b.region))
	})
	total := 0
	for _, rw := range r.seen.work {
		total += len(rw.pairs)
	}
	r.e.progress.Phase("copy", total)
	r.applyAll(ctx, r.seen.work, r.e.set.Concurrency) // schedule.go
	// A stop by the caller is the summary's to report (interrupt.go).
	if ctx.Err() != nil && r.stopped() == nil {
		r.fail("run interrupted before all work was done", context.Cause(ctx))
	}
}

// deferPair reports a copy left for the next run. capped says the
// in-flight cap deferred it: counted apart, since the cap deferring a
// copy is the design working, and every other deferral is a problem
// postponed.
func (r *run) deferPair(pw *pairWork, reason string, capped bool) {
	r.count("deferred", 1)
	if capped {
		r.count("deferred_in_flight_cap", 1)
	}
	pw.item.Action = "deferred"
	pw.item.Reason += "; deferred: " + reason
}

// capReason says why the in-flight cap defers a copy in rw.
func capReason(rw *regionWork) string {
	return fmt.Sprintf("%d copies are already in flight in %s/%s (limits.in_flight_copies)", rw.inFlight, rw.account, rw.region)
}

// deferTrimmed reports the copies trimDeferred dropped, for a run that
// changes nothing else and so never reaches applyPair.
func (r *run) deferTrimmed() {
	for _, rw := range r.seen.work {
		for _, pw := range rw.pairs {
			if pw.dec.Copy && trimmed(pw) {
				r.deferPair(pw, pw.capped, true)
			}
		}
	}
}

// applyPair acts on one pair: it removes the failed copies the plan
// names, then writes the pair's record or, for a copy, waits for its
// share and starts it unless something holds it back.
func (r *run) applyPair(ctx context.Context, c *regionCursor, pw *pairWork, capacity int) {
	if len(pw.dec.Deregister) > 0 && !r.removeFailed(ctx, c, pw) {
		return
	}
	if !pw.dec.Copy {
		if pw.dec.Record != nil {
			if _, err := r.writePair(ctx, c, pw, *pw.dec.Record); err != nil {
				r.fail(fmt.Sprintf("pair %s", pw.key), err)
			}
		}
		return
	}
	if pw.dec.Record != nil && pw.stored != nil {
		// The failure may have been written by reopening an earlier
		// life's record, whose attempts went further.
		next := ContinueAttempts(*pw.dec.Record, *pw.stored)
		pw.dec.Record = &next
	}
	sr := r.shareOutcome(ctx, pw.src.img.ID, c.rw.account)
	if r.copyHeldBack(ctx, c, pw, sr, capacity) {
		return
	}
	r.startCopy(ctx, c, pw, sr.justAdded)
}

// removeFailed records the failure of the attempt in flight, then
// deregisters the failed copies (the failed copy is the only proof of its
// failure: remembered first, nothing is lost if the copy is deferred below
// or the run killed in between). It reports whether the pair's work goes
// on.
func (r *run) removeFailed(ctx context.Context, c *regionCursor, pw *pairWork) bool {
	pre := pw.dec.Failure
	if pre == nil && !pw.dec.Copy {
		pre = pw.dec.Record
	}
	if pre != nil {
		if _, err := r.writePair(ctx, c, pw, *pre); err != nil {
			r.fail(fmt.Sprintf("pair %s: failed copy kept", pw.key), err)
			pw.item.Action = "none"
			pw.item.LastError = err.Error()
			return false
		}
	}
	if !r.deregisterFailed(ctx, c.rw, pw) && pw.dec.Copy {
		reason := "a failed copy could not be deregistered, and it holds the name the new copy takes; the next run tries again"
		if r.outOfTime() {
			reason = "the time budget is spent; the next run continues"
		}
		r.deferPair(pw, reason, false)
		return false
	}
	return true
}

// copyHeldBack handles a copy that may not start now, and reports whether
// it was one: its source could not be shared (or waits for room in the
// sharing quota), the run's time is spent, the Region's copies are denied
// or its quota full, or the in-flight cap is reached.
func (r *run) copyHeldBack(ctx context.Context, c *regionCursor, pw *pairWork, sr shareResult, capacity int) bool {
	rw := c.rw
	switch {
	case sr.rejected != nil:
		// EC2 refuses to share the source at all (an aws/ebs snapshot):
		// every pair of the image is rejected.
		r.shareFailed(ctx, c, pw, sr.rejected)
	case sr.err != nil:
		r.shareFailed(ctx, c, pw, sr.err)
	case sr.waits != "":
		r.deferPair(pw, sr.waits, false)
	case r.outOfTime():
		r.deferPair(pw, "the time budget is spent; the next run continues", false)
	case c.denied != "":
		pw.recategorize(report.Unreachable, fmt.Sprintf("not copied: %s", c.denied))
		pw.item.Action = "none"
	case c.quotaFull:
		r.deferPair(pw, "EC2 refused more concurrent copies in this account and Region (ResourceLimitExceeded)", false)
	case rw.inFlight >= capacity:
		r.deferPair(pw, capReason(rw), true)
	case !sr.granted || trimmed(pw):
		// Sharing (and trimDeferred) expected the cap to be full by now;
		// a copy before this one failed and left its slot free.
		r.deferPair(pw, fmt.Sprintf("the source was not shared with %s in this run, which expected limits.in_flight_copies to be reached; the next run continues", rw.account), true)
	default:
		return false
	}
	return true
}

// startCopy writes the attempt ahead (its ClientToken recorded before the
// call, so a crash after the call repeats the same token), calls
// CopyImage, and records the answer (AfterCopy).
func (r *run) startCopy(ctx context.Context, c *regionCursor, pw *pairWork, justShared bool) {
	rw := c.rw
	want := pw.dec.Record
	if want == nil {
		want = pw.stored // the same attempt again: its record is already written
	}
	ahead := *want
	ahead.Snapshots = union(ahead.Snapshots, pw.leftovers)
	rec, err := r.writePair(ctx, c, pw, ahead)
	if err != nil {
		r.fail(fmt.Sprintf("pair %s: not copied", pw.key), err)
		pw.item.Action = "none"
		pw.item.LastError = err.Error()
		return
	}
	in := pw.plan.Input
	in.ClientToken = rec.ClientToken
	in.Tags = maps.Clone(in.Tags)
	in.Tags[TagAttempt] = strconv.Itoa(rec.Attempts)
	imageID, callErr := rw.client.CopyImage(ctx, in)
	answer := CopyAnswer{ImageID: imageID, Err: callErr, JustShared: justShared}
	after := AfterCopy(rec, answer, r.policy)
	// The answer is recorded even when the run is being stopped (the
	// deadline, a signal): it is what the next run starts from.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if _, err := r.putPair(wctx, &rec, after); err != nil {
		r.fail(fmt.Sprintf("pair %s: record copy result", pw.key), err)
	}
	if callErr != nil {
		r.copyError(c, pw, answer)
		return
	}
	rw.inFlight++
	r.count("copy", 1)
	if r.req.TrackCopies {
		r.out.noteStarted(StartedCopy{Account: rw.account, Region: rw.region, ImageID: imageID, SourceImageID: in.SourceImageID})
	}
	pw.item.CopyImages = append(pw.item.CopyImages, imageID)
	pw.item.Copies = append(pw.item.Copies, startedCopy(imageID, in.KMSKeyID))
	pw.item.Attempts = rec.Attempts
}

// deregisterFailed removes the failed copies the plan names, with their
// snapshots (DeleteAssociatedSnapshots: deleting them after the image races
// with EC2 releasing them); it reports whether all of them are gone, and
// notes in pw.leftovers the snapshots EC2 could not delete.
func (r *run) deregisterFailed(ctx context.Context, rw *regionWork, pw *pairWork) bool {
	all := true
	for _, id := range pw.dec.Deregister {
		if r.outOfTime() {
			return false
		}
		failed, err := rw.client.DeregisterImage(ctx, id, true)
		pw.leftovers = append(pw.leftovers, failed...)
		if err != nil && cloud.ClassOf(err) != cloud.ClassNotFound {
			r.fail(fmt.Sprintf("pair %s: deregister failed copy %s", pw.key, id), err)
			all = false
			continue
		}
		// Gone already (a person or an overlapping run removed it): that
		// is what we wanted.
		r.count("deregister_failed", 1)
	}
	return all
}

// copyError reports a CopyImage call that started no copy. A deferred
// answer (nothing failed: a full quota, a grant still propagating, an
// outcome the deadline or a signal cut off) defers the pair; a full quota
// also stops the copies of the account and Region for this run. A refusal
// is the pair's failed attempt; a denial (a missing IAM or KMS grant of
// the copier role) also stops the Region's other copies, which would be
// refused alike.
func (r *run) copyError(c *regionCursor, pw *pairWork, a CopyAnswer) {
	err := a.Err
	if a.Deferred() {
		reason := fmt.Sprintf("CopyImage started no copy, nothing failed (%v); the next run asks again with the same request", err)
		if r.cutOff(err) {
			r.noteCutOff(1) // interrupt.go: the summary counts it
		}
		switch {
		case cloud.ClassOf(err) == cloud.ClassLimit:
			c.quotaFull = true
			reason = fmt.Sprintf("EC2 refused more concurrent copies in %s/%s (%v)", c.rw.account, c.rw.region, err)
		case a.Propagating():
			reason = fmt.Sprintf("the source was shared with %s moments ago and EC2 does not see the grant yet (%v); the next run copies it", c.rw.account, err)
		}
		r.deferPair(pw, reason, false)
		pw.item.LastError = err.Error()
		return
	}
	if cloud.ClassOf(err) == cloud.ClassAccessDenied {
		c.denied = fmt.Sprintf("CopyImage was denied in account %s (%s): %v; check the copier role's IAM permissions and the KMS key's policy",
			c.rw.account, c.rw.region, err)
	}
	r.count("copy_failed", 1)
	r.fail(fmt.Sprintf("pair %s", pw.key), err)
	pw.recategorize(report.Failed, fmt.Sprintf("CopyImage refused the copy: %v; it counts as a failed attempt", err))
	pw.item.Action = "copy_failed"
	pw.item.LastError = err.Error()
}

// shareFailed handles a pair whose source could not be shared. EC2
// refusing the share for good (a snapshot under the AWS-managed aws/ebs
// key cannot be shared at all) rejects the target and remembers why, so
// the next plan shows it without trying. Anything else leaves the pair as
// it was, recording nothing: the next run shares and copies again.
func (r *run) shareFailed(ctx context.Context, c *regionCursor, pw *pairWork, err error) {
	if r.cutOff(err) {
		r.deferPair(pw, fmt.Sprintf("the run stopped before this copy (%v); the next run makes it", r.stopped()), false)
		return
	}
	if !cloud.IsShareRefused(err) {
		r.out.markPartial()
		r.deferPair(pw, fmt.Sprintf("sharing failed: %v; retried next run", err), false)
		return
	}
	reason := fmt.Sprintf("the source cannot be shared with account %s: %v", pw.key.Account, err)
	pw.recategorize(report.RejectedTarget, reason)
	base := state.Pair{Key: pw.key, Source: r.e.set.SourceAccount, Fingerprint: pw.plan.Fingerprint}
	if pw.dec.Record != nil {
		base = *pw.dec.Record
	} else if pw.stored != nil {
		base = *pw.stored
	}
	if _, werr := r.writePair(ctx, c, pw, ShareRefused(base, pw.stored, cloud.CodeOf(err), reason)); werr != nil {
		r.fail(fmt.Sprintf("pair %s", pw.key), werr)
	}
	pw.item.Action = "none"
}

// putPair writes want over stored (the record as the run knows it; nil:
// none) if it differs, guarded by stored's version, and returns what the
// store holds now. A lost condition means another writer touched the pair
// (or, with no stored record, that the pair has a settled record of an
// earlier life): the caller must not act on it.
func (r *run) putPair(ctx context.Context, stored *state.Pair, want state.Pair) (state.Pair, error) {
	if stored != nil && stored.SameContent(want) {
		return *stored, nil
	}
	want.Version = 0
	if stored != nil {
		want.Version = stored.Version
	}
	want.RunID = r.id
	want.UpdatedAt = r.e.clock.Now()
	got, err := r.e.store.PutPair(ctx, want)
	if err != nil {
		return state.Pair{}, errorf(err, "state store: write pair %s", want.Key)
	}
	r.out.noteWritten(got)
	return got, nil
}

// writePair is putPair for the work of a pair: a first write that finds a
// settled record of an earlier life reopens it (Reopen: read, then written
// over its version), and pw.stored becomes what was written. In a Region
// being applied (c), the first such record read reads those of every pair
// of the Region still to write at once (state.GetPairs: BatchGetItem on
// DynamoDB), and the later pairs reopen theirs without a lost write first:
// an account whose copies were all removed by hand costs a batch, not
// three requests per pair.
func (r *run) writePair(ctx context.Context, c *regionCursor, pw *pairWork, want state.Pair) (state.Pair, error) {
	got, err := r.writeOrReopen(ctx, c, pw, want)
	if err != nil {
		return state.Pair{}, err
	}
	pw.stored = &got
	return got, nil
}

func (r *run) writeOrReopen(ctx context.Context, c *regionCursor, pw *pairWork, want state.Pair) (state.Pair, error) {
	if pw.stored == nil && c != nil && c.settled != nil {
		if cur, ok := c.settled[pw.key]; ok {
			if reopened, ok := Reopen(want, cur, r.policy.Now); ok {
				return r.putPair(ctx, &cur, reopened)
			}
		}
	}
	got, err := r.putPair(ctx, pw.stored, want)
	if err != nil && pw.stored == nil && errors.Is(err, state.ErrConflict) {
		if cur, ok, gerr := r.settledRecord(ctx, c, pw.key); gerr == nil && ok {
			if reopened, ok := Reopen(want, cur, r.policy.Now); ok {
				return r.putPair(ctx, &cur, reopened)
			}
		}
	}
	return got, err
}

// settledRecord reads the stored record of key, in a batch with the rest
// of c's Region the first time.
func (r *run) settledRecord(ctx context.Context, c *regionCursor, key state.PairKey) (state.Pair, bool, error) {
	if c == nil {
		return r.e.store.GetPair(ctx, key)
	}
	if c.settled == nil {
		keys := []state.PairKey{key}
		for _, pw := range c.rw.pairs[c.next:] {
			if pw.stored == nil && pw.key != key {
				keys = append(keys, pw.key)
			}
		}
		got, err := state.GetPairs(ctx, r.e.store, keys)
		if err != nil {
			return state.Pair{}, false, err
		}
		c.settled = got
	}
	p, ok := c.settled[key]
	return p, ok, nil
}
