package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/state"
)

// The record transitions of a pair after the plan: what the executor
// writes once AWS (or the store) answered. Like PlanPair they are pure:
// the executor calls AWS and the store, these decide what the record says
// then, and putPair writes what it is given.

// CopyAnswer is what one CopyImage call came back with.
type CopyAnswer struct {
	ImageID string
	Err     error
	// JustShared says the run granted the source to the account moments
	// before the call: EC2 may refuse a copy of an AMI whose grant has not
	// propagated yet (AuthFailure, InvalidAMIID.NotFound), and that is no
	// failure of the pair's.
	JustShared bool
}

// Deferred reports whether the answer started no copy and counts no
// failure: the request may be made again as it is (same ClientToken).
// That is EC2's quota of concurrent copies (ResourceLimitExceeded), a
// grant that has not propagated yet, and every answer that leaves the
// outcome unknown: a call cut off by a deadline or a signal, a throttle or
// server error the connector gave up retrying, a connection that broke.
// Only EC2 refusing the request on its merits is a failed attempt.
func (a CopyAnswer) Deferred() bool {
	if a.Err == nil {
		return false
	}
	if a.Propagating() {
		return true
	}
	switch cloud.ClassOf(a.Err) {
	case cloud.ClassLimit, cloud.ClassThrottled, cloud.ClassRetryable, cloud.ClassUnknown:
		return true
	}
	return false
}

// Propagating reports whether EC2 refused a copy of a source the run had
// just shared as it refuses a copy of an AMI the caller may not use: the
// grant had not propagated yet.
func (a CopyAnswer) Propagating() bool {
	if !a.JustShared {
		return false
	}
	switch cloud.CodeOf(a.Err) {
	case "AuthFailure", "InvalidAMIID.NotFound":
		return true
	}
	return false
}

// AfterCopy is the pair's record once CopyImage answered: the new image id
// on success. A deferred answer (CopyAnswer.Deferred) records the attempt
// as deferred, its ClientToken kept for the next run, nothing counted. A
// refusal (the source not found, access denied, the name taken, a bad key
// or parameter) is a failed attempt: counted, backed off, stuck after
// p.MaxAttempts.
func AfterCopy(rec state.Pair, a CopyAnswer, p PairPolicy) state.Pair {
	if a.Err == nil {
		rec.Status = state.PairCopying
		rec.CopyImageID = a.ImageID
		rec.LastErrorCode, rec.LastError = "", ""
		return rec
	}
	rec.LastErrorCode = cloud.CodeOf(a.Err)
	if rec.LastErrorCode == "" {
		rec.LastErrorCode = "Error"
		if errors.Is(a.Err, context.DeadlineExceeded) || errors.Is(a.Err, context.Canceled) {
			rec.LastErrorCode = "Interrupted"
		}
	}
	rec.LastError = a.Err.Error()
	rec.CopyImageID = ""
	if a.Deferred() {
		rec.Status = state.PairDeferred
		rec.NextRetry = time.Time{}
		return rec
	}
	rec.Failures++
	if p.MaxAttempts > 0 && rec.Failures >= p.MaxAttempts {
		rec.Status = state.PairStuck
		return rec
	}
	rec.Status = state.PairFailed
	rec.NextRetry = p.Now.Add(backoff(p.RetryBackoff, rec.Failures))
	return rec
}

// ContinueAttempts is the copy record rec once the failure before it was
// written over stored, a settled record of an earlier life reopened
// (Reopen) whose attempts went further: the copy takes the attempt after
// stored's, with its own token. Otherwise rec is unchanged.
func ContinueAttempts(rec, stored state.Pair) state.Pair {
	if stored.Status != state.PairFailed || rec.Attempts > stored.Attempts {
		return rec
	}
	rec.Attempts = stored.Attempts + 1
	rec.ClientToken = ClientToken(rec.Key, rec.Fingerprint, rec.Attempts)
	return rec
}

