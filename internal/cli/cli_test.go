package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cli"
)

// run calls the CLI like the process would, with an empty environment.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Main(context.Background(), args, cli.Env{
		Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Version: "test",
	})
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string // substring of stdout+stderr
	}{
		{nil, cli.ExitUsage, "Commands:"},
		{[]string{"--help"}, cli.ExitOK, "demo"},
		{[]string{"frobnicate"}, cli.ExitUsage, `unknown command "frobnicate"`},
		{[]string{"version"}, cli.ExitOK, "amicopier test"},
		{[]string{"demo", "--help"}, cli.ExitOK, "-output"},
		{[]string{"validate", "--help"}, cli.ExitOK, "AMICOPIER_STATE_TABLE"},
		{[]string{"demo", "--output", "yaml"}, cli.ExitUsage, `--output "yaml"`},
		{[]string{"demo", "--bogus"}, cli.ExitUsage, "-bogus"},
		{[]string{"demo", "extra"}, cli.ExitUsage, `unexpected argument "extra"`},
		{[]string{"demo", "--log-level", "loud"}, cli.ExitUsage, `--log-level "loud"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			if !strings.Contains(out+errOut, tt.out) {
				t.Errorf("output lacks %q:\n%s%s", tt.out, out, errOut)
			}
		})
	}
}

func TestDemoOutputs(t *testing.T) {
	code, out, errOut := run(t, "demo")
	if code != cli.ExitOK {
		t.Fatalf("demo exit %d: %s", code, errOut)
	}
	for _, want := range []string{"== Before", "missing", "== After", "rejected_target", "unencrypted", "CopyImage"} {
		if !strings.Contains(out, want) {
			t.Errorf("table output lacks %q", want)
		}
	}

	code, out, errOut = run(t, "demo", "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("demo json exit %d: %s", code, errOut)
	}
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("not one JSON object: %v", err)
	}
	if dec.More() {
		t.Fatal("more than one JSON value on stdout")
	}
	for _, k := range []string{"before", "run", "after"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("json lacks %q", k)
		}
	}

	code, out, _ = run(t, "demo", "--output", "markdown")
	if code != cli.ExitOK || !strings.Contains(out, "| `missing` |") {
		t.Fatalf("markdown exit %d:\n%s", code, out)
	}

	code, out, _ = run(t, "demo", "--print-config")
	if code != cli.ExitOK || !strings.Contains(out, "account_id") {
		t.Fatalf("print-config exit %d:\n%s", code, out)
	}
}

func TestDemoKeepsStateWhereAsked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.db")
	if code, _, errOut := run(t, "demo", "--state", path); code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("state file not kept: %v", err)
	}
}

func TestValidate(t *testing.T) {
	code, out, errOut := run(t, "validate", "--config", "../../config.yaml")
	if code != cli.ExitOK || !strings.Contains(out, "is valid") {
		t.Fatalf("example config: exit %d\n%s%s", code, out, errOut)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	doc := "source:\n  account_id: \"12345\"\n  regionz: [eu-west-1]\nlimits:\n  concurrency: 0\n"
	if err := os.WriteFile(bad, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run(t, "validate", "--config", bad)
	if code != cli.ExitError {
		t.Fatalf("bad config: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "source.regionz") || !strings.Contains(errOut, ":3") {
		t.Errorf("unknown key not named with its line:\n%s", errOut)
	}

	bad2 := filepath.Join(t.TempDir(), "bad2.yaml")
	if err := os.WriteFile(bad2, []byte(strings.Replace(doc, "  regionz", "  regions", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, errOut = run(t, "validate", "--config", bad2)
	for _, want := range []string{`source.account_id`, `"12345"`, "limits.concurrency"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validation output lacks %q:\n%s", want, errOut)
		}
	}

	code, _, errOut = run(t, "validate", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != cli.ExitError || !strings.Contains(errOut, "missing.yaml") {
		t.Fatalf("missing file: exit %d: %s", code, errOut)
	}
}

func TestHelpIsPrintedOnceOnStdout(t *testing.T) {
	for _, cmd := range []string{"demo", "plan", "run", "status", "validate", "version"} {
		code, out, errOut := run(t, cmd, "--help")
		if code != cli.ExitOK || strings.Count(out, "Usage: amicopier "+cmd) != 1 || errOut != "" {
			t.Errorf("%s --help: exit %d, %d usages on stdout, stderr %q", cmd, code, strings.Count(out, "Usage:"), errOut)
		}
	}
	// A bad flag gets one line and a hint, not the help (help_test.go).
	code, _, errOut := run(t, "plan", "--no-such-flag")
	if code != cli.ExitUsage || strings.Contains(errOut, "Usage:") || !strings.Contains(errOut, "--no-such-flag") {
		t.Errorf("bad flag: exit %d, stderr %q", code, errOut)
	}
}

// TestCommandsExplainAnInvalidConfigTheSameWay: every command working
// from a configuration file loads it the same way.
func TestCommandsExplainAnInvalidConfigTheSameWay(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("source:\n  account_id: \"12345\"\n  regions: [eu-west-1]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"plan"}, {"run"}, {"status"}, {"state", "init"}} {
		code, _, errOut := run(t, append(args, "--config", bad)...)
		want := bad + " is not valid (1 problem(s); `amicopier validate --config " + bad + "` explains them)"
		if code != cli.ExitError || !strings.Contains(errOut, want) || !strings.Contains(errOut, "source.account_id") {
			t.Errorf("%v: exit %d, stderr %q: want %q", args, code, errOut, want)
		}
	}
}
