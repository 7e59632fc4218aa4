package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
)

// fastWait looks every millisecond or so.
var fastWait = reconcile.WaitOptions{Timeout: 5 * time.Second, MinDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}

// A run tracks the copies it starts, and WaitForCopies waits for them,
// here on the simulator's clock, as the demo does.
func TestWaitForCopies(t *testing.T) {
	w := newWorld(t, 2)
	w.cfg.Targets.Regions = []string{euWest}
	w.image(euWest, "web", 1, "*")
	w.image(euWest, "api", 1, accountID(1))
	res, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, Trigger: "test", TrackCopies: true})
	must(t, err)
	if len(res.Started) != 3 || reconcile.DistinctCopies(res.Started) != 3 {
		t.Fatalf("started %+v, want the 3 copies", res.Started)
	}
	// Pending: a short wait times out and says where each copy stands.
	short := fastWait
	short.Timeout = 20 * time.Millisecond
	out, err := reconcile.WaitForCopies(context.Background(), w.connector(), res.Started, 4, short)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("waiting on pending copies: %v", err)
	}
	for _, o := range out {
		if o.State != cloud.ImagePending {
			t.Errorf("copy %s: %q, want pending", o.ImageID, o.State)
		}
	}
	// Time passes as the wait sleeps (the demo's way): every copy ends.
	finished := 0
	o := fastWait
	o.Finished = func(n int) { finished += n }
	o.Sleep = func(context.Context, time.Duration) error { w.cloud.Advance(time.Hour); return nil }
	out, err = reconcile.WaitForCopies(context.Background(), w.connector(), res.Started, 1, o)
	must(t, err)
	for _, oc := range out {
		if oc.State != cloud.ImageAvailable {
			t.Errorf("copy %s of %s in %s: %q, want available", oc.ImageID, oc.SourceImageID, oc.Account, oc.State)
		}
	}
	if finished != 3 {
		t.Errorf("%d copies told finished, want 3", finished)
	}
	// Without TrackCopies a run keeps no list.
	w.image(euWest, "db", 1, accountID(2))
	if res := w.run(reconcile.ModeRun); res.Started != nil {
		t.Errorf("an untracked run listed %d copies", len(res.Started))
	}
}

// 450 copies in one account and Region (in_flight_copies may be far above
// EC2's 200 filter values): one look is 3 DescribeImages calls, the port
// splitting the ids; a copy listed twice is reported twice.
func TestWaitForCopiesInChunks(t *testing.T) {
	w := newWorld(t, 1)
	var started []reconcile.StartedCopy
	for i := range 450 {
		im := w.cloud.AddImage(accountID(1), euWest, sim.ImageSpec{Name: fmt.Sprintf("copy-%d", i), State: cloud.ImageAvailable})
		started = append(started, reconcile.StartedCopy{Account: accountID(1), Region: euWest, ImageID: im.ID})
	}
	started = append(started, started[7])
	conn := w.connector()
	out, err := reconcile.WaitForCopies(context.Background(), conn, started, 4, fastWait)
	must(t, err)
	if len(out) != 451 {
		t.Fatalf("%d outcomes, want one per started copy (451)", len(out))
	}
	if n := conn.CallCounts()[cloud.OpDescribeImages]; n != 3 {
		t.Errorf("%d DescribeImages calls, want 3 (200, 200 and 50 ids)", n)
	}
}

// A copy seen pending and then deregistered (by a person, or another
// run's prune) is no longer listed: the wait ends, not at its timeout; a
// copy never listed yet is waited for.
func TestWaitForCopiesDeregisteredAndUnseen(t *testing.T) {
	w := newWorld(t, 1, sim.WithListingDelay(30*time.Minute))
	gone := w.cloud.AddImage(accountID(1), euWest, sim.ImageSpec{Name: "gone", State: cloud.ImagePending})
	started := []reconcile.StartedCopy{{Account: accountID(1), Region: euWest, ImageID: gone.ID}}
	looks := 0
	o := fastWait
	o.Sleep = func(context.Context, time.Duration) error {
		looks++
		if looks == 1 {
			_, err := w.cloud.Client(accountID(1), euWest).DeregisterImage(context.Background(), gone.ID, true)
			return err
		}
		return nil
	}
	out, err := reconcile.WaitForCopies(context.Background(), w.connector(), started, 1, o)
	must(t, err)
	if out[0].State != cloud.ImageDeregistered {
		t.Fatalf("outcome %+v, want deregistered", out[0])
	}

	// A copy CopyImage just made, not listed for 30 minutes: waited for.
	src := w.image(euWest, "web", 1, accountID(1))
	w.cloud.ShareImage(srcAccount, euWest, src.ID, accountID(1))
	w.cloud.GrantVolumePermission(srcAccount, euWest, src.BlockDevices[0].SnapshotID, accountID(1))
	id, err := w.cloud.Client(accountID(1), euWest).CopyImage(context.Background(), cloud.CopyImageInput{
		SourceImageID: src.ID, SourceRegion: euWest, Name: "web-copy", Encrypted: true})
	must(t, err)
	started = []reconcile.StartedCopy{{Account: accountID(1), Region: euWest, ImageID: id}}
	short := fastWait
	short.Timeout = 20 * time.Millisecond
	out, err = reconcile.WaitForCopies(context.Background(), w.connector(), started, 1, short)
	if err == nil || out[0].State != "" {
		t.Fatalf("an unlisted copy: %+v, %v; want not seen, and the wait timed out", out, err)
	}
}
