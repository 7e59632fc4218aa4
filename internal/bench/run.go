package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/engineconfig"
	"github.com/amicopier/amicopier/internal/pacing"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// Limits the assertions check (docs/design.md, performance targets).
const (
	MaxNoOpCallsRatio    = 1.0
	MaxCatchUpCallsRatio = 1.05
	MaxNoOpStateWrites   = 2
	MaxNoOpHeapMB        = 256
	MaxNoOpEngineHeapMB  = 64
	MaxNoOpWallRatio     = 1.5
)

// APICalls is the calls a run made.
type APICalls struct {
	Total       int64            `json:"total"`
	ByOperation map[string]int64 `json:"by_operation"`
}

// Outcome is what a scenario had to do and what its run did and cost,
// in process (Result) or over the wire (WireResult).
type Outcome struct {
	Scenario string `json:"scenario"`
	Kind     Kind   `json:"kind"`
	Accounts int    `json:"accounts"`
	Regions  int    `json:"regions"`
	AMIs     int    `json:"amis"`
	Pairs    int    `json:"pairs"`
	// Missing pairs before the run (from the scenario); of them the run
	// started CopiesStarted and deferred DeferredInFlightCap for the
	// in-flight cap. CopiesExpected is how many the cap allows.
	Missing             int `json:"missing"`
	CopiesStarted       int `json:"copies_started"`
	CopiesExpected      int `json:"copies_expected"`
	DeferredInFlightCap int `json:"deferred_in_flight_cap"`
	DeferredOther       int `json:"deferred_other"`

	APICalls        APICalls   `json:"api_calls"`
	LowerBoundCalls int        `json:"lower_bound_calls"`
	LowerBound      LowerBound `json:"lower_bound"`
	CallsRatio      float64    `json:"calls_ratio"`
	OverheadCalls   int64      `json:"overhead_calls"`
	WallSeconds     float64    `json:"wall_seconds"`
	FloorSeconds    float64    `json:"floor_seconds"`
	Floor           Floor      `json:"floor"`
	WallRatio       float64    `json:"wall_ratio"`
}

// checkCosts applies the assertions on calls, wall time and copies that
// hold in process and over the wire alike.
func (o *Outcome) checkCosts(fail func(format string, args ...any)) {
	switch o.Kind {
	case NoOp:
		if o.CallsRatio > MaxNoOpCallsRatio {
			fail("calls_ratio %.4f > %.2f (the bound already counts every page)", o.CallsRatio, MaxNoOpCallsRatio)
		}
		if o.WallRatio > MaxNoOpWallRatio {
			fail("wall_ratio %.3f > %.2f", o.WallRatio, MaxNoOpWallRatio)
		}
	case CatchUp:
		if o.CallsRatio > MaxCatchUpCallsRatio {
			fail("calls_ratio %.4f > %.2f", o.CallsRatio, MaxCatchUpCallsRatio)
		}
		if o.CopiesStarted+o.DeferredInFlightCap != o.Missing {
			fail("copies started (%d) + deferred for the in-flight cap (%d) = %d, want every missing pair (%d)",
				o.CopiesStarted, o.DeferredInFlightCap, o.CopiesStarted+o.DeferredInFlightCap, o.Missing)
		}
		if o.CopiesStarted != o.CopiesExpected {
			fail("copies started %d, want %d (what the in-flight cap allows)", o.CopiesStarted, o.CopiesExpected)
		}
		if o.DeferredOther != 0 {
			fail("%d pairs deferred for another reason than the in-flight cap", o.DeferredOther)
		}
	}
}

