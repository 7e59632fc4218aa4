package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// The chaos suite: the reliability targets (docs/design.md), case by
// case, on the simulator.

// assertNoDuplicates fails on any pair with more than one live copy.
func assertNoDuplicates(t *testing.T, w *world, n int) {
	t.Helper()
	for pair, k := range w.copyCounts(accounts(n)) {
		if k > 1 {
			t.Errorf("pair %s has %d copies", pair, k)
		}
	}
}

// recover runs clean runs (no faults) until nothing drifts, at most max.
func recoverClean(t *testing.T, w *world, max int) *report.Report {
	t.Helper()
	w.cloud.SetFault(nil)
	var last *report.Report
	for range max {
		w.cloud.Advance(w.cfg.State.LeaseTTL.D()) // a crashed run's lease expires
		w.run(reconcile.ModeRun)
		w.settle()
		last = w.run(reconcile.ModePlan).Report
		if last.Drift() == 0 {
			break
		}
	}
	return last
}

func TestChaosThirtyPercentThrottling(t *testing.T) {
	const n = 12
	w := newWorld(t, n)
	w.cfg.Targets.Regions = []string{usEast}
	w.image(euWest, "web", 2, "*")
	w.image(usEast, "api", 1, "*")
	plan := sim.NewFaultPlan(7).Throttle(0.30)
	w.cloud.SetFault(plan.Hook())

	var throttled int64
	for range 3 {
		res := w.run(reconcile.ModeRun)
		throttled += res.Summary.ThrottledCalls
		assertNoDuplicates(t, w, n)
		w.settle()
	}
	if plan.Injected() == 0 || throttled == 0 {
		t.Fatalf("no throttling happened: injected %d, absorbed %d", plan.Injected(), throttled)
	}
	final := recoverClean(t, w, 2)
	wantCounts(t, final, map[report.Category]int{report.OK: 3 * n})
	assertNoDuplicates(t, w, n)
}

func TestChaosDeniedAccountsAreIsolated(t *testing.T) {
	const n = 6
	w := newWorld(t, n)
	w.image(euWest, "web", 1, "*")
	plan := sim.NewFaultPlan(1).
		Add(sim.FaultRule{Op: "AssumeRole", Account: accountID(2), Code: "AccessDenied", Message: "not authorized to perform sts:AssumeRole"}).
		Add(sim.FaultRule{Op: "DescribeImages", Account: accountID(5), Code: "UnauthorizedOperation", Message: "You are not authorized"})
	w.cloud.SetFault(plan.Hook())
	res := w.run(reconcile.ModeRun)
	if res.Summary.Status != report.StatusPartial {
		t.Fatalf("status %s", res.Summary.Status)
	}
	wantCounts(t, res.Report, map[report.Category]int{report.Missing: n - 2, report.Unreachable: 2})
	for _, it := range itemsOf(res.Report, report.Unreachable) {
		if it.Account != accountID(2) && it.Account != accountID(5) {
			t.Errorf("unexpected unreachable %s", it.Account)
		}
	}
	if got := res.Summary.APICalls["CopyImage"]; got != n-2 {
		t.Fatalf("CopyImage = %d, want %d (every reachable account)", got, n-2)
	}
}

