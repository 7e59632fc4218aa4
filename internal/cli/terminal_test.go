package cli_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/internal/sim"
)

// screen is what a terminal shows after out: carriage returns, line
// feeds, ANSI "erase in line" and printable text overwrite as on a real
// terminal; other escape sequences are dropped.
func screen(out string) []string {
	var lines [][]rune
	row, col := 0, 0
	put := func(r rune) {
		for len(lines) <= row {
			lines = append(lines, nil)
		}
		for len(lines[row]) < col {
			lines[row] = append(lines[row], ' ')
		}
		if col < len(lines[row]) {
			lines[row][col] = r
		} else {
			lines[row] = append(lines[row], r)
		}
		col++
	}
	for i := 0; i < len(out); {
		r, size := utf8.DecodeRuneInString(out[i:])
		i += size
		switch {
		case r == '\r':
			col = 0
		case r == '\n':
			row++
			col = 0
		case r == 0x1b && i < len(out) && out[i] == '[':
			j := i + 1
			for j < len(out) && (out[j] >= '0' && out[j] <= '9' || out[j] == ';' || out[j] == '?') {
				j++
			}
			if j < len(out) && out[j] == 'K' && row < len(lines) {
				if strings.HasPrefix(out[i+1:j], "2") {
					lines[row] = nil
				} else if col < len(lines[row]) {
					lines[row] = lines[row][:col]
				}
			}
			i = j + 1
		case r < ' ':
		default:
			put(r)
		}
	}
	res := make([]string, len(lines))
	for i, l := range lines {
		res[i] = strings.TrimRight(string(l), " ")
	}
	return res
}

// onTerminal runs amicopier with its stderr on a pseudo-terminal
// (util-linux script) and stdout discarded, and returns the screen.
func onTerminal(t *testing.T, env []string, args ...string) []string {
	t.Helper()
	scriptCmd, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script (util-linux) is not installed: no pseudo-terminal")
	}
	line := amicopierBinary(t)
	for _, a := range args {
		line += " '" + a + "'"
	}
	cmd := exec.Command(scriptCmd, "-qefc", line+" >/dev/null", "/dev/null")
	cmd.Env = append(env, "TERM=xterm", "COLUMNS=160")
	done := make(chan struct{})
	var out []byte
	go func() {
		defer close(done)
		out, err = cmd.Output()
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("amicopier %v on a terminal did not end", args)
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != cli.ExitPartial {
			t.Fatalf("amicopier %v on a terminal: %v\n%s", args, err, out)
		}
	}
	return screen(string(out))
}

// TestProgressBarAndLogsShareTheTerminal: on a terminal, log lines are
// printed above the progress bar, never into it; plan draws a bar too.
func TestProgressBarAndLogsShareTheTerminal(t *testing.T) {
	w := newAWSWorld(t, true, sim.WithLatency(sim.Latency{Describe: 150 * time.Millisecond, STS: 150 * time.Millisecond}))
	// One account at a time, in order: the bar is drawn when the denied
	// account, the last, is logged as unreachable.
	doc, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.cfgPath, append(doc, "limits:\n  concurrency: 1\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"run", "plan"} {
		lines := onTerminal(t, awsEnv(t), cmd, "--config", w.cfgPath, "--log-level", "debug")
		bars, logs := 0, 0
		for _, l := range lines {
			isBar := strings.Contains(l, "% |")
			isLog := strings.Contains(l, "level=")
			switch {
			case isBar && isLog:
				t.Errorf("%s: a log line and the bar share a line: %q", cmd, l)
			case isBar:
				bars++
			case isLog:
				logs++
				if !strings.HasPrefix(l, "time=") {
					t.Errorf("%s: a log line is cut or overwritten: %q", cmd, l)
				}
			}
		}
		if bars == 0 || logs == 0 {
			t.Errorf("%s: %d bar and %d log lines on the terminal:\n%s", cmd, bars, logs, strings.Join(lines, "\n"))
		}
		if !strings.Contains(strings.Join(lines, "\n"), "observe") {
			t.Errorf("%s: no observe phase on the terminal:\n%s", cmd, strings.Join(lines, "\n"))
		}
	}
}

// TestWaitShowsCopiesDone: --wait tells how many of the copies are done.
func TestWaitShowsCopiesDone(t *testing.T) {
	w := newAWSWorld(t, false, sim.WithCopyDuration(0))
	res := runBinary(t, awsEnv(t), time.Minute, "run", "--config", w.cfgPath, "--wait", "--log-format", "json")
	if res.code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	for _, want := range []string{`"msg":"phase started","phase":"wait","steps":2`, `"msg":"progress","phase":"wait","done":2,"of":2`} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("no %s in\n%s", want, res.stderr)
		}
	}
	// On a terminal, a bar of its own.
	w = newAWSWorld(t, false, sim.WithCopyDuration(0))
	lines := onTerminal(t, awsEnv(t), "run", "--config", w.cfgPath, "--wait")
	found := false
	for _, l := range lines {
		found = found || strings.HasPrefix(l, "wait ") && strings.Contains(l, "(2/2)")
	}
	if !found {
		t.Errorf("no wait bar with the copies done out of total:\n%s", strings.Join(lines, "\n"))
	}
}
