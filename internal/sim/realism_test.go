package sim_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// slow is a refill so slow that no token comes back during a test.
const slow = 0.001

// fresh returns a source client in region2, where newScene made no
// mutating call, and an image there shared with nobody.
func fresh(t *testing.T, c *sim.Cloud, s *scene) (cloud.EC2, cloud.Image) {
	t.Helper()
	img := c.AddImage(srcAcct, region2, sim.ImageSpec{Name: "fresh"})
	src, err := s.conn.Source(context.Background(), region2)
	if err != nil {
		t.Fatal(err)
	}
	return src, img
}

func TestClassOf(t *testing.T) {
	tests := []struct {
		op   string
		want sim.BucketClass
	}{
		{cloud.OpDescribeImages, sim.BucketDescribe},
		{cloud.OpDescribeImageAttribute, sim.BucketDescribe},
		{cloud.OpDescribeInstances, sim.BucketDescribe},
		{cloud.OpCopyImage, sim.BucketMutating},
		{cloud.OpModifyImageAttribute, sim.BucketMutating},
		{cloud.OpModifySnapshotAttribute, sim.BucketMutating},
		{cloud.OpDeregisterImage, sim.BucketMutating},
		{cloud.OpAssumeRole, sim.BucketSTS},
		{cloud.OpListAccounts, sim.BucketOrganizations},
		{cloud.OpListAccountsForParent, sim.BucketOrganizations},
	}
	for _, tt := range tests {
		if got := sim.ClassOf(tt.op); got != tt.want {
			t.Errorf("ClassOf(%s) = %s, want %s", tt.op, got, tt.want)
		}
	}
}

func TestEmptyBucketThrottles(t *testing.T) {
	tests := []struct {
		name   string
		bucket func(*sim.Throttling)
		call   func(ctx context.Context, c *sim.Cloud, s *scene) error
		code   string
		// other is a call that must not be affected (another bucket).
		other func(ctx context.Context, c *sim.Cloud, s *scene) error
	}{
		{
			name:   "mutating, per account and Region",
			bucket: func(th *sim.Throttling) { th.Mutating = sim.Bucket{Burst: 2, Refill: slow} },
			call: func(ctx context.Context, c *sim.Cloud, s *scene) error {
				src, img := fresh(t, c, s)
				return src.AddImageLaunchPermission(ctx, img.ID, cloud.LaunchPermission{Accounts: []string{tgtB}})
			},
			code: "RequestLimitExceeded",
			other: func(ctx context.Context, c *sim.Cloud, _ *scene) error {
				return deregister(ctx, c.Client(tgtA, region2), c.AddImage(tgtA, region2, sim.ImageSpec{}).ID)
			},
		},
		{
			name:   "describe",
			bucket: func(th *sim.Throttling) { th.Describe = sim.Bucket{Burst: 2, Refill: slow} },
			call: func(ctx context.Context, _ *sim.Cloud, s *scene) error {
				_, err := s.src.DescribeImages(ctx, cloud.ImageQuery{States: []cloud.ImageState{cloud.ImageAvailable}})
				return err
			},
			code: "RequestLimitExceeded",
			other: func(ctx context.Context, _ *sim.Cloud, s *scene) error {
				_, err := s.tgt.DescribeImages(ctx, cloud.ImageQuery{TagKeys: []string{"CopiedFromAMI"}})
				return err
			},
		},
		{
			name:   "unfiltered describe",
			bucket: func(th *sim.Throttling) { th.Unfiltered = sim.Bucket{Burst: 2, Refill: slow} },
			call: func(ctx context.Context, _ *sim.Cloud, s *scene) error {
				_, err := s.src.DescribeImages(ctx, cloud.ImageQuery{})
				return err
			},
			code: "RequestLimitExceeded",
			other: func(ctx context.Context, _ *sim.Cloud, s *scene) error {
				_, err := s.src.DescribeImages(ctx, cloud.ImageQuery{ImageIDs: []string{s.image.ID}})
				return err
			},
		},
		{
			name:   "organizations",
			bucket: func(th *sim.Throttling) { th.Organizations = sim.Bucket{Burst: 2, Refill: slow} },
			call: func(ctx context.Context, _ *sim.Cloud, s *scene) error {
				org, err := s.conn.Organization(ctx)
				if err != nil {
					return err
				}
				_, err = org.ListRoots(ctx)
				return err
			},
			code: "TooManyRequestsException",
			other: func(ctx context.Context, _ *sim.Cloud, s *scene) error {
				_, err := s.src.DescribeImages(ctx, cloud.ImageQuery{ImageIDs: []string{s.image.ID}})
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var th sim.Throttling
			tt.bucket(&th)
			c := newOrg(t, sim.WithThrottling(th))
			s := newScene(t, c)
			ctx := context.Background()
			for i := range 2 {
				if err := tt.call(ctx, c, s); err != nil {
					t.Fatalf("call %d within the burst: %v", i+1, err)
				}
			}
			err := tt.call(ctx, c, s)
			wantCode(t, err, tt.code)
			if cloud.ClassOf(err) != cloud.ClassThrottled {
				t.Fatalf("%v is not classified as throttled", err)
			}
			if n := c.ThrottledCalls(); n != 1 {
				t.Fatalf("ThrottledCalls = %d, want 1", n)
			}
			if n, _ := s.conn.Throttles(); n != 1 {
				t.Fatalf("connector ThrottledCalls = %d, want 1", n)
			}
			if err := tt.other(ctx, c, s); err != nil {
				t.Fatalf("a call on another bucket was affected: %v", err)
			}
		})
	}
}

