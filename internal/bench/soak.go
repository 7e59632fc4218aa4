package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/amicopier/amicopier/state"
)

// The kill tests: kill -9 of the real binary. The built amicopier runs
// against an organisation served from a process of its own (Serve, with
// copies available as soon as they are accepted) and a DynamoDB table
// (dynalite), and is sent SIGKILL at random moments; each killed run is
// restarted, until a run finishes; then the organisation, the table and
// `amicopier status` are checked (soak_check.go). A round is one
// organisation and one table; rounds follow each other until enough
// kills were sent. The CI-sized test (TestKill9, scripts/test.sh) and
// the soak (scripts/bench.sh soak, hundreds of kills) are the same code.
//
// The lease. A killed run that held the run lease leaves it in the table
// until it expires (state.lease_ttl, at least 30 s by validation), and a
// restarted run finds it held. Waiting out 30 s after most kills would
// make hundreds of kills take hours, so the harness does what the dead
// run's own release would have done: once the process is reaped (so
// surely dead), it releases the lease on its behalf, with the store's
// own conditional ReleaseLease naming the dead holder, read from the
// table and matched with the run id the killed process logged. The
// table then is as it is once the lease has expired, only sooner. The
// real expiry is exercised too: the first lease a kill leaves, and every
// RealLeaseWaitEvery-th after it, is left alone, and the restart (run
// --wait-lease) must wait it out and take it over; it is killed only
// once the lease has expired.

// Soak is the scenario kind of the kill tests.
const Soak Kind = "soak"

// Environment variables of the kill tests.
const (
	// DynamoDBEndpointEnv names the DynamoDB-compatible server's URL
	// (dynalite), as for every DynamoDB test.
	DynamoDBEndpointEnv = "AMICOPIER_DYNAMODB_ENDPOINT"
	// KillSeedEnv, when set, is the seed of the kill moments: the one a
	// failed run logged, to replay it.
	KillSeedEnv = "AMICOPIER_KILL_SEED"
)

// SoakScenario is the organisation the kill tests serve: 160 missing
// pairs in 40 accounts and 2 Regions, all within the in-flight cap, so
// that one uninterrupted run copies them all (in 2 to 4 seconds at 25 ms
// per call, 4 accounts at a time): a random moment falls in observation,
// sharing or the copies.
func SoakScenario() Scenario {
	return Scenario{
		Name: "soak", Kind: Soak, Accounts: 40, OUs: 2, Regions: []string{"eu-west-1", "us-east-1"},
		Images: []ImageSet{
			{Region: "eu-west-1", Count: 3, Snapshots: 1, OU: -1},
			{Region: "us-east-1", Count: 2, Snapshots: 2, OU: 0},
		},
		InFlightCap: 20, Concurrency: 4, Latency: 25 * time.Millisecond, Throttle: true, Kills: 200,
		Doc: "kill -9 of the built binary against the served organisation and DynamoDB (dynalite) at random moments, " +
			"restarts until a run finishes, then the organisation, the table and status checked; hundreds of kills",
	}
}

// SoakOptions say how to run the kill tests.
type SoakOptions struct {
	// Amicopier is the built binary; Server the command that serves a
	// scenario (the benchmark's binary and "serve").
	Amicopier string
	Server    []string
	// DynamoDBEndpoint is the loopback URL of the DynamoDB-compatible
	// server (dynalite).
	DynamoDBEndpoint string
	// Seed draws the kill moments; 0 takes one from the clock. It is
	// logged first, so that a failure can be replayed (the moments are
	// the seed's; what a moment hits depends on the machine's speed).
	Seed uint64
	// Kills is how many SIGKILLs to send at least; 0: the scenario's.
	Kills int
	// KillsPerRound bounds the kills of one round (default 5): after
	// them, a run is left to finish.
	KillsPerRound int
	// RealLeaseWaitEvery: the first lease a kill leaves, and every
	// RealLeaseWaitEvery-th after, is waited out for real (default 25).
	RealLeaseWaitEvery int
	// Dir keeps every round's files (configuration, outputs, logs); a
	// temporary directory, removed afterwards, when empty.
	Dir string
	// Table names each round's table; default amicopier-soak-SEED-ROUND.
	Table func(round int) string
	// Log receives a line per kill, restart and round.
	Log io.Writer
}

