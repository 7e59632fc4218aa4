package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/state"
)

// The chaos scenario's crash sweep: a small organisation, three runs in
// turn (a catch-up; once the copies are available, the run that takes
// the just-in-time grants back and settles the records; the retry of a
// copy that failed), and for each run a crash at every point a kill -9
// can hit: before each AWS call (the call never goes out), right after
// each state write has landed, and during each state write (it never
// lands). Once dead, nothing more happens: no call, no write, no run
// record, no release of the lease (state.Crashing). Each crash point is
// followed by at most two clean runs, and audited like the chaos runs.

// CrashPoints counts the crash points of a sweep by kind.
type CrashPoints struct {
	// Calls: the process died before its k-th AWS call, for every k.
	Calls int `json:"calls"`
	// WritesLanded: it died right after its k-th state write landed;
	// WritesLost: while its k-th write was on its way.
	WritesLanded int `json:"writes_landed"`
	WritesLost   int `json:"writes_lost"`
	// ByWrite counts the write crash points by the operation written.
	ByWrite map[state.Op]int `json:"by_write"`
}

// Total is every crash point.
func (p CrashPoints) Total() int { return p.Calls + p.WritesLanded + p.WritesLost }

// CrashSweep is what the sweep found.
type CrashSweep struct {
	Points CrashPoints `json:"points"`
	// DuplicateCopies, CopiesLost and PairsUnreconciled total the audits
	// of every crash point (after the crash, and after the recovery).
	DuplicateCopies   int `json:"duplicate_copies"`
	CopiesLost        int `json:"copies_lost"`
	PairsUnreconciled int `json:"pairs_unreconciled_after_recovery"`
	// GrantsForgotten counts permissions found on a source after a crash
	// that no ledger record lists (the ledger is written before the
	// grants: always 0).
	GrantsForgotten int `json:"grants_forgotten"`
	// MaxRecoveryRuns is the most clean runs a crash point needed.
	MaxRecoveryRuns int `json:"max_recovery_runs"`
	// Failures names the first crash points that failed, and why.
	Failures []string `json:"failures,omitempty"`
}

// sweepScenario is the sweep's organisation: small, since every crash
// point builds it again.
func sweepScenario() Scenario {
	return Scenario{
		Name: "chaos-crash-sweep", Kind: Chaos, Accounts: 4, OUs: 2, Regions: []string{"eu-west-1", "us-east-1"},
		Images:      []ImageSet{{Region: "eu-west-1", Count: 2, Snapshots: 2, OU: -1}, {Region: "us-east-1", Count: 1, Snapshots: 1, OU: 1}},
		InFlightCap: 20, Concurrency: 2,
	}
}

// sweepStage is one run of the sweep and what brings the world to it.
type sweepStage struct {
	name   string
	before func(ctx context.Context, w *chaosWorld, sc Scenario) error
}

var sweepStages = []sweepStage{
	{name: "catch-up", before: func(context.Context, *chaosWorld, Scenario) error { return nil }},
	{name: "take back", before: func(ctx context.Context, w *chaosWorld, sc Scenario) error {
		if _, err := w.run(ctx, reconcile.ModeRun, sc); err != nil {
			return err
		}
		w.cloud.Advance(w.cloud.CopyDuration() + w.cfg.State.LeaseTTL.D())
		return nil
	}},
	{name: "retry", before: func(ctx context.Context, w *chaosWorld, sc Scenario) error {
		k, ok := w.cloud.ResolveKey(w.accounts[0], "eu-west-1", "alias/amicopier")
		if !ok {
			return fmt.Errorf("no key in %s", w.accounts[0])
		}
		w.cloud.SetKeyEnabled(k.ARN, false)
		if _, err := w.run(ctx, reconcile.ModeRun, sc); err != nil {
			return err
		}
		w.cloud.Advance(w.cloud.CopyDuration() + w.cfg.State.LeaseTTL.D())
		w.cloud.SetKeyEnabled(k.ARN, true)
		w.cloud.Advance(w.cfg.Limits.RetryBackoff.D())
		return nil
	}},
}

// crashPoint is one place to die: before call Call, or at state write
// Write.
type crashPoint struct {
	stage sweepStage
	call  int64
	write state.CrashPoint
}

func (p crashPoint) String() string {
	if p.call > 0 {
		return fmt.Sprintf("%s: before call %d", p.stage.name, p.call)
	}
	return fmt.Sprintf("%s: %s", p.stage.name, p.write)
}

// RunCrashSweep crashes the sweep's runs at each of their crash points.
func RunCrashSweep(ctx context.Context) (*CrashSweep, error) {
	sc := sweepScenario()
	out := &CrashSweep{Points: CrashPoints{ByWrite: map[state.Op]int{}}}
	for _, st := range sweepStages {
		calls, writes, err := sweepStageCost(ctx, sc, st)
		if err != nil {
			return nil, fmt.Errorf("crash sweep: %s: %w", st.name, err)
		}
		var points []crashPoint
		for k := int64(1); k <= calls; k++ {
			points = append(points, crashPoint{stage: st, call: k})
		}
		for k := 1; k <= writes; k++ {
			points = append(points, crashPoint{stage: st, write: state.CrashPoint{Write: k}},
				crashPoint{stage: st, write: state.CrashPoint{Write: k, Lost: true}})
		}
		for _, p := range points {
			if err := out.crashAt(ctx, sc, p); err != nil {
				return nil, fmt.Errorf("crash sweep: %s: %w", p, err)
			}
		}
	}
	return out, nil
}

