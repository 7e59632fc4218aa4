package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/engineconfig"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// Chaos is the scenario kind of the reliability targets (docs/design.md):
// runs under injected faults,
// then clean runs, then the accounting of what was lost or duplicated.
const Chaos Kind = "chaos"

// ChaosScenario is the chaos benchmark: an organisation reconciled by
// three runs under every kind of fault at once, then by at most two
// clean runs.
func ChaosScenario() Scenario {
	return Scenario{
		Name: "chaos", Kind: Chaos, Accounts: 120, OUs: 4, Regions: []string{"eu-west-1", "us-east-1"},
		Images:      []ImageSet{{Region: "eu-west-1", Count: 6, Snapshots: 2, OU: -1}, {Region: "us-east-1", Count: 4, Snapshots: 1, OU: 1}},
		InFlightCap: 20, Concurrency: 16,
		Doc: "3 runs under 30% throttling, transient and permanent CopyImage errors, denied roles, a full copy quota, " +
			"keys that fail copies later, a source deregistered mid-run and a run killed half-way, new copies unlisted for 3 minutes " +
			"and deregistered images listed for an hour, a state store that throttles, times out, loses conditions and loses its table; " +
			"then at most 2 clean runs; and a crash sweep: a small organisation killed before every call and at every state write",
	}
}

// ChaosResult is what the chaos scenario prints.
type ChaosResult struct {
	Scenario string `json:"scenario"`
	Accounts int    `json:"accounts"`
	Regions  int    `json:"regions"`
	AMIs     int    `json:"amis"`
	// Pairs is the pairs of the final report: the wanted ones (the
	// deregistered source's are not) plus any orphaned copy of it.
	Pairs          int   `json:"pairs"`
	FaultsInjected int64 `json:"faults_injected"`
	// StateFaultsInjected counts the state store's faults (state.Faulty)
	// in the chaos runs, by kind in StateFaults.
	StateFaultsInjected int64             `json:"state_faults_injected"`
	StateFaults         state.FaultCounts `json:"state_faults"`
	// CrashPointsCovered counts the crash sweep's crash points (calls
	// plus state writes, each write landed and lost), by kind in
	// CrashPoints; CrashSweep is what it found.
	CrashPointsCovered int         `json:"crash_points_covered"`
	CrashPoints        CrashPoints `json:"crash_points"`
	CrashSweep         *CrashSweep `json:"crash_sweep"`
	// ChaosRuns and RecoveryRuns count the runs of each phase.
	ChaosRuns    int `json:"chaos_runs"`
	RecoveryRuns int `json:"recovery_runs"`
	// CopiesLost counts good copies that existed after some run and were
	// gone later (amicopier never deletes a good copy).
	CopiesLost int `json:"copies_lost"`
	// DuplicateCopies counts pairs that ever held more than one live copy.
	DuplicateCopies int `json:"duplicate_copies"`
	// PairsUnreconciledAfterRecovery counts wanted pairs not ok after the
	// clean runs.
	PairsUnreconciledAfterRecovery int `json:"pairs_unreconciled_after_recovery"`
	// UnreachableReported counts unreachable pairs the chaos runs reported.
	UnreachableReported int   `json:"unreachable_reported"`
	ThrottledCalls      int64 `json:"throttled_calls"`
	// RunErrors counts the errors the chaos runs reported (partial runs);
	// RunsFailed the chaos runs that failed outright (the state store
	// refused their first read, their table was gone), RunFailures the
	// first of their errors.
	RunErrors   int                     `json:"run_errors"`
	RunsFailed  int                     `json:"runs_failed"`
	RunFailures []string                `json:"run_failures,omitempty"`
	FinalCounts map[report.Category]int `json:"final_counts"`
	WallSeconds float64                 `json:"wall_seconds"`
	Pass        bool                    `json:"pass"`
	Failures    []string                `json:"failures,omitempty"`
}

// chaosWorld is the chaos scenario's organisation and the engine's wiring.
type chaosWorld struct {
	cloud *sim.Cloud
	cfg   *config.Config
	store state.Store
	// faulty is the store's faults in the chaos runs (nil: none); clean
	// is the store without them, for the recovery.
	faulty   *state.Faulty
	clean    state.Store
	accounts []string
	images   []cloud.Image
	goodSeen map[string]string // copy id -> account/region, good after a run
}

