package cli

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestBarProgressDrawsEachPhase(t *testing.T) {
	var buf bytes.Buffer
	p := newBarProgress(&buf)
	p.Phase("observe", 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Step(1)
		}()
	}
	wg.Wait()
	p.Phase("copy", 0) // nothing to draw
	p.Step(1)
	p.Phase("share", 2)
	p.Step(1)
	p.Done()
	out := buf.String()
	for _, want := range []string{"observe", "4/4", "share"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar output lacks %q:\n%q", want, out)
		}
	}
}

func TestLogProgressLogsTenths(t *testing.T) {
	var buf bytes.Buffer
	p := &logProgress{log: slog.New(slog.NewTextHandler(&buf, nil))}
	p.Phase("observe", 100)
	for range 100 {
		p.Step(1)
	}
	p.Phase("copy", 0)
	p.Step(3)
	p.Done()
	if n := strings.Count(buf.String(), "msg=progress"); n != 10 {
		t.Errorf("%d progress lines for 100 steps, want 10:\n%s", n, buf.String())
	}
	if n := strings.Count(buf.String(), `msg="phase started"`); n != 2 {
		t.Errorf("%d phase lines, want 2", n)
	}
}

// TestBarCutShortKeepsItsCount: a phase the run stops in the middle of
// (a signal) is not drawn as complete.
func TestBarCutShortKeepsItsCount(t *testing.T) {
	var buf bytes.Buffer
	p := newBarProgress(&buf)
	p.Phase("copy", 120)
	p.Step(16)
	p.Done()
	if out := buf.String(); !strings.Contains(out, "(16/120)") || strings.Contains(out, "(120/120)") || strings.Contains(out, "100%") {
		t.Errorf("a bar cut short at 16 of 120:\n%q", out)
	}
}

// TestTerminalPrintsLinesAboveTheBar: a line written while the bar is
// drawn erases the bar's line, is printed, and the bar is drawn again
// below it.
func TestTerminalPrintsLinesAboveTheBar(t *testing.T) {
	var buf bytes.Buffer
	term := NewTerminal(&buf)
	bar := barWriter{term}
	_, _ = bar.Write([]byte("\rcopy 10% (1/10)"))
	_, _ = term.Write([]byte("level=WARN msg=x\n"))
	if got, want := buf.String(), "\rcopy 10% (1/10)"+clearLine+"level=WARN msg=x\n"+"copy 10% (1/10)"; got != want {
		t.Errorf("screen bytes %q, want %q", got, want)
	}
	// Once the bar has ended its line, lines go out as they are.
	_, _ = bar.Write([]byte("\n"))
	buf.Reset()
	_, _ = term.Write([]byte("after\n"))
	if buf.String() != "after\n" {
		t.Errorf("after the bar: %q", buf.String())
	}
}

// TestBarShowsTheLatestCount: every step is drawn at once; a step that
// follows another closely is not left undrawn until the next one.
func TestBarShowsTheLatestCount(t *testing.T) {
	var buf bytes.Buffer
	p := newBarProgress(&buf)
	p.Phase("observe", 25)
	for range 3 {
		p.Step(1)
	}
	if out := buf.String(); !strings.Contains(out[strings.LastIndex(out, "\r"):], "(3/25)") {
		t.Errorf("the bar does not show 3 of 25 after three steps:\n%q", out)
	}
	p.Done()
}

// TestBarIsDrawnWhenItsPhaseStarts: a phase whose first step is far away
// (the wait for copies) shows its bar, at 0 of its total, at once.
func TestBarIsDrawnWhenItsPhaseStarts(t *testing.T) {
	var buf bytes.Buffer
	p := newBarProgress(&buf)
	p.Phase("wait", 6)
	if out := buf.String(); !strings.Contains(out, "wait") || !strings.Contains(out, "(0/6)") {
		t.Errorf("no bar at 0 of 6 when the phase starts:\n%q", out)
	}
	p.Done()
}