// SoakResult is what the kill tests print.
type SoakResult struct {
	Scenario string `json:"scenario"`
	Seed     uint64 `json:"seed"`
	// Kills is the SIGKILLs sent to a running amicopier run; KillsByPhase
	// where the killed run was, as its last log line says (before_lease:
	// observing, waiting for the lease), KillsHoldingLease those that
	// left the run lease behind.
	Kills             int            `json:"kills"`
	KillsByPhase      map[string]int `json:"kills_by_phase"`
	KillsHoldingLease int            `json:"kills_holding_lease"`
	// LeasesReleasedForDead counts leases the harness released for a
	// killed run; RealLeaseWaits the ones a restart waited out, taking
	// them over after LeaseWaitSeconds at most.
	LeasesReleasedForDead int     `json:"leases_released_for_dead_runs"`
	RealLeaseWaits        int     `json:"real_lease_waits"`
	LeaseWaitSeconds      float64 `json:"max_lease_wait_seconds"`
	// Rounds: organisations and tables used; Runs: amicopier runs
	// started, killed or not (Restarts of them after a kill).
	Rounds   int `json:"rounds"`
	Runs     int `json:"runs"`
	Restarts int `json:"restarts"`
	// Pairs checked over all rounds; CopiesMade the copies CopyImage
	// made; DuplicateCopies the pairs that ever had a second copy.
	Pairs           int `json:"pairs"`
	CopiesMade      int `json:"copies_made"`
	DuplicateCopies int `json:"duplicate_copies"`
	// PairsUnreconciledAfterRecovery: pairs without exactly one good
	// copy, or not ok, once a run finished (and the run after it).
	PairsUnreconciledAfterRecovery int `json:"pairs_unreconciled_after_recovery"`
	// LeasesStuck: a lease left in the table once a run finished, or
	// still the dead holder's after its expiry.
	LeasesStuck int `json:"leases_stuck"`
	// CopyingWithoutCopy: records saying copying for a copy EC2 does not
	// have; StatusMismatches: what `amicopier status` says against EC2.
	CopyingWithoutCopy int `json:"copying_without_copy"`
	StatusMismatches   int `json:"status_mismatches"`
	// KillWindowSeconds: kill moments are drawn from 0 to this after a
	// run starts (the length of an uninterrupted run, as last measured).
	KillWindowSeconds float64  `json:"kill_window_seconds"`
	WallSeconds       float64  `json:"wall_seconds"`
	Pass              bool     `json:"pass"`
	Failures          []string `json:"failures,omitempty"`
}

// soakRunTimeout bounds one amicopier process (a real lease wait
// included).
const soakRunTimeout = 3 * time.Minute

// RunSoak runs the kill tests of a Soak scenario.
func RunSoak(ctx context.Context, sc Scenario, o SoakOptions) (*SoakResult, error) {
	if sc.Kind != Soak {
		return nil, fmt.Errorf("scenario %s is not a kill scenario", sc.Name)
	}
	if o.Amicopier == "" || len(o.Server) == 0 {
		return nil, fmt.Errorf("scenario %s: the kill tests need the amicopier binary and the server command", sc.Name)
	}
	if !state.IsLoopbackEndpoint(o.DynamoDBEndpoint) {
		return nil, fmt.Errorf("scenario %s: DynamoDB endpoint %q: want a loopback URL (dynalite: set AMICOPIER_DYNAMODB_ENDPOINT; scripts/bench.sh soak starts it)", sc.Name, o.DynamoDBEndpoint)
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Kills <= 0 {
		o.Kills = sc.Kills
	}
	if o.KillsPerRound <= 0 {
		o.KillsPerRound = 5
	}
	if o.RealLeaseWaitEvery <= 0 {
		o.RealLeaseWaitEvery = 25
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Table == nil {
		o.Table = func(round int) string { return fmt.Sprintf("amicopier-soak-%d-%d", o.Seed, round) }
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "amicopier-soak-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	start := time.Now()
	fmt.Fprintf(o.Log, "kill tests of %s: seed %d (replay: AMICOPIER_KILL_SEED=%d), at least %d kills\n", sc.Name, o.Seed, o.Seed, o.Kills)
	s := &soak{sc: sc, o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5bd1e995)),
		res: &SoakResult{Scenario: sc.Name, Seed: o.Seed, KillsByPhase: map[string]int{}}}

	// Round 0 measures an uninterrupted run (and checks it): the kill
	// moments are drawn over the length of one, kept up to date with the
	// rounds whose first run finished unkilled. A restart has less to do,
	// so the moment drawn for it falls after its end about half the time:
	// it finishes, and the round is checked.
	wall, err := s.round(ctx, 0, 0)
	if err != nil {
		return nil, err
	}
	s.window = max(wall, 500*time.Millisecond)
	fmt.Fprintf(o.Log, "an uninterrupted run took %s: kill moments from 0 to that after each start\n", wall.Round(time.Millisecond))
	for round := 1; s.res.Kills < o.Kills; round++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		kills := s.res.Kills
		wall, err := s.round(ctx, round, o.KillsPerRound)
		if err != nil {
			return nil, err
		}
		if s.res.Kills == kills {
			s.window = max((s.window*3+wall)/4, 500*time.Millisecond)
		}
	}
	s.res.KillWindowSeconds = s.window.Seconds()
	s.res.WallSeconds = time.Since(start).Seconds()
	s.verdict()
	return s.res, nil
}