func TestThrottledCallIsCountedAndHasNoEffect(t *testing.T) {
	c := newOrg(t, sim.WithThrottling(sim.Throttling{Mutating: sim.Bucket{Burst: 1, Refill: slow}}))
	s := newScene(t, c)
	src, img := fresh(t, c, s)
	ctx := context.Background()
	wantCode(t, src.AddImageLaunchPermission(ctx, img.ID, cloud.LaunchPermission{Accounts: []string{tgtA}}), "")
	err := src.AddImageLaunchPermission(ctx, img.ID, cloud.LaunchPermission{Accounts: []string{tgtB}})
	wantCode(t, err, "RequestLimitExceeded")
	if got := c.LaunchPermissions(srcAcct, region2, img.ID); len(got) != 1 || got[0] != tgtA {
		t.Fatalf("launch permission = %v: the throttled call took effect", got)
	}
	if n := c.Calls(cloud.OpModifyImageAttribute, srcAcct, region2); n != 2 {
		t.Fatalf("ModifyImageAttribute counted %d times, want 2 (a throttled call is a call)", n)
	}
	c.ResetCounters()
	if c.ThrottledCalls() != 0 {
		t.Fatal("ResetCounters kept the throttled count")
	}
}

func TestBucketRefills(t *testing.T) {
	// A slow refill, so a loaded machine cannot refill the bucket between
	// the first two calls.
	c := newOrg(t, sim.WithThrottling(sim.Throttling{Mutating: sim.Bucket{Burst: 1, Refill: 2}}))
	s := newScene(t, c)
	src, img := fresh(t, c, s)
	ctx := context.Background()
	wantCode(t, src.AddImageLaunchPermission(ctx, img.ID, cloud.LaunchPermission{Accounts: []string{tgtA}}), "")
	wantCode(t, src.AddImageLaunchPermission(ctx, img.ID, cloud.LaunchPermission{Accounts: []string{tgtA}}), "RequestLimitExceeded")
	time.Sleep(600 * time.Millisecond) // more than a token's worth at 2 per second
	wantCode(t, src.AddImageLaunchPermission(ctx, img.ID, cloud.LaunchPermission{Accounts: []string{tgtA}}), "")
}

func TestSTSBucketIsTheCallers(t *testing.T) {
	c := sim.New(sim.WithThrottling(sim.Throttling{STS: sim.Bucket{Burst: 2, Refill: slow}}))
	var ids []string
	for i := range 4 {
		id := fmt.Sprintf("2000000000%02d", i)
		if err := c.AddAccount(id, "t", "", ""); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.AddAccount(srcAcct, "source", "", ""))
	must(c.AddAccount(tgtA, "other source", "", ""))
	ctx := context.Background()
	conn := c.Connector(srcAcct, sim.WithAttempts(1))
	for _, id := range ids[:2] {
		_, err := conn.Target(ctx, id, region)
		must(err)
	}
	_, err := conn.Target(ctx, ids[2], region)
	wantCode(t, err, "Throttling")
	// A session already held needs no call; another caller has its own bucket.
	_, err = conn.Target(ctx, ids[0], region2)
	must(err)
	_, err = c.Connector(tgtA, sim.WithAttempts(1)).Target(ctx, ids[3], region)
	must(err)
}