func TestChaosCopyImageErrors(t *testing.T) {
	tests := []struct {
		name  string
		rule  sim.FaultRule
		class cloud.ErrorClass
		// after the first run
		copied   int64
		category report.Category
	}{
		{name: "transient error retried within the run", rule: sim.FaultRule{Code: "InternalError", Times: 2}, class: cloud.ClassRetryable, copied: 1, category: report.Missing},
		{name: "quota full defers to the next run", rule: sim.FaultRule{Code: "ResourceLimitExceeded"}, class: cloud.ClassLimit, category: report.Missing},
		{name: "name taken is a failed attempt", rule: sim.FaultRule{Code: "InvalidAMIName.Duplicate", Times: 1}, class: cloud.ClassPermanent, category: report.Missing},
		{name: "KMS refusal is a failed attempt", rule: sim.FaultRule{Code: "KMS.NotFoundException", Times: 1}, class: cloud.ClassPermanent, category: report.Missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cloud.ClassifyCode(tt.rule.Code); got != tt.class {
				t.Fatalf("%s classified %s, want %s", tt.rule.Code, got, tt.class)
			}
			w := newWorld(t, 1)
			w.cfg.Limits.RetryBackoff = config.Duration(time.Hour)
			w.image(euWest, "web", 1, accountID(1))
			rule := tt.rule
			rule.Op = "CopyImage"
			w.cloud.SetFault(sim.NewFaultPlan(1).Add(rule).Hook())
			res := w.run(reconcile.ModeRun)
			if n := int64(len(w.copies(accountID(1), euWest, w.cloud.Images(srcAccount, euWest)[0].ID))); n != tt.copied {
				t.Fatalf("copies after the faulty run = %d, want %d (%v)", n, tt.copied, res.Summary.Errors)
			}
			rec, ok, err := w.store.GetPair(context.Background(), state.PairKey{
				SourceImage: w.cloud.Images(srcAccount, euWest)[0].ID, Account: accountID(1), Region: euWest})
			must(t, err)
			if !ok {
				t.Fatal("no state record")
			}
			switch tt.class {
			case cloud.ClassPermanent:
				if rec.Status != state.PairFailed || rec.Failures != 1 || rec.LastErrorCode != tt.rule.Code {
					t.Fatalf("record %+v", rec)
				}
				// Backing off: the next run waits.
				if res := w.run(reconcile.ModeRun); res.Summary.APICalls["CopyImage"] != 0 || res.Report.Counts[report.Failed] != 1 {
					t.Fatalf("no backoff: %v", res.Summary.APICalls)
				}
				w.cloud.Advance(time.Hour)
			case cloud.ClassLimit:
				if rec.Status != state.PairDeferred || rec.Failures != 0 || rec.LastErrorCode != tt.rule.Code {
					t.Fatalf("a full quota counted as a failure: %+v", rec)
				}
				w.cloud.SetFault(nil)
			}
			final := recoverClean(t, w, 2)
			wantCounts(t, final, map[report.Category]int{report.OK: 1})
			assertNoDuplicates(t, w, 1)
		})
	}
}

func TestChaosSourceVanishesBeforeTheCopy(t *testing.T) {
	w := newWorld(t, 1)
	img := w.image(euWest, "web", 1, accountID(1))
	src := w.cloud.Client(srcAccount, euWest)
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "CopyImage", Times: 1, Before: func() {
		if err := deregister(context.Background(), src, img.ID); err != nil {
			t.Error(err)
		}
	}}).Hook())
	res := w.run(reconcile.ModeRun)
	// Right after its share, a source EC2 does not find may be a grant
	// still propagating: the copy is deferred, nothing failed.
	key := state.PairKey{SourceImage: img.ID, Account: accountID(1), Region: euWest}
	if rec, _ := w.pair(key); rec.Status != state.PairDeferred || rec.Failures != 0 || rec.LastErrorCode != "InvalidAMIID.NotFound" {
		t.Fatalf("record %+v", rec)
	}
	if res.Summary.Actions["deferred"] != 1 {
		t.Fatalf("actions %v", res.Summary.Actions)
	}
	w.cloud.SetFault(nil)
	// The next run no longer wants the pair: its record leaves the
	// unsettled index, and nothing is copied or reported.
	res = w.run(reconcile.ModeRun)
	if res.Report.Pairs != 0 || res.Summary.MutatingCalls != 0 {
		t.Fatalf("pairs %d, calls %v", res.Report.Pairs, res.Summary.APICalls)
	}
	left, err := w.store.UnsettledPairs(context.Background(), srcAccount)
	must(t, err)
	if len(left) != 0 {
		t.Fatalf("unsettled records left: %+v", left)
	}
}

func TestChaosCopiesThatFailLater(t *testing.T) {
	w := newWorld(t, 2)
	w.cfg.Limits.RetryBackoff = config.Duration(time.Hour)
	w.image(euWest, "web", 1, "*")
	key, _ := w.cloud.ResolveKey(accountID(1), euWest, "alias/amicopier")
	w.cloud.SetKeyEnabled(key.ARN, false)
	w.run(reconcile.ModeRun)
	w.settle()
	res := w.run(reconcile.ModeRun)
	wantCounts(t, res.Report, map[report.Category]int{report.OK: 1, report.Failed: 1})
	if res.Summary.Actions["deregister_failed"] != 1 {
		t.Fatalf("failed copy not cleaned up: %v", res.Summary.Actions)
	}
	w.cloud.SetKeyEnabled(key.ARN, true)
	w.cloud.Advance(time.Hour)
	res = w.run(reconcile.ModeRun)
	if res.Summary.APICalls["CopyImage"] != 1 {
		t.Fatalf("failed copy not retried after the backoff: %v", res.Summary.APICalls)
	}
	w.settle()
	wantCounts(t, w.run(reconcile.ModePlan).Report, map[report.Category]int{report.OK: 2})
}

