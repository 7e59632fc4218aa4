// Package cli is amicopier's command line: parsing flags, wiring the
// engine to its backends, printing reports, and choosing exit codes. The
// main package only hands it the process environment.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Exit codes. They are part of the interface: schedulers and CI pipelines
// branch on them.
const (
	// ExitOK: success, and with --detailed-exitcode, no drift.
	ExitOK = 0
	// ExitError: the command could not do its job.
	ExitError = 1
	// ExitDrift: with --detailed-exitcode, drift was found.
	ExitDrift = 2
	// ExitPartial: the run reconciled what it could, but some accounts
	// were unreachable or some actions failed.
	ExitPartial = 3
	// ExitUsage: the command line itself is wrong.
	ExitUsage = 64
	// ExitInterrupted: SIGINT (Ctrl-C) stopped the command (128 + 2, as
	// shells report it).
	ExitInterrupted = 130
	// ExitTerminated: SIGTERM stopped the command (128 + 15).
	ExitTerminated = 143
)

// Env is the process environment the CLI runs in.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Environ lists the environment as os.Environ does, for validate to
	// report AMICOPIER_* names that nothing reads. Nil skips that check,
	// unless Getenv is nil too: then both are the process's.
	Environ func() []string
	// Version is the build's version string.
	Version string
	// Interactive is true when stderr is a terminal (progress bars,
	// human-readable logs).
	Interactive bool
	// TerminalWidth is the width of the terminal stdout writes to, 0
	// when stdout is not a terminal (tables then fit $COLUMNS or 100).
	TerminalWidth int

	// inspect, when set, receives a command's flag set instead of
	// parsing it, and the command stops there: shell completion lists
	// the flags of every command this way.
	inspect func(*flag.FlagSet)
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env Env) int
}

func commands() []command {
	return []command{
		{"completion", "print a shell completion script: amicopier completion bash|zsh|fish", runCompletion},
		{"demo", "reconcile a simulated organisation end to end (no AWS needed)", runDemo},
		{"help", "show the help of a command: amicopier help plan", nil},
		{"plan", "dry run: observe AWS and print the drift report, changing nothing", runPlan},
		{"check", "preflight: find the KMS and role problems that would make copies fail, with the fix", runCheck},
		{"run", "reconcile: share the source AMIs and start the missing encrypted copies", runRun},
		{"state", "manage the state store: `state init` creates the DynamoDB table or the state file", runState},
		{"status", "show recorded progress: latest runs, copies in progress, failing and stuck pairs", runStatus},
		{"validate", "check a configuration file offline and explain every problem", runValidate},
		{"version", "print the version, commit, Go version and platform of this build", runVersion},
	}
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
		if env.Environ == nil {
			env.Environ = os.Environ
		}
	}
	if len(args) == 0 {
		usage(env.Stderr)
		return ExitUsage
	}
	stopProfile, err := startCPUProfile(env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "amicopier: %v\n", err)
		return ExitError
	}
	defer stopProfile()
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		usage(env.Stdout)
		return ExitOK
	case "help":
		return runHelp(ctx, rest, env)
	case "--version", "-version":
		return runVersion(ctx, rest, env)
	}
	for _, c := range commands() {
		if c.name == name && c.run != nil {
			code := c.run(ctx, rest, env)
			if in, ok := interruption(ctx); ok {
				// Whatever the command made of it, a signal stopped it.
				return in.ExitCode()
			}
			return code
		}
	}
	unknownCommand(env, name)
	return ExitUsage
}

// runHelp is `amicopier help [COMMAND [SUBCOMMAND]]`: the command's
// --help.
func runHelp(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		usage(env.Stdout)
		return ExitOK
	}
	for _, c := range commands() {
		if c.name == args[0] && c.run != nil {
			return c.run(ctx, append(slices.Clone(args[1:]), "--help"), env)
		}
	}
	unknownCommand(env, args[0])
	return ExitUsage
}

func unknownCommand(env Env, name string) {
	fmt.Fprintf(env.Stderr, "amicopier: unknown command %q\n", name)
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	fmt.Fprintf(env.Stderr, "The commands are %s; 'amicopier help' explains them.\n", strings.Join(names, ", "))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "amicopier keeps encrypted copies of golden AMIs in every account of an AWS Organization.")
	fmt.Fprintln(w, "\nUsage: amicopier <command> [flags]")
	fmt.Fprintln(w, "       amicopier help <command>")
	fmt.Fprintln(w, "       amicopier --version")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'amicopier help <command>' (or 'amicopier <command> --help') for its flags, examples and exit codes.")
	fmt.Fprintln(w, "\nExamples:")
	fmt.Fprintln(w, "  amicopier demo                              # the whole loop on a simulated organisation")
	fmt.Fprintln(w, "  amicopier validate --config config.yaml")
	fmt.Fprintln(w, "  amicopier plan --config config.yaml --output html > drift.html")
	fmt.Fprintln(w, "  amicopier run --config config.yaml --wait")
	writeExitCodes(w, []exitDoc{
		{ExitOK, "success (with plan --detailed-exitcode: and no drift)"},
		{ExitError, "error: the command could not do its job"},
		{ExitDrift, "drift found (plan --detailed-exitcode), or problems found (check --detailed-exitcode)"},
		{ExitPartial, "partial: some accounts unreachable or some actions failed, the rest reconciled"},
		exitDocUsage, exitDocInt, exitDocTerm,
	})
}

// listFlag collects a repeatable, comma-separated flag. An empty or
// blank value, or an empty item between commas, is refused: it is what an
// unset shell variable gives (--only-ami "$AMI"), and dropping it would
// widen a scope from what was meant to everything.
type listFlag struct {
	name string // the flag's name, for messages
	what string // what one item is ("AMI id")
	ids  []string
}

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.ids, ",")
}

// Set implements flag.Value.
func (l *listFlag) Set(v string) error {
	parts := strings.Split(v, ",")
	for _, part := range parts {
		if strings.TrimSpace(part) == "" {
			return fmt.Errorf("--%s %q: empty value (an unset shell variable?): name at least one %s, or leave --%s out", l.name, v, l.what, l.name)
		}
	}
	for _, part := range parts {
		l.ids = append(l.ids, strings.TrimSpace(part))
	}
	return nil
}

func fail(env Env, cmd string, err error) int {
	fmt.Fprintf(env.Stderr, "amicopier %s: %v\n", cmd, err)
	return ExitError
}