// RunChaos runs the chaos scenario.
func RunChaos(ctx context.Context, sc Scenario) (*ChaosResult, error) {
	start := time.Now()
	w, err := buildChaos(sc)
	if err != nil {
		return nil, err
	}
	if err := w.withStateFaults(); err != nil {
		return nil, err
	}
	res := &ChaosResult{Scenario: sc.Name, Accounts: sc.Accounts, Regions: len(sc.Regions), AMIs: sc.AMIs()}
	plan, keys, err := w.awsFaults()
	if err != nil {
		return nil, err
	}
	w.chaosRuns(ctx, sc, plan, keys, res)
	res.FaultsInjected = plan.Injected() + int64(len(keys))
	res.StateFaults = w.faulty.Injected()
	res.StateFaultsInjected = res.StateFaults.Total()
	final, err := w.cleanRuns(ctx, sc, res)
	if err != nil {
		return nil, err
	}
	sweep, err := RunCrashSweep(ctx)
	if err != nil {
		return nil, err
	}
	res.CrashSweep, res.CrashPoints, res.CrashPointsCovered = sweep, sweep.Points, sweep.Points.Total()
	res.CopiesLost += sweep.CopiesLost
	res.DuplicateCopies += sweep.DuplicateCopies
	res.PairsUnreconciledAfterRecovery += sweep.PairsUnreconciled
	res.WallSeconds = time.Since(start).Seconds()
	res.judge(sweep, final)
	return res, nil
}

// awsFaults sets the chaos runs' AWS faults and returns their plan and
// the keys disabled. Denied roles and the full quota are lifted for the
// recovery; keys that fail copies are re-enabled after the first run.
func (w *chaosWorld) awsFaults() (*sim.FaultPlan, []string, error) {
	denied := []string{w.accounts[3], w.accounts[40]}
	quota := w.accounts[7]
	plan := sim.NewFaultPlan(2026).
		Add(sim.FaultRule{Op: "AssumeRole", Account: denied[0], Code: "AccessDenied", Message: "not authorized to perform sts:AssumeRole"}).
		Add(sim.FaultRule{Op: "DescribeImages", Account: denied[1], Code: "UnauthorizedOperation", Message: "not authorized"}).
		Add(sim.FaultRule{Op: "CopyImage", Account: quota, Code: "ResourceLimitExceeded", Message: "too many copies in progress"}).
		Add(sim.FaultRule{Op: "CopyImage", Rate: 0.05, Code: "InternalError", Message: "internal error"}).
		Add(sim.FaultRule{Op: "CopyImage", Times: 3, Code: "InvalidAMIName.Duplicate", Message: "name in use"}).
		Add(sim.FaultRule{Op: "ModifySnapshotAttribute", Rate: 0.2, Code: "ServiceUnavailable", Message: "try again"}).
		Add(sim.FaultRule{Op: "CopyImage", Resource: w.images[len(w.images)-1].ID, Times: 1, Before: func() {
			// The source vanishes between the observation and the copy.
			// (Through the API, so it may be throttled too: insist.)
			gone := w.images[len(w.images)-1]
			for range 20 {
				if _, err := w.cloud.Client(SourceAccount, gone.Region).DeregisterImage(context.Background(), gone.ID, false); err == nil {
					break
				}
			}
		}}).
		Throttle(0.30)
	w.cloud.SetFault(plan.Hook())
	var keys []string
	for _, a := range w.accounts[10:13] {
		k, ok := w.cloud.ResolveKey(a, "eu-west-1", "alias/amicopier")
		if !ok {
			return nil, nil, fmt.Errorf("chaos: no key in %s", a)
		}
		keys = append(keys, k.ARN)
		w.cloud.SetKeyEnabled(k.ARN, false)
	}
	return plan, keys, nil
}

