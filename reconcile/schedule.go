package reconcile

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/state"
)

// The copies of one account and Region are made one after the other, in
// source order, by one worker at a time: the in-flight count and the
// quota verdict of a Region need no lock. A copy cannot start before its
// source is shared, and sharing runs alongside (the source account's
// mutating bucket paces it), so a worker whose Region waits for a share
// sets that Region aside and takes another; the Region is resumed, where
// it stopped, once the share is over. When every account waits for the
// same sources (a new AMI for the whole organisation), copies then follow
// the sharing image by image instead of workers idling on the first
// accounts while the others have not started.

// regionCursor is a Region's progress through its pairs.
type regionCursor struct {
	rw        *regionWork
	next      int
	quotaFull bool
	// denied, when set, says why CopyImage was denied in the Region:
	// its other copies are not attempted this run.
	denied string
	// settled holds, once a first write of the Region found a settled
	// record of an earlier life, the settled records of every pair of the
	// Region the run has not written yet, read in one batch (nil: not
	// read).
	settled map[state.PairKey]state.Pair
}

// applyAll applies every Region's work on at most limit workers.
func (r *run) applyAll(ctx context.Context, works []*regionWork, limit int) {
	if len(works) == 0 {
		return
	}
	runnable := make(chan *regionCursor, len(works))
	for _, rw := range works {
		runnable <- &regionCursor{rw: rw} // pairs sorted by observeRegion
	}
	var left atomic.Int64
	left.Store(int64(len(works)))
	finish := func() {
		if left.Add(-1) == 0 {
			close(runnable)
		}
	}

	var mu sync.Mutex
	parked := map[string][]*regionCursor{}
	released := map[string]bool{}
	var watchers sync.WaitGroup
	// park sets c aside until image id is shared; a watcher per image
	// puts its Regions back when the share is over (sharing always ends:
	// share closes every channel, even when the run is cancelled).
	park := func(c *regionCursor, id string) {
		mu.Lock()
		defer mu.Unlock()
		if released[id] {
			runnable <- c
			return
		}
		if _, watched := parked[id]; !watched {
			done := r.sharing.images[id].done
			watchers.Go(func() {
				<-done
				mu.Lock()
				list := parked[id]
				parked[id] = nil
				released[id] = true
				mu.Unlock()
				for _, c := range list {
					runnable <- c
				}
			})
		}
		parked[id] = append(parked[id], c)
	}

	var workers sync.WaitGroup
	for range max(1, min(limit, len(works))) {
		workers.Go(func() {
			for c := range runnable {
				if id := r.applyFrom(ctx, c); id != "" {
					park(c, id)
					continue
				}
				finish()
			}
		})
	}
	workers.Wait()
	watchers.Wait()
}

// applyFrom applies c's pairs from where it stopped; it returns the id of
// a source still being shared that the next pair waits for, or "" once
// the Region is done (or the run is cancelled).
func (r *run) applyFrom(ctx context.Context, c *regionCursor) (waitFor string) {
	capacity := r.e.set.InFlightCopies
	for ; c.next < len(c.rw.pairs); c.next++ {
		if ctx.Err() != nil {
			r.deferRest(ctx, c)
			return ""
		}
		pw := c.rw.pairs[c.next]
		if id := r.waitsForShare(pw); id != "" {
			return id
		}
		r.applyPair(ctx, c, pw, capacity)
		r.e.progress.Step(1)
	}
	return ""
}

// deferRest reports the copies of c not reached before the run was
// stopped (its deadline, a signal, a lost lease) as deferred: the next run
// makes them.
func (r *run) deferRest(ctx context.Context, c *regionCursor) {
	reason := fmt.Sprintf("the run stopped before this copy (%v); the next run makes it", context.Cause(ctx))
	for ; c.next < len(c.rw.pairs); c.next++ {
		if pw := c.rw.pairs[c.next]; pw.dec.Copy {
			r.deferPair(pw, reason, false)
		}
	}
}

// waitsForShare returns the id of pw's source if pw is a copy that must wait for
// that source's sharing, still going on.
func (r *run) waitsForShare(pw *pairWork) string {
	if !pw.dec.Copy {
		return ""
	}
	sh, ok := r.sharing.images[pw.src.img.ID]
	if !ok {
		return ""
	}
	select {
	case <-sh.done:
		return ""
	default:
		return pw.src.img.ID
	}
}

// trimDeferred drops, right after planning a Region (its pairs sorted),
// the copy request of each pair the in-flight cap defers this run (the
// pairs after the first limits.in_flight_copies minus pending ones, in the
// order share and applyAll use): such a pair is never granted nor copied
// in this run, its record keeps the fingerprint, and the run that copies
// it renders the request again. A catch-up of tens of thousands of pairs
// then holds a request only for what it can start. This is the one place
// the cap's slots are allocated: share grants exactly the requests kept.
// The source account's own pairs are kept whole: they need no grant, so a
// slot freed by a failed copy can still go to them.
func (r *run) trimDeferred(rw *regionWork) {
	if rw.account == r.e.set.SourceAccount {
		return
	}
	slots := r.e.set.InFlightCopies - rw.inFlight
	for _, pw := range rw.pairs {
		if !pw.dec.Copy {
			continue
		}
		if slots > 0 {
			slots--
			continue
		}
		pw.capped = capReason(rw)
		pw.plan.Input = cloud.CopyImageInput{}
	}
}

// trimmed reports whether trimDeferred dropped pw's copy request.
func trimmed(pw *pairWork) bool { return pw.capped != "" }
