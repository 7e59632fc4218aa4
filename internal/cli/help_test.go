package cli_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cli"
)

// commandFlags is every flag of every command: the interface users type.
var commandFlags = map[string][]string{
	"demo":       {"output", "state", "print-config", "include-ok", "wide", "log-level", "log-format", "quiet"},
	"plan":       {"config", "output", "detailed-exitcode", "include-ok", "wide", "only-ami", "only-account", "shard", "log-level", "log-format", "quiet"},
	"run":        {"config", "output", "include-ok", "wide", "only-ami", "only-account", "shard", "wait", "wait-timeout", "wait-lease", "time-budget", "log-level", "log-format", "quiet"},
	"check":      {"config", "output", "detailed-exitcode", "wide", "only-ami", "only-account", "shard", "log-level", "log-format", "quiet"},
	"status":     {"config", "runs", "output", "timeout", "wide"},
	"validate":   {"config", "no-env"},
	"version":    {},
	"state init": {"config", "timeout"},
	"completion": {},
}

var singleDashFlag = regexp.MustCompile(`(?m)(^|[\s\[])-[a-z][a-z-]+`)

// TestHelpListsEveryFlag: the usage line and the flag list name every
// flag, double-dashed as in the README, and every command has examples
// and its exit codes.
func TestHelpListsEveryFlag(t *testing.T) {
	for cmd, flags := range commandFlags {
		t.Run(cmd, func(t *testing.T) {
			code, out, errOut := run(t, append(strings.Fields(cmd), "--help")...)
			if code != cli.ExitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			usage, rest, ok := strings.Cut(out, "\n\n")
			if !ok || !strings.HasPrefix(usage, "Usage: amicopier "+cmd) {
				t.Fatalf("no usage line:\n%s", out)
			}
			flagList := ""
			if i := strings.Index(rest, "\nFlags:\n"); i >= 0 {
				flagList = rest[i:]
			}
			for _, f := range flags {
				if !strings.Contains(usage, "[--"+f) {
					t.Errorf("the usage line lacks --%s:\n%s", f, usage)
				}
				if !strings.Contains(flagList, "\n  --"+f) {
					t.Errorf("the flag list lacks --%s", f)
				}
			}
			if m := singleDashFlag.FindString(out); m != "" {
				t.Errorf("single-dash flag %q in the help", m)
			}
			for _, section := range []string{"\nExamples:\n  amicopier " + strings.Fields(cmd)[0], "\nExit codes:\n  0 ", "\n  64 ", "\n  130 ", "\n  143 "} {
				if !strings.Contains(out, section) {
					t.Errorf("the help lacks %q:\n%s", section, out)
				}
			}
		})
	}
}

func TestHelpCommand(t *testing.T) {
	for _, cmd := range []string{"plan", "run", "check", "demo", "status", "validate", "version", "state init", "completion"} {
		_, want, _ := run(t, append(strings.Fields(cmd), "--help")...)
		code, got, errOut := run(t, append([]string{"help"}, strings.Fields(cmd)...)...)
		if code != cli.ExitOK || got != want || errOut != "" {
			t.Errorf("help %s: exit %d, stderr %q, stdout differs from %s --help: %v", cmd, code, errOut, cmd, got != want)
		}
	}
	code, out, _ := run(t, "help")
	if code != cli.ExitOK || !strings.Contains(out, "Commands:") || !strings.Contains(out, "130") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "help", "state")
	if code != cli.ExitOK || !strings.Contains(out, "\nExamples:\n  amicopier state init") || !strings.Contains(out, "\n  130 ") {
		t.Errorf("help state: exit %d\n%s", code, out)
	}
	code, _, errOut := run(t, "help", "plna")
	if code != cli.ExitUsage || strings.Count(errOut, "\n") != 2 || !strings.Contains(errOut, `"plna"`) {
		t.Errorf("help plna: exit %d, stderr %q", code, errOut)
	}
}

// TestBadFlagsGetOneLineAndAHint: a bad command line gets what is wrong
// and a hint, never the whole help.
func TestBadFlagsGetOneLineAndAHint(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		line, hint string
	}{
		{[]string{"plan", "--bogus"}, "amicopier plan: unknown flag --bogus", "amicopier help plan"},
		{[]string{"run", "--only-amis", "ami-0123456789abcdef0"}, "amicopier run: unknown flag --only-amis", "Did you mean --only-ami?"},
		{[]string{"run", "--wait-timout", "1h"}, "amicopier run: unknown flag --wait-timout", "Did you mean --wait-timeout?"},
		{[]string{"run", "--wait-timeout", "soon"}, `amicopier run: --wait-timeout "soon": not a duration`, "amicopier help run"},
		{[]string{"status", "--runs", "many"}, `amicopier status: --runs "many": not a whole number`, "amicopier help status"},
		{[]string{"plan", "--config"}, "amicopier plan: --config FILE: the value is missing", "amicopier help plan"},
		{[]string{"run", "--shard", "9/2"}, `amicopier run: --shard "9/2"`, "amicopier help run"},
		{[]string{"state", "init", "--bogus"}, "amicopier state init: unknown flag --bogus", "amicopier help state init"},
		{[]string{"demo", "extra"}, `amicopier demo: unexpected argument "extra"`, "amicopier help demo"},
	} {
		code, out, errOut := run(t, tc.args...)
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		if code != cli.ExitUsage || len(lines) != 2 || !strings.HasPrefix(lines[0], tc.line) || !strings.Contains(lines[1], tc.hint) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant exit %d, %q then a hint with %q", tc.args, code, out, errOut, cli.ExitUsage, tc.line, tc.hint)
		}
	}
}