// chaosRuns runs the three runs under the faults, the second killed
// half-way through its calls, and audits after each.
func (w *chaosWorld) chaosRuns(ctx context.Context, sc Scenario, plan *sim.FaultPlan, keys []string, res *ChaosResult) {
	for i := range 3 {
		runCtx, cancel := context.WithCancel(ctx)
		if i == 1 {
			plan.CrashAfter(plan.Calls()+250, cancel)
		}
		out, err := w.run(runCtx, reconcile.ModeRun, sc)
		cancel()
		if i == 1 {
			plan.CrashAfter(0, nil)
		}
		res.ChaosRuns++

		if err != nil && runCtx.Err() == nil {
			if _, held := reconcile.LeaseHeld(err); !held {
				// Under a failing state store a run may fail outright,
				// as it would against DynamoDB: what counts is what the
				// next runs make of it.
				res.RunsFailed++
				if len(res.RunFailures) < 5 {
					res.RunFailures = append(res.RunFailures, fmt.Sprintf("run %d: %v", i+1, err))
				}
			}
		}
		// A table deleted mid-run comes back (a point-in-time restore)
		// for the next run.
		w.faulty.RestoreTable()
		if out != nil {
			res.UnreachableReported += out.Report.Counts[report.Unreachable]
			res.ThrottledCalls += out.Summary.ThrottledCalls
			res.RunErrors += len(out.Summary.Errors)
		}
		if i == 0 {
			for _, k := range keys {
				w.cloud.SetKeyEnabled(k, true)
			}
		}
		w.cloud.Advance(w.cloud.CopyDuration() + w.cfg.State.LeaseTTL.D())
		res.DuplicateCopies += w.audit(res)
	}
}

// cleanRuns lifts the faults and runs at most two clean runs, a plan after
// each; it returns the last plan's report.
func (w *chaosWorld) cleanRuns(ctx context.Context, sc Scenario, res *ChaosResult) (*report.Report, error) {
	w.cloud.SetFault(nil)
	w.store = w.clean
	var final *report.Report
	for range 2 {
		if _, err := w.run(ctx, reconcile.ModeRun, sc); err != nil {
			return nil, fmt.Errorf("recovery run: %w", err)
		}
		res.RecoveryRuns++
		w.cloud.Advance(w.cloud.CopyDuration() + time.Minute)
		res.DuplicateCopies += w.audit(res)
		out, err := w.run(ctx, reconcile.ModePlan, sc)
		if err != nil {
			return nil, fmt.Errorf("plan after recovery: %w", err)
		}
		final = out.Report
		if unreconciled(final) == 0 {
			break
		}
	}
	res.Pairs = final.Pairs
	res.FinalCounts = final.Counts
	res.PairsUnreconciledAfterRecovery = unreconciled(final)
	return final, nil
}

// judge notes what the scenario must show and sets Pass.
func (res *ChaosResult) judge(sweep *CrashSweep, final *report.Report) {
	check := func(ok bool, format string, args ...any) {
		if !ok {
			res.Failures = append(res.Failures, fmt.Sprintf(format, args...))
		}
	}
	check(res.FaultsInjected > 0, "no fault was injected")
	check(res.CopiesLost == 0, "%d good copies were lost", res.CopiesLost)
	check(res.DuplicateCopies == 0, "%d pairs held a second copy", res.DuplicateCopies)
	check(res.PairsUnreconciledAfterRecovery == 0, "%d pairs unreconciled after the clean runs: %v", res.PairsUnreconciledAfterRecovery, final.Counts)
	check(res.UnreachableReported > 0, "the denied accounts were not reported unreachable")
	check(res.StateFaultsInjected > 0, "no state store fault was injected")
	check(res.CrashPointsCovered > 0, "the crash sweep covered no crash point")
	check(sweep.GrantsForgotten == 0, "%d grants after a crash that no ledger record lists", sweep.GrantsForgotten)
	check(sweep.MaxRecoveryRuns <= 2, "a crash point needed %d clean runs", sweep.MaxRecoveryRuns)
	for _, f := range sweep.Failures {
		check(false, "crash sweep: %s", f)
	}
	res.Pass = len(res.Failures) == 0
}