// countCalls runs the scenario once, unharmed, and returns its calls.
func countCalls(t *testing.T, build func(t *testing.T) *world) int64 {
	w := build(t)
	plan := sim.NewFaultPlan(1)
	w.cloud.SetFault(plan.Hook())
	w.run(reconcile.ModeRun)
	return plan.Calls()
}

func TestChaosKillAtEveryStep(t *testing.T) {
	const n = 3
	build := crashWorld // chaos_crash_test.go: 3 accounts
	total := countCalls(t, build)
	if total < 20 {
		t.Fatalf("scenario too small: %d calls", total)
	}
	for k := int64(1); k <= total+1; k++ {
		t.Run(fmt.Sprintf("after %d calls", k), func(t *testing.T) {
			w := build(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			plan := sim.NewFaultPlan(1).CrashAfter(k, cancel)
			w.cloud.SetFault(plan.Hook())
			_, err := w.engine().Run(ctx, reconcile.Request{Mode: reconcile.ModeRun})
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Logf("killed run: %v", err)
			}
			assertNoDuplicates(t, w, n)
			// At most two clean runs reconcile everything, with no
			// second copy of any pair.
			final := recoverClean(t, w, 2)
			wantCounts(t, final, map[report.Category]int{report.OK: 2*n + 2})
			assertNoDuplicates(t, w, n)
		})
	}
}

func TestChaosTwoRunsAtOnce(t *testing.T) {
	const n = 8
	w := newWorld(t, n)
	w.image(euWest, "web", 1, "*")
	w.image(euWest, "api", 1, "*")
	// The run that takes the lease waits at its first change until the
	// other has returned: both observe the same world, whatever the
	// scheduler does.
	returned := make(chan struct{})
	var once sync.Once
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "ModifyImageAttribute", Times: 1, Before: func() {
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Error("the other run never returned")
		}
	}}).Hook())
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, RunID: fmt.Sprintf("run-%d", i)})
			if errs[i] != nil {
				once.Do(func() { close(returned) })
			}
		}()
	}
	wg.Wait()
	held := 0
	for _, err := range errs {
		if h, ok := reconcile.LeaseHeld(err); ok {
			held++
			if !strings.HasPrefix(h.Run, "run-") {
				t.Errorf("holder %q", h.Run)
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if held != 1 {
		t.Fatalf("%d runs were refused the lease, want 1 (errors %v)", held, errs)
	}
	if got := w.cloud.Calls("CopyImage", "", ""); got != 2*n {
		t.Fatalf("CopyImage = %d, want %d", got, 2*n)
	}
	assertNoDuplicates(t, w, n)
}

func TestChaosDeadlineStopsNewWork(t *testing.T) {
	const n = 10
	w := newWorld(t, n)
	w.cfg.Limits.Concurrency = 1
	w.cfg.Limits.DeadlineMargin = 0
	w.image(euWest, "web", 1, "*")
	// The third copy is slow: the deadline passes while it is in flight.
	deadline := time.Now().Add(2 * time.Second)
	var copies atomic.Int64
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "CopyImage", Before: func() {
		if copies.Add(1) == 3 {
			time.Sleep(time.Until(deadline) + 50*time.Millisecond)
		}
	}}).Hook())
	res, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, Deadline: deadline})
	must(t, err)
	copied, deferred := res.Summary.APICalls["CopyImage"], res.Summary.Actions["deferred"]
	if copied != 3 || int(copied)+deferred != n {
		t.Fatalf("copied %d, deferred %d of %d: want the 3 started before the deadline, the rest deferred", copied, deferred, n)
	}
	if res.Summary.StateWrites == 0 {
		t.Fatal("the run did not record what it did")
	}
	// The next run finishes the rest.
	w.cloud.SetFault(nil)
	res = w.run(reconcile.ModeRun)
	if got := res.Summary.APICalls["CopyImage"]; int(got) != deferred {
		t.Fatalf("next run copied %d, want %d", got, deferred)
	}
	w.settle()
	wantCounts(t, w.run(reconcile.ModePlan).Report, map[report.Category]int{report.OK: n})
}

