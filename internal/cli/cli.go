// Package cli is amicopier's command line: parsing flags, wiring the
// engine to its backends, printing reports, and choosing exit codes. The
// main package only hands it the process environment.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
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
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env Env) int
}

func commands() []command {
	return []command{
		{"demo", "reconcile a simulated organisation end to end (no AWS needed)", runDemo},
		{"plan", "dry run: observe AWS and print the drift report, changing nothing", runPlan},
		{"check", "preflight: find the KMS and role problems that would make copies fail, with the fix", runCheck},
		{"run", "reconcile: share the source AMIs and start the missing encrypted copies", runRun},
		{"state", "manage the state store: `state init` creates the DynamoDB table or the state file", runState},
		{"status", "show recorded progress: latest runs, copies in progress, failing and stuck pairs", runStatus},
		{"validate", "check a configuration file offline and explain every problem", runValidate},
		{"version", "print the version", runVersion},
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
	case "-h", "-help", "--help", "help":
		usage(env.Stdout)
		return ExitOK
	case "--version":
		return runVersion(ctx, nil, env)
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, rest, env)
		}
	}
	fmt.Fprintf(env.Stderr, "amicopier: unknown command %q\n\n", name)
	usage(env.Stderr)
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "amicopier keeps encrypted copies of golden AMIs in every account of an AWS Organization.")
	fmt.Fprintln(w, "\nUsage: amicopier <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'amicopier <command> --help' for the flags of a command.")
	fmt.Fprintln(w, "\nExit codes: 0 success (no drift with --detailed-exitcode), 1 error, 2 drift or findings (with --detailed-exitcode),")
	fmt.Fprintln(w, "3 partial failure (some accounts unreachable or actions failed), 64 bad command line.")
}

// newFlags builds a command's flag set with a usage text that lists every
// flag; parse errors are reported by the caller.
func newFlags(name, synopsis, description string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: amicopier %s %s\n\n%s\n\nFlags:\n", name, synopsis, description)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; it returns an exit code and false when the
// command must stop (help asked for, or a bad flag).
func parseFlags(fs *flag.FlagSet, args []string, env Env) (int, bool) {
	// The flag package prints the usage itself on any parse error and on
	// -help; print it once, where it belongs, instead.
	usage := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		// Help was asked for: print it on stdout.
		fs.SetOutput(env.Stdout)
		fs.Usage()
		return ExitOK, false
	case err != nil:
		// The flag package printed what is wrong; the usage follows.
		fs.Usage()
		return ExitUsage, false
	case fs.NArg() > 0:
		fmt.Fprintf(env.Stderr, "amicopier %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return ExitUsage, false
	}
	return ExitOK, true
}

// logFlags are the logging flags every working command has.
type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flag.FlagSet, defaultLevel string) {
	fs.StringVar(&l.level, "log-level", defaultLevel, "log level: debug, info, warn or error")
	fs.StringVar(&l.format, "log-format", "auto", "log format: text, json, or auto (text on a terminal, JSON otherwise)")
}

func (l *logFlags) logger(env Env) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	case "auto":
		if env.Interactive {
			return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text, json or auto", l.format)
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

func runVersion(_ context.Context, args []string, env Env) int {
	fs := newFlags("version", "", "Print the version of this build.", env)
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	fmt.Fprintf(env.Stdout, "amicopier %s\n", env.Version)
	return ExitOK
}
