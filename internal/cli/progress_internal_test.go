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