// TestTheConnectorRetriesTheEngineDoesNot: retries have one owner, the
// connector. A call that keeps failing is tried as often as the connector
// allows (3 here) and not once more by the engine; the connector counts
// every throttled attempt, the engine the throttled error that surfaced.
func TestTheConnectorRetriesTheEngineDoesNot(t *testing.T) {
	tests := []struct {
		code                      string
		throttled, throttleErrors int64
	}{
		{code: "InternalError"},
		{code: "RequestLimitExceeded", throttled: 3, throttleErrors: 1},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			w := newWorld(t, 2)
			w.image(euWest, "web", 1, "*")
			w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "DescribeImages", Account: accountID(1), Code: tt.code}).Hook())
			e, err := reconcile.New(reconcile.Options{
				Settings: settingsOf(t, w.cfg), Store: w.store, Clock: w.cloud,
				Connect: func(context.Context, string) (cloud.Connector, error) {
					return w.cloud.Connector(srcAccount, sim.WithAttempts(3)), nil
				},
			})
			must(t, err)
			res, err := e.Run(context.Background(), reconcile.Request{Mode: reconcile.ModePlan})
			must(t, err)
			if got := w.cloud.Calls("DescribeImages", accountID(1), euWest); got != 3 {
				t.Fatalf("DescribeImages in the failing account = %d, want 3 (the connector's attempts, none from the engine)", got)
			}
			wantCounts(t, res.Report, map[report.Category]int{report.Missing: 1, report.Unreachable: 1})
			if res.Summary.ThrottledCalls != tt.throttled {
				t.Fatalf("throttled calls = %d, want the connector's %d", res.Summary.ThrottledCalls, tt.throttled)
			}
			if res.Summary.ThrottleErrors != tt.throttleErrors {
				t.Fatalf("throttle errors = %d, want %d", res.Summary.ThrottleErrors, tt.throttleErrors)
			}
		})
	}
}

// TestChaosShareFailures: only EC2's refusal to share the source at all
// (its answers for a snapshot under the AWS-managed key) rejects the
// targets; any other failure to share leaves the pairs missing, records
// nothing, and the next run shares and copies them.
func TestChaosShareFailures(t *testing.T) {
	tests := []struct {
		name     string
		rule     sim.FaultRule
		rejected bool
	}{
		// EC2's answers for an image backed by an aws/ebs snapshot, each
		// from the call that sends it (see internal/sim's sharing).
		{name: "the image cannot be shared", rule: sim.FaultRule{Op: "ModifyImageAttribute", Code: "InvalidParameter"}, rejected: true},
		{name: "the snapshot cannot be shared", rule: sim.FaultRule{Op: "ModifySnapshotAttribute", Code: "OperationNotPermitted"}, rejected: true},
		{name: "a code nobody classified", rule: sim.FaultRule{Op: "ModifySnapshotAttribute", Code: "SomethingNew"}},
		{name: "a malformed request", rule: sim.FaultRule{Op: "ModifyImageAttribute", Code: "InvalidParameterValue"}},
		{name: "denied", rule: sim.FaultRule{Op: "ModifyImageAttribute", Code: "UnauthorizedOperation"}},
		{name: "throttled past the retries", rule: sim.FaultRule{Op: "ModifySnapshotAttribute", Code: "RequestLimitExceeded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, 2)
			img := w.image(euWest, "web", 1, "*")
			w.cloud.SetFault(sim.NewFaultPlan(1).Add(tt.rule).Hook())
			res := w.run(reconcile.ModeRun)
			if res.Summary.APICalls["CopyImage"] != 0 || res.Summary.Status != report.StatusPartial {
				t.Fatalf("copies %d, status %s", res.Summary.APICalls["CopyImage"], res.Summary.Status)
			}
			keys := []state.PairKey{{SourceImage: img.ID, Account: accountID(1), Region: euWest}, {SourceImage: img.ID, Account: accountID(2), Region: euWest}}
			if tt.rejected {
				wantCounts(t, res.Report, map[report.Category]int{report.RejectedTarget: 2})
				for _, k := range keys {
					if rec, _ := w.pair(k); rec.Status != state.PairRejected || rec.LastErrorCode != tt.rule.Code {
						t.Errorf("record %+v", rec)
					}
				}
				return
			}
			wantCounts(t, res.Report, map[report.Category]int{report.Missing: 2})
			if res.Summary.Actions["deferred"] != 2 {
				t.Errorf("actions %v, want 2 deferred", res.Summary.Actions)
			}
			for _, it := range res.Report.Items {
				if it.Action != "deferred" || !strings.Contains(it.Reason, "sharing failed") || !strings.Contains(it.Reason, "retried next run") {
					t.Errorf("item %+v", it)
				}
			}
			for _, k := range keys {
				if rec, ok := w.pair(k); ok {
					t.Errorf("a failed share recorded %+v", rec)
				}
			}
			w.cloud.SetFault(nil)
			if res := w.run(reconcile.ModeRun); res.Summary.APICalls["CopyImage"] != 2 {
				t.Fatalf("next run: %v %v", res.Summary.APICalls, res.Summary.Errors)
			}
		})
	}
}