// Reopen is the write that reopens cur, a settled record from an earlier
// life of the pair (runs read only unsettled records, so a first write
// finds it by its lost condition), with want: over cur's version, and with
// attempts continuing from cur's, since the earlier life's tokens are spent
// (the same token would hand back its copy, deleted since, instead of a new
// one). ok is false when cur may not be reopened: it is unsettled (another
// writer) or was written after this run started (at).
func Reopen(want, cur state.Pair, at time.Time) (state.Pair, bool) {
	if !cur.Status.Settled() || !cur.UpdatedAt.Before(at) {
		return want, false
	}
	want.Version = cur.Version
	switch want.Status {
	case state.PairCopying:
		want.Attempts = max(want.Attempts, cur.Attempts+1)
		want.ClientToken = ClientToken(want.Key, want.Fingerprint, want.Attempts)
	case state.PairFailed:
		want.Attempts = max(want.Attempts, cur.Attempts)
	}
	return want, true
}

// ShareRefused is the record of a pair whose source EC2 refuses to share
// with the account at all (an aws/ebs snapshot): rejected, with EC2's code
// and the reason, so the next plan shows it without trying. base is the
// pair's planned record (or its stored one, or a new one); its attempts
// stay as stored (no copy was made) and no token is kept.
func ShareRefused(base state.Pair, stored *state.Pair, code, reason string) state.Pair {
	rec := base
	rec.Status = state.PairRejected
	rec.Attempts = 0
	if stored != nil {
		rec.Attempts = stored.Attempts
	}
	rec.ClientToken = ""
	rec.LastErrorCode, rec.LastError = code, reason
	return rec
}

// Retire settles an unsettled record for good, saying why (code and msg),
// changing nothing in AWS.
func Retire(rec state.Pair, code, msg string) state.Pair {
	rec.Status = state.PairSettled
	rec.LastErrorCode, rec.LastError = code, msg
	return rec
}

// AfterPrune is the record of an orphaned copy once it is deregistered
// (stored: its record, nil if none): settled, or orphaned still while EC2
// kept some of its snapshots (left), which the next run deletes.
func AfterPrune(key state.PairKey, source string, stored *state.Pair, reason string, left []string) state.Pair {
	next := state.Pair{Key: key, Source: source}
	if stored != nil {
		next = *stored
	}
	next.Status = state.PairSettled
	next.LastErrorCode, next.LastError = "Pruned", "pruned: "+reason
	if len(left) > 0 {
		// Unsettled until its snapshots are gone too.
		next.Status, next.CopyImageID = state.PairOrphaned, ""
		next.Snapshots = union(next.Snapshots, left)
		next.LastErrorCode = "SnapshotsLeft"
		next.LastError = fmt.Sprintf("pruned, but EC2 could not delete snapshot(s) %s; the next run deletes them", strings.Join(left, ", "))
	}
	return next
}

// Supersede is the record of a pair whose copy (copyID) is of a build
// source.keep_latest no longer keeps, written by the first run that sees
// it so (stored: its record, nil if none): superseded, the copy removable
// from due, why in its error.
func Supersede(key state.PairKey, source string, stored *state.Pair, copyID, reason string, due time.Time) state.Pair {
	next := state.Pair{Key: key, Source: source}
	if stored != nil {
		next = *stored
	}
	next.Status = state.PairSuperseded
	next.CopyImageID = copyID
	next.ClientToken = ""
	next.NextRetry = due
	next.LastErrorCode, next.LastError = "Superseded", reason
	return next
}

// AfterLeftovers is rec once the run tried to delete the snapshots it
// lists as left behind: it lists those still there (left), and a pruned
// record whose snapshots are all gone settles.
func AfterLeftovers(rec state.Pair, left []string) state.Pair {
	rec.Snapshots = left
	if len(left) == 0 && rec.Status == state.PairOrphaned && rec.CopyImageID == "" {
		rec.Status, rec.LastErrorCode, rec.LastError = state.PairSettled, "Pruned", "pruned, and its snapshots deleted"
	}
	return rec
}