// Result is one scenario's measurements, printed as one JSON line.
type Result struct {
	Outcome
	// CPUSeconds is the CPU time the process used during the timed run
	// (simulator included), GCCPUSeconds the collector's part of it; on a
	// machine with few cores they explain a wall time above the floor.
	CPUSeconds   float64 `json:"cpu_seconds"`
	GCCPUSeconds float64 `json:"gc_cpu_seconds"`
	LatencyMS    float64 `json:"latency_ms"`
	Concurrency  int     `json:"concurrency"`
	InFlightCap  int     `json:"in_flight_cap"`
	BuildSeconds float64 `json:"build_seconds"`
	// EngineHeapMB is the engine's own heap at its largest quiet sample
	// (memory.go): the live heap, every call held, minus the simulator's
	// (its world and what it grew by in the run, SimGrowthMB). EngineHeapAt
	// names the sample, EngineHeapSamples counts them; in a catch-up,
	// EngineHeapPerMissingKB divides it by the missing pairs.
	EngineHeapMB           float64 `json:"engine_heap_mb"`
	EngineHeapAt           string  `json:"engine_heap_at"`
	EngineHeapSamples      int     `json:"engine_heap_samples"`
	EngineHeapPerMissingKB float64 `json:"engine_heap_per_missing_kb,omitempty"`
	SimGrowthMB            float64 `json:"sim_growth_mb"`
	// PeakHeapMB is the older, coarser measure: heap objects (live or
	// not yet collected) minus the simulator's settled heap, sampled every
	// 2 ms in the memory run (GOGC=10); it includes garbage the collector
	// allows for the simulator's heap too. PeakHeapDefaultGCMB is the
	// same in the timed run, at the default GOGC, garbage allowance for
	// the simulator's heap included; PeakHeapTotalMB is the whole heap
	// there, simulator included; SimHeapMB the simulator alone.
	PeakHeapMB          float64 `json:"peak_heap_mb"`
	PeakHeapDefaultGCMB float64 `json:"peak_heap_default_gc_mb"`
	PeakHeapTotalMB     float64 `json:"peak_heap_total_mb"`
	SimHeapMB           float64 `json:"sim_heap_mb"`
	// PeakLiveHeapMB is the engine's share of the live heap, as measured
	// at the end of each collection of the GOGC=10 run (the mark phase's
	// own allocations make PeakHeapMB higher).
	PeakLiveHeapMB   float64 `json:"peak_live_heap_mb"`
	StateWrites      int64   `json:"state_writes"`
	StateWritesByKey struct {
		Pairs  int64 `json:"pairs"`
		Runs   int64 `json:"runs"`
		Lease  int64 `json:"lease"`
		Grants int64 `json:"grants"`
	} `json:"state_writes_by_kind"`
	// PhaseStarts says when each phase of the run began, in seconds
	// from its start (discovery and the organisation listing come first).
	PhaseStarts map[string]float64 `json:"phase_starts_seconds"`
	// MaxShareEntities is the most entities (accounts, OUs, the
	// organisation) any source AMI's launch permission held during the
	// run, as the simulator saw it (at most cloud.SharingQuota);
	// StaleGrantsAfter counts, after the run, the grants of launch or
	// create-volume permission that reach an account that is no target
	// (an OU grant counts once per such account under it).
	MaxShareEntities       int            `json:"max_share_entities"`
	StaleGrantsAfter       int            `json:"stale_grants_after"`
	ThrottleErrorsSurfaced int64          `json:"throttle_errors_surfaced"`
	ThrottledCalls         int64          `json:"throttled_calls"`
	Status                 string         `json:"status"`
	Counts                 map[string]int `json:"counts"`
	Errors                 []string       `json:"errors,omitempty"`
	Pass                   bool           `json:"pass"`
	Reasons                []string       `json:"reasons,omitempty"`
	// NaivePeer is the naive peer's run of the same organisation
	// (Scenario.Naive; naive.go), nil otherwise.
	*NaivePeer
}

// Options tune a benchmark run.
type Options struct {
	// CPUProfile receives a CPU profile of the engine's run (not of
	// building the scenario) when set.
	CPUProfile io.Writer
	// HeapProfile receives the heap profile of the memory run's largest
	// quiet sample (memory.go), when set.
	HeapProfile io.Writer
}

