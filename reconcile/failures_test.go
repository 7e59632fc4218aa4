package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// How failed attempts are counted and remembered: only real failures of
// amicopier's own attempts count, none is lost, none counts twice.

// TestDeferredRetryKeepsTheFailure: a failed copy is deregistered only
// once its failure is stored; a retry the in-flight cap then defers loses
// nothing, and the next run does not count the failure again.
func TestDeferredRetryKeepsTheFailure(t *testing.T) {
	w := newWorld(t, 1)
	w.cfg.Limits.InFlightCopies = 1
	w.cfg.Limits.RetryBackoff = 1 // retry at once
	img := w.image(euWest, "web", 1, accountID(1))
	key := state.PairKey{SourceImage: img.ID, Account: accountID(1), Region: euWest}
	kms, _ := w.cloud.ResolveKey(accountID(1), euWest, "alias/amicopier")
	w.cloud.SetKeyEnabled(kms.ARN, false)
	w.run(reconcile.ModeRun) // attempt 1: accepted, fails later
	w.settle()
	// Another tool's copy takes the Region's only in-flight slot.
	blocker := w.cloud.AddImage(accountID(1), euWest, sim.ImageSpec{Name: "other", State: cloud.ImagePending,
		Tags: map[string]string{reconcile.TagCopiedFrom: "ami-00000000000000f00"}})

	var atDeregister state.Pair
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "DeregisterImage", Account: accountID(1), Before: func() {
		atDeregister, _ = w.pair(key)
	}}).Hook())
	res := w.run(reconcile.ModeRun)
	if res.Summary.Actions["deregister_failed"] != 1 || res.Summary.Actions["deferred_in_flight_cap"] != 1 {
		t.Fatalf("actions %v, want the failed copy removed and the retry deferred by the cap", res.Summary.Actions)
	}
	if atDeregister.Failures != 1 || atDeregister.Status != state.PairFailed {
		t.Fatalf("record when the failed copy was deregistered: %+v; its failure must be stored first", atDeregister)
	}
	if rec, _ := w.pair(key); rec.Failures != 1 || rec.Status != state.PairFailed || !strings.Contains(rec.LastError, "failed") {
		t.Fatalf("record after the deferred retry: %+v", rec)
	}

	// Deferred again: the failure is not counted twice.
	w.cloud.SetFault(nil)
	res = w.run(reconcile.ModeRun)
	if res.Summary.Actions["deferred_in_flight_cap"] != 1 || res.Summary.APICalls["CopyImage"] != 0 {
		t.Fatalf("second run: actions %v, calls %v", res.Summary.Actions, res.Summary.APICalls)
	}
	if rec, _ := w.pair(key); rec.Failures != 1 || rec.Attempts != 1 {
		t.Fatalf("record after a second deferral: %+v", rec)
	}

	// The slot frees and the key works: attempt 2 makes the copy.
	must(t, deregister(context.Background(), w.cloud.Client(accountID(1), euWest), blocker.ID))
	w.cloud.SetKeyEnabled(kms.ARN, true)
	if res := w.run(reconcile.ModeRun); res.Summary.APICalls["CopyImage"] != 1 {
		t.Fatalf("retry not made: %v %v", res.Summary.APICalls, res.Summary.Errors)
	}
	if rec, _ := w.pair(key); rec.Attempts != 2 || rec.Failures != 1 {
		t.Fatalf("record of the retry: %+v", rec)
	}
	w.settle()
	wantCounts(t, w.run(reconcile.ModeRun).Report, map[report.Category]int{report.OK: 1})
}

