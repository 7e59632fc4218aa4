package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Interrupted is the cause of a command's context when SIGINT or SIGTERM
// stopped it: the command stops starting work, finishes recording, and
// the process exits with ExitCode.
type Interrupted struct {
	Signal os.Signal
}

func (e *Interrupted) Error() string {
	return "interrupted by " + signalName(e.Signal)
}

// ExitCode is 128 + the signal's number, as shells report it: 130 for
// SIGINT, 143 for SIGTERM.
func (e *Interrupted) ExitCode() int {
	if e.Signal == syscall.SIGTERM {
		return ExitTerminated
	}
	return ExitInterrupted
}

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// interruption returns the signal that stopped ctx, if one did.
func interruption(ctx context.Context) (*Interrupted, bool) {
	var in *Interrupted
	ok := errors.As(context.Cause(ctx), &in)
	return in, ok
}

// HandleSignals returns a context that the first SIGINT or SIGTERM
// cancels with an *Interrupted cause, saying so on stderr; a second one
// calls exit at once with its exit code (the user insists: nothing more
// is recorded). stop ends the handling and waits for its goroutine. The
// process installs it before anything else, reading the configuration
// included, so that no signal is ever lost or ignored.
func HandleSignals(parent context.Context, stderr io.Writer, exit func(code int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var first *Interrupted
		select {
		case s := <-sigs:
			first = &Interrupted{Signal: s}
		case <-done:
			return
		}
		again := "Press Ctrl-C again to exit at once."
		if first.Signal == syscall.SIGTERM {
			again = "Send SIGTERM again (or press Ctrl-C) to exit at once."
		}
		// Said before the command hears of it, so it comes first.
		fmt.Fprintf(stderr, "\namicopier: %s: stopping; no new work is started, and what was done is being recorded. %s\n",
			signalName(first.Signal), again)
		cancel(first)
		select {
		case s := <-sigs:
			second := &Interrupted{Signal: s}
			fmt.Fprintf(stderr, "amicopier: %s again: exiting at once; this run may leave no record (the next run repairs that).\n", signalName(s))
			exit(second.ExitCode())
		case <-done:
		}
	})
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		wg.Wait()
		cancel(nil)
	}
}
