package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// soakLeaseTTL is the run lease's lifetime in the kill tests: the
// shortest state.lease_ttl validation accepts, so that a real wait for
// a dead run's lease takes at most that.
const soakLeaseTTL = 30 * time.Second

// soakWaitLease is run's --wait-lease in the kill tests: longer than a
// lease lives.
const soakWaitLease = 2 * time.Minute

// soakRound is one organisation (its server process) and one table.
type soakRound struct {
	n       int
	dir     string
	bin     string
	cfgPath string
	srv     *server
	insp    *InspectClient
	store   *state.DynamoDB
	// runs counts the amicopier runs started; deadLease is a killed
	// run's lease left for the next run to wait out.
	runs      int
	deadLease state.Lease
}

func (s *soak) openRound(ctx context.Context, n int, dir string) (*soakRound, error) {
	wire := WireOptions{Server: append(append([]string(nil), s.o.Server...), "-copies-complete"), ServerStart: time.Minute}
	srv, err := startServer(ctx, s.sc, wire, dir)
	if err != nil {
		return nil, err
	}
	r := &soakRound{n: n, dir: dir, bin: s.o.Amicopier, srv: srv, insp: NewInspectClient(srv.url), cfgPath: filepath.Join(dir, "config.yaml")}
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	opts := state.DynamoDBOptions{Table: s.o.Table(n), Region: "us-east-1", Endpoint: s.o.DynamoDBEndpoint}
	if err := writeSoakConfig(r.cfgPath, s.sc, srv.url, opts); err != nil {
		return nil, err
	}
	// The table, as a user creates it.
	if out, err := r.command(ctx, "state", "init", "--config", r.cfgPath); err != nil {
		return nil, fmt.Errorf("amicopier state init: %w: %s", err, out)
	}
	if r.store, err = state.OpenDynamoDB(ctx, opts); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

func (r *soakRound) close() {
	if r.store != nil {
		_ = r.store.Close()
	}
	r.srv.stop()
}

// writeSoakConfig writes the configuration of the kill tests' runs: the
// scenario's, the served endpoints, the DynamoDB table, the shortest
// lease.
func writeSoakConfig(path string, sc Scenario, url string, table state.DynamoDBOptions) error {
	cfg, err := scenarioConfig(sc)
	if err != nil {
		return err
	}
	cfg.AWS.Region = sc.Regions[0]
	cfg.AWS.Endpoints.EC2, cfg.AWS.Endpoints.Organizations, cfg.AWS.Endpoints.STS = url, url, url
	cfg.State.Backend = config.BackendDynamoDB
	cfg.State.Table, cfg.State.Region, cfg.State.Endpoint = table.Table, table.Region, table.Endpoint
	cfg.State.LeaseTTL = config.Duration(soakLeaseTTL)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("scenario %s: config: %w", sc.Name, err)
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	head := "# amicopier configuration of a kill test round (internal/bench/soak_round.go)\n"
	return os.WriteFile(path, append([]byte(head), b...), 0o600)
}

// command runs amicopier to completion and returns its output.
func (r *soakRound) command(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, soakRunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env, cmd.Dir = wireEnv(r.dir, ""), r.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// soakProcess is one `amicopier run` of a round.
type soakProcess struct {
	n              int
	cmd            *exec.Cmd
	stdout, stderr string
	started        time.Time
	done           chan struct{}
	waitErr        error
}

// start starts the round's next run, as a user would: JSON output and
// logs, waiting for a lease another run holds.
func (r *soakRound) start(ctx context.Context) (*soakProcess, error) {
	r.runs++
	p := &soakProcess{n: r.runs, done: make(chan struct{}),
		stdout: filepath.Join(r.dir, fmt.Sprintf("run-%02d.json", r.runs)),
		stderr: filepath.Join(r.dir, fmt.Sprintf("run-%02d.log", r.runs))}
	stdout, err := os.Create(p.stdout)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.Create(p.stderr)
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	p.cmd = exec.CommandContext(ctx, r.bin, "run", "--config", r.cfgPath, "--output", "json",
		"--log-level", "info", "--log-format", "json", "--wait-lease", soakWaitLease.String())
	p.cmd.Env, p.cmd.Dir = wireEnv(r.dir, ""), r.dir
	p.cmd.Stdout, p.cmd.Stderr = stdout, stderr
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start amicopier run: %w", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// soakOutcome is how a run ended.
type soakOutcome struct {
	// killed: by our SIGKILL; otherwise exit is its exit code, and
	// finished says it reported a run that succeeded.
	killed   bool
	exit     int
	finished bool
	wall     time.Duration
	// phase is where the run was, by its last log lines; runID the run
	// id it logged.
	phase, runID string
	summary      *report.Summary
	report       *report.Report
}

// waitOrKill waits for the run to end, sending it SIGKILL after killAt
// (never when negative).
func (p *soakProcess) waitOrKill(killAt time.Duration) (soakOutcome, error) {
	timeout := time.NewTimer(soakRunTimeout)
	defer timeout.Stop()
	var kill <-chan time.Time
	if killAt >= 0 {
		t := time.NewTimer(killAt)
		defer t.Stop()
		kill = t.C
	}
	sent := false
	select {
	case <-p.done:
	case <-kill:
		// Only this process, by its pid, while it runs.
		sent = p.cmd.Process.Signal(syscall.SIGKILL) == nil
		<-p.done
	case <-timeout.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return soakOutcome{}, fmt.Errorf("run %d did not end within %s: %s", p.n, soakRunTimeout, tail(p.stderr))
	}
	out := soakOutcome{wall: time.Since(p.started)}
	var exit *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &exit) {
		return out, fmt.Errorf("run %d: %w", p.n, p.waitErr)
	}
	st := p.cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		if !sent {
			return out, fmt.Errorf("run %d was killed by someone else: %s", p.n, tail(p.stderr))
		}
		out.killed = true
	}
	out.exit = st.ExitCode()
	out.phase, out.runID = p.logged()
	if !out.killed && out.exit == 0 && !p.leaseHeld() {
		var res struct {
			Report  *report.Report  `json:"report"`
			Summary *report.Summary `json:"summary"`
		}
		if err := readJSON(p.stdout, &res); err == nil && res.Summary != nil && res.Report != nil {
			out.summary, out.report = res.Summary, res.Report
			out.finished = res.Summary.Status == report.StatusSucceeded
		}
	}
	return out, nil
}

// leaseHeld reports whether the run gave up on a lease another run held.
func (p *soakProcess) leaseHeld() bool {
	b, _ := os.ReadFile(p.stderr)
	return strings.Contains(string(b), "holds the lease for scope")
}

// logLine is what the kill tests read of a JSON log line.
type logLine struct {
	Time  time.Time `json:"time"`
	Msg   string    `json:"msg"`
	RunID string    `json:"run_id"`
	Phase string    `json:"phase"`
	Done  int       `json:"done"`
	Of    int       `json:"of"`
}

// Phases a run is killed in, by its log.
const (
	phaseStart     = "start"      // before the engine's run started
	phaseObserve   = "observe"    // observing, planning, sharing
	phaseLeaseWait = "lease_wait" // waiting for another run's lease
	phaseCopy      = "copy"
	phaseEnd       = "end" // the run finished; recording, releasing
)

// logged reads the run's log: the phase of its last lines, and its run
// id.
func (p *soakProcess) logged() (phase, runID string) {
	phase = phaseStart
	for _, l := range p.logLines() {
		if l.RunID != "" {
			runID = l.RunID
		}
		switch l.Msg {
		case "run started":
			phase = phaseObserve
		case "phase started", "progress":
			if l.Phase == "copy" {
				phase = phaseCopy
			}
		case "another run holds the lease; waiting":
			phase = phaseLeaseWait
		case "run finished":
			phase = phaseEnd
		}
	}
	return phase, runID
}

// leaseWait is how long the run waited for another run's lease: from
// its first "waiting" line to the line after the last.
func (p *soakProcess) leaseWait() (time.Duration, bool) {
	var first, after time.Time
	waiting := false
	for _, l := range p.logLines() {
		if l.Msg == "another run holds the lease; waiting" {
			if first.IsZero() {
				first = l.Time
			}
			waiting = true
			continue
		}
		if waiting && !l.Time.IsZero() {
			after, waiting = l.Time, false
		}
	}
	if first.IsZero() || after.IsZero() {
		return 0, false
	}
	return after.Sub(first), true
}

func (p *soakProcess) logLines() []logLine {
	f, err := os.Open(p.stderr)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}