// TestSettledCopyDeletedByHandIsCopiedAgain: the pair's settled record is
// reopened with a new attempt and so a new ClientToken; the old token
// would hand back the deleted copy's id and copy nothing.
func TestSettledCopyDeletedByHandIsCopiedAgain(t *testing.T) {
	w := newWorld(t, 1)
	img := w.image(euWest, "web", 1, accountID(1))
	key := state.PairKey{SourceImage: img.ID, Account: accountID(1), Region: euWest}
	w.run(reconcile.ModeRun)
	w.settle()
	w.run(reconcile.ModeRun) // settles the record
	if rec, _ := w.pair(key); rec.Status != state.PairSettled {
		t.Fatalf("setup: record %+v", rec)
	}
	old := w.copies(accountID(1), euWest, img.ID)[0]
	must(t, deregister(context.Background(), w.cloud.Client(accountID(1), euWest), old.ID))
	w.cloud.Advance(time.Hour)

	res := w.run(reconcile.ModeRun)
	copies := w.copies(accountID(1), euWest, img.ID)
	if len(copies) != 1 || copies[0].ID == old.ID {
		t.Fatalf("copies after the run: %+v (calls %v, errors %v); want one new copy", copies, res.Summary.APICalls, res.Summary.Errors)
	}
	rec, _ := w.pair(key)
	if rec.Status != state.PairCopying || rec.Attempts != 2 || rec.CopyImageID != copies[0].ID ||
		rec.ClientToken != reconcile.ClientToken(key, rec.Fingerprint, 2) {
		t.Fatalf("reopened record %+v", rec)
	}
	if got := copies[0].Tags[reconcile.TagAttempt]; got != "2" {
		t.Fatalf("attempt tag %q, want 2 (the recorded attempt)", got)
	}
	w.settle()
	wantCounts(t, w.run(reconcile.ModeRun).Report, map[report.Category]int{report.OK: 1})
}

// TestReopenLosesToALaterWrite: a settled record written after this run
// observed (another run settled the pair meanwhile) is not overwritten.
func TestReopenLosesToALaterWrite(t *testing.T) {
	w := newWorld(t, 1)
	img := w.image(euWest, "web", 1, accountID(1))
	key := state.PairKey{SourceImage: img.ID, Account: accountID(1), Region: euWest}
	w.run(reconcile.ModeRun)
	w.settle()
	w.run(reconcile.ModeRun)
	old := w.copies(accountID(1), euWest, img.ID)[0]
	must(t, deregister(context.Background(), w.cloud.Client(accountID(1), euWest), old.ID))
	w.cloud.Advance(time.Hour)

	// While this run observes, another writer records the pair anew.
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "DescribeImages", Account: accountID(1), Times: 1, Before: func() {
		w.cloud.Advance(time.Minute)
		cur, _ := w.pair(key)
		cur.RunID, cur.LastErrorCode, cur.LastError = "other-run", "Adopted", "settled by another run"
		if _, err := w.store.PutPair(context.Background(), cur); err != nil {
			t.Error(err)
		}
	}}).Hook())
	res := w.run(reconcile.ModeRun)
	if n := res.Summary.APICalls["CopyImage"]; n != 0 {
		t.Fatalf("copied over a record written after the observation (%d calls)", n)
	}
	if errs := strings.Join(res.Summary.Errors, "\n"); !strings.Contains(errs, key.String()) || !strings.Contains(errs, "conflict") {
		t.Fatalf("errors %v, want the pair's write conflict", res.Summary.Errors)
	}
	if rec, _ := w.pair(key); rec.RunID != "other-run" || rec.Status != state.PairSettled {
		t.Fatalf("the other writer's record was overwritten: %+v", rec)
	}
}

