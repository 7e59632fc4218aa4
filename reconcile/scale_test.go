package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

func TestParseShard(t *testing.T) {
	tests := []struct {
		in      string
		want    reconcile.Shard
		wantErr string
	}{
		{in: "", want: reconcile.Shard{}},
		{in: "1/1", want: reconcile.Shard{Index: 1, Count: 1}},
		{in: "2/8", want: reconcile.Shard{Index: 2, Count: 8}},
		{in: " 3 / 4 ", want: reconcile.Shard{Index: 3, Count: 4}},
		{in: "8/8", want: reconcile.Shard{Index: 8, Count: 8}},
		{in: "0/8", wantErr: `shard "0/8": the shard number must be between 1 and 8 (got 0)`},
		{in: "9/8", wantErr: `shard "9/8": the shard number must be between 1 and 8 (got 9)`},
		{in: "1/0", wantErr: `shard "1/0": the number of shards must be between 1 and 1000 (got 0)`},
		{in: "1/1001", wantErr: "between 1 and 1000 (got 1001)"},
		{in: "2", wantErr: `shard "2": want I/N`},
		{in: "a/b", wantErr: `shard "a/b": I and N must be whole numbers`},
		{in: "1/2/3", wantErr: `shard "1/2/3": I and N must be whole numbers`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := reconcile.ParseShard(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseShard(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseShard(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if got.String() != strings.ReplaceAll(tt.in, " ", "") {
				t.Errorf("String() = %q", got.String())
			}
		})
	}
}

func TestShardOfIsStableAndBalanced(t *testing.T) {
	// Fixed values: a change of the hash would move accounts between the
	// shards of running deployments, each shard losing track of its pairs.
	for id, want := range map[string]int{"200000000001": 5, "123456789012": 8, "999999999999": 2} {
		if got := reconcile.ShardOf(id, 8); got != want {
			t.Errorf("ShardOf(%s, 8) = %d, want %d", id, got, want)
		}
	}
	const n, accounts = 8, 4000
	counts := make([]int, n+1)
	for i := range accounts {
		counts[reconcile.ShardOf(fmt.Sprintf("2%011d", i), n)]++
	}
	for s := 1; s <= n; s++ {
		if c := counts[s]; c < accounts/n*3/4 || c > accounts/n*5/4 {
			t.Errorf("shard %d has %d of %d accounts: %v", s, c, accounts, counts)
		}
	}
	if counts[0] != 0 {
		t.Fatal("a shard numbered 0")
	}
}

// TestShardsInParallelCoverTheOrganisationOnce runs every shard at once,
// each with its own engine and lease, against one organisation: together
// they must do exactly what one run does.
func TestShardsInParallelCoverTheOrganisationOnce(t *testing.T) {
	const n, shards = 24, 4
	w := newWorld(t, n, sim.WithInFlightQuota(1000))
	imgs := []cloud.Image{
		w.image(euWest, "web", 1, "*"),
		w.image(euWest, "api", 2, "*"),
		w.image(usEast, "db", 1, "* 999999999999 not-an-id"),
	}
	reports := make([]*report.Report, shards)
	var wg sync.WaitGroup
	for i := range shards {
		wg.Go(func() {
			res, err := w.engine().Run(context.Background(), reconcile.Request{
				Mode: reconcile.ModeRun, Shard: reconcile.Shard{Index: i + 1, Count: shards},
			})
			if err != nil {
				t.Errorf("shard %d: %v", i+1, err)
				return
			}
			if res.Summary.Status != report.StatusSucceeded {
				t.Errorf("shard %d: %s %v", i+1, res.Summary.Status, res.Summary.Errors)
			}
			reports[i] = res.Report
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	pairs, seen := 0, map[string]int{}
	for i, rep := range reports {
		if rep.Scope.Shard != fmt.Sprintf("%d/%d", i+1, shards) {
			t.Errorf("report %d scope %+v", i, rep.Scope)
		}
		pairs += rep.Pairs
		for _, it := range rep.Items {
			seen[it.SourceImage+"/"+it.Account+"/"+it.Region]++
			if it.Category != report.RejectedTarget && reconcile.ShardOf(it.Account, shards) != i+1 {
				t.Errorf("shard %d reported account %s of shard %d", i+1, it.Account, reconcile.ShardOf(it.Account, shards))
			}
		}
	}
	if want := 3*n + 2; pairs != want {
		t.Errorf("the shards observed %d pairs together, want %d", pairs, want)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%s reported by %d shards", k, c)
		}
	}
	// Every pair has its one copy, and every grant survived the others.
	for pair, c := range w.copyCounts(accounts(n)) {
		if c != 1 {
			t.Errorf("pair %s has %d copies", pair, c)
		}
	}
	if got := len(w.copyCounts(accounts(n))); got != 3*n {
		t.Errorf("%d pairs copied, want %d", got, 3*n)
	}
	for _, img := range imgs {
		// The organisation stands for every account (OU grants), and
		// its grant survived the other shards'.
		for _, a := range accounts(n) {
			if !w.cloud.AccountCanLaunch(srcAccount, img.Region, img.ID, a) {
				t.Errorf("%s cannot use %s", a, img.ID)
			}
		}
		for _, snap := range img.SnapshotIDs() {
			if got := w.cloud.SnapshotPermissions(srcAccount, img.Region, snap); !slices.Equal(got, accounts(n)) {
				t.Errorf("%s create-volume permission = %v", snap, got)
			}
		}
	}
	// Next night, once the copies are done: every shard settles its own.
	w.settle()
	ok := 0
	for i := range shards {
		res, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, Shard: reconcile.Shard{Index: i + 1, Count: shards}})
		must(t, err)
		ok += res.Report.Counts[report.OK]
	}
	if ok != 3*n {
		t.Fatalf("%d ok pairs after the copies finished, want %d", ok, 3*n)
	}
	if plan := w.run(reconcile.ModePlan); plan.Report.Counts[report.OK] != 3*n {
		t.Fatalf("unsharded plan: %v", plan.Report.Counts)
	}
}

func TestShardLeasesAreIndependent(t *testing.T) {
	w := newWorld(t, 6)
	w.image(euWest, "web", 1, "*")
	e := w.engine()
	one := reconcile.Shard{Index: 1, Count: 2}
	if got, want := e.ScopeFor(one), srcAccount+"/shard-1-of-2"; got != want {
		t.Fatalf("ScopeFor = %q, want %q", got, want)
	}
	if e.ScopeFor(reconcile.Shard{}) != e.Scope() || e.ScopeFor(reconcile.Shard{Index: 1, Count: 1}) != e.Scope() {
		t.Fatal("an unsharded run must use the plain scope")
	}
	// Shard 1's lease is held: shard 1 is refused, shard 2 works.
	_, err := w.store.AcquireLease(context.Background(), e.ScopeFor(one), "other-run", w.cfg.State.LeaseTTL.D())
	must(t, err)
	if _, err := e.Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, Shard: one}); err == nil {
		t.Fatal("shard 1 ran while its lease was held")
	} else if h, held := reconcile.LeaseHeld(err); !held || h.Run != "other-run" {
		t.Fatalf("err = %v", err)
	}
	res, err := e.Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, Shard: reconcile.Shard{Index: 2, Count: 2}})
	must(t, err)
	if res.Summary.APICalls["CopyImage"] == 0 {
		t.Fatal("shard 2 did nothing")
	}
	if _, err := e.Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, Shard: reconcile.Shard{Index: 3, Count: 2}}); err == nil ||
		!strings.Contains(err.Error(), "between 1 and 2 (got 3)") {
		t.Fatalf("bad shard: err = %v", err)
	}
}

