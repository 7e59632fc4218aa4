package cli

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/schollz/progressbar/v3"

	"github.com/amicopier/amicopier/reconcile"
)

// Terminal is stderr when it is a terminal. The progress bar and every
// line written there (logs, warnings, the signal handler's words) share
// it: a line is printed above the bar, which is drawn again below it,
// instead of the two overwriting each other.
type Terminal struct {
	mu sync.Mutex
	w  io.Writer
	// line is what the bar left on the current line, "" when nothing.
	line string
}

// NewTerminal wraps a terminal's writer (os.Stderr).
func NewTerminal(w io.Writer) *Terminal { return &Terminal{w: w} }

// clearLine moves to the start of the line and erases it (ANSI EL).
const clearLine = "\r\x1b[K"

// Write prints whole lines above the bar.
func (t *Terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.line == "" {
		return t.w.Write(p)
	}
	if _, err := io.WriteString(t.w, clearLine); err != nil {
		return 0, err
	}
	n, err := t.w.Write(p)
	if err != nil {
		return n, err
	}
	if len(p) > 0 && p[len(p)-1] == '\n' {
		_, err = io.WriteString(t.w, t.line) // the bar again, below
	} else {
		t.line = "" // a partial line: the bar's next drawing follows it
	}
	return n, err
}

// barWriter is what the bar draws with: it remembers what the bar left
// on the current line, to draw it again below a line printed meanwhile.
type barWriter struct{ t *Terminal }

func (b barWriter) Write(p []byte) (int, error) {
	b.t.mu.Lock()
	defer b.t.mu.Unlock()
	n, err := b.t.w.Write(p)
	s := string(p[:n])
	if i := strings.LastIndexAny(s, "\r\n"); i >= 0 {
		s = s[i+1:]
		b.t.line = ""
	}
	if strings.TrimSpace(s) == "" {
		s = "" // the bar erasing itself
	}
	b.t.line += s
	return n, err
}

// barProgress draws one progress bar per phase of a run on an
// interactive terminal. The engine reports steps from many goroutines;
// the mutex keeps phases and steps in order.
type barProgress struct {
	w   io.Writer
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// newBarProgress draws on w; on a *Terminal, other lines go above the
// bar.
func newBarProgress(w io.Writer) *barProgress {
	if t, ok := w.(*Terminal); ok {
		w = barWriter{t}
	}
	return &barProgress{w: w}
}

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
		// Every step is drawn: a throttled bar shows a stale count until
		// the next step, which may be minutes away.
		progressbar.OptionThrottle(0),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
	)
	// Drawn at once, at 0: the first step may be minutes away (a wait).
	_ = p.bar.RenderBlank()
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

// finishLocked ends the current bar where it stands: a phase cut short
// (a signal, a lost lease) keeps its count, it is not filled up.
func (p *barProgress) finishLocked() {
	if p.bar != nil && !p.bar.IsFinished() {
		_ = p.bar.Exit()
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
