package bench

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/state"
)

// The engine's own heap, apart from the simulator's world.
//
// The engine and the simulator share one heap, and the simulator's world
// (a million images in the largest scenarios) is most of it. Subtracting
// the simulator's settled heap from the heap sampled during a run is not
// enough: the sample then holds the garbage the collector allows for the
// whole heap (GOGC), and the garbage made while a collection marks (which
// that collection counts live). So the memory run measures at quiet
// moments instead: it holds every simulated call at the next point of the
// gate it reaches (sim.Cloud.Hold: entering the gate, taking effect,
// leaving it), until no call is between points. The moment is an ordinary
// one: a call that had not taken effect has made no answer, one that had
// keeps its answer in hand, and a worker between calls (planning what it
// described) finishes and stops at its next call. Nothing allocates while
// one collection then finds exactly what is live. The engine's heap at
// that moment is the live heap minus the simulator's: its world as
// settled before the run, plus what it grew by during the run (the copies
// it made, its per-account buckets and counters), measured once the run is
// over and the engine gone.
//
// What this leaves out: the answer a worker is planning when the hold
// comes (it finishes first); planning takes microseconds per Region
// against 25 ms per call, so few workers are caught at it. What it counts
// that production would not: an answer still travelling back (the
// simulator makes it before the second half of the latency; the SDK
// decodes it once it has arrived).
//
// Samples are taken every so often (spaced so that sampling costs at most
// about a third of the run) and at the moments the engine holds the most
// of the run: when observation is over, when the copy phase starts, and
// when the run record is written (the report made, the work not yet
// dropped).

// quietSampler takes the memory run's samples.
type quietSampler struct {
	cloud *sim.Cloud
	// profile, when set, receives the heap profile of the largest sample.
	profile io.Writer

	mu      sync.Mutex
	samples int
	peak    uint64 // the largest live heap sampled
	peakAt  string // which sample it was
	prof    bytes.Buffer
	start   time.Time
	spent   time.Duration // time spent sampling
	done    chan struct{}
	wg      sync.WaitGroup
}

func newQuietSampler(c *sim.Cloud, profile io.Writer) *quietSampler {
	return &quietSampler{cloud: c, profile: profile, done: make(chan struct{})}
}

// startPeriodic samples in the background until stop; a sample waits
// for the one before to have cost at most a third of the time since.
func (q *quietSampler) startPeriodic(ctx context.Context) {
	q.start = time.Now()
	q.wg.Go(func() {
		next := 200 * time.Millisecond
		for {
			select {
			case <-q.done:
				return
			case <-ctx.Done():
				return
			case <-time.After(next):
			}
			cost := q.sample(ctx, "periodic")
			next = max(200*time.Millisecond, 2*cost)
		}
	})
}

func (q *quietSampler) stop() {
	close(q.done)
	q.wg.Wait()
}

// sample holds the calls, collects, and reads the live heap; it returns
// what it cost.
func (q *quietSampler) sample(ctx context.Context, at string) time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	t0 := time.Now()
	release, _ := q.cloud.Hold(ctx, time.Millisecond, 2*time.Second)
	runtime.GC()
	live := readHeap().live
	if live > q.peak {
		q.peak, q.peakAt = live, at
		if at == "periodic" {
			q.peakAt = "periodic, " + time.Since(q.start).Round(10*time.Millisecond).String() + " into the run"
		}
		if q.profile != nil {
			q.prof.Reset()
			_ = pprof.WriteHeapProfile(&q.prof)
		}
	}
	release()
	q.samples++
	cost := time.Since(t0)
	q.spent += cost
	return cost
}

// writeProfile writes the heap profile of the largest sample.
func (q *quietSampler) writeProfile() error {
	if q.profile == nil || q.prof.Len() == 0 {
		return nil
	}
	_, err := q.profile.Write(q.prof.Bytes())
	return err
}

// sampledStore samples the heap when the run record is written: the
// engine has made its report and still holds the run's work.
type sampledStore struct {
	*state.Counting
	sampler *quietSampler
}

func (s sampledStore) PutRun(ctx context.Context, r state.Run) error {
	s.sampler.sample(ctx, "run record")
	return s.Counting.PutRun(ctx, r)
}

// settledLive collects twice and returns the live heap.
func settledLive() uint64 {
	runtime.GC()
	runtime.GC()
	return readHeap().live
}
