package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalExitsAtOnce: the first signal cancels the command's
// context with its cause and says so; the second exits at once, with the
// second signal's code, without waiting for the command.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	var out bytes.Buffer
	exited := make(chan int, 1)
	ctx, stop := HandleSignals(context.Background(), &out, func(code int) { exited <- code })
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGINT did not cancel the context")
	}
	in, ok := interruption(ctx)
	if !ok || in.Signal != os.Interrupt || in.ExitCode() != ExitInterrupted {
		t.Fatalf("cause %v", context.Cause(ctx))
	}
	select {
	case code := <-exited:
		t.Fatalf("exited (%d) on the first signal", code)
	default:
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != ExitTerminated {
			t.Errorf("exit %d after SIGTERM, want %d", code, ExitTerminated)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second signal did not exit")
	}
	// Read once the handler is done writing (exit is its last word).
	for _, want := range []string{"SIGINT: stopping", "Press Ctrl-C again to exit at once", "SIGTERM again: exiting at once"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in %q", want, out.String())
		}
	}
}