// TestThrottledPagesAreRetriedByTheConnector: each page of a listing is a
// call the connector retries after a bucket refused it, waiting for the
// bucket to refill, so a listing is never started over.
func TestThrottledPagesAreRetriedByTheConnector(t *testing.T) {
	// 100 accounts in pages of 20: five ListAccounts pages against a bucket
	// of 2 that refills one token every 10 ms.
	c := sim.New(sim.WithOrgPageSize(20), sim.WithPageSize(10),
		sim.WithThrottling(sim.Throttling{Organizations: sim.Bucket{Burst: 2, Refill: 100}, Describe: sim.Bucket{Burst: 2, Refill: 100}}))
	for i := range 99 {
		if err := c.AddAccount(fmt.Sprintf("2000000000%02d", i), "t", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddAccount(srcAcct, "source", "", ""); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		c.AddImage(srcAcct, region, sim.ImageSpec{Tags: map[string]string{"k": "v"}})
	}
	ctx := context.Background()
	conn := c.Connector(srcAcct) // retries as the SDK adapters do
	org, _ := conn.Organization(ctx)
	accts, err := org.ListAccounts(ctx)
	if err != nil || len(accts) != 100 {
		t.Fatalf("ListAccounts = %d accounts, %v", len(accts), err)
	}
	src, _ := conn.Source(ctx, region)
	imgs, err := src.DescribeImages(ctx, cloud.ImageQuery{TagKeys: []string{"k"}})
	if err != nil || len(imgs) != 50 {
		t.Fatalf("DescribeImages = %d images, %v", len(imgs), err)
	}
	throttled := c.ThrottledCalls()
	if throttled == 0 {
		t.Fatal("no page was throttled; the test proves nothing")
	}
	calls := conn.CallCounts()
	if got := calls[cloud.OpListAccounts] + calls[cloud.OpDescribeImages]; got != 5+5+throttled {
		t.Fatalf("calls = %v with %d throttled, want 10 pages plus the throttled attempts", calls, throttled)
	}
}

func TestLatency(t *testing.T) {
	// Large enough that scheduling noise on a busy machine stays well
	// below it.
	const d = 300 * time.Millisecond
	c := newOrg(t, sim.WithLatency(sim.Latency{Describe: d}))
	s := newScene(t, c)
	start := time.Now()
	if _, err := s.src.ImageLaunchPermission(context.Background(), s.image.ID); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("a describe took %s, want at least %s", el, d)
	}
	// Mutating calls have no latency here.
	start = time.Now()
	if err := s.src.AddImageLaunchPermission(context.Background(), s.unshared.ID, cloud.LaunchPermission{Accounts: []string{tgtB}}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el >= d {
		t.Fatalf("a mutating call took %s with no mutating latency", el)
	}
	// A context that ends during the request's trip fails the call.
	ctx, cancel := context.WithTimeout(context.Background(), d/10)
	defer cancel()
	_, err := s.src.ImageLaunchPermission(ctx, s.image.ID)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
}

func TestRealismOptionsPanicOnNonsense(t *testing.T) {
	for name, f := range map[string]func(){
		"negative latency": func() { sim.WithLatency(sim.Latency{STS: -time.Second}) },
		"no refill":        func() { sim.WithThrottling(sim.Throttling{Describe: sim.Bucket{Burst: 5}}) },
		"negative burst":   func() { sim.WithThrottling(sim.Throttling{Describe: sim.Bucket{Burst: -1, Refill: 1}}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

func TestDefaultsMatchEC2(t *testing.T) {
	th := sim.DefaultThrottling()
	if th.Describe != (sim.Bucket{Burst: 100, Refill: 20}) || th.Mutating != (sim.Bucket{Burst: 50, Refill: 5}) ||
		th.Unfiltered != (sim.Bucket{Burst: 50, Refill: 5}) {
		t.Fatalf("EC2 buckets = %+v", th)
	}
	if l := sim.DefaultLatency(); l.Describe != 25*time.Millisecond || l.Organizations != 25*time.Millisecond {
		t.Fatalf("latency = %+v", l)
	}
}
