package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/amicopier/amicopier/state"
)

// A run whose caller stops it (a signal to the CLI, an invocation's
// deadline: the context given to Run ends) stops starting work, records
// itself with status "interrupted", and returns its result rather than an
// error. What the stop cut short is neither an unreachable account nor a
// failure of AWS or of the state store: this file decides, in one place,
// which errors are the stop's doing (cutOff), and the few places that
// report failures ask it first.

// watchStop remembers the context Run was given, so that cutOff can tell
// the caller's stop from a failure. Only the caller's context counts: a
// lost lease cancels a context derived from it, and is a failure.
func (r *run) watchStop(ctx context.Context) {
	r.stop.cause = func() error { return context.Cause(ctx) }
}

// stopped is the cause of the caller's stop, nil while the run may go on.
func (r *run) stopped() error {
	if r.stop.cause == nil {
		return nil
	}
	return r.stop.cause()
}

// cutOff reports whether err is work the caller's stop cut short: the
// run is stopped and err is a context's end (the SDK and the stores wrap
// it) or the stop's own cause.
func (r *run) cutOff(err error) bool {
	cause := r.stopped()
	if err == nil || cause == nil {
		return false
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, cause)
}

// stopOr is the end of a run that failed before it could finish: an
// error the stop caused becomes the interrupted run's result (recorded
// like any other), any other error is returned as it is.
func (r *run) stopOr(ctx context.Context, err error) (*Result, error) {
	if !r.cutOff(err) {
		return nil, err
	}
	r.noteCutOff(1)
	if r.req.Mode == ModeRun {
		// Stopped before applying anything: every planned copy waits.
		for _, rw := range r.seen.work {
			r.deferRest(ctx, &regionCursor{rw: rw})
		}
	}
	res := r.finish(ctx)
	if r.req.Mode == ModeRun {
		res.Summary.StateWrites = int(r.out.writes.Load())
	}
	return res, nil
}

// noteCutOff counts n pieces of work (an account's observation, a call)
// the stop cut short.
func (r *run) noteCutOff(n int) {
	r.stop.cutOffs.Add(int64(n))
}

// interruption is the summary's line for a stopped run, and whether it
// is one. A lost lease is a failure (finish says so), not a stop.
func (r *run) interruption(ctx context.Context) (string, bool) {
	cause := r.stopped()
	if cause == nil {
		return "", false
	}
	if c := context.Cause(ctx); c != nil && errors.Is(c, state.ErrLeaseLost) {
		return "", false
	}
	return fmt.Sprintf("run interrupted (%v): it stopped starting work; %d observation(s) or call(s) were cut short and are left to the next run",
		cause, r.stop.cutOffs.Load()), true
}
