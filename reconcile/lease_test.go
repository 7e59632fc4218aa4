package reconcile

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/state"
)

// leaseRun builds a run of an engine on store and clock whose lease
// renewals tick when the test sends on the returned channel.
func leaseRun(t *testing.T, store state.Store, clock Clock) (*run, chan time.Time) {
	t.Helper()
	set := testSettings(t, "111111111111")
	set.LeaseTTL = 30 * time.Minute
	e, err := New(Options{Settings: set, Store: store, Clock: clock,
		Connect: func(context.Context, string) (cloud.Connector, error) { return nil, errors.New("no AWS in this test") },
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tick := make(chan time.Time) // unbuffered: a send returns once the renewer is waiting again
	e.ticker = func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} }
	return &run{e: e, id: "this-run", out: newTally()}, tick
}

type discardWarn struct{}

func (discardWarn) Warn(string, ...any) {}

// TestLeaseRenewalFailuresStopTheRunBeforeExpiry: renewals that keep
// failing (not with ErrLeaseLost) must not let the run outlive its lease:
// once the expiry is within a third of the lease's lifetime, the run's
// context is cancelled with a cause wrapping state.ErrLeaseLost, naming
// the scope. A failed renewal is not counted as a write.
func TestLeaseRenewalFailuresStopTheRunBeforeExpiry(t *testing.T) {
	// The simulator's clock, moved by hand; every renewal is throttled
	// past the store's retries.
	clock := sim.New(sim.WithStartTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)))
	mem := state.NewMemory(state.WithClock(clock.Now))
	ttl := 30 * time.Minute
	lease, err := mem.AcquireLease(context.Background(), "111111111111", "this-run", ttl)
	if err != nil {
		t.Fatal(err)
	}
	renewFails, err := state.NewFaulty(mem, state.FaultPlan{Seed: 1,
		Rules: []state.FaultRule{{Kind: state.FaultThrottling, Ops: []state.Op{state.OpRenewLease}, Rate: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	r, tick := leaseRun(t, renewFails, clock)
	ctx, stop := r.keepLease(context.Background(), lease, discardWarn{})
	defer stop()

	// send ticks, unless the renewer stopped (the run's context is done).
	send := func() {
		select {
		case tick <- clock.Now():
		case <-ctx.Done():
		}
	}

	// Failed renewals while the lease surely runs: the run goes on.
	clock.Advance(ttl / 3)
	send()
	send() // returns once the first tick is handled
	if ctx.Err() != nil {
		t.Fatalf("run stopped %v before its lease's expiry (%s) came near: %v", clock.Now(), lease.Expires, context.Cause(ctx))
	}

	// Within a third of the lifetime of the expiry: stop.
	clock.Advance(ttl/3 + time.Second)
	send()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the run kept working with a lease it could not renew, about to expire")
	}
	cause := context.Cause(ctx)
	if !errors.Is(cause, state.ErrLeaseLost) || !strings.Contains(cause.Error(), "scope 111111111111") {
		t.Fatalf("cause %v: want ErrLeaseLost naming the scope", cause)
	}
	if n := r.out.writes.Load(); n != 0 {
		t.Fatalf("%d failed renewals counted as writes", n)
	}
}

// TestLeaseRenewalSucceeds: a renewed lease moves the expiry on, and each
// renewal is one write.
func TestLeaseRenewalSucceeds(t *testing.T) {
	clock := sim.New(sim.WithStartTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)))
	mem := state.NewMemory(state.WithClock(clock.Now))
	ttl := 30 * time.Minute
	lease, err := mem.AcquireLease(context.Background(), "111111111111", "this-run", ttl)
	if err != nil {
		t.Fatal(err)
	}
	r, tick := leaseRun(t, mem, clock)
	ctx, stop := r.keepLease(context.Background(), lease, discardWarn{})
	for range 6 { // well past the first lease's expiry
		clock.Advance(ttl / 3)
		tick <- clock.Now()
	}
	tick <- clock.Now()
	if ctx.Err() != nil {
		t.Fatalf("run stopped: %v", context.Cause(ctx))
	}
	stop() // waits for the renewal in hand
	if n := r.out.writes.Load(); n != 7 {
		t.Fatalf("%d writes counted, want 7 renewals", n)
	}
}

// TestShareNeedsFollowTrimDeferred: share grants exactly the copy requests
// trimDeferred kept; it allocates no slots of its own.
func TestShareNeedsFollowTrimDeferred(t *testing.T) {
	set := testSettings(t, "111111111111")
	set.InFlightCopies = 1
	e, err := New(Options{Settings: set, Store: state.NewMemory(),
		Connect: func(context.Context, string) (cloud.Connector, error) { return nil, errors.New("no AWS in this test") }})
	if err != nil {
		t.Fatal(err)
	}
	src := func(id string) *sourceImage { return &sourceImage{img: cloud.Image{ID: id}} }
	copyPair := func(id string, kept bool) *pairWork {
		pw := &pairWork{src: src(id), key: state.PairKey{SourceImage: id}, dec: PairDecision{Copy: true}}
		if kept {
			pw.plan.Input.SourceImageID = id
		} else {
			pw.capped = "the in-flight cap"
		}
		return pw
	}
	r := &run{e: e}
	r.seen.work = []*regionWork{
		// The first copy's request was dropped (a failed copy ahead of it
		// in an earlier order, say); the second was kept.
		{account: "222222222222", region: "eu-west-1", pairs: []*pairWork{
			copyPair("ami-a", false), copyPair("ami-b", true),
			{src: src("ami-c"), key: state.PairKey{SourceImage: "ami-c"}, dec: PairDecision{Record: &state.Pair{}}},
		}},
		// The owner needs no grant.
		{account: "111111111111", region: "eu-west-1", pairs: []*pairWork{copyPair("ami-d", true)}},
	}
	got := r.shareNeeds()
	if len(got) != 1 || !got["ami-b"]["222222222222"] || len(got["ami-b"]) != 1 {
		t.Fatalf("share needs %v, want only ami-b for 222222222222", got)
	}
}