// Run builds the scenario and runs the engine on it (ModeRun) twice:
// once to measure memory, once to measure everything else.
//
// Memory is measured apart (memory.go): the memory run holds the
// simulated calls now and then to read an exact live heap, which would
// slow the timed run. It also sets GOGC=10 for peak_heap_mb, the older,
// coarser measure: heap objects sampled every 2 ms minus the simulator's
// settled heap, garbage included. A no-op run changes nothing, so both
// runs share one world, the timed run first (the simulator's per-account
// buckets and counters it creates are then part of the world the memory
// run subtracts); any other scenario is built again for the timed run.
func Run(ctx context.Context, sc Scenario, o Options) (*Result, error) {
	if err := inProcess(sc); err != nil {
		return nil, err
	}
	built := time.Now()
	w, err := build(ctx, sc)
	if err != nil {
		return nil, err
	}
	exp := w.expect()
	buildSeconds := time.Since(built).Seconds()

	p, mem, after, err := runTwice(ctx, sc, w, o)
	if err != nil {
		return nil, err
	}
	res := p.res

	out := &Result{
		Outcome: Outcome{
			Scenario: sc.Name, Kind: sc.Kind, Accounts: sc.Accounts, Regions: len(sc.Regions), AMIs: sc.AMIs(),
			Pairs: exp.Pairs, Missing: exp.Missing, CopiesExpected: exp.Startable,
			CopiesStarted:       res.Summary.Actions["copy"],
			DeferredInFlightCap: res.Summary.Actions["deferred_in_flight_cap"],
			LowerBoundCalls:     exp.Bound.Total, LowerBound: exp.Bound,
			WallSeconds: p.wall, FloorSeconds: exp.Floor.Seconds, Floor: exp.Floor,
		},
		CPUSeconds: p.cpu, GCCPUSeconds: p.gcCPU,
		LatencyMS: float64(sc.Latency) / float64(time.Millisecond), Concurrency: sc.Concurrency, InFlightCap: sc.InFlightCap,
		BuildSeconds:           buildSeconds,
		EngineHeapMB:           mem.engineMB,
		EngineHeapAt:           mem.engineAt,
		EngineHeapSamples:      mem.samples,
		SimGrowthMB:            mem.simGrowthMB,
		PeakHeapMB:             mb(mem.peak.objects - mem.base.objects),
		PeakHeapDefaultGCMB:    mb(p.peak.objects - p.base.objects),
		PeakLiveHeapMB:         mb(max(mem.peak.live, mem.base.live) - mem.base.live),
		PeakHeapTotalMB:        mb(p.peak.objects),
		SimHeapMB:              mb(p.base.objects),
		ThrottleErrorsSurfaced: res.Summary.ThrottleErrors,
		ThrottledCalls:         after.throttled,
		Status:                 res.Summary.Status,
		Counts:                 map[string]int{},
		Errors:                 firstN(res.Summary.Errors, 5),
		PhaseStarts:            p.phases.starts,
	}
	if exp.Missing > 0 {
		out.EngineHeapPerMissingKB = mem.engineMB * 1024 / float64(exp.Missing)
	}
	out.DeferredOther = res.Summary.Actions["deferred"] - out.DeferredInFlightCap
	out.MaxShareEntities = after.maxShare
	out.StaleGrantsAfter = after.stale
	out.tally(p, exp)
	out.check(res)
	if err := out.addNaive(ctx, sc, w); err != nil {
		return nil, err
	}
	return out, nil
}

// runTwice runs the engine on w twice (see Run): timed, and for memory.
// It returns the timed pass, what the simulator saw of it, and the memory
// pass.
func runTwice(ctx context.Context, sc Scenario, w *world, o Options) (p, mem *pass, after worldAfter, err error) {
	timed := func() error {
		w.cloud.ResetCounters()
		var err error
		if p, err = runOnce(ctx, w, runSpec{gcPercent: -1, cpuProfile: o.CPUProfile}); err != nil {
			return err
		}
		after = w.after()
		return nil
	}
	if sc.Kind == NoOp {
		if err := timed(); err != nil {
			return nil, nil, after, err
		}
	}
	if mem, err = runOnce(ctx, w, runSpec{gcPercent: 10, quiet: true, heapProfile: o.HeapProfile}); err != nil {
		return nil, nil, after, err
	}
	if sc.Kind != NoOp {
		if w, err = build(ctx, sc); err != nil {
			return nil, nil, after, err
		}
		if err := timed(); err != nil {
			return nil, nil, after, err
		}
	}
	return p, mem, after, nil
}

