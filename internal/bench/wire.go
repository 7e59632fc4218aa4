package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/reconcile/report"
)

// Limits of the wire scenarios' assertions.
const (
	// MaxWireNoOpRSSMB bounds the client's peak resident memory in a
	// no-op wire run: the whole process, runtime and garbage included.
	MaxWireNoOpRSSMB = 256
	// CPUProfileEnv names the environment variable that makes the
	// amicopier binary write a CPU profile of itself (a debugging aid).
	CPUProfileEnv = cli.CPUProfileEnv
)

// WireOptions say how to run a wire scenario.
type WireOptions struct {
	// Amicopier is the built amicopier binary.
	Amicopier string
	// Server is the command that serves a scenario (the benchmark's own
	// binary and "serve"); RunWire appends -scenario, -portfile,
	// -latency and -throttle.
	Server []string
	// Dir holds the run's files (config, state, reports, logs); a
	// temporary directory, removed afterwards, when empty.
	Dir string
	// CPUProfile, when set, is where the run process writes its CPU
	// profile (through CPUProfileEnv).
	CPUProfile string
	// ServerCPUProfile, when set, is where the server writes its CPU
	// profile.
	ServerCPUProfile string
	// ServerStart bounds the wait for the server to listen (it builds
	// the organisation first); default 5 minutes.
	ServerStart time.Duration
}

// Process is what one amicopier process cost, from its rusage.
type Process struct {
	Command     string  `json:"command"`
	ExitCode    int     `json:"exit_code"`
	WallSeconds float64 `json:"wall_seconds"`
	// CPUSeconds is user plus system CPU time.
	CPUSeconds       float64 `json:"cpu_seconds"`
	UserCPUSeconds   float64 `json:"user_cpu_seconds"`
	SystemCPUSeconds float64 `json:"system_cpu_seconds"`
	// PeakRSSMB is the process's peak resident set (VmHWM, polled: peakRSS).
	PeakRSSMB float64 `json:"peak_rss_mb"`
	// ServerCPUSeconds is the CPU the fake server used meanwhile (it
	// shares the machine's cores with the client).
	ServerCPUSeconds float64     `json:"server_cpu_seconds"`
	APICalls         ServerCalls `json:"api_calls"`
}

// PlanResult is the plan step of a wire scenario: a dry run, so its
// bound is the observation part of the lower bound (no sharing, no copy).
type PlanResult struct {
	Process
	LowerBoundCalls int            `json:"lower_bound_calls"`
	CallsRatio      float64        `json:"calls_ratio"`
	Counts          map[string]int `json:"counts"`
}