// soak is the kill tests at work.
type soak struct {
	sc     Scenario
	o      SoakOptions
	rng    *rand.Rand
	window time.Duration
	res    *SoakResult
}

func (s *soak) fail(format string, args ...any) {
	if len(s.res.Failures) < 20 {
		s.res.Failures = append(s.res.Failures, fmt.Sprintf(format, args...))
	}
}

func (s *soak) verdict() {
	r := s.res
	check := func(ok bool, format string, args ...any) {
		if !ok {
			s.fail(format, args...)
		}
	}
	check(r.Kills >= s.o.Kills, "%d kills, want at least %d", r.Kills, s.o.Kills)
	check(r.DuplicateCopies == 0, "duplicate_copies %d", r.DuplicateCopies)
	check(r.PairsUnreconciledAfterRecovery == 0, "pairs_unreconciled_after_recovery %d", r.PairsUnreconciledAfterRecovery)
	check(r.LeasesStuck == 0, "leases_stuck %d", r.LeasesStuck)
	check(r.CopyingWithoutCopy == 0, "copying_without_copy %d", r.CopyingWithoutCopy)
	check(r.StatusMismatches == 0, "status_mismatches %d", r.StatusMismatches)
	r.Pass = len(r.Failures) == 0
}

// round runs one organisation and table: runs killed at random moments
// (at most kills of them), restarted until one finishes, then the
// checks. It returns how long the finishing run took.
func (s *soak) round(ctx context.Context, n, kills int) (time.Duration, error) {
	started := time.Now()
	dir := filepath.Join(s.o.Dir, fmt.Sprintf("round-%03d", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	r, err := s.openRound(ctx, n, dir)
	if err != nil {
		return 0, fmt.Errorf("round %d: %w", n, err)
	}
	defer r.close()
	s.res.Rounds++
	killed := 0
	realWait := false // the restart waits out the dead run's lease
	var wall time.Duration
	for failures := 0; ; {
		// A restart that waits out a dead run's lease for real is left
		// to finish: it shows the takeover, whole.
		killAt := time.Duration(-1)
		if killed < kills && !realWait {
			killAt = time.Duration(s.rng.Float64() * float64(s.window))
		}
		p, err := r.start(ctx)
		if err != nil {
			return 0, err
		}
		s.res.Runs++
		if killed > 0 {
			s.res.Restarts++
		}
		out, err := p.waitOrKill(killAt)
		if err != nil {
			return 0, err
		}
		if realWait {
			s.afterRealWait(ctx, r, p)
			realWait = false
		}
		if out.killed {
			killed++
			s.res.Kills++
			s.res.KillsByPhase[out.phase]++
			if realWait, err = s.afterKill(ctx, r, p, out); err != nil {
				return 0, err
			}
			continue
		}
		if out.exit == 0 && out.finished {
			wall = out.wall
			break
		}
		// A run that ended badly without being killed: say so, and
		// restart it, a few times at most.
		failures++
		s.fail("round %d: run %d exited %d unkilled: %s", n, p.n, out.exit, tail(p.stderr))
		if failures >= 3 {
			return 0, fmt.Errorf("round %d: %d runs failed without being killed; last: %s", n, failures, tail(p.stderr))
		}
	}
	checking := time.Now()
	if err := s.check(ctx, r); err != nil {
		return 0, fmt.Errorf("round %d: check: %w", n, err)
	}
	fmt.Fprintf(s.o.Log, "round %d: %d kills, then run %d finished in %s; checked in %s (round %s)\n", n, killed, r.runs-1,
		wall.Round(time.Millisecond), time.Since(checking).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	return wall, nil
}

// afterKill looks at the lease the killed run p left, if any: the first
// one, and every RealLeaseWaitEvery-th after, stays for the restart to
// wait out (realWait); the others are released for the dead run.
func (s *soak) afterKill(ctx context.Context, r *soakRound, p *soakProcess, out soakOutcome) (realWait bool, err error) {
	l, held, err := r.store.Lease(ctx, SourceAccount)
	if err != nil {
		return false, err
	}
	what := "no lease"
	if held {
		what = fmt.Sprintf("lease of %s until %s", l.Holder, l.Expires.Format("15:04:05.000"))
		if out.runID == "" || l.Holder != out.runID {
			// Only runs of this round write the table, one at a time,
			// and each that finished released its lease: a lease of
			// anyone else is a lease nobody will release.
			s.fail("round %d: run %d (run id %q) was killed, and the lease is held by %s", r.n, p.n, out.runID, l.Holder)
		}
		s.res.KillsHoldingLease++
		if (s.res.KillsHoldingLease-1)%s.o.RealLeaseWaitEvery == 0 {
			r.deadLease = l
			what += ": left for the restart to wait out"
			realWait = true
		} else {
			if err := r.store.ReleaseLease(ctx, l); err != nil {
				return false, fmt.Errorf("release the lease of killed run %s: %w", l.Holder, err)
			}
			s.res.LeasesReleasedForDead++
			what += ": released for the dead run"
		}
	}
	fmt.Fprintf(s.o.Log, "kill %d (round %d, run %d): SIGKILL %s after start, in %s; %s\n",
		s.res.Kills, r.n, p.n, out.wall.Round(time.Millisecond), out.phase, what)
	return realWait, nil
}

// afterRealWait checks the run started after a kill that left its lease:
// it must not have given up on the lease (run --wait-lease outlasts it),
// and, if it needed the lease, it took it over once expired.
func (s *soak) afterRealWait(ctx context.Context, r *soakRound, p *soakProcess) {
	s.res.RealLeaseWaits++
	dead := r.deadLease
	r.deadLease = state.Lease{}
	if p.leaseHeld() {
		s.res.LeasesStuck++
		s.fail("round %d: run %d gave up on the lease of dead run %s, which expired at %s", r.n, p.n, dead.Holder, dead.Expires)
		return
	}
	l, held, err := r.store.Lease(ctx, SourceAccount)
	if err != nil {
		s.fail("round %d: read the lease after run %d: %v", r.n, p.n, err)
		return
	}
	waited, ok := p.leaseWait()
	switch {
	case ok:
		s.res.LeaseWaitSeconds = max(s.res.LeaseWaitSeconds, waited.Seconds())
		fmt.Fprintf(s.o.Log, "run %d waited %s for the lease of dead run %s, then took it over\n", p.n, waited.Round(time.Millisecond), dead.Holder)
	case held && l.Holder == dead.Holder:
		// It had nothing to change, so it needed no lease: the dead
		// run's stays until a run needs it (or DynamoDB's time to
		// live removes it).
		fmt.Fprintf(s.o.Log, "run %d needed no lease; the dead run's, expired at %s, stays\n", p.n, dead.Expires.Format("15:04:05.000"))
	default:
		s.fail("round %d: run %d never said it waited for the lease of %s, yet the lease is gone", r.n, p.n, dead.Holder)
	}
}
