package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
	"github.com/amicopier/amicopier/state/dynamotest"
)

// slow is the latency of the calls a signal is to land among: long
// enough that they are surely in flight.
const slow = 2 * time.Second

// recordedRun reads the latest run record of the test world.
func recordedRun(t *testing.T, w *awsWorld) state.Run {
	t.Helper()
	st, err := state.OpenFile(w.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.RecentRuns(context.Background(), awsSource, 1)
	if err != nil || len(runs) != 1 {
		t.Fatalf("recorded runs %+v: %v", runs, err)
	}
	return runs[0]
}

// TestSignalDuringARun: SIGINT or SIGTERM while a run observes or copies
// stops it: no new work, the run recorded as interrupted, nothing
// reported as unreachable or blamed on the state store, and exit 130 or
// 143.
func TestSignalDuringARun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		phase string
		lat   sim.Latency
		sig   syscall.Signal
		code  int
	}{
		{"SIGINT while discovering", "", sim.Latency{Organizations: slow, Describe: slow}, syscall.SIGINT, cli.ExitInterrupted},
		{"SIGINT while observing", "observe", sim.Latency{STS: slow, Describe: slow}, syscall.SIGINT, cli.ExitInterrupted},
		{"SIGTERM while copying", "copy", sim.Latency{Mutating: slow}, syscall.SIGTERM, cli.ExitTerminated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newAWSWorld(t, false, sim.WithLatency(tc.lat))
			start := time.Now()
			cmd, out, errOut := startBinary(t, awsEnv(t), nil, "run", "--config", w.cfgPath, "--log-format", "json")
			started := `"msg":"run started"`
			if tc.phase != "" {
				started = `"msg":"phase started","phase":"` + tc.phase + `"`
			}
			waitForOutput(t, errOut, started, time.Minute)
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			res := waitBinary(t, cmd, out, errOut, start, time.Minute)
			if res.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", res.code, tc.code, res.stdout, res.stderr)
			}
			all := res.stdout + res.stderr
			for _, bad := range []string{"unreachable", "state store", "copy_failed", "account unreachable"} {
				if strings.Contains(strings.ReplaceAll(all, "Counts:", ""), bad) {
					t.Errorf("the interruption is reported as %q:\n%s", bad, all)
				}
			}
			if !strings.Contains(res.stdout, "interrupted") || !strings.Contains(res.stderr, "recorded as interrupted") {
				t.Errorf("the output does not say the run was interrupted:\n%s", all)
			}
			if strings.Contains(res.stdout, "no drift") {
				t.Errorf("an interrupted run reads as a clean one:\n%s", res.stdout)
			}
			if rec := recordedRun(t, w); rec.Status != report.StatusInterrupted {
				t.Errorf("recorded as %s, want %s: %v", rec.Status, report.StatusInterrupted, rec.Errors)
			}
		})
	}
}

// TestSIGTERMDuringWait: a signal while --wait waits for the copies
// records the run as interrupted (the reconcile had recorded it as
// succeeded) and exits 143.
func TestSIGTERMDuringWait(t *testing.T) {
	w := newAWSWorld(t, false) // copies stay pending: the wait goes on
	start := time.Now()
	cmd, out, errOut := startBinary(t, awsEnv(t), nil, "run", "--config", w.cfgPath, "--wait", "--log-level", "warn")
	waitForOutput(t, errOut, "waiting up to", time.Minute)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := waitBinary(t, cmd, out, errOut, start, time.Minute)
	if res.code != cli.ExitTerminated {
		t.Fatalf("exit %d, want %d\n%s\n%s", res.code, cli.ExitTerminated, res.stdout, res.stderr)
	}
	rec := recordedRun(t, w)
	if rec.Status != report.StatusInterrupted || !strings.Contains(strings.Join(rec.Errors, "\n"), "interrupted by SIGTERM while waiting for the 2 copies") {
		t.Errorf("recorded %s %q, want interrupted while waiting", rec.Status, rec.Errors)
	}
	if rec.Actions["copy"] != 2 {
		t.Errorf("the record lost what the run did: %v", rec.Actions)
	}
}