// TestCopyDeniedIsAFailedAttempt: CopyImage denied (a missing IAM or KMS
// grant) is a refusal, so the pair's attempt fails: counted, backed off,
// stuck after limits.max_attempts, with its reason shown. The account and
// Region's other copies are not attempted in that run (they would be
// denied alike) and are reported unreachable.
func TestCopyDeniedIsAFailedAttempt(t *testing.T) {
	w := newWorld(t, 1)
	w.cfg.Limits.RetryBackoff = 1
	w.cfg.Limits.MaxAttempts = 2
	w.image(euWest, "a", 1, accountID(1))
	w.image(euWest, "b", 1, accountID(1))
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "CopyImage", Account: accountID(1), Code: "UnauthorizedOperation",
		Message: "not authorized to perform kms:CreateGrant"}).Hook())
	res := w.run(reconcile.ModeRun)
	if n := res.Summary.APICalls["CopyImage"]; n != 1 {
		t.Fatalf("CopyImage = %d, want 1 (the Region stops at the first denial)", n)
	}
	wantCounts(t, res.Report, map[report.Category]int{report.Failed: 1, report.Unreachable: 1})
	if res.Summary.Status != report.StatusPartial || res.Summary.Actions["copy_failed"] != 1 {
		t.Fatalf("status %s, actions %v", res.Summary.Status, res.Summary.Actions)
	}
	for _, it := range itemsOf(res.Report, report.Unreachable) {
		if !strings.Contains(it.Reason, "denied") || !strings.Contains(it.Reason, accountID(1)) {
			t.Errorf("reason %q", it.Reason)
		}
	}
	failed := itemsOf(res.Report, report.Failed)[0]
	if !strings.Contains(failed.Reason, "kms:CreateGrant") || !strings.Contains(failed.LastError, "UnauthorizedOperation") {
		t.Errorf("failed item %+v", failed)
	}
	rec, ok := w.pair(state.PairKey{SourceImage: failed.SourceImage, Account: accountID(1), Region: euWest})
	if !ok || rec.Status != state.PairFailed || rec.Failures != 1 || rec.LastErrorCode != "UnauthorizedOperation" {
		t.Fatalf("record %+v", rec)
	}
	// Runs go on failing both pairs' attempts until they are stuck, and
	// then no CopyImage is made any more.
	for range 6 {
		w.cloud.Advance(time.Minute)
		w.run(reconcile.ModeRun)
	}
	res = w.run(reconcile.ModeRun)
	wantCounts(t, res.Report, map[report.Category]int{report.Stuck: 2})
	if n := res.Summary.APICalls["CopyImage"]; n != 0 {
		t.Fatalf("stuck pairs copied again: %d", n)
	}
}

// TestCopiesInOtherStates: a copy that is neither available, pending nor
// failed is never ignored. amicopier's own in state error or invalid is
// replaced like a failed one; any other (disabled, another tool's in
// error, transient) blocks a new copy, with its state in the reason.
func TestCopiesInOtherStates(t *testing.T) {
	tests := []struct {
		state   cloud.ImageState
		ours    bool
		replace bool
		reason  string
	}{
		{state: "error", ours: true, replace: true},
		{state: "invalid", ours: true, replace: true},
		{state: cloud.ImageDisabled, ours: true, reason: "is disabled: enable it (or deregister it)"},
		{state: cloud.ImageDisabled, reason: "is disabled"},
		{state: "error", reason: "state error"},
		{state: "transient", ours: true, reason: "state transient"},
	}
	for _, tt := range tests {
		name := string(tt.state)
		if tt.ours {
			name += " (amicopier's)"
		}
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, 1)
			w.cfg.Limits.RetryBackoff = 1 // a failed attempt is retried at once
			img := w.image(euWest, "web", 1, accountID(1))
			tags := map[string]string{reconcile.TagCopiedFrom: img.ID}
			if tt.ours {
				tags[reconcile.TagManaged] = "true"
				tags[reconcile.TagSourceAccount] = srcAccount
				tags[reconcile.TagAttempt] = "1"
			}
			bad := w.cloud.AddImage(accountID(1), euWest, sim.ImageSpec{Name: "copy-of-web", State: tt.state, Tags: tags,
				Devices: []sim.DeviceSpec{{Size: 8, Encrypted: true}}})
			w.cloud.Advance(time.Minute)
			res := w.run(reconcile.ModeRun)
			it := res.Report.Items[0]
			if len(res.Report.Items) != 1 || it.Category != report.Failed || !strings.Contains(it.Reason, bad.ID) {
				t.Fatalf("items %+v", res.Report.Items)
			}
			if tt.replace {
				if res.Summary.Actions["deregister_failed"] != 1 || res.Summary.APICalls["CopyImage"] != 1 {
					t.Fatalf("not replaced: %v %v %v", res.Summary.Actions, res.Summary.APICalls, res.Summary.Errors)
				}
				if im, ok := w.cloud.Image(accountID(1), euWest, bad.ID); ok && im.State != cloud.ImageDeregistered {
					t.Fatalf("the %s copy is still there: %+v", tt.state, im)
				}
				return
			}
			if !strings.Contains(it.Reason, tt.reason) || it.Action != "none" {
				t.Fatalf("item %+v, want reason with %q and no action", it, tt.reason)
			}
			if res.Summary.MutatingCalls != 0 {
				t.Fatalf("acted on a %s copy: %v", tt.state, res.Summary.APICalls)
			}
		})
	}
}