// sweepStageCost runs a stage unharmed and counts its calls and writes.
func sweepStageCost(ctx context.Context, sc Scenario, st sweepStage) (calls int64, writes int, err error) {
	w, err := buildChaos(sc)
	if err != nil {
		return 0, 0, err
	}
	if err := st.before(ctx, w, sc); err != nil {
		return 0, 0, err
	}
	plan := sim.NewFaultPlan(1)
	w.cloud.SetFault(plan.Hook())
	c, err := state.NewCrashing(w.store, state.CrashPoint{}, nil)
	if err != nil {
		return 0, 0, err
	}
	w.store = c
	if _, err := w.run(ctx, reconcile.ModeRun, sc); err != nil {
		return 0, 0, err
	}
	return plan.Calls(), c.Writes(), nil
}

// crashAt runs the stage with the process dying at p, then recovers and
// audits.
func (s *CrashSweep) crashAt(ctx context.Context, sc Scenario, p crashPoint) error {
	w, err := buildChaos(sc)
	if err != nil {
		return err
	}
	if err := p.stage.before(ctx, w, sc); err != nil {
		return err
	}
	at, err := s.die(ctx, w, sc, p)
	if err != nil {
		return err
	}
	last := "no state write yet"
	if at.N > 0 {
		last = "last " + at.String()
	}
	fail := func(format string, args ...any) {
		if len(s.Failures) < 10 {
			s.Failures = append(s.Failures, fmt.Sprintf("%s (%s): %s", p, last, fmt.Sprintf(format, args...)))
		}
	}
	var res ChaosResult
	if dup := w.audit(&res); dup > 0 {
		s.DuplicateCopies += dup
		fail("%d pairs with two copies after the crash", dup)
	}
	if n, err := w.forgottenGrants(ctx); err != nil {
		return err
	} else if n > 0 {
		s.GrantsForgotten += n
		fail("%d grants no ledger record lists", n)
	}
	return s.recoverFrom(ctx, w, sc, &res, fail)
}

// die runs the stage with the process dying at p and returns the last
// state write it made; the world is left as the dead process left it,
// with its store and AWS unharmed for the runs after.
func (s *CrashSweep) die(ctx context.Context, w *chaosWorld, sc Scenario, p crashPoint) (state.Write, error) {
	survivor := w.store
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := state.NewCrashing(survivor, p.write, cancel)
	if err != nil {
		return state.Write{}, err
	}
	plan := sim.NewFaultPlan(1)
	if p.call > 0 {
		plan.CrashAfter(p.call, func() {
			c.Kill()
			cancel()
		})
	}
	hook := plan.Hook()
	w.cloud.SetFault(func(ctx context.Context, call sim.Call) error {
		if _, dead := c.Crashed(); dead {
			return context.Canceled // once dead, no call reaches AWS either
		}
		return hook(ctx, call)
	})
	w.store = c
	_, _ = w.run(runCtx, reconcile.ModeRun, sc)
	at, crashed := c.Crashed()
	if !crashed {
		return at, fmt.Errorf("the run never reached its crash point (%d calls, %d writes)", plan.Calls(), c.Writes())
	}
	switch {
	case p.call > 0:
		s.Points.Calls++
	case p.write.Lost:
		s.Points.WritesLost++
		s.Points.ByWrite[at.Op]++
	default:
		s.Points.WritesLanded++
		s.Points.ByWrite[at.Op]++
	}
	w.store = survivor
	w.cloud.SetFault(nil)
	return at, nil
}

// recoverFrom runs at most two clean runs after a crash, a lease left by
// the dead run expiring first, and audits them.
func (s *CrashSweep) recoverFrom(ctx context.Context, w *chaosWorld, sc Scenario, res *ChaosResult, fail func(string, ...any)) error {
	var left int
	runs := 0
	for range 2 {
		w.cloud.Advance(w.cfg.State.LeaseTTL.D())
		if _, err := w.run(ctx, reconcile.ModeRun, sc); err != nil {
			return fmt.Errorf("recovery run: %w", err)
		}
		runs++
		w.cloud.Advance(w.cloud.CopyDuration() + time.Minute)
		if dup := w.audit(res); dup > 0 {
			s.DuplicateCopies += dup
			fail("%d pairs with two copies after recovery run %d", dup, runs)
		}
		plan, err := w.run(ctx, reconcile.ModePlan, sc)
		if err != nil {
			return fmt.Errorf("plan after recovery: %w", err)
		}
		if left = unreconciled(plan.Report); left == 0 {
			break
		}
	}
	s.MaxRecoveryRuns = max(s.MaxRecoveryRuns, runs)
	s.CopiesLost += res.CopiesLost
	if res.CopiesLost > 0 {
		fail("%d good copies lost", res.CopiesLost)
	}
	if left > 0 {
		s.PairsUnreconciled += left
		fail("%d pairs unreconciled after 2 clean runs", left)
	}
	return nil
}

// forgottenGrants counts the permissions on the world's source images
// that no sharing ledger record lists.
func (w *chaosWorld) forgottenGrants(ctx context.Context) (int, error) {
	recs, err := w.store.GrantsOf(ctx, SourceAccount)
	if err != nil {
		return 0, err
	}
	listed := map[string]bool{}
	for _, g := range recs {
		for _, e := range g.Launch {
			listed[g.Key.Image+" launch "+e] = true
		}
		for _, a := range g.Volume {
			listed[g.Key.Image+" volume "+a] = true
		}
	}
	n := 0
	for _, img := range w.images {
		for _, e := range w.cloud.LaunchPermission(SourceAccount, img.Region, img.ID).Entities() {
			if !listed[img.ID+" launch "+e] {
				n++
			}
		}
		for _, snap := range img.SnapshotIDs() {
			for _, a := range w.cloud.SnapshotPermissions(SourceAccount, img.Region, snap) {
				if !listed[img.ID+" volume "+a] {
					n++
				}
			}
		}
	}
	return n, nil
}