// WireResult is one wire scenario's measurements, printed as one JSON
// line. The top-level fields describe the run (amicopier run); Plan the
// plan before it.
type WireResult struct {
	Outcome
	Wire bool `json:"wire"`
	// CPUSeconds (user + system), PeakRSSMB and the rest: the run
	// process's rusage.
	CPUSeconds       float64 `json:"cpu_seconds"`
	UserCPUSeconds   float64 `json:"user_cpu_seconds"`
	SystemCPUSeconds float64 `json:"system_cpu_seconds"`
	PeakRSSMB        float64 `json:"peak_rss_mb"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	// AnswersMB is what the run downloaded: the bodies of the answers.
	AnswersMB   float64 `json:"answers_mb"`
	ExitCode    int     `json:"exit_code"`
	LatencyMS   float64 `json:"latency_ms"`
	Concurrency int     `json:"concurrency"`
	InFlightCap int     `json:"in_flight_cap"`
	// ServerStartSeconds: from starting the server process to its port
	// file (building the organisation).
	ServerStartSeconds float64 `json:"server_start_seconds"`
	StateBackend       string  `json:"state_backend"`
	StateWrites        int     `json:"state_writes"`
	// ThrottledAnswers are the server's throttling answers to the run
	// (the SDK retried them); ThrottleErrorsSurfaced the ones that
	// reached the engine after the last retry.
	ThrottledAnswers       int64 `json:"throttled_answers"`
	ThrottleErrorsSurfaced int64 `json:"throttle_errors_surfaced"`
	// CopiesMade are the images the run's CopyImage requests created (the
	// server's log); DuplicateCopies the pairs with more than one live
	// copy afterwards, UnwantedCopies live copies of no wanted pair.
	CopiesMade      int            `json:"copies_made"`
	DuplicateCopies int            `json:"duplicate_copies"`
	UnwantedCopies  int            `json:"unwanted_copies"`
	Status          string         `json:"status"`
	Counts          map[string]int `json:"counts"`
	Errors          []string       `json:"errors,omitempty"`
	Plan            PlanResult     `json:"plan"`
	// LoadAverage is /proc/loadavg's 1-minute figure before the plan
	// and after the run: the benchmark shares the machine.
	LoadAverage [2]float64 `json:"load_average"`
	Pass        bool       `json:"pass"`
	Reasons     []string   `json:"reasons,omitempty"`
}

// RunWire runs a wire scenario: it starts the server process for the
// scenario, writes a configuration file naming its endpoints, and runs
// `amicopier plan` then `amicopier run` against it with credentials in
// the environment, as a user would, measuring each process.
func RunWire(ctx context.Context, sc Scenario, o WireOptions) (*WireResult, error) {
	if !sc.Wire {
		return nil, fmt.Errorf("scenario %s is not a wire scenario: run it with Run", sc.Name)
	}
	if o.Amicopier == "" || len(o.Server) == 0 {
		return nil, fmt.Errorf("scenario %s: a wire scenario needs the amicopier binary and the server command", sc.Name)
	}
	if o.ServerStart <= 0 {
		o.ServerStart = 5 * time.Minute
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "amicopier-wire-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}

	srv, err := startServer(ctx, sc, o, dir)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	insp := NewInspectClient(srv.url)
	served, err := insp.Scenario(ctx)
	if err != nil {
		return nil, err
	}
	if served.Name != sc.Name {
		return nil, fmt.Errorf("the server serves scenario %s, not %s", served.Name, sc.Name)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := writeWireConfig(cfgPath, sc, srv.url, filepath.Join(dir, "state.db")); err != nil {
		return nil, err
	}

	out := &WireResult{
		Outcome: Outcome{
			Scenario: sc.Name, Kind: sc.Kind, Accounts: sc.Accounts, Regions: len(sc.Regions), AMIs: sc.AMIs(),
			Pairs: served.Pairs, Missing: served.Missing, CopiesExpected: served.Startable,
			LowerBoundCalls: served.Bound.Total, LowerBound: served.Bound, FloorSeconds: served.Floor.Seconds, Floor: served.Floor,
		},
		Wire: true, LatencyMS: served.LatencyMS, Concurrency: sc.Concurrency, InFlightCap: sc.InFlightCap,
		ServerStartSeconds: srv.startSeconds, StateBackend: wireStateBackend(sc), Counts: map[string]int{},
	}
	out.LoadAverage[0] = loadAverage()

	// plan
	planOut := filepath.Join(dir, "plan.json")
	plan, err := srv.measure(ctx, insp, wireCommand(o.Amicopier, "plan", cfgPath), dir, "", planOut)
	if err != nil {
		return nil, err
	}
	out.Plan.Process = *plan
	out.Plan.LowerBoundCalls = served.Bound.Total - served.Bound.Sharing - served.Bound.CopyImage
	out.Plan.CallsRatio = ratio(float64(plan.APICalls.Total), float64(out.Plan.LowerBoundCalls))
	var planReport report.Report
	if plan.ExitCode == 0 {
		if err := readJSON(planOut, &planReport); err != nil {
			return nil, fmt.Errorf("scenario %s: plan: %w", sc.Name, err)
		}
	}
	out.Plan.Counts = nonZero(planReport.Counts)

	// run
	runOut := filepath.Join(dir, "run.json")
	run, err := srv.measure(ctx, insp, wireCommand(o.Amicopier, "run", cfgPath), dir, o.CPUProfile, runOut)
	if err != nil {
		return nil, err
	}
	out.LoadAverage[1] = loadAverage()
	out.APICalls = APICalls{Total: run.APICalls.Total, ByOperation: run.APICalls.ByOperation}
	out.OverheadCalls = run.APICalls.Total - int64(served.Bound.Total)
	out.CallsRatio = ratio(float64(run.APICalls.Total), float64(served.Bound.Total))
	out.WallSeconds, out.WallRatio = run.WallSeconds, ratio(run.WallSeconds, served.Floor.Seconds)
	out.CPUSeconds, out.UserCPUSeconds, out.SystemCPUSeconds = run.CPUSeconds, run.UserCPUSeconds, run.SystemCPUSeconds
	out.PeakRSSMB, out.ServerCPUSeconds, out.ExitCode = run.PeakRSSMB, run.ServerCPUSeconds, run.ExitCode
	out.ThrottledAnswers = run.APICalls.Throttled
	out.AnswersMB = mb(uint64(run.APICalls.AnswerBytes))
	if run.ExitCode == 0 || run.ExitCode == 3 {
		var res struct {
			Report  *report.Report  `json:"report"`
			Summary *report.Summary `json:"summary"`
		}
		if err := readJSON(runOut, &res); err != nil {
			return nil, fmt.Errorf("scenario %s: run: %w", sc.Name, err)
		}
		if res.Report == nil || res.Summary == nil {
			return nil, fmt.Errorf("scenario %s: run: the JSON output has no report or summary", sc.Name)
		}
		out.Counts = nonZero(res.Report.Counts)
		out.Status = res.Summary.Status
		out.CopiesStarted = res.Summary.Actions["copy"]
		out.DeferredInFlightCap = res.Summary.Actions["deferred_in_flight_cap"]
		out.DeferredOther = res.Summary.Actions["deferred"] - out.DeferredInFlightCap
		out.StateWrites = res.Summary.StateWrites
		out.ThrottleErrorsSurfaced = res.Summary.ThrottleErrors
		out.Errors = firstN(res.Summary.Errors, 5)
	} else {
		out.Errors = []string{"amicopier run exited " + strconv.Itoa(run.ExitCode) + ": " + tail(filepath.Join(dir, "run.stderr"))}
	}
	census, err := insp.Copies(ctx, ItemsAnomalies)
	if err != nil {
		return nil, err
	}
	out.CopiesMade = int(run.APICalls.CopiesMade)
	out.DuplicateCopies = census.PairsWithMore
	out.UnwantedCopies = census.UnwantedCopies
	out.check(plan.ExitCode)
	return out, nil
}

// check applies the scenario kind's assertions to a wire run.
func (r *WireResult) check(planExit int) {
	fail := func(format string, args ...any) { r.Reasons = append(r.Reasons, fmt.Sprintf(format, args...)) }
	if planExit != 0 {
		fail("amicopier plan exited %d", planExit)
	}
	if r.ExitCode != 0 {
		fail("amicopier run exited %d", r.ExitCode)
	}
	if r.Status != report.StatusSucceeded {
		fail("status %q, want %s", r.Status, report.StatusSucceeded)
	}
	if r.ThrottleErrorsSurfaced != 0 {
		fail("throttle_errors_surfaced = %d, want 0", r.ThrottleErrorsSurfaced)
	}
	if r.CPUSeconds <= 0 {
		fail("cpu_seconds %.3f: the run's rusage was not read", r.CPUSeconds)
	}
	if r.DuplicateCopies != 0 || r.UnwantedCopies != 0 {
		fail("%d pairs with more than one copy, %d copies of no wanted pair", r.DuplicateCopies, r.UnwantedCopies)
	}
	if r.CopiesMade != r.CopiesStarted {
		fail("the server made %d copies, the run reports %d started", r.CopiesMade, r.CopiesStarted)
	}
	r.checkCosts(fail)
	switch r.Kind {
	case NoOp:
		if r.PeakRSSMB >= MaxWireNoOpRSSMB {
			fail("peak_rss_mb %.1f >= %d", r.PeakRSSMB, MaxWireNoOpRSSMB)
		}
		if r.StateWrites > MaxNoOpStateWrites {
			fail("state_writes %d > %d", r.StateWrites, MaxNoOpStateWrites)
		}
		if got := r.Counts[string(report.OK)]; got != r.Pairs {
			fail("%d pairs ok, want all %d", got, r.Pairs)
		}
		if got := r.Plan.Counts[string(report.OK)]; got != r.Pairs {
			fail("plan: %d pairs ok, want all %d", got, r.Pairs)
		}
		if n := (ServerCalls{ByOperation: r.APICalls.ByOperation}).Mutating(); n != 0 {
			fail("%d mutating calls in a run with nothing to do", n)
		}
	case CatchUp:
		if got := r.Plan.Counts[string(report.Missing)]; got != r.Missing {
			fail("plan: %d missing pairs, the scenario %d", got, r.Missing)
		}
		if got := r.Counts[string(report.Missing)]; got != r.Missing {
			fail("the report has %d missing pairs, the scenario %d", got, r.Missing)
		}
	}
	r.Pass = len(r.Reasons) == 0
}

// wireConfigHeader heads the configuration file of a wire run.
const wireConfigHeader = "# amicopier configuration of a wire benchmark run (internal/bench/wire.go):\n" +
	"# the scenario's settings, the endpoints of the served organisation, its state store.\n"

// writeWireConfig writes the scenario's configuration (the one the
// in-process benchmark runs with) as a file, with the served endpoints and
// the state store of wireStateBackend: the only differences from the
// in-process runs.
func writeWireConfig(path string, sc Scenario, url, statePath string) error {
	cfg, err := wireConfig(sc, url, statePath)
	if err != nil {
		return err
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("scenario %s: config: %w", sc.Name, err)
	}
	return os.WriteFile(path, append([]byte(wireConfigHeader), b...), 0o600)
}

// wireStateBackend is the state store of a wire scenario's runs. A no-op
// run writes one run record: the state file, as at a desk. A catch-up
// writes every pair twice, and the file store's sync of each write would
// measure the disk rather than amicopier (the Lambda writes to DynamoDB):
// the in-memory store, as in process.
func wireStateBackend(sc Scenario) string {
	if sc.Kind == NoOp {
		return config.BackendFile
	}
	return config.BackendMemory
}

func wireConfig(sc Scenario, url, statePath string) (*config.Config, error) {
	cfg, err := scenarioConfig(sc)
	if err != nil {
		return nil, err
	}
	cfg.State.Backend = wireStateBackend(sc)
	cfg.State.Path = statePath
	cfg.AWS.Region = sc.Regions[0]
	cfg.AWS.Endpoints.EC2, cfg.AWS.Endpoints.Organizations, cfg.AWS.Endpoints.STS = url, url, url
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: config: %w", sc.Name, err)
	}
	return cfg, nil
}

func wireCommand(bin, verb, cfgPath string) []string {
	return []string{bin, verb, "--config", cfgPath, "--output", "json", "--log-level", "warn", "--log-format", "text"}
}

// wireEnv is the environment of an amicopier process: the base
// credentials of the served organisation, and nothing that could lead
// the SDK anywhere else (no shared files, no instance metadata).
func wireEnv(dir, cpuProfile string) []string {
	none := filepath.Join(dir, "no-aws-files")
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir(),
		"AWS_ACCESS_KEY_ID=" + awsfake.BaseAccessKeyID, "AWS_SECRET_ACCESS_KEY=" + awsfake.BaseSecretAccessKey,
		"AWS_SESSION_TOKEN=" + awsfake.BaseSessionToken, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + none, "AWS_SHARED_CREDENTIALS_FILE=" + none,
	}
	// Runtime settings the caller chose for exploration pass through.
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if cpuProfile != "" {
		env = append(env, CPUProfileEnv+"="+cpuProfile)
	}
	return env
}

// server is the scenario's server process.
type server struct {
	cmd          *exec.Cmd
	url          string
	startSeconds float64
	done         chan struct{}
	waitErr      error
}

func startServer(ctx context.Context, sc Scenario, o WireOptions, dir string) (*server, error) {
	portFile := filepath.Join(dir, "port")
	args := append(o.Server[1:len(o.Server):len(o.Server)], "-scenario", sc.Name, "-portfile", portFile,
		"-latency", sc.Latency.String(), "-throttle="+strconv.FormatBool(sc.Throttle))
	if o.ServerCPUProfile != "" {
		args = append(args, "-cpuprofile", o.ServerCPUProfile)
	}
	logPath := filepath.Join(dir, "server.log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own descriptor
	cmd := exec.Command(o.Server[0], args...)
	cmd.Stdout, cmd.Stderr = log, log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the server: %w", err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(o.ServerStart)
	for {
		port, ok, err := ReadPortFile(portFile)
		if err != nil {
			s.stop()
			return nil, err
		}
		if ok {
			s.url = "http://127.0.0.1:" + strconv.Itoa(port)
			s.startSeconds = time.Since(start).Seconds()
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("the server exited before listening (%v): %s", s.waitErr, tail(logPath))
		case <-deadline:
			s.stop()
			return nil, fmt.Errorf("the server did not listen within %s: %s", o.ServerStart, tail(logPath))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// stop ends the server with SIGTERM (SIGKILL after 10 s) and waits.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// measure runs one amicopier command to completion, its stdout to
// outPath and its stderr next to it, and reads what it cost: wall time,
// rusage, the server's CPU meanwhile and the requests it received.
func (s *server) measure(ctx context.Context, insp *InspectClient, argv []string, dir, cpuProfile, outPath string) (*Process, error) {
	stdout, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.Create(strings.TrimSuffix(outPath, ".json") + ".stderr")
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	calls0, err := insp.Calls(ctx)
	if err != nil {
		return nil, err
	}
	cpu0 := processCPU(s.cmd.Process.Pid)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = wireEnv(dir, cpuProfile)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	start := time.Now()
	var hwm peakRSS
	if err = cmd.Start(); err == nil {
		hwm.watch(cmd.Process.Pid)
		err = cmd.Wait()
		hwm.stop()
	}
	wall := time.Since(start).Seconds()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("%s: %w", strings.Join(argv[:2], " "), err)
	}
	p := &Process{Command: strings.Join(argv[1:2], " "), ExitCode: cmd.ProcessState.ExitCode(), WallSeconds: wall}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		p.UserCPUSeconds = time.Duration(ru.Utime.Nano()).Seconds()
		p.SystemCPUSeconds = time.Duration(ru.Stime.Nano()).Seconds()
		p.CPUSeconds = p.UserCPUSeconds + p.SystemCPUSeconds
	}
	p.PeakRSSMB = hwm.megabytes()
	p.ServerCPUSeconds = processCPU(s.cmd.Process.Pid) - cpu0
	calls1, err := insp.Calls(ctx)
	if err != nil {
		return nil, err
	}
	p.APICalls = calls1.Sub(calls0)
	return p, nil
}

// peakRSS follows a child's peak resident set (VmHWM in /proc/PID/status,
// kilobytes) while it runs. wait4's ru_maxrss cannot serve: Linux starts
// a child's figure at its parent's own high-water mark when the child
// execs from the parent's memory (as os/exec's vfork-style clone does),
// so after a large in-process scenario every wire client would show the
// benchmark's own peak, not its own.
type peakRSS struct {
	done chan struct{}
	wg   sync.WaitGroup
	kb   atomic.Int64
}

// watch reads pid's high-water mark every 10 ms until stop.
func (h *peakRSS) watch(pid int) {
	h.done = make(chan struct{})
	path := fmt.Sprintf("/proc/%d/status", pid)
	h.wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if kb := vmHWM(path); kb > h.kb.Load() {
				h.kb.Store(kb)
			}
			select {
			case <-h.done:
				return
			case <-t.C:
			}
		}
	})
}

// stop ends the watch and waits for it.
func (h *peakRSS) stop() {
	if h.done != nil {
		close(h.done)
		h.wg.Wait()
	}
}

func (h *peakRSS) megabytes() float64 { return float64(h.kb.Load()) / 1024 }

// vmHWM is the VmHWM line of a /proc/PID/status file in kilobytes, 0 when
// it cannot be read (the process exited: a zombie has no memory left).
func vmHWM(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's CPU
// times: 100 on every Linux architecture Go supports.
const clockTicks = 100

// processCPU reads the user plus system CPU seconds of a running process
// from /proc (0 where there is no /proc).
func processCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from its ")".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return (u + st) / clockTicks
}

// loadAverage is the 1-minute load average (0 where there is no /proc).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

func nonZero[K ~string](m map[K]int) map[string]int {
	out := map[string]int{}
	for k, n := range m {
		if n > 0 {
			out[string(k)] = n
		}
	}
	return out
}

// tail is the end of a log file, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	b = bytes.TrimSpace(b)
	if len(b) > 800 {
		b = b[len(b)-800:]
	}
	return string(b)
}
