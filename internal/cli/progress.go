package cli

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/amicopier/amicopier/reconcile"
)

// barProgress draws one progress bar per phase of a run on an
// interactive terminal. The engine reports steps from many goroutines;
// the mutex keeps phases and steps in order.
type barProgress struct {
	w   io.Writer
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

func newBarProgress(w io.Writer) *barProgress { return &barProgress{w: w} }

// Phase implements reconcile.Progress.
func (p *barProgress) Phase(name string, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
	if total <= 0 {
		return
	}
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-8s", name)),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
	)
}

// Step implements reconcile.Progress.
func (p *barProgress) Step(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

// Done finishes the last bar, so the report starts on a clean line.
func (p *barProgress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
}

func (p *barProgress) finishLocked() {
	if p.bar != nil && !p.bar.IsFinished() {
		_ = p.bar.Finish()
	}
	p.bar = nil
}

// logProgress is the non-interactive stand-in: a log line when a phase
// starts and at every tenth of it.
type logProgress struct {
	log *slog.Logger

	mu          sync.Mutex
	phase       string
	total, done int
	nextTenth   int
}

// Phase implements reconcile.Progress.
func (p *logProgress) Phase(name string, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.total, p.done, p.nextTenth = name, total, 0, 1
	p.log.Info("phase started", "phase", name, "steps", total)
}

// Step implements reconcile.Progress.
func (p *logProgress) Step(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if p.total <= 0 {
		return
	}
	if p.done*10 >= p.nextTenth*p.total {
		p.log.Info("progress", "phase", p.phase, "done", p.done, "of", p.total)
		for p.done*10 >= p.nextTenth*p.total {
			p.nextTenth++
		}
	}
}

// Done implements the finishing call the bar needs; logs need none.
func (p *logProgress) Done() {}

// runProgress is a reconcile.Progress that can be finished.
type runProgress interface {
	reconcile.Progress
	Done()
}

// newProgress chooses a bar on an interactive terminal, log lines
// otherwise, and nothing with --quiet.
func newProgress(env Env, log *slog.Logger, quiet bool) runProgress {
	switch {
	case quiet:
		return quietProgress{}
	case env.Interactive:
		return newBarProgress(env.Stderr)
	}
	return &logProgress{log: log}
}

// quietProgress shows nothing.
type quietProgress struct{}

func (quietProgress) Phase(string, int) {}
func (quietProgress) Step(int)          {}
func (quietProgress) Done()             {}
