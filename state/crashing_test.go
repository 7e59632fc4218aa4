package state

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrashingDiesAfterTheKthWrite: the K-th write lands, its caller gets
// ErrCrashed, crash runs once, and nothing after it reaches the store,
// reads included: what the table holds is what a killed process left.
func TestCrashingDiesAfterTheKthWrite(t *testing.T) {
	ctx := context.Background()
	const source = "999988887777"
	pair := func(n int) Pair {
		return Pair{Key: key(fmt.Sprintf("ami-%d", n), "111122223333", "eu-west-1"), Source: source, Status: PairCopying, Attempts: 1}
	}
	// The writes each case makes, in order; the case crashes after k.
	steps := []func(s Store) error{
		func(s Store) error { _, err := s.AcquireLease(ctx, source, "run-1", time.Minute); return err },
		func(s Store) error { _, err := s.PutPair(ctx, pair(0)); return err },
		func(s Store) error {
			_, err := s.PutGrants(ctx, Grants{Key: GrantsKey{Image: "ami-0", Scope: source}, Source: source, Region: "eu-west-1", Launch: []string{"111122223333"}})
			return err
		},
		func(s Store) error { _, err := s.PutPair(ctx, pair(1)); return err },
		func(s Store) error {
			return s.PutRun(ctx, Run{ID: "run-1", Scope: source, Status: "succeeded", Started: time.Now()})
		},
		func(s Store) error { return s.ReleaseLease(ctx, Lease{Scope: source, Holder: "run-1"}) },
	}
	type point struct {
		k    int
		lost bool
	}
	var points []point
	for k := 0; k <= len(steps); k++ {
		points = append(points, point{k: k})
		if k > 0 {
			points = append(points, point{k: k, lost: true})
		}
	}
	for _, pt := range points {
		k := pt.k
		cp := CrashPoint{Write: k, Lost: pt.lost}
		t.Run(cp.String(), func(t *testing.T) {
			inner := NewMemory()
			var crashes atomic.Int32
			c, err := NewCrashing(inner, cp, func() { crashes.Add(1) })
			if err != nil {
				t.Fatal(err)
			}
			for i, step := range steps {
				err := step(c)
				switch n := i + 1; {
				case k == 0 || n < k:
					if err != nil {
						t.Fatalf("write %d before the crash: %v", n, err)
					}
				default:
					if !errors.Is(err, ErrCrashed) {
						t.Fatalf("write %d (crash at %s): %v, want ErrCrashed", n, cp, err)
					}
				}
			}
			if k > 0 {
				if _, _, err := c.GetPair(ctx, pair(0).Key); !errors.Is(err, ErrCrashed) {
					t.Errorf("a read after the crash: %v, want ErrCrashed", err)
				}
				if _, err := c.UnsettledPairs(ctx, source); !errors.Is(err, ErrCrashed) {
					t.Errorf("a read after the crash: %v, want ErrCrashed", err)
				}
				if at, ok := c.Crashed(); !ok || at.N != k {
					t.Errorf("Crashed() = %v %v, want write %d", at, ok, k)
				}
			}
			wantCrashes := int32(0)
			if k > 0 {
				wantCrashes = 1
			}
			if got := crashes.Load(); got != wantCrashes {
				t.Errorf("crash ran %d times, want %d", got, wantCrashes)
			}
			seen := len(steps)
			if k > 0 {
				seen = k
			}
			if c.Writes() != seen || len(c.Log()) != seen {
				t.Errorf("Writes() %d, log %d, want %d", c.Writes(), len(c.Log()), seen)
			}
			// What the store holds: the writes before the fatal one,
			// and the fatal one unless it was lost.
			landed := len(steps)
			if k > 0 {
				landed = k
				if pt.lost {
					landed--
				}
			}
			_, held := inner.AcquireLease(ctx, source, "someone-else", time.Minute)
			wantHeld := landed >= 1 && landed < 6 // taken, and never released
			var lh *LeaseHeldError
			if errors.As(held, &lh) != wantHeld {
				t.Errorf("lease held %v, want %v (%v)", held != nil, wantHeld, held)
			}
			if _, ok, _ := inner.GetPair(ctx, pair(0).Key); ok != (landed >= 2) {
				t.Errorf("pair 0 stored %v, want %v", ok, landed >= 2)
			}
			gs, _ := inner.GrantsOf(ctx, source)
			if (len(gs) == 1) != (landed >= 3) {
				t.Errorf("%d grants records, want them written: %v", len(gs), landed >= 3)
			}
			if _, ok, _ := inner.GetPair(ctx, pair(1).Key); ok != (landed >= 4) {
				t.Errorf("pair 1 stored %v, want %v", ok, landed >= 4)
			}
			runs, _ := inner.RecentRuns(ctx, source, 5)
			if (len(runs) == 1) != (landed >= 5) {
				t.Errorf("%d runs recorded, want the run recorded: %v", len(runs), landed >= 5)
			}
		})
	}
}