// tally fills in the timed pass's calls, ratios, state writes and counts.
func (out *Result) tally(p *pass, exp Expect) {
	out.APICalls.ByOperation = p.conn.CallCounts()
	for _, n := range out.APICalls.ByOperation {
		out.APICalls.Total += n
	}
	out.OverheadCalls = out.APICalls.Total - int64(exp.Bound.Total)
	out.CallsRatio = ratio(float64(out.APICalls.Total), float64(exp.Bound.Total))
	out.WallRatio = ratio(p.wall, exp.Floor.Seconds)
	writes := p.store.Writes()
	out.StateWrites = writes.Total()
	out.StateWritesByKey.Pairs, out.StateWritesByKey.Runs, out.StateWritesByKey.Lease = writes.PairWrites, writes.RunWrites, writes.LeaseWrites
	out.StateWritesByKey.Grants = writes.GrantsWrites
	for c, n := range p.res.Report.Counts {
		if n > 0 {
			out.Counts[string(c)] = n
		}
	}
}

// inProcess refuses the scenarios another runner runs.
func inProcess(sc Scenario) error {
	switch {
	case sc.Kind == Chaos:
		return fmt.Errorf("scenario %s is a chaos scenario: run it with RunChaos", sc.Name)
	case sc.Wire:
		return fmt.Errorf("scenario %s is a wire scenario: run it with RunWire", sc.Name)
	case sc.Kind == Sharded:
		return fmt.Errorf("scenario %s is a sharded scenario: run it with RunSharded", sc.Name)
	case sc.Kind == Event:
		return fmt.Errorf("scenario %s is an event scenario: run it with RunEvent", sc.Name)
	}
	return nil
}

// worldAfter is what the simulator saw of the timed run, read right
// after it (a no-op's memory run uses the same world later).
type worldAfter struct {
	throttled int64
	maxShare  int
	stale     int
}

func (w *world) after() worldAfter {
	return worldAfter{throttled: w.cloud.ThrottledCalls(), maxShare: w.cloud.MaxShareEntities(), stale: w.staleGrants()}
}

// pass is one run of the engine and what was measured around it.
type pass struct {
	res        *reconcile.Result
	wall       float64
	cpu, gcCPU float64
	base, peak heap
	store      *state.Counting
	conn       *sdkConnector
	phases     *phaseClock
	// The memory run's quiet samples (memory.go): the engine's heap at
	// the largest, which sample that was, how many were taken, and what
	// the simulator grew by during the run.
	engineMB    float64
	engineAt    string
	samples     int
	simGrowthMB float64
}

// runSpec says how to run the engine once.
type runSpec struct {
	// gcPercent is GOGC for the run; -1 leaves it.
	gcPercent int
	// quiet: the memory run, sampling the live heap at quiet moments.
	quiet                   bool
	cpuProfile, heapProfile io.Writer
}

