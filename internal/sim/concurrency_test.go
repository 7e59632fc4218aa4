package sim_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// TestConcurrentRun has many goroutines share, copy (with overlapping
// ClientTokens, as two overlapping runs would), describe and read
// permissions while the clock moves. Run with -race. Afterwards every pair
// has exactly one copy and the counts add up.
func TestConcurrentRun(t *testing.T) {
	const (
		nAccounts = 8
		nImages   = 12
		workers   = 32
	)
	ctx := context.Background()
	c := sim.New(sim.WithInFlightQuota(1000), sim.WithPageSize(5))
	var accounts []string
	for i := range nAccounts {
		id := fmt.Sprintf("%012d", 200000000000+i)
		if err := c.AddAccount(id, "t", "", ""); err != nil {
			t.Fatal(err)
		}
		accounts = append(accounts, id)
	}
	regions := []string{region, region2}
	var sources []cloud.Image
	for _, reg := range regions {
		for i := range nImages {
			sources = append(sources, c.AddImage(srcAcct, reg, sim.ImageSpec{Name: fmt.Sprintf("golden %d", i)}))
		}
	}

	conn := c.Connector(srcAcct, sim.WithAttempts(1))
	var calls atomic.Int64 // CopyImage calls made
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var clockWG sync.WaitGroup
	clockWG.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				c.Advance(time.Second)
				time.Sleep(10 * time.Microsecond)
			}
		}
	})
	for w := range workers {
		wg.Go(func() {
			for i := range len(accounts) * len(sources) {
				// Each worker walks the pairs from its own offset, so
				// every pair is tried by several workers at once.
				k := (i + w*7) % (len(accounts) * len(sources))
				acct, src := accounts[k%len(accounts)], sources[k/len(accounts)]
				s, err := conn.Source(ctx, src.Region)
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.AddImageLaunchPermission(ctx, src.ID, cloud.LaunchPermission{Accounts: []string{acct}}); err != nil {
					t.Error(err)
					return
				}
				if err := s.AddSnapshotVolumePermissions(ctx, src.BlockDevices[0].SnapshotID, []string{acct}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.ImageLaunchPermission(ctx, src.ID); err != nil {
					t.Error(err)
					return
				}
				e, err := conn.Target(ctx, acct, src.Region)
				if err != nil {
					t.Error(err)
					return
				}
				in := copyInput(src, "copy of "+src.ID)
				in.ClientToken = "tok-" + src.ID
				calls.Add(1)
				if _, err := e.CopyImage(ctx, in); err != nil {
					t.Error(err)
					return
				}
				if _, err := e.DescribeImages(ctx, cloud.ImageQuery{TagKeys: []string{"CopiedFromAMI"}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	clockWG.Wait()

	for _, acct := range accounts {
		for _, reg := range regions {
			images := c.Images(acct, reg)
			if len(images) != nImages {
				t.Fatalf("%s/%s holds %d copies, want %d", acct, reg, len(images), nImages)
			}
		}
	}
	if got := c.CallCounts()[cloud.OpCopyImage]; got != calls.Load() || conn.CallCounts()[cloud.OpCopyImage] != got {
		t.Fatalf("CopyImage counted %d (connector %d), made %d", got, conn.CallCounts()[cloud.OpCopyImage], calls.Load())
	}
	if got := conn.CallCounts()[cloud.OpAssumeRole]; got != nAccounts {
		t.Fatalf("AssumeRole = %d, want %d", got, nAccounts)
	}
	wantMutating := calls.Load() * 3 // share image, share snapshot, copy
	if got := c.MutatingCalls(); got != wantMutating {
		t.Fatalf("MutatingCalls = %d, want %d", got, wantMutating)
	}
}

// TestConcurrentSameToken races identical CopyImage calls: one image, one
// id.
func TestConcurrentSameToken(t *testing.T) {
	c := newOrg(t)
	src := shared(c)
	e := c.Client(tgtA, region)
	in := copyInput(src, "copy")
	in.ClientToken = "same"
	ids := make([]string, 50)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			id, err := e.CopyImage(context.Background(), in)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("ids differ: %v", ids)
		}
	}
	if n := len(c.Images(tgtA, region)); n != 1 {
		t.Fatalf("%d images", n)
	}
}

// TestConcurrentBuildAndRead builds images while clients read them.
func TestConcurrentBuildAndRead(t *testing.T) {
	c := newOrg(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				im := c.AddImage(tgtA, region, sim.ImageSpec{Name: fmt.Sprintf("w%d-%d", w, i), Tags: map[string]string{"K": "v"}})
				c.LaunchInstance(tgtA, region, im.ID)
			}
		})
		wg.Go(func() {
			e := c.Client(tgtA, region)
			for range 50 {
				if _, err := e.DescribeImages(context.Background(), cloud.ImageQuery{Tags: map[string][]string{"K": {"v"}}}); err != nil {
					t.Error(err)
				}
				_ = c.CallCounts()
				_ = c.Calls(cloud.OpDescribeImages, tgtA, "")
			}
		})
	}
	wg.Wait()
	if n := len(c.Images(tgtA, region)); n != 800 {
		t.Fatalf("%d images", n)
	}
}