func TestCrashingLogsWrites(t *testing.T) {
	ctx := context.Background()
	c, err := NewCrashing(NewMemory(), CrashPoint{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AcquireLease(ctx, "999988887777", "run-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPairs(ctx, []PairKey{key("ami-a", "111122223333", "eu-west-1")}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutRun(ctx, Run{ID: "run-1", Scope: "999988887777", Status: "succeeded", Started: time.Now()}); err != nil {
		t.Fatal(err)
	}
	log := c.Log()
	want := []Write{{N: 1, Op: OpAcquireLease, Subject: "999988887777", What: "run-1"}, {N: 2, Op: OpPutRun, Subject: "run-1", What: "succeeded"}}
	if len(log) != len(want) || log[0] != want[0] || log[1] != want[1] {
		t.Fatalf("log %v, want %v (reads are not writes)", log, want)
	}
	if _, ok := c.Crashed(); ok {
		t.Error("a store that never crashes crashed")
	}
}

func TestNewCrashingRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		inner Store
		at    CrashPoint
	}{
		{"no store", nil, CrashPoint{Write: 1}},
		{"negative write", NewMemory(), CrashPoint{Write: -1}},
		{"lost, but no write", NewMemory(), CrashPoint{Lost: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewCrashing(tc.inner, tc.at, nil); !errors.Is(err, ErrInvalid) {
				t.Fatalf("NewCrashing: %v, want ErrInvalid", err)
			}
		})
	}
}

// TestCrashingKill: a crash decided elsewhere (before an AWS call) stops
// every later call from reaching the store, and names the last write
// that did.
func TestCrashingKill(t *testing.T) {
	ctx := context.Background()
	inner := NewMemory()
	c, err := NewCrashing(inner, CrashPoint{}, func() { t.Error("Kill ran the crash function") })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AcquireLease(ctx, "999988887777", "run-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	c.Kill()
	c.Kill() // dying twice is dying once
	if err := c.ReleaseLease(ctx, Lease{Scope: "999988887777", Holder: "run-1"}); !errors.Is(err, ErrCrashed) {
		t.Fatalf("release after the kill: %v, want ErrCrashed", err)
	}
	if _, err := c.RecentRuns(ctx, "999988887777", 1); !errors.Is(err, ErrCrashed) {
		t.Fatalf("read after the kill: %v, want ErrCrashed", err)
	}
	if at, ok := c.Crashed(); !ok || at.N != 1 || at.Op != OpAcquireLease {
		t.Fatalf("Crashed() = %v %v, want the lease's write", at, ok)
	}
	var held *LeaseHeldError
	if _, err := inner.AcquireLease(ctx, "999988887777", "run-2", time.Minute); !errors.As(err, &held) {
		t.Fatalf("the dead run's lease was released: %v", err)
	}
}