// TestFailedCopyThatCannotBeRemovedBlocksTheRetry: while amicopier's
// failed copy cannot be deregistered it keeps its name, so the retry
// waits (a copy would fail with InvalidAMIName.Duplicate and count a
// failure that is not one); its failure is counted once.
func TestFailedCopyThatCannotBeRemovedBlocksTheRetry(t *testing.T) {
	w := newWorld(t, 1)
	w.cfg.Limits.RetryBackoff = 1
	img := w.image(euWest, "web", 1, accountID(1))
	key := state.PairKey{SourceImage: img.ID, Account: accountID(1), Region: euWest}
	kms, _ := w.cloud.ResolveKey(accountID(1), euWest, "alias/amicopier")
	w.cloud.SetKeyEnabled(kms.ARN, false)
	w.run(reconcile.ModeRun)
	w.settle()
	w.cloud.SetKeyEnabled(kms.ARN, true)
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "DeregisterImage", Code: "InternalError"}).Hook())
	res := w.run(reconcile.ModeRun)
	if res.Summary.APICalls["CopyImage"] != 0 || res.Summary.Actions["deferred"] != 1 {
		t.Fatalf("calls %v, actions %v", res.Summary.APICalls, res.Summary.Actions)
	}
	if rec, _ := w.pair(key); rec.Failures != 1 || rec.Status != state.PairFailed {
		t.Fatalf("record %+v", rec)
	}
	w.cloud.SetFault(nil)
	res = w.run(reconcile.ModeRun)
	if res.Summary.Actions["deregister_failed"] != 1 || res.Summary.APICalls["CopyImage"] != 1 {
		t.Fatalf("calls %v, actions %v, errors %v", res.Summary.APICalls, res.Summary.Actions, res.Summary.Errors)
	}
	if rec, _ := w.pair(key); rec.Failures != 1 || rec.Attempts != 2 {
		t.Fatalf("record %+v", rec)
	}
	w.settle()
	wantCounts(t, w.run(reconcile.ModeRun).Report, map[report.Category]int{report.OK: 1})
}

// The batch read of a reopened Region keeps returning some keys
// unprocessed (DynamoDB's UnprocessedKeys, past the store's retries): the
// pair whose write found the settled record is not copied this run and
// nothing is lost; the next run copies it, once.
func TestReopenBatchReadFails(t *testing.T) {
	w := newWorld(t, 1)
	w.cfg.Targets.Regions = []string{euWest}
	faulty, err := state.NewFaulty(state.NewMemory(state.WithClock(w.cloud.Now)), state.FaultPlan{Seed: 1,
		Rules: []state.FaultRule{{Kind: state.FaultUnprocessed, Rate: 1, Count: 1}}})
	must(t, err)
	w.store = state.NewCounting(faulty)
	var keys []state.PairKey
	for i := range 3 {
		img := w.image(euWest, fmt.Sprintf("web-%d", i), 1, accountID(1))
		key := state.PairKey{SourceImage: img.ID, Account: accountID(1), Region: euWest}
		keys = append(keys, key)
		_, err := w.store.PutPair(context.Background(), state.Pair{Key: key, Source: srcAccount, Status: state.PairSettled, Attempts: 2, Fingerprint: "old"})
		must(t, err)
	}
	w.cloud.Advance(time.Hour)
	res := w.run(reconcile.ModeRun)
	if n := res.Summary.APICalls[cloud.OpCopyImage]; n != 2 || res.Summary.Status != report.StatusPartial {
		t.Fatalf("%d copies, status %s: want 2 of 3 and a partial run (%v)", n, res.Summary.Status, res.Summary.Errors)
	}
	if got := faulty.Injected()[state.FaultUnprocessed]; got != 1 {
		t.Fatalf("%d unprocessed faults injected, want 1", got)
	}
	w.settle()
	res = w.run(reconcile.ModeRun)
	if n := res.Summary.APICalls[cloud.OpCopyImage]; n != 1 {
		t.Errorf("the next run made %d copies, want the one left", n)
	}
	w.settle()
	for _, k := range keys {
		if n := len(w.copies(k.Account, k.Region, k.SourceImage)); n != 1 {
			t.Errorf("pair %s has %d copies", k, n)
		}
	}
}
