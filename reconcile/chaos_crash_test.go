package reconcile_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// The chaos suite's crashes at state writes: the process dies right after
// any write of a run has landed, or while it is on its way, and nothing
// it would still have written lands (state.Crashing). With the crashes
// after each AWS call (TestChaosKillAtEveryStep) they cover every point a
// kill -9 can hit: between the write-ahead record and CopyImage, between
// CopyImage and the record of its answer, around the sharing ledger's
// record before the grants and after the grants are taken back, the
// lease, the settled records and the run record.

// crashStage is one run of the sequence a crash can hit, with what comes
// before it.
type crashStage struct {
	name string
	// before brings the world to the stage (earlier runs, done clean).
	before func(w *world)
}

// crashStages: a catch-up (the ledger's record before the grants, the
// write-ahead records, CopyImage, the answers), then, once the copies are
// available, the run that takes the just-in-time grants back (the
// ledger's record after) and settles the records.
var crashStages = []crashStage{
	{name: "catch-up", before: func(*world) {}},
	{name: "take back", before: func(w *world) {
		w.run(reconcile.ModeRun)
		w.settle()
	}},
	// A copy that failed (its key was disabled): the record of the
	// failure, the failed copy deregistered, a new attempt.
	{name: "retry", before: func(w *world) {
		key, _ := w.cloud.ResolveKey(accountID(1), euWest, "alias/amicopier")
		w.cloud.SetKeyEnabled(key.ARN, false)
		w.run(reconcile.ModeRun)
		w.settle()
		w.cloud.SetKeyEnabled(key.ARN, true)
		w.cloud.Advance(w.cfg.Limits.RetryBackoff.D())
	}},
}

// crashWorld is the crash tests' organisation: 3 accounts, an image of
// eu-west-1 for all (2 snapshots) and one of us-east-1 for two of them.
func crashWorld(t *testing.T) *world {
	const n = 3
	w := newWorld(t, n)
	w.cfg.Limits.Concurrency = 2
	w.cfg.Targets.Regions = []string{usEast}
	w.image(euWest, "web", 2, "*")
	w.image(usEast, "api", 1, accountID(1)+" "+accountID(3))
	return w
}

// stageWrites runs a stage unharmed and returns the writes it made.
func stageWrites(t *testing.T, st crashStage) []state.Write {
	w := crashWorld(t)
	st.before(w)
	c, err := state.NewCrashing(w.store, state.CrashPoint{}, nil)
	must(t, err)
	w.store = state.NewCounting(c)
	w.run(reconcile.ModeRun)
	return c.Log()
}

func TestChaosCrashAtEveryStateWrite(t *testing.T) {
	// What the crash points were, by the write the process died at: the
	// sweep must have hit each step named below.
	hit := map[string]bool{}
	for _, st := range crashStages {
		// The run's writes come in an order its goroutines decide, so the
		// K-th write of one run need not be the K-th of the next: a sweep
		// may miss a step another sweep hits. Sweep again (at most 5
		// times) until every step of the stage named below was hit.
		for sweep := 0; sweep < 5 && (sweep == 0 || !covered(hit, st.name)); sweep++ {
			crashSweep(t, st, sweep, hit)
		}
	}
	for _, want := range crashStepsWanted {
		if !hit[want] {
			t.Errorf("no crash point at %q; hit: %v", want, slices.Sorted(maps.Keys(hit)))
		}
	}
}

// crashStepsWanted are the steps the sweeps must hit, by stage.
var crashStepsWanted = []string{
	"catch-up AcquireLease ",
	"catch-up PutGrants ",          // the ledger's record before the grants
	"catch-up PutPair write-ahead", // before CopyImage
	"catch-up PutPair answer",      // after it
	"catch-up PutRun ",
	"catch-up ReleaseLease ",
	"take back PutGrants ", // the ledger's record after the grants are taken back
	"take back PutPair settled",
	"retry PutPair failed",      // the failure, before the failed copy is deregistered
	"retry PutPair write-ahead", // the new attempt
}

// covered reports whether the sweeps hit every wanted step of stage.
func covered(hit map[string]bool, stage string) bool {
	for _, want := range crashStepsWanted {
		if strings.HasPrefix(want, stage+" ") && !hit[want] {
			return false
		}
	}
	return true
}

// crashSweep crashes a run of stage st at each of its writes in turn,
// landed and lost, checks the recovery from each crash, and notes in hit
// the step each crash hit.
func crashSweep(t *testing.T, st crashStage, sweep int, hit map[string]bool) {
	writes := stageWrites(t, st)
	if len(writes) < 5 {
		t.Fatalf("%s: %d writes: the scenario is too small", st.name, len(writes))
	}
	for k := 1; k <= len(writes); k++ {
		for _, lost := range []bool{false, true} {
			point := state.CrashPoint{Write: k, Lost: lost}
			t.Run(fmt.Sprintf("%s/%s/sweep-%d", st.name, point, sweep), func(t *testing.T) {
				at := crashAndRecover(t, st, point, k)
				hit[st.name+" "+string(at.Op)+" "+whatStep(at)] = true
			})
		}
	}
}

