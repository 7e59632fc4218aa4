package state

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDynamoDBLeaseRead: Lease reports the lease as the table holds it:
// none, held, still there once expired, gone once released.
func TestDynamoDBLeaseRead(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	d := openDynamoDBOn(t, newDynamoTable(t), clock.Now)
	const scope = "111111111111"
	if _, ok, err := d.Lease(ctx, scope); err != nil || ok {
		t.Fatalf("Lease before any run: ok %v, err %v; want none", ok, err)
	}
	taken, err := d.AcquireLease(ctx, scope, "run-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := d.Lease(ctx, scope)
	if err != nil || !ok || got.Holder != "run-a" || got.Scope != scope || !got.Expires.Equal(taken.Expires) {
		t.Fatalf("Lease while held: %+v %v %v, want %+v", got, ok, err, taken)
	}
	clock.Advance(2 * time.Minute)
	if got, ok, err := d.Lease(ctx, scope); err != nil || !ok || got.Holder != "run-a" {
		t.Fatalf("Lease once expired: %+v %v %v, want run-a's, still there", got, ok, err)
	}
	if err := d.ReleaseLease(ctx, taken); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.Lease(ctx, scope); err != nil || ok {
		t.Fatalf("Lease after the release: ok %v, err %v; want none", ok, err)
	}
	if _, _, err := d.Lease(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Lease of no scope: %v, want ErrInvalid", err)
	}
}
