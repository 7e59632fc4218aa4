package reconcile

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amicopier/amicopier/state"
)

// scale is the part of a run that makes it work at organisation scale:
// client-side pacing, sharding, the lazily taken lease, and the sharing
// step running alongside the copies. It is embedded in run.
type scale struct {
	pace  *pacer
	shard Shard
	// throttleErrors counts throttled calls that exhausted their retries
	// and failed (run.throttled counts every throttled answer).
	throttleErrors atomic.Int64

	// release gives the lease up; nil while the run holds none.
	release func()

	// shareNeed holds, per source image, the accounts that copy it this
	// run; shareDone is closed once the image's sharing is over.
	shareNeed map[string]map[string]bool
	shareDone map[string]chan struct{}
}

// The run lease guards changes, not observation. A run observes and plans
// first, with no lease, and takes the lease only when the plan holds
// something to change (a copy, a share, a deregistration, a state record).
// A run in which nothing changed therefore writes its run summary and
// nothing else (SPEC 5: O(1) writes, here exactly one), and a second run
// started while one works still observes, then exits cleanly when it finds
// the lease held.
//
// The observation must still be current once the lease is taken: another
// run may have held the lease meanwhile, and finished. Every run that
// changes a pair writes its record, so the run reads the unsettled records
// again under the lease (one query, the one it started with); if any of its
// shard's records changed, it releases the lease, changes nothing, and
// stops with a *StaleError, which LeaseHeld recognises: the second of two
// overlapping runs exits cleanly whichever of them took the lease first.
// Below that, every pair write is conditional on the version the run read,
// and CopyImage's ClientToken, derived from the pair and its attempt, makes
// a repeated call return the same copy.

// hasChanges reports whether the plan changes anything, in AWS or in the
// state store. Every mutating step of a run must be reflected here, since
// only then does the run take the lease.
func (r *run) hasChanges() bool {
	if len(r.work) > 0 {
		return true
	}
	for _, pw := range r.pruneWork {
		if pw.dec.Prune || pw.dec.Record != nil {
			return true
		}
	}
	return false
}

// takeLease takes the lease of the run's scope, renewed every third of its
// lifetime while the run lives; the returned context is cancelled if the
// lease is lost. releaseLease gives it back.
func (r *run) takeLease(ctx context.Context, log interface{ Warn(string, ...any) }) (context.Context, error) {
	scope := r.e.ScopeFor(r.shard)
	lease, err := r.e.store.AcquireLease(ctx, scope, r.id, r.e.cfg.State.LeaseTTL.D())
	r.writes.Add(1)
	if err != nil {
		if _, held := LeaseHeld(err); held {
			return nil, err
		}
		return nil, errorf(err, "state store: take the run lease for scope %s", scope)
	}
	ctx, stop := r.keepLease(ctx, lease, log)
	var once sync.Once
	r.release = func() {
		once.Do(func() {
			stop()
			// Release even if the run's context is done.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := r.e.store.ReleaseLease(rctx, lease); err != nil {
				log.Warn("release run lease", "error", err)
			}
			r.writes.Add(1)
		})
	}
	return ctx, nil
}

// StaleError says that another run changed the state while this run
// observed, so this run stopped without changing anything.
type StaleError struct {
	Scope string
	// Holder is a run that changed a pair, when the record names it.
	Holder string
	// Pair is one pair that changed.
	Pair state.PairKey
}

func (e *StaleError) Error() string {
	by := "another run"
	if e.Holder != "" {
		by = "run " + e.Holder
	}
	return fmt.Sprintf("%s changed pair %s of scope %s while this run was observing; this run changed nothing and stops (the next run starts from the new state)",
		by, e.Pair, e.Scope)
}

// checkFresh reads the unsettled records again, under the lease, and
// returns a *StaleError if any of the run's shard changed since loadRecords.
func (r *run) checkFresh(ctx context.Context) error {
	recs, err := r.e.store.UnsettledPairs(ctx, r.e.cfg.Source.AccountID)
	if err != nil {
		return errorf(err, "state store: read unsettled pairs of source %s", r.e.cfg.Source.AccountID)
	}
	stale := func(p state.Pair) error {
		return &StaleError{Scope: r.e.ScopeFor(r.shard), Holder: p.RunID, Pair: p.Key}
	}
	n := 0
	for _, p := range recs {
		if !r.shard.Contains(p.Key.Account) {
			continue
		}
		n++
		was, ok := r.records[[2]string{p.Key.Account, p.Key.Region}][p.Key]
		if !ok || was.Version != p.Version {
			return stale(p)
		}
	}
	loaded := 0
	var gone state.Pair
	for _, recs := range r.records {
		loaded += len(recs)
		for _, p := range recs {
			gone = p
		}
	}
	if loaded != n {
		// A record this run read was settled by another run.
		return stale(gone)
	}
	return nil
}

// releaseLease gives the lease back, if the run took it.
func (r *run) releaseLease() {
	if r.release != nil {
		r.release()
	}
}