// crashAndRecover crashes a run of stage st at point (its k-th write),
// then checks that no pair has two copies, the ledger knew every grant,
// at most two clean runs reconcile everything, and the grants made just
// in time are taken back; it returns the write the run died at.
func crashAndRecover(t *testing.T, st crashStage, point state.CrashPoint, k int) state.Write {
	const n = 3
	w := crashWorld(t)
	st.before(w)
	survivor := w.store
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := state.NewCrashing(survivor, point, cancel)
	must(t, err)
	w.store = state.NewCounting(c)
	// Once dead, no call reaches AWS either.
	w.cloud.SetFault(func(context.Context, sim.Call) error {
		if _, dead := c.Crashed(); dead {
			return context.Canceled
		}
		return nil
	})
	_, _ = w.engine().Run(ctx, reconcile.Request{Mode: reconcile.ModeRun, Trigger: "test"})
	at, crashed := c.Crashed()
	if !crashed {
		t.Fatalf("the run made %d writes, never the %d-th", c.Writes(), k)
	}
	w.store = survivor
	assertNoDuplicates(t, w, n)
	assertGrantsRemembered(t, w, at)
	// At most two clean runs reconcile everything, with no second copy
	// of any pair.
	final := recoverClean(t, w, 2)
	wantCounts(t, final, map[report.Category]int{report.OK: 2*n + 2})
	assertNoDuplicates(t, w, n)
	// Once the copies are available, the next run takes every
	// just-in-time grant back, whatever the crash interrupted.
	w.settle()
	w.run(reconcile.ModeRun)
	assertJustInTimeGrantsGone(t, w, at)
	return at
}

// whatStep names the step of a pair write: the write-ahead record of an
// attempt (copying, no copy yet), the record of CopyImage's answer, the
// settled record.
func whatStep(w state.Write) string {
	switch {
	case w.Op != state.OpPutPair:
		return ""
	case strings.HasPrefix(w.What, string(state.PairCopying)) && !strings.Contains(w.What, "copy "):
		return "write-ahead"
	case strings.HasPrefix(w.What, string(state.PairSettled)):
		return "settled"
	case strings.HasPrefix(w.What, string(state.PairFailed)):
		return "failed"
	}
	return "answer"
}

// assertGrantsRemembered fails on any permission on a source image that
// the sharing ledger does not list: amicopier writes its record before it
// grants, so a crash never leaves a grant it would not take back.
func assertGrantsRemembered(t *testing.T, w *world, at state.Write) {
	t.Helper()
	recs, err := w.store.GrantsOf(context.Background(), srcAccount)
	must(t, err)
	launch, volume := map[string]bool{}, map[string]bool{}
	for _, g := range recs {
		for _, e := range g.Launch {
			launch[g.Key.Image+" "+e] = true
		}
		for _, a := range g.Volume {
			volume[g.Key.Image+" "+a] = true
		}
	}
	for _, region := range []string{euWest, usEast} {
		for _, img := range w.cloud.Images(srcAccount, region) {
			for _, e := range w.cloud.LaunchPermission(srcAccount, region, img.ID).Entities() {
				if !launch[img.ID+" "+e] {
					t.Errorf("crash at %s: %s is shared with %s, which no ledger record lists", at, img.ID, e)
				}
			}
			for _, snap := range img.SnapshotIDs() {
				for _, a := range w.cloud.SnapshotPermissions(srcAccount, region, snap) {
					if !volume[img.ID+" "+a] {
						t.Errorf("crash at %s: snapshot %s of %s grants create-volume to %s, which no ledger record lists", at, snap, img.ID, a)
					}
				}
			}
		}
	}
}

// assertJustInTimeGrantsGone fails on any create-volume permission left
// on a source snapshot, or listed by the ledger, once every copy is
// available: they are granted just in time, and taken back once done.
func assertJustInTimeGrantsGone(t *testing.T, w *world, at state.Write) {
	t.Helper()
	for _, region := range []string{euWest, usEast} {
		for _, img := range w.cloud.Images(srcAccount, region) {
			for _, snap := range img.SnapshotIDs() {
				if left := w.cloud.SnapshotPermissions(srcAccount, region, snap); len(left) > 0 {
					t.Errorf("crash at %s: snapshot %s of %s still grants create-volume to %v", at, snap, img.ID, left)
				}
			}
		}
	}
	recs, err := w.store.GrantsOf(context.Background(), srcAccount)
	must(t, err)
	for _, g := range recs {
		if len(g.Volume) > 0 {
			t.Errorf("crash at %s: the ledger still lists create-volume grants %v of %s", at, g.Volume, g.Key)
		}
	}
}
