package awsapi

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// startedCopies adds n pending images to account as if this connector
// had started them (CopyImage through the fake would cost n mutating
// calls), each finishing after an hour of simulated time.
func startedCopies(t *testing.T, f *fixture, conn *Connector, account string, n int) []string {
	t.Helper()
	if _, err := conn.Target(context.Background(), account, region1); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		im := f.cloud.AddImage(account, region1, sim.ImageSpec{
			Name: fmt.Sprintf("copy-%d", i), State: cloud.ImagePending, CompletesAt: f.cloud.Now().Add(time.Hour),
		})
		ids[i] = im.ID
		conn.noteCopy(StartedCopy{Account: account, Region: region1, ImageID: im.ID, SourceImageID: "ami-00000001"})
	}
	return ids
}

// TestWaitForCopiesChunksAndPaginates: 450 copies in one account and
// Region (in_flight_copies may be far above EC2's 200 filter values), one
// started twice; the fake answers 100 images a page.
func TestWaitForCopiesChunksAndPaginates(t *testing.T) {
	c := newCloud(t)
	f := newFixture(t, c, awsfake.Options{PageSize: 100}, nil)
	ctx := context.Background()
	conn := f.sess.Connect(runID, ConnectOptions{})
	ids := startedCopies(t, f, conn, acctA, 450)
	conn.noteCopy(StartedCopy{Account: acctA, Region: region1, ImageID: ids[7], SourceImageID: "ami-00000001"})
	c.Advance(2 * time.Hour)

	out, err := conn.WaitForCopies(ctx, WaitOptions{Timeout: 10 * time.Second, MinDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 451 {
		t.Errorf("%d outcomes, want one per started copy (451)", len(out))
	}
	for _, o := range out {
		if o.State != cloud.ImageAvailable {
			t.Fatalf("copy %s: %q, want available", o.ImageID, o.State)
		}
	}
	seen := map[string]int{}
	reqs := f.requests("DescribeImages")
	sent := map[string]bool{}
	for _, r := range reqs {
		// A request the SDK resent (throttled, say) asks nothing new.
		form := r.Form.Encode()
		if sent[form] {
			continue
		}
		sent[form] = true
		for _, flt := range awsfake.Filters(r.Form) {
			if flt.Name != "image-id" {
				t.Errorf("filter %s, want image-id only", flt.Name)
				continue
			}
			if len(flt.Values) > cloud.MaxFilterValues {
				t.Errorf("one filter holds %d values, EC2 takes %d", len(flt.Values), cloud.MaxFilterValues)
			}
			if r.Form.Get("NextToken") == "" {
				for _, v := range flt.Values {
					seen[v]++
				}
			}
		}
	}
	if len(seen) != 450 {
		t.Errorf("%d distinct ids asked for, want 450", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s asked for %d times in one look, want once", id, n)
		}
	}
	// 3 chunks (200, 200, 50) of 2, 2 and 1 pages of 100. Distinct
	// requests are counted: the SDK may resend one whose connection the
	// server closed under a busy machine, which changes nothing asked.
	distinct := map[string]bool{}
	for _, r := range reqs {
		vals := awsfake.Filters(r.Form)[0].Values
		distinct[r.Form.Get("NextToken")+"|"+vals[0]+"|"+strconv.Itoa(len(vals))] = true
	}
	if len(distinct) != 5 {
		t.Errorf("%d distinct describes, want 5 (3 chunks, every page)", len(distinct))
	}
}

// TestWaitForCopiesCountsADeregisteredCopyAsFinished: a copy seen pending
// and then deregistered (by a person, or another run's prune) is no longer
// listed; the wait must end, not run to its timeout.
func TestWaitForCopiesCountsADeregisteredCopyAsFinished(t *testing.T) {
	c := newCloud(t)
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	conn := f.sess.Connect(runID, ConnectOptions{})
	ids := startedCopies(t, f, conn, acctA, 3)
	gone := ids[1]

	type result struct {
		out []CopyOutcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := conn.WaitForCopies(ctx, WaitOptions{Timeout: time.Minute, MinDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond})
		done <- result{out, err}
	}()
	// Once the wait has seen the copies pending, deregister one and let
	// the others finish.
	for deadline := time.Now().Add(10 * time.Second); len(f.requests("DescribeImages")) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the wait never looked at the copies")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Client(acctA, region1).DeregisterImage(ctx, gone, false); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Hour)

	var res result
	select {
	case res = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the wait did not end after a copy was deregistered")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	for _, o := range res.out {
		want := cloud.ImageAvailable
		if o.ImageID == gone {
			want = cloud.ImageDeregistered
			if !strings.Contains(o.Reason, "deregistered") {
				t.Errorf("reason %q should say the copy was deregistered", o.Reason)
			}
		}
		if o.State != want {
			t.Errorf("copy %s: %q, want %q", o.ImageID, o.State, want)
		}
	}
}

// TestWaitForCopiesNeverSeenIsWaitedFor: a copy not visible yet is not
// finished; the wait times out and says so, with an empty state.
func TestWaitForCopiesNeverSeenIsWaitedFor(t *testing.T) {
	c := newCloud(t)
	f := newFixture(t, c, awsfake.Options{}, nil)
	conn := f.sess.Connect(runID, ConnectOptions{})
	ids := startedCopies(t, f, conn, acctA, 1)
	conn.noteCopy(StartedCopy{Account: acctA, Region: region1, ImageID: "ami-0fffffffffffffff0", SourceImageID: "ami-00000001"})
	c.Advance(2 * time.Hour)
	out, err := conn.WaitForCopies(context.Background(), WaitOptions{Timeout: 50 * time.Millisecond, MinDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timed out") || !strings.Contains(err.Error(), "1 still pending or not visible") {
		t.Fatalf("error %v, want a timeout naming the one copy not visible", err)
	}
	states := map[string]cloud.ImageState{}
	for _, o := range out {
		states[o.ImageID] = o.State
	}
	if states[ids[0]] != cloud.ImageAvailable || states["ami-0fffffffffffffff0"] != "" {
		t.Errorf("outcomes %v", states)
	}
}