// runOnce runs the engine once on w, sampling the heap.
func runOnce(ctx context.Context, w *world, spec runSpec) (*pass, error) {
	counting := state.NewCounting(state.NewMemory(state.WithClock(w.cloud.Now)))
	p := &pass{store: counting, phases: &phaseClock{}}
	var store state.Store = counting
	var quiet *quietSampler
	if spec.quiet {
		quiet = newQuietSampler(w.cloud, spec.heapProfile)
		p.phases.quiet = quiet
		store = sampledStore{Counting: counting, sampler: quiet}
	}
	eng, err := newEngine(w, store, 1, p.phases, func(c *sdkConnector) { p.conn = c })
	if err != nil {
		return nil, err
	}
	if spec.gcPercent >= 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(spec.gcPercent))
	}
	if spec.heapProfile != nil {
		// A fine-grained profile of the engine's allocations (the
		// default samples one per 512 KB).
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 4096
	}
	// The simulator is most of the heap: measure it settled, then sample
	// the heap through the run.
	simBefore := settledLive()
	p.base = readHeap()
	sampler := startHeapSampler(2 * time.Millisecond)
	if spec.cpuProfile != nil {
		if err := pprof.StartCPUProfile(spec.cpuProfile); err != nil {
			return nil, err
		}
	}
	if quiet != nil {
		quiet.startPeriodic(ctx)
	}
	cpu0, gc0 := cpuTime()
	start := time.Now()
	p.phases.start = start
	res, err := eng.Run(ctx, reconcile.Request{Mode: reconcile.ModeRun, Trigger: "bench"})
	p.wall = time.Since(start).Seconds()
	cpu1, gc1 := cpuTime()
	p.cpu, p.gcCPU = cpu1-cpu0, gc1-gc0
	if spec.cpuProfile != nil {
		pprof.StopCPUProfile()
	}
	p.peak = sampler.stop()
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", w.sc.Name, err)
	}
	p.res = res
	if quiet != nil {
		quiet.stop()
		// The engine is gone but for its result: drop that too, and
		// what is left beyond the world as it was is the simulator's
		// growth (its copies, buckets and counters).
		p.res, res, eng, p.conn = nil, nil, nil, nil
		growth := uint64(0)
		if after := settledLive(); after > simBefore {
			growth = after - simBefore
		}
		if quiet.peak > simBefore+growth {
			p.engineMB = mb(quiet.peak - simBefore - growth)
		}
		p.engineAt, p.samples, p.simGrowthMB = quiet.peakAt, quiet.samples, mb(growth)
		if err := quiet.writeProfile(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// newEngine builds an engine on w's organisation that keeps its state in
// store. Its connector paces like the SDK adapters, with the same
// client-side buckets (limits.*_rate and *_burst), as one of shards runs
// sharing the source account's buckets; connected receives it (the call
// counter) when the run connects.
func newEngine(w *world, store state.Store, shards int, progress reconcile.Progress, connected func(*sdkConnector)) (*reconcile.Engine, error) {
	settings, err := engineconfig.Settings(w.cfg)
	if err != nil {
		return nil, err
	}
	return reconcile.New(reconcile.Options{
		Settings: settings,
		Connect: func(context.Context, string) (cloud.Connector, error) {
			pace, err := pacing.New(w.cfg.Limits.PaceRates(), SourceAccount, shards)
			if err != nil {
				return nil, err
			}
			c := &sdkConnector{w.cloud.Connector(SourceAccount, sim.WithPacing(pace))}
			connected(c)
			return c, nil
		},
		Store:    store,
		Clock:    w.cloud,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Progress: progress,
	})
}

// check applies the scenario kind's assertions.
func (r *Result) check(res *reconcile.Result) {
	fail := func(format string, args ...any) { r.Reasons = append(r.Reasons, fmt.Sprintf(format, args...)) }
	if r.Status != report.StatusSucceeded {
		fail("status %s, want %s", r.Status, report.StatusSucceeded)
	}
	if r.ThrottleErrorsSurfaced != 0 {
		fail("throttle_errors_surfaced = %d, want 0", r.ThrottleErrorsSurfaced)
	}
	if r.MaxShareEntities > cloud.SharingQuota {
		fail("max_share_entities %d > %d (the AMI sharing quota)", r.MaxShareEntities, cloud.SharingQuota)
	}
	if r.StaleGrantsAfter != 0 {
		fail("stale_grants_after = %d, want 0", r.StaleGrantsAfter)
	}
	r.checkCosts(fail)
	switch r.Kind {
	case NoOp:
		if r.StateWrites > MaxNoOpStateWrites {
			fail("state_writes %d > %d", r.StateWrites, MaxNoOpStateWrites)
		}
		if r.PeakHeapMB >= MaxNoOpHeapMB {
			fail("peak_heap_mb %.1f >= %d", r.PeakHeapMB, MaxNoOpHeapMB)
		}
		if r.EngineHeapMB >= MaxNoOpEngineHeapMB {
			fail("engine_heap_mb %.1f >= %d", r.EngineHeapMB, MaxNoOpEngineHeapMB)
		}
		if got := res.Report.Counts[report.OK]; got != r.Pairs {
			fail("%d pairs ok, want all %d", got, r.Pairs)
		}
		if res.Summary.MutatingCalls != 0 {
			fail("%d mutating calls in a run with nothing to do", res.Summary.MutatingCalls)
		}
	case CatchUp:
		if got := res.Report.Counts[report.Missing]; got != r.Missing {
			fail("the report has %d missing pairs, the scenario %d", got, r.Missing)
		}
	}
	r.Pass = len(r.Reasons) == 0
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("... and %d more", len(s)-n))
}

// sdkConnector hides the simulator connector's extra methods, so the
// engine sees only the Connector port and the call counter.
type sdkConnector struct {
	cloud.Connector
}

// CallCounts implements CallCounter.
func (c *sdkConnector) CallCounts() map[string]int64 {
	return c.Connector.(cloud.CallCounter).CallCounts()
}

// Throttles implements CallCounter.
func (c *sdkConnector) Throttles() (attempts, surfaced int64) {
	return c.Connector.(cloud.CallCounter).Throttles()
}

var _ cloud.CallCounter = (*sdkConnector)(nil)

// heap is a reading of the heap: bytes in heap objects (live and not yet
// collected garbage) and the live heap as of the last GC.
type heap struct{ objects, live uint64 }

var heapMetrics = []string{"/memory/classes/heap/objects:bytes", "/gc/heap/live:bytes"}

// cpuTime reads the CPU time the process's Go code and runtime were busy,
// in total and in the garbage collector (the runtime's estimates: all
// available CPU time minus idle time).
func cpuTime() (busy, gc float64) {
	s := []metrics.Sample{
		{Name: "/cpu/classes/total:cpu-seconds"},
		{Name: "/cpu/classes/idle:cpu-seconds"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
	}
	metrics.Read(s)
	v := make([]float64, len(s))
	for i := range s {
		if s[i].Value.Kind() == metrics.KindFloat64 {
			v[i] = s[i].Value.Float64()
		}
	}
	return v[0] - v[1], v[2]
}

func readHeap() heap {
	s := []metrics.Sample{{Name: heapMetrics[0]}, {Name: heapMetrics[1]}}
	metrics.Read(s)
	var h heap
	if s[0].Value.Kind() == metrics.KindUint64 {
		h.objects = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		h.live = s[1].Value.Uint64()
	}
	return h
}

// heapSampler records the peak of each heap reading while a run lasts.
type heapSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak heap
}

func startHeapSampler(every time.Duration) *heapSampler {
	s := &heapSampler{done: make(chan struct{})}
	s.peak = readHeap()
	s.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				h := readHeap()
				s.peak.objects = max(s.peak.objects, h.objects)
				s.peak.live = max(s.peak.live, h.live)
			}
		}
	})
	return s
}

