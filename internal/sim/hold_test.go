package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// TestHoldStopsCallsUntilReleased: while a hold lasts no call finishes,
// one started during the hold included; once every call waits at a point
// of the gate Hold reports the process quiet, and release lets them all go.
func TestHoldStopsCallsUntilReleased(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t, sim.WithLatency(sim.Latency{Describe: 20 * time.Millisecond}))
	src, err := c.Connector(srcAcct).Source(ctx, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	describe := func(done chan<- error) {
		_, err := src.DescribeImages(ctx, cloud.ImageQuery{TagKeys: []string{"Name"}})
		done <- err
	}
	before := make(chan error, 1)
	go describe(before)
	time.Sleep(5 * time.Millisecond) // inside the gate, in its first half
	release, quiet := c.Hold(ctx, time.Millisecond, time.Second)
	if !quiet {
		t.Fatal("Hold did not settle")
	}
	during := make(chan error, 1)
	go describe(during)
	select {
	case <-before:
		t.Fatal("a call finished during the hold")
	case <-during:
		t.Fatal("a call started during the hold finished")
	case <-time.After(100 * time.Millisecond):
	}
	release()
	for _, ch := range []chan error{before, during} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(time.Second):
			t.Fatal("a call did not finish after release")
		}
	}
}
