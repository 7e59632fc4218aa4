package state

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCountingCountsRequests(t *testing.T) {
	ctx := context.Background()
	c := NewCounting(NewMemory())
	defer c.Close()

	p := mustPut(t, c, newPair(key("ami-1", "111122223333", "eu-west-1"), "999988887777", PairCopying))
	mustPut(t, c, newPair(key("ami-2", "111122223333", "eu-west-1"), "999988887777", PairFailed))
	if _, err := c.PutPair(ctx, newPair(p.Key, p.Source, p.Status)); !errors.Is(err, ErrConflict) {
		t.Fatalf("want a conflict, got %v", err)
	}
	mustPutRun(t, c, Run{ID: "r1", Scope: "org"})
	l, err := c.AcquireLease(ctx, "org", "run-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if l, err = c.RenewLease(ctx, l, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.ReleaseLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, p.Key)
	if _, err := c.UnsettledPairs(ctx, "999988887777"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RecentRuns(ctx, "org", 5); err != nil {
		t.Fatal(err)
	}

	wantW := WriteCounts{PairWrites: 3, RunWrites: 1, LeaseWrites: 3}
	if got := c.Writes(); got != wantW || got.Total() != 7 {
		t.Errorf("Writes() = %+v (total %d), want %+v (total 7)", got, got.Total(), wantW)
	}
	wantR := ReadCounts{PairReads: 1, UnsettledReads: 1, UnsettledItems: 2, RunReads: 1}
	if got := c.Reads(); got != wantR || got.Total() != 3 {
		t.Errorf("Reads() = %+v (total %d), want %+v (total 3)", got, got.Total(), wantR)
	}

	c.Reset()
	if w, r := c.Writes(), c.Reads(); w != (WriteCounts{}) || r != (ReadCounts{}) {
		t.Errorf("after Reset: writes %+v, reads %+v", w, r)
	}
}