func (s *heapSampler) stop() heap {
	close(s.done)
	s.wg.Wait()
	h := readHeap()
	s.peak.objects = max(s.peak.objects, h.objects)
	s.peak.live = max(s.peak.live, h.live)
	return s.peak
}

// phaseClock is a reconcile.Progress that notes when each phase starts;
// in the memory run it has the heap sampled when observation is over and
// when the copy phase starts.
type phaseClock struct {
	start  time.Time
	quiet  *quietSampler
	mu     sync.Mutex
	starts map[string]float64
	// phase is the current phase, total its steps and done those done.
	phase       string
	total, done int
}

func (p *phaseClock) Phase(name string, total int) {
	p.mu.Lock()
	if p.starts == nil {
		p.starts = map[string]float64{}
	}
	p.starts[name] = time.Since(p.start).Seconds()
	p.phase, p.total, p.done = name, total, 0
	p.mu.Unlock()
	if name == "copy" && p.quiet != nil {
		p.quiet.sample(context.Background(), "copy phase start")
	}
}

func (p *phaseClock) Step(n int) {
	if p.quiet == nil {
		return
	}
	p.mu.Lock()
	p.done += n
	over := p.phase == "observe" && p.done == p.total
	p.mu.Unlock()
	if over {
		p.quiet.sample(context.Background(), "observation over")
	}
}