// unreconciled counts the wanted pairs that are not ok. Orphaned copies
// (a copy of the source deregistered mid-run can be started before it
// vanishes, by a concurrent worker) and rejected targets are not wanted
// pairs: they are reported, as they should be.
func unreconciled(r *report.Report) int {
	return r.Drift() - r.Counts[report.Orphaned] - r.Counts[report.RejectedTarget]
}

func buildChaos(sc Scenario) (*chaosWorld, error) {
	// EC2's eventual consistency on top: new copies unlisted for a while,
	// deregistered images listed for a while.
	c := sim.New(sim.WithListingDelay(3*time.Minute), sim.WithDeregisteredListing(time.Hour))
	w := &chaosWorld{cloud: c, goodSeen: map[string]string{}}
	if err := c.AddAccount(SourceAccount, "golden-images", "", cloud.AccountActive); err != nil {
		return nil, err
	}
	var ous []string
	for o := range sc.OUs {
		ous = append(ous, c.AddOU("", fmt.Sprintf("workloads-%d", o)))
	}
	for i := range sc.Accounts {
		id := accountID(i)
		if err := c.AddAccount(id, "acct-"+id[len(id)-4:], ous[i%len(ous)], cloud.AccountActive); err != nil {
			return nil, err
		}
		for _, r := range sc.Regions {
			c.AddKey(id, r, "amicopier")
		}
		w.accounts = append(w.accounts, id)
	}
	for _, set := range sc.Images {
		target := "*"
		if set.OU >= 0 {
			target = ous[set.OU]
		}
		for n := range set.Count {
			devs := make([]sim.DeviceSpec, set.Snapshots)
			for d := range devs {
				devs[d] = sim.DeviceSpec{Size: 8}
			}
			w.images = append(w.images, c.AddImage(SourceAccount, set.Region, sim.ImageSpec{
				Name: fmt.Sprintf("golden-%s-%d", set.Region, n), Devices: devs,
				Tags: map[string]string{"amicopier:targets": target, "Recipe": fmt.Sprintf("golden-%d", n)},
			}))
		}
	}
	cfg := config.Default()
	cfg.Source.AccountID = SourceAccount
	cfg.Source.Regions = sc.Regions
	cfg.Targets.Regions = sc.Regions
	cfg.Encryption.KMSKey = "alias/amicopier"
	cfg.State.Backend = config.BackendMemory
	cfg.Limits.Concurrency = sc.Concurrency
	cfg.Limits.InFlightCopies = sc.InFlightCap
	cfg.Limits.RetryBackoff = config.Duration(5 * time.Minute)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w.cfg = cfg
	w.clean = state.NewMemory(state.WithClock(c.Now))
	w.store = w.clean
	return w, nil
}

func (w *chaosWorld) run(ctx context.Context, mode reconcile.Mode, sc Scenario) (*reconcile.Result, error) {
	settings, err := engineconfig.Settings(w.cfg)
	if err != nil {
		return nil, err
	}
	e, err := reconcile.New(reconcile.Options{
		Settings: settings,
		Connect: func(context.Context, string) (cloud.Connector, error) {
			return w.cloud.Connector(SourceAccount), nil
		},
		Store:  w.store,
		Clock:  w.cloud,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, err
	}
	return e.Run(ctx, reconcile.Request{Mode: mode, Trigger: "bench-" + sc.Name})
}

// audit counts pairs holding more than one live copy, and good copies
// that vanished since an earlier audit (into res.CopiesLost).
func (w *chaosWorld) audit(res *ChaosResult) (duplicates int) {
	live := map[string]bool{}
	for _, a := range w.accounts {
		for _, r := range w.cfg.Source.Regions {
			perSource := map[string]int{}
			for _, img := range w.cloud.Images(a, r) {
				from := img.Tags[reconcile.TagCopiedFrom]
				if from == "" {
					continue
				}
				live[img.ID] = true
				if img.State != cloud.ImageFailed {
					perSource[from]++
				}
				if img.State == cloud.ImageAvailable {
					w.goodSeen[img.ID] = a + "/" + r
				}
			}
			for _, n := range perSource {
				if n > 1 {
					duplicates++
				}
			}
		}
	}
	for id := range w.goodSeen {
		if !live[id] {
			res.CopiesLost++
			delete(w.goodSeen, id)
		}
	}
	return duplicates
}
