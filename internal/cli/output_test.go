package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/reconcile/report"
)

// runWith calls the CLI with an environment and the terminal width
// stdout would have (0: not a terminal).
func runWith(t *testing.T, env map[string]string, termWidth int, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Main(context.Background(), args, cli.Env{
		Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }, Version: "test",
		TerminalWidth: termWidth,
	})
	return code, out.String(), errOut.String()
}

func widest(s string) (int, string) {
	n, line := 0, ""
	for l := range strings.Lines(s) {
		l = strings.TrimSuffix(l, "\n")
		if w := utf8.RuneCountInString(l); w > n {
			n, line = w, l
		}
	}
	return n, line
}

// TestDemoTableFitsTheTerminal: the demo's tables fit the terminal, else
// $COLUMNS, else 100 columns; --wide prints one line per pair.
func TestDemoTableFitsTheTerminal(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		termWidth int
		max       int
	}{
		{"not a terminal, no COLUMNS", nil, 0, 100},
		{"not a terminal, COLUMNS=72", map[string]string{"COLUMNS": "72"}, 0, 72},
		{"a terminal of 80 columns (COLUMNS is stale)", map[string]string{"COLUMNS": "200"}, 80, 80},
		{"a terminal of 132 columns", nil, 132, 132},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runWith(t, tt.env, tt.termWidth, "demo")
			if code != cli.ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if n, line := widest(out); n > tt.max {
				t.Errorf("a line is %d columns wide, more than %d: %q", n, tt.max, line)
			}
			// Shortened, not lost: every source id is still printed.
			for _, id := range []string{"ami-00000010000000000", "ami-00000010000000001", "ami-00000010000000002", "ami-00000020000000000"} {
				if !strings.Contains(out, id) {
					t.Errorf("the fitted output lost source %s", id)
				}
			}
		})
	}
	code, out, errOut := runWith(t, nil, 80, "demo", "--wide")
	if code != cli.ExitOK {
		t.Fatalf("--wide: exit %d: %s", code, errOut)
	}
	if n, _ := widest(out); n <= 150 {
		t.Errorf("--wide: the widest line is %d columns; want every pair on one line, ids in full", n)
	}
	if !strings.Contains(out, "ami-00000010000000000 (ubuntu-jammy-web-412)  200000000002 (prod-api)") {
		t.Errorf("--wide does not print a pair on one line with its ids in full:\n%s", out)
	}
}

// TestDemoMarkdownIsOneDocument: one title, each part a section under it,
// no heading repeated under the same parent.
func TestDemoMarkdownIsOneDocument(t *testing.T) {
	code, out, errOut := run(t, "demo", "--output", "markdown")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var h1 []string
	seen := map[string]bool{} // heading under its parent
	var parents [7]string
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		level := len(line) - len(strings.TrimLeft(line, "#"))
		if level == 0 || level > 6 || !strings.HasPrefix(line[level:], " ") {
			continue
		}
		text := strings.TrimSpace(line[level:])
		if level == 1 {
			h1 = append(h1, text)
		}
		key := parents[level-1] + " > " + text
		if seen[key] {
			t.Errorf("heading %q repeated under %q", line, parents[level-1])
		}
		seen[key] = true
		parents[level] = parents[level-1] + " > " + text
		for l := level + 1; l < len(parents); l++ {
			parents[l] = ""
		}
	}
	if len(h1) != 1 {
		t.Errorf("%d top-level headings %q, want one title", len(h1), h1)
	}
	for _, want := range []string{"## Before: a dry run finds drift", "## The reconcile", "## After: the copies finished", "### Drift per account"} {
		if !strings.Contains(out, "\n"+want+"\n") {
			t.Errorf("markdown lacks the heading %q", want)
		}
	}
}

// TestDemoIncludeOK: --include-ok makes the JSON an inventory: every pair,
// and for each ok pair the copy AMI that serves it, its state and key.
func TestDemoIncludeOK(t *testing.T) {
	code, out, errOut := run(t, "demo", "--output", "json", "--include-ok")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var outcome struct{ Before, After *report.Report }
	if err := json.Unmarshal([]byte(out), &outcome); err != nil {
		t.Fatal(err)
	}
	after := outcome.After
	if !after.IncludesOK || len(after.Items) != after.Pairs {
		t.Fatalf("includes_ok %v, %d items for %d pairs: want every pair listed", after.IncludesOK, len(after.Items), after.Pairs)
	}
	ok := 0
	for _, it := range after.Items {
		if it.Category != report.OK {
			continue
		}
		ok++
		if len(it.Copies) != 1 || it.Copies[0].ImageID == "" || it.Copies[0].State != "available" || !it.Copies[0].Encrypted {
			t.Errorf("ok pair %s/%s/%s: copies %+v, want its one available encrypted copy", it.SourceImage, it.Account, it.Region, it.Copies)
			continue
		}
		if c := it.Copies[0]; c.Managed && (c.KMSKey != "alias/amicopier" || c.KMSKeyFrom != report.KeyRequested) {
			t.Errorf("copy %s made by amicopier: key %q from %q, want the configured alias/amicopier as requested", c.ImageID, c.KMSKey, c.KMSKeyFrom)
		}
	}
	if ok != after.Counts[report.OK] || ok == 0 {
		t.Errorf("%d ok items listed, %d counted", ok, after.Counts[report.OK])
	}
	// Without the flag, JSON lists drift only, and says so.
	code, out, _ = run(t, "demo", "--output", "json")
	if code != cli.ExitOK {
		t.Fatal(code)
	}
	if err := json.Unmarshal([]byte(out), &outcome); err != nil {
		t.Fatal(err)
	}
	if outcome.After.IncludesOK || len(outcome.After.Items) != outcome.After.Drift() {
		t.Errorf("without --include-ok: includes_ok %v, %d items, %d drifted", outcome.After.IncludesOK, len(outcome.After.Items), outcome.After.Drift())
	}
}