func TestNoOpRunWritesOnlyItsRecord(t *testing.T) {
	w := newWorld(t, 3)
	w.image(euWest, "web", 1, "*")
	first := w.run(reconcile.ModeRun)
	if writes := w.store.Writes(); writes.LeaseWrites != 2 {
		t.Fatalf("a run with work wrote %+v: it must take and release the lease", writes)
	}
	_ = first
	w.settle()
	w.run(reconcile.ModeRun) // settles the records
	w.store.Reset()
	res := w.run(reconcile.ModeRun)
	wantCounts(t, res.Report, map[report.Category]int{report.OK: 3})
	if writes := w.store.Writes(); writes.Total() != 1 || writes.RunWrites != 1 {
		t.Fatalf("a run with nothing to do wrote %+v, want its run record only", writes)
	}
	if res.Summary.StateWrites != 1 {
		t.Fatalf("summary says %d writes", res.Summary.StateWrites)
	}
}

// TestStaleObservationExitsCleanly has another run do all the work while
// this one is observing: this one must notice, once it holds the lease,
// and stop without changing anything.
func TestStaleObservationExitsCleanly(t *testing.T) {
	const n = 6
	w := newWorld(t, n)
	w.cfg.Limits.Concurrency = 1
	w.image(euWest, "web", 1, "*")
	var other atomic.Bool
	var otherErr error
	w.cloud.SetFault(func(ctx context.Context, c sim.Call) error {
		// When the slow run has seen every account but the last miss its
		// copy, the other run does the whole job before it goes on.
		if c.Op == "DescribeImages" && c.Account == accountID(n) && other.CompareAndSwap(false, true) {
			_, otherErr = w.engine().Run(context.WithoutCancel(ctx), reconcile.Request{Mode: reconcile.ModeRun, RunID: "other-run"})
		}
		return nil
	})
	_, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, RunID: "slow-run"})
	must(t, otherErr)
	var stale *reconcile.StaleError
	if !errors.As(err, &stale) {
		t.Fatalf("err = %v, want a StaleError", err)
	}
	if h, held := reconcile.LeaseHeld(err); !held || h.Run != "other-run" {
		t.Fatalf("LeaseHeld(%v) = %+v, %v", err, h, held)
	}
	if got := w.cloud.Calls("CopyImage", "", ""); got != n {
		t.Fatalf("CopyImage = %d, want %d (the other run's only)", got, n)
	}
	assertNoDuplicates(t, w, n)
	// The lease was given back: the next run works.
	w.cloud.SetFault(nil)
	w.settle()
	wantCounts(t, w.run(reconcile.ModeRun).Report, map[report.Category]int{report.OK: n})
}