// TestSignalWhileReadingTheConfig: a configuration read from a FIFO no
// one writes, or from a standard input that never ends, does not make
// signals ineffective.
func TestSignalWhileReadingTheConfig(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "config.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Close()
	defer r.Close()
	for _, tc := range []struct {
		args  []string
		stdin io.Reader
		sig   syscall.Signal
		code  int
		want  string
	}{
		{[]string{"plan", "--config", fifo}, nil, syscall.SIGINT, cli.ExitInterrupted, "read the configuration from " + fifo + ": interrupted by SIGINT"},
		{[]string{"run", "--config", "-"}, r, syscall.SIGTERM, cli.ExitTerminated, "read the configuration from standard input: interrupted by SIGTERM"},
		{[]string{"validate", "--config", "-"}, r, syscall.SIGINT, cli.ExitInterrupted, "interrupted by SIGINT"},
	} {
		start := time.Now()
		cmd, out, errOut := startBinary(t, awsEnv(t), tc.stdin, tc.args...)
		// The process is blocked reading by now, or soon will be.
		time.Sleep(300 * time.Millisecond)
		if err := cmd.Process.Signal(tc.sig); err != nil {
			t.Fatal(err)
		}
		res := waitBinary(t, cmd, out, errOut, start, 30*time.Second)
		if res.code != tc.code || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q: want %d and %q", tc.args, res.code, res.stderr, tc.code, tc.want)
		}
	}
}

// TestConfigFromStandardInput: --config - reads standard input.
func TestConfigFromStandardInput(t *testing.T) {
	w := newAWSWorld(t, false)
	doc, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"validate", "--config", "-"}, {"plan", "--config", "-", "--output", "json"}} {
		start := time.Now()
		cmd, out, errOut := startBinary(t, awsEnv(t), bytes.NewReader(doc), args...)
		res := waitBinary(t, cmd, out, errOut, start, time.Minute)
		if res.code != cli.ExitOK {
			t.Errorf("%v: exit %d\n%s", args, res.code, res.stderr)
		}
		if args[0] == "validate" && !strings.Contains(res.stdout, "standard input is valid") {
			t.Errorf("validate --config -: %q", res.stdout)
		}
		if args[0] == "plan" && !strings.Contains(res.stdout, `"schema": "amicopier.report/v1"`) && !strings.Contains(res.stdout, `"schema":"amicopier.report/v1"`) {
			t.Errorf("plan --config -: no report\n%s", res.stdout)
		}
	}
	res := runBinary(t, awsEnv(t), time.Minute, "plan", "--config", "-") // empty standard input
	if res.code != cli.ExitError || !strings.Contains(res.stderr, "standard input") {
		t.Errorf("plan --config - with nothing on standard input: exit %d, %q", res.code, res.stderr)
	}
}

// TestSecondCtrlCExitsAtOnce: after the first Ctrl-C the run records
// itself, which takes as long as the state store takes; a second Ctrl-C
// does not wait for it. The state table sits behind a proxy that stops
// answering in time once the first signal is sent.
func TestSecondCtrlCExitsAtOnce(t *testing.T) {
	endpoint := dynamotest.Endpoint(t)
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var slowStore atomic.Bool
	release := make(chan struct{})
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slowStore.Load() {
			select { // a store far slower than the run record's bound
			case <-time.After(30 * time.Second):
			case <-release:
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(release)
		proxy.Close()
	})

	w := newAWSWorld(t, false, sim.WithLatency(sim.Latency{STS: slow, Describe: slow}))
	doc, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(doc), "  backend: file\n  path: "+w.state+"\n",
		fmt.Sprintf("  backend: dynamodb\n  table: %s\n  region: %s\n  endpoint: %s\n", dynamotest.TableName(t), awsRegion, proxy.URL), 1)
	if err := os.WriteFile(w.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := runBinary(t, awsEnv(t), time.Minute, "state", "init", "--config", w.cfgPath); res.code != cli.ExitOK {
		t.Fatalf("state init: exit %d\n%s", res.code, res.stderr)
	}

	start := time.Now()
	cmd, out, errOut := startBinary(t, awsEnv(t), nil, "run", "--config", w.cfgPath, "--log-format", "json")
	waitForOutput(t, errOut, `"msg":"phase started","phase":"observe"`, time.Minute)
	slowStore.Store(true)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitForOutput(t, errOut, "SIGINT: stopping", 10*time.Second)
	// The run is now writing its record to a store that does not answer.
	time.Sleep(time.Second)
	if cmd.ProcessState != nil {
		t.Fatalf("the run ended before its record could be written:\n%s", errOut.String())
	}
	second := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	res := waitBinary(t, cmd, out, errOut, start, time.Minute)
	if res.code != cli.ExitInterrupted || !strings.Contains(res.stderr, "SIGINT again: exiting at once") {
		t.Errorf("exit %d, want %d and a word about it:\n%s", res.code, cli.ExitInterrupted, res.stderr)
	}
	// At once: long before the record's own 10 s bound.
	if waited := time.Since(second); waited > 5*time.Second {
		t.Errorf("the second Ctrl-C took %s to exit", waited)
	}
	t.Logf("exited %s after the second Ctrl-C, %s after start", time.Since(second).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