func TestChaosOUListingFailureIsUnreachableNotRejected(t *testing.T) {
	w := newWorld(t, 3)
	w.image(euWest, "web", 1, "ou-sim0-00000001")
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "ListAccountsForParent", Code: "ServiceUnavailable"}).Hook())
	res := w.run(reconcile.ModeRun)
	wantCounts(t, res.Report, map[report.Category]int{report.Unreachable: 1})
	if res.Summary.Status != report.StatusPartial || res.Summary.MutatingCalls != 0 {
		t.Fatalf("status %s, calls %v", res.Summary.Status, res.Summary.APICalls)
	}
	// A blip is retried within the run.
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "ListAccountsForParent", Code: "ServiceUnavailable", Times: 2}).Hook())
	res = w.run(reconcile.ModeRun)
	wantCounts(t, res.Report, map[report.Category]int{report.Missing: 3})
}

// cutOffConnector makes the copy whose CopyImage is the n-th the one the
// deadline cuts off: EC2 makes the copy, and the answer never comes back
// (the call returns the context's end).
type cutOffConnector struct {
	cloud.Connector
	n     int64
	calls *atomic.Int64
	stop  context.CancelFunc
	// cut receives the account of the copy cut off (the order in which
	// accounts copy depends on when each image's share ends).
	cut *atomic.Pointer[string]
}

func (c cutOffConnector) Target(ctx context.Context, account, region string) (cloud.EC2, error) {
	e, err := c.Connector.Target(ctx, account, region)
	return cutOffEC2{EC2: e, c: c, account: account}, err
}

type cutOffEC2 struct {
	cloud.EC2
	c       cutOffConnector
	account string
}

func (e cutOffEC2) CopyImage(ctx context.Context, in cloud.CopyImageInput) (string, error) {
	id, err := e.EC2.CopyImage(ctx, in)
	if err == nil && e.c.calls.Add(1) == e.c.n {
		e.c.cut.Store(&e.account)
		e.c.stop()
		<-ctx.Done()
		return "", fmt.Errorf("CopyImage: %w", context.Cause(ctx))
	}
	return id, err
}

// A CopyImage the deadline cuts off is no failure: EC2 may have made the
// copy (here it did), the outcome is unknown. The pair and the pairs left
// over are deferred; the next run adopts the copy; nothing is counted
// failed, nothing copied twice.
func TestCopyCutOffByTheDeadlineIsDeferred(t *testing.T) {
	const n = 4
	w := newWorld(t, n)
	w.cfg.Limits.Concurrency = 1
	w.cfg.Targets.Regions = []string{euWest}
	img := w.image(euWest, "web", 1, "*")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var calls atomic.Int64
	var cutAccount atomic.Pointer[string]
	e := w.engineWith(func(o *reconcile.Options) {
		o.Connect = func(context.Context, string) (cloud.Connector, error) {
			return cutOffConnector{Connector: w.connector(), n: 2, calls: &calls, cut: &cutAccount,
				stop: func() { cancel(context.DeadlineExceeded) }}, nil
		}
	})
	res, err := e.Run(ctx, reconcile.Request{Mode: reconcile.ModeRun})
	must(t, err)
	if got := res.Summary.Actions["copy_failed"]; got != 0 {
		t.Errorf("copy_failed %d: a cut-off copy is no failure", got)
	}
	if got := res.Summary.Actions["copy"]; got != 1 {
		t.Errorf("copy %d, want the one answered before the cut", got)
	}
	if got := res.Summary.Actions["deferred"]; got != n-1 {
		t.Errorf("deferred %d, want %d (the cut-off copy and the ones not reached)", got, n-1)
	}
	if cutAccount.Load() == nil {
		t.Fatal("no copy was cut off")
	}
	cut := state.PairKey{SourceImage: img.ID, Account: *cutAccount.Load(), Region: euWest}
	if rec, _ := w.pair(cut); rec.Status != state.PairDeferred || rec.Failures != 0 {
		t.Errorf("record of the cut-off copy %+v: want deferred, no failure", rec)
	}
	// The next run asks again with the same token: EC2 answers with the
	// copy it made, which is then adopted.
	w.run(reconcile.ModeRun)
	w.settle()
	wantCounts(t, w.run(reconcile.ModePlan).Report, map[report.Category]int{report.OK: n})
	assertNoDuplicates(t, w, n)
}