// TestPacingAvoidsThrottling runs a catch-up against small token buckets,
// with the client-side pacing configured just below them: no call is
// throttled (without the pacing, 21 are).
func TestPacingAvoidsThrottling(t *testing.T) {
	const n = 12
	w := newWorld(t, n, sim.WithInFlightQuota(1000), sim.WithThrottling(sim.Throttling{
		Describe: sim.Bucket{Burst: 6, Refill: 200},
		Mutating: sim.Bucket{Burst: 4, Refill: 100},
		STS:      sim.Bucket{Burst: 10, Refill: 100},
	}))
	w.cfg.Limits.Concurrency = 8
	// The client's buckets keep a margin below the simulator's (they
	// refill on the wall clock, and a busy machine bunches calls that
	// were paced apart).
	w.cfg.Limits.DescribeRate, w.cfg.Limits.DescribeBurst = 150, 3
	w.cfg.Limits.MutatingRate, w.cfg.Limits.MutatingBurst = 60, 2
	w.cfg.Limits.AssumeRoleRate = 8 // also the burst
	for i := range 6 {
		w.image(euWest, fmt.Sprintf("img-%d", i), 2, "*")
	}
	res := w.run(reconcile.ModeRun)
	if res.Summary.Status != report.StatusSucceeded || res.Summary.APICalls["CopyImage"] != 6*n {
		t.Fatalf("status %s, calls %v, errors %v", res.Summary.Status, res.Summary.APICalls, res.Summary.Errors)
	}
	if got := w.cloud.ThrottledCalls(); got != 0 {
		t.Fatalf("%d calls throttled despite the pacing (summary: %d throttled, %d surfaced)", got, res.Summary.ThrottledCalls, res.Summary.ThrottleErrors)
	}
}

// TestThrottlesAreRetriedAndCounted: with pacing far above the buckets,
// throttles happen, the retries absorb them, and the summary tells them
// apart from the ones that failed a call.
func TestThrottlesAreRetriedAndCounted(t *testing.T) {
	const n = 8
	w := newWorld(t, n, sim.WithInFlightQuota(1000), sim.WithThrottling(sim.Throttling{Mutating: sim.Bucket{Burst: 2, Refill: 400}}))
	w.cfg.Limits.MutatingRate, w.cfg.Limits.MutatingBurst = 1000, 1000
	w.cfg.Limits.CallRetries = 20
	for i := range 4 {
		w.image(euWest, fmt.Sprintf("img-%d", i), 1, "*")
	}
	e, err := reconcile.New(reconcile.Options{Settings: settingsOf(t, w.cfg), Store: w.store, Clock: w.cloud,
		Connect: func(context.Context, string) (cloud.Connector, error) { return w.cloud.Connector(srcAccount), nil }})
	must(t, err) // the real, sleeping backoff: the bucket refills meanwhile
	res, err := e.Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun})
	must(t, err)
	if res.Summary.ThrottledCalls == 0 || res.Summary.ThrottledCalls != w.cloud.ThrottledCalls() {
		t.Fatalf("throttled: summary %d, simulator %d", res.Summary.ThrottledCalls, w.cloud.ThrottledCalls())
	}
	if res.Summary.ThrottleErrors != 0 || res.Summary.Status != report.StatusSucceeded {
		t.Fatalf("%d throttles surfaced: %v", res.Summary.ThrottleErrors, res.Summary.Errors)
	}
	assertNoDuplicates(t, w, n)
}

