package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/amicopier/amicopier/state"
)

// The run lease guards changes, not observation. A run observes and plans
// first, with no lease, and takes the lease only when the plan holds
// something to change (a copy, a share, a deregistration, a state record).
// A run in which nothing changed therefore writes its run summary and
// nothing else (docs/design.md, state principles: O(1) writes, here
// exactly one), and a second run
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
// only then does the run take the lease. A copy the in-flight cap defers
// (trimDeferred dropped its request) changes nothing: a run whose only
// work is such copies writes its run record and nothing else.
func (r *run) hasChanges() bool {
	for _, rw := range r.seen.work {
		for _, pw := range rw.pairs {
			if isChange(pw) {
				return true
			}
		}
	}
	for _, pw := range r.pruneWork {
		if pw.dec.Prune || pw.dec.Record != nil {
			return true
		}
	}
	if len(r.sharing.dropped) > 0 || r.hasLeftovers() || r.life.hasChanges() || r.params.parameterWrites() {
		return true
	}
	for _, sh := range r.sharing.images {
		if sh.preview.Changes() || sh.facts.RevokeForeign {
			return true
		}
	}
	return false
}

// isChange reports whether applying pw changes anything.
func isChange(pw *pairWork) bool {
	d := &pw.dec
	return len(d.Deregister) > 0 || (!d.Copy && d.Record != nil) || (d.Copy && !trimmed(pw))
}

// takeLease takes the lease of the run's scope, renewed every third of its
// lifetime while the run lives; the returned context is cancelled if the
// lease is lost. releaseLease gives it back.
func (r *run) takeLease(ctx context.Context, log interface{ Warn(string, ...any) }) (context.Context, error) {
	scope := r.e.ScopeFor(r.shard)
	lease, err := r.e.store.AcquireLease(ctx, scope, r.id, r.e.set.LeaseTTL)
	if err != nil {
		if _, held := LeaseHeld(err); held {
			return nil, err
		}
		return nil, errorf(err, "state store: take the run lease for scope %s", scope)
	}
	r.out.writes.Add(1) // writes count what the store took, as for pairs
	ctx, stop := r.keepLease(ctx, lease, log)
	var once sync.Once
	r.release = func() {
		once.Do(func() {
			stop()
			// Release even if the run's context is done.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := r.e.store.ReleaseLease(rctx, lease); err != nil {
				log.Warn("release run lease", "scope", lease.Scope, "error", err)
				return
			}
			r.out.writes.Add(1)
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

// Error names the run that changed the state (when known), the pair and
// the scope, and says that this run changed nothing.
func (e *StaleError) Error() string {
	by := "another run"
	if e.Holder != "" {
		by = "run " + e.Holder
	}
	return fmt.Sprintf("%s changed pair %s of scope %s while this run was observing; this run changed nothing and stops (the next run starts from the new state)",
		by, e.Pair, e.Scope)
}

// checkFresh reads the unsettled records again, under the lease, and
// returns a *StaleError if any of the run's shard changed since loadRecords:
// one changed or new, or one loaded that is no longer unsettled (another
// run settled it).
func (r *run) checkFresh(ctx context.Context) error {
	recs, err := r.e.store.UnsettledPairs(ctx, r.e.set.SourceAccount)
	if err != nil {
		return errorf(err, "state store: read unsettled pairs of source %s", r.e.set.SourceAccount)
	}
	scope := r.e.ScopeFor(r.shard)
	current := make(map[state.PairKey]bool, len(recs))
	for _, p := range recs {
		if !r.shard.Contains(p.Key.Account) {
			continue
		}
		current[p.Key] = true
		was, ok := r.seen.records[[2]string{p.Key.Account, p.Key.Region}][p.Key]
		if !ok || was.Version != p.Version {
			return &StaleError{Scope: scope, Holder: p.RunID, Pair: p.Key}
		}
	}
	// A record this run read and no longer unsettled: name the first
	// such pair (in key order, so the message is reproducible).
	var gone *state.Pair
	for _, loaded := range r.seen.records {
		for k, p := range loaded {
			if !current[k] && (gone == nil || comparePairKeys(k, gone.Key) < 0) {
				p := p
				gone = &p
			}
		}
	}
	if gone == nil {
		return nil
	}
	stale := &StaleError{Scope: scope, Holder: gone.RunID, Pair: gone.Key}
	// The run that settled it is the one to name, when the record says.
	if cur, ok, err := r.e.store.GetPair(ctx, gone.Key); err == nil && ok && cur.RunID != "" {
		stale.Holder = cur.RunID
	}
	return stale
}

func comparePairKeys(a, b state.PairKey) int {
	return cmp.Or(strings.Compare(a.SourceImage, b.SourceImage), strings.Compare(a.Account, b.Account), strings.Compare(a.Region, b.Region))
}

// releaseLease gives the lease back, if the run took it.
func (r *run) releaseLease() {
	if r.release != nil {
		r.release()
	}
}
