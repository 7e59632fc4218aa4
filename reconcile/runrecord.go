package reconcile

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// recordUnreachable converts a summary's unreachable accounts for the run
// record.
func recordUnreachable(list []report.UnreachableAccount) []state.UnreachableAccount {
	if len(list) == 0 {
		return nil
	}
	out := make([]state.UnreachableAccount, len(list))
	for i, u := range list {
		out[i] = state.UnreachableAccount{Account: u.Account, Regions: slices.Clone(u.Regions), Reason: truncateRunes(u.Reason, maxErrorLen)}
	}
	return out
}

// Failure is a run that could not do its job at all: Engine.Run returned
// an error (no credentials, an endpoint that does not answer, an
// organisation or state store that cannot be read), or the run could not
// even be set up.
type Failure struct {
	// Request is the run's request; its RunID names the record (one is
	// made up when it is empty).
	Request Request
	// Started and Finished bound the attempt.
	Started, Finished time.Time
	Err               error
}

// RecordFailure writes the run record of a failed run, status failed and
// its error, so that `status` shows it: a run that failed outright
// otherwise leaves no trace but its log. Dry runs record nothing, as
// always, and neither does a run that found the lease held (it changed
// nothing and failed at nothing). The write has its own bounded context,
// so a cancelled run can still be recorded.
// set are the engine's settings (the scope runs are recorded under and
// their retention).
func RecordFailure(ctx context.Context, store state.Store, set Settings, f Failure) error {
	if f.Request.Mode != ModeRun || f.Err == nil {
		return nil
	}
	if _, held := LeaseHeld(f.Err); held {
		return nil
	}
	id := f.Request.RunID
	if id == "" {
		id = NewRunID(f.Started)
	}
	rec := state.Run{
		// The scope runs are recorded under (Engine.Scope).
		ID: id, Scope: set.SourceAccount, Trigger: f.Request.Trigger, Shard: f.Request.Shard.String(),
		Mode: string(f.Request.Mode), Status: report.StatusFailed, Started: f.Started, Finished: f.Finished,
		Errors: []string{truncateRunes(f.Err.Error(), maxErrorLen)},
	}
	if ret := set.RunRetention; ret > 0 {
		rec.ExpiresAt = rec.Finished.Add(ret)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := store.PutRun(wctx, rec); err != nil {
		return fmt.Errorf("record failed run %s: %w", id, err)
	}
	return nil
}