// TestOnlyCopiesOfThisRunAreShared: the in-flight cap defers copies, and
// their sources are granted in the run that copies them, not before.
func TestOnlyCopiesOfThisRunAreShared(t *testing.T) {
	w := newWorld(t, 1)
	w.cfg.Limits.InFlightCopies = 2
	var imgs []cloud.Image
	for i := range 5 {
		imgs = append(imgs, w.image(euWest, fmt.Sprintf("img-%d", i), 1, accountID(1)))
	}
	slices.SortFunc(imgs, func(a, b cloud.Image) int { return strings.Compare(a.ID, b.ID) })
	res := w.run(reconcile.ModeRun)
	if res.Summary.Actions["copy"] != 2 || res.Summary.Actions["deferred_in_flight_cap"] != 3 {
		t.Fatalf("actions %v", res.Summary.Actions)
	}
	for i, img := range imgs {
		granted := len(w.cloud.LaunchPermissions(srcAccount, euWest, img.ID)) > 0
		if granted != (i < 2) {
			t.Errorf("image %d (%s) granted = %v", i, img.ID, granted)
		}
	}
	for range 3 {
		w.settle()
		w.run(reconcile.ModeRun)
	}
	w.settle()
	wantCounts(t, w.run(reconcile.ModePlan).Report, map[report.Category]int{report.OK: 5})
}

// TestSlotFreedByAFailedCopyIsNotUsedUnshared: sharing grants only the
// copies the in-flight cap lets start; when a copy fails and frees a slot,
// the next pair (not granted, its copy request dropped) waits for the
// next run instead of being copied without a grant.
func TestSlotFreedByAFailedCopyIsNotUsedUnshared(t *testing.T) {
	w := newWorld(t, 1)
	w.cfg.Limits.InFlightCopies = 1
	w.cfg.Targets.Regions = []string{usEast}
	a := w.image(euWest, "a", 1, accountID(1))
	b := w.image(euWest, "b", 1, accountID(1))
	if a.ID > b.ID {
		a, b = b, a
	}
	// In eu-west-1 a is already copied, so b is the copy that starts
	// there (and b is granted); in us-east-1 a comes first, and fails.
	key := w.cloud.AddKey(accountID(1), euWest, "other")
	w.cloud.AddImage(accountID(1), euWest, sim.ImageSpec{Name: "a-copy", Tags: map[string]string{reconcile.TagCopiedFrom: a.ID},
		Devices: []sim.DeviceSpec{{Size: 8, KMSKeyARN: key}}})
	w.cfg.Encryption.KMSKey = ""
	w.cloud.SetFault(func(_ context.Context, c sim.Call) error {
		if c.Op == "CopyImage" && c.Region == usEast && c.Resource == a.ID {
			return cloud.Errorf("CopyImage", "InvalidParameterValue", "refused for the test")
		}
		return nil
	})
	res := w.run(reconcile.ModeRun)
	if got := w.cloud.Calls("CopyImage", accountID(1), usEast); got != 1 {
		t.Fatalf("CopyImage in us-east-1 = %d, want 1 (a, refused; b must wait)", got)
	}
	if res.Summary.Actions["deferred_in_flight_cap"] != 1 {
		t.Fatalf("actions %v, errors %v", res.Summary.Actions, res.Summary.Errors)
	}
	for _, e := range res.Summary.Errors {
		if !strings.Contains(e, a.ID) {
			t.Errorf("unexpected error %q", e)
		}
	}
}

// TestStaleErrorNamesTheSettledPair: another run settles one pair this
// run read as unsettled; the StaleError names that pair, and the run that
// settled it.
func TestStaleErrorNamesTheSettledPair(t *testing.T) {
	const n = 8
	w := newWorld(t, n)
	img := w.image(euWest, "web", 1, "*")
	w.run(reconcile.ModeRun)
	w.settle()
	settled := state.PairKey{SourceImage: img.ID, Account: accountID(5), Region: euWest}
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "DescribeImages", Account: accountID(3), Times: 1, Before: func() {
		cur, _ := w.pair(settled)
		cur.Status, cur.RunID = state.PairSettled, "other-run"
		if _, err := w.store.PutPair(context.Background(), cur); err != nil {
			t.Error(err)
		}
	}}).Hook())
	_, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, RunID: "slow-run"})
	var stale *reconcile.StaleError
	if !errors.As(err, &stale) {
		t.Fatalf("err = %v, want a StaleError", err)
	}
	if stale.Pair != settled || stale.Holder != "other-run" {
		t.Fatalf("StaleError names pair %s and holder %q, want %s settled by other-run", stale.Pair, stale.Holder, settled)
	}
}
