// Command amicopier keeps encrypted copies of golden AMIs in every account
// of an AWS Organization. This file only wires the process to the CLI, or,
// under the AWS Lambda runtime, to the Lambda handler.
package main

import (
	"context"
	"io"
	"os"
	"runtime/debug"

	"golang.org/x/term"

	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/internal/lambdafn"
)

// version is stamped at build time (-ldflags "-X main.version=...").
var version = ""

func main() {
	if lambdafn.InLambda(os.Getenv) {
		// Under the Lambda runtime the binary serves the handler; Start
		// only returns when the cold start fails, having logged why (as
		// JSON) and reported it to the Runtime API.
		_ = lambdafn.Start(context.Background(), lambdafn.Deps{OpenStore: cli.OpenStore, Version: buildVersion()})
		os.Exit(1)
	}
	interactive := isTerminal(os.Stderr)
	var stderr io.Writer = os.Stderr
	if interactive {
		// Lines and the progress bar share the terminal.
		stderr = cli.NewTerminal(os.Stderr)
	}
	// Signals first: a configuration read from a FIFO or a terminal
	// must not make Ctrl-C ineffective.
	ctx, stop := cli.HandleSignals(context.Background(), stderr, os.Exit)
	code := cli.Main(ctx, os.Args[1:], cli.Env{
		Stdout:        os.Stdout,
		Stderr:        stderr,
		Getenv:        os.Getenv,
		Environ:       os.Environ,
		Version:       buildVersion(),
		Interactive:   interactive,
		TerminalWidth: terminalWidth(os.Stdout),
	})
	stop()
	os.Exit(code)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// terminalWidth is the width of the terminal f is, 0 when it is none.
func terminalWidth(f *os.File) int {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return 0
	}
	w, _, err := term.GetSize(fd)
	if err != nil {
		return 0
	}
	return w
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
