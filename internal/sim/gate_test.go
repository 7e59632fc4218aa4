package sim_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

func TestIsMutating(t *testing.T) {
	mutating := []string{cloud.OpCopyImage, cloud.OpModifyImageAttribute, cloud.OpModifySnapshotAttribute, cloud.OpCreateTags, cloud.OpDeregisterImage, cloud.OpDeleteSnapshot,
		cloud.OpEnableImageDeprecation, cloud.OpDisableImageDeprecation}
	for _, op := range []string{
		cloud.OpDescribeImages, cloud.OpDescribeImageAttribute, cloud.OpModifyImageAttribute, cloud.OpDescribeSnapshotAttribute,
		cloud.OpModifySnapshotAttribute, cloud.OpCopyImage, cloud.OpCreateTags, cloud.OpDeregisterImage, cloud.OpDeleteSnapshot,
		cloud.OpDescribeInstances, cloud.OpDescribeSnapshots, cloud.OpAssumeRole, cloud.OpListAccounts, cloud.OpListRoots,
		cloud.OpListOrganizationalUnitsForParent, cloud.OpListAccountsForParent, cloud.OpEnableImageDeprecation,
		cloud.OpDisableImageDeprecation, cloud.OpDescribeLaunchTemplateVersions, "Bogus",
	} {
		if got, want := cloud.IsMutating(op), slices.Contains(mutating, op); got != want {
			t.Errorf("IsMutating(%s) = %v, want %v", op, got, want)
		}
	}
}

// everyCall makes each engine-facing call once, from a fresh scene, and
// reports what it did; used to check counting and the fault hook.
type sceneCall struct {
	op   string
	call func(ctx context.Context, c *sim.Cloud, s *scene) error
	// effect reports whether the call changed anything.
	effect func(c *sim.Cloud, s *scene) bool
}

type scene struct {
	conn     *sim.Connector
	src, tgt cloud.EC2
	image    cloud.Image // source image, shared with tgtA
	unshared cloud.Image // source image shared with nobody, for the Modify calls
	old      cloud.Image // a deregistered source image
}

func newScene(t *testing.T, c *sim.Cloud) *scene {
	t.Helper()
	s := &scene{image: shared(c)}
	c.DeprecateImage(srcAcct, region, s.image.ID, c.Now().Add(24*time.Hour))
	s.unshared = c.AddImage(srcAcct, region, sim.ImageSpec{Name: "unshared"})
	s.old = c.AddImage(srcAcct, region, sim.ImageSpec{Name: "old"})
	var err error
	conn := c.Connector(srcAcct, sim.WithAttempts(1))
	s.conn = conn
	if s.src, err = conn.Source(context.Background(), region); err != nil {
		t.Fatal(err)
	}
	if s.tgt, err = conn.Target(context.Background(), tgtA, region); err != nil {
		t.Fatal(err)
	}
	if err := deregister(context.Background(), c.Client(srcAcct, region), s.old.ID); err != nil {
		t.Fatal(err)
	}
	c.Advance(sim.SnapshotRelease) // its snapshots are free to delete
	c.ResetCounters()
	conn.ResetCounters()
	return s
}

var sceneCalls = []sceneCall{
	{cloud.OpDescribeImages, func(ctx context.Context, _ *sim.Cloud, s *scene) error {
		_, err := s.src.DescribeImages(ctx, cloud.ImageQuery{})
		return err
	}, nil},
	{cloud.OpDescribeImageAttribute, func(ctx context.Context, _ *sim.Cloud, s *scene) error {
		_, err := s.src.ImageLaunchPermission(ctx, s.image.ID)
		return err
	}, nil},
	{cloud.OpModifyImageAttribute, func(ctx context.Context, _ *sim.Cloud, s *scene) error {
		return s.src.AddImageLaunchPermission(ctx, s.unshared.ID, cloud.LaunchPermission{Accounts: []string{tgtB}})
	}, func(c *sim.Cloud, s *scene) bool { return len(c.LaunchPermissions(srcAcct, region, s.unshared.ID)) > 0 }},
	{cloud.OpDescribeSnapshotAttribute, func(ctx context.Context, _ *sim.Cloud, s *scene) error {
		_, err := s.src.SnapshotVolumePermissions(ctx, s.image.BlockDevices[0].SnapshotID)
		return err
	}, nil},
	{cloud.OpModifySnapshotAttribute, func(ctx context.Context, _ *sim.Cloud, s *scene) error {
		return s.src.AddSnapshotVolumePermissions(ctx, s.unshared.BlockDevices[0].SnapshotID, []string{tgtB})
	}, func(c *sim.Cloud, s *scene) bool {
		return len(c.SnapshotPermissions(srcAcct, region, s.unshared.BlockDevices[0].SnapshotID)) > 0
	}},
	{cloud.OpCopyImage, func(ctx context.Context, _ *sim.Cloud, s *scene) error {
		_, err := s.tgt.CopyImage(ctx, copyInput(s.image, "copy"))
		return err
	}, func(c *sim.Cloud, _ *scene) bool { return len(c.Images(tgtA, region)) > 0 }},
	{cloud.OpDeregisterImage, func(ctx context.Context, _ *sim.Cloud, s *scene) error {
		return deregister(ctx, s.src, s.unshared.ID)
	}, func(c *sim.Cloud, s *scene) bool {
		im, _ := c.Image(srcAcct, region, s.unshared.ID)
		return im.State == cloud.ImageDeregistered
	}},
	{cloud.OpDeleteSnapshot, func(ctx context.Context, _ *sim.Cloud, s *scene) error {
		return s.src.DeleteSnapshot(ctx, s.old.BlockDevices[0].SnapshotID)
	}, func(c *sim.Cloud, s *scene) bool {
		_, ok := c.Snapshot(srcAcct, region, s.old.BlockDevices[0].SnapshotID)
		return !ok
	}},
	{cloud.OpDescribeInstances, func(ctx context.Context, _ *sim.Cloud, s *scene) error {
		_, err := s.tgt.InstancesUsingImages(ctx, []string{s.image.ID})
		return err
	}, nil},
	{cloud.OpDescribeSnapshots, func(ctx context.Context, _ *sim.Cloud, s *scene) error {
		_, err := s.src.SnapshotKeys(ctx, s.image.SnapshotIDs())
		return err
	}, nil},
	{cloud.OpEnableImageDeprecation, func(ctx context.Context, c *sim.Cloud, s *scene) error {
		return s.src.EnableImageDeprecation(ctx, s.unshared.ID, c.Now().Add(time.Hour))
	}, func(c *sim.Cloud, s *scene) bool {
		im, _ := c.Image(srcAcct, region, s.unshared.ID)
		return !im.DeprecationTime.IsZero()
	}},
	{cloud.OpDisableImageDeprecation, func(ctx context.Context, _ *sim.Cloud, s *scene) error {
		return s.src.DisableImageDeprecation(ctx, s.image.ID)
	}, func(c *sim.Cloud, s *scene) bool {
		im, _ := c.Image(srcAcct, region, s.image.ID)
		return im.DeprecationTime.IsZero()
	}},
	{cloud.OpDescribeLaunchTemplateVersions, func(ctx context.Context, _ *sim.Cloud, s *scene) error {
		_, err := s.tgt.LaunchTemplateImages(ctx)
		return err
	}, nil},
}

func TestEveryCallIsCountedOnce(t *testing.T) {
	for _, sc := range sceneCalls {
		t.Run(sc.op, func(t *testing.T) {
			c := newOrg(t)
			s := newScene(t, c)
			if err := sc.call(context.Background(), c, s); err != nil {
				t.Fatal(err)
			}
			if sc.effect != nil && !sc.effect(c, s) {
				t.Fatal("the call had no effect")
			}
			counts := c.CallCounts()
			if len(counts) != 1 || counts[sc.op] != 1 {
				t.Fatalf("counts %v, want exactly one %s", counts, sc.op)
			}
			wantMutating := int64(0)
			if cloud.IsMutating(sc.op) {
				wantMutating = 1
			}
			if got := c.MutatingCalls(); got != wantMutating {
				t.Fatalf("MutatingCalls = %d, want %d", got, wantMutating)
			}
			if got := s.conn.MutatingCalls(); got != wantMutating {
				t.Fatalf("connector MutatingCalls = %d, want %d", got, wantMutating)
			}
			if got := s.conn.CallCounts(); len(got) != 1 || got[sc.op] != 1 {
				t.Fatalf("connector counts %v", got)
			}
		})
	}
}

func TestFaultHookPreventsEffects(t *testing.T) {
	boom := cloud.Errorf("any", "RequestLimitExceeded", "injected")
	for _, sc := range sceneCalls {
		t.Run(sc.op, func(t *testing.T) {
			c := newOrg(t)
			s := newScene(t, c)
			var seen []sim.Call
			var mu sync.Mutex
			c.SetFault(func(_ context.Context, call sim.Call) error {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, call)
				return boom
			})
			err := sc.call(context.Background(), c, s)
			if !errors.Is(err, boom) {
				t.Fatalf("error %v, want the injected one", err)
			}
			if sc.effect != nil && sc.effect(c, s) {
				t.Fatal("a failed call took effect")
			}
			if len(seen) != 1 || seen[0].Op != sc.op || seen[0].Mutating != cloud.IsMutating(sc.op) || seen[0].Region != region {
				t.Fatalf("hook saw %+v", seen)
			}
			if c.CallCounts()[sc.op] != 1 {
				t.Fatal("a failed call is still a call and must be counted")
			}
			// Removing the hook lets the call through again.
			c.SetFault(nil)
			if err := sc.call(context.Background(), c, s); err != nil {
				t.Fatal(err)
			}
			if sc.effect != nil && !sc.effect(c, s) {
				t.Fatal("no effect after the hook was removed")
			}
		})
	}
}

func TestFaultHookSeesCallDetails(t *testing.T) {
	c := newOrg(t)
	s := newScene(t, c)
	var got sim.Call
	c.SetFault(func(_ context.Context, call sim.Call) error {
		got = call
		return nil
	})
	if _, err := s.tgt.CopyImage(context.Background(), copyInput(s.image, "copy")); err != nil {
		t.Fatal(err)
	}
	want := sim.Call{Op: cloud.OpCopyImage, Account: tgtA, Region: region, Mutating: true, Resource: s.image.ID}
	if got != want {
		t.Fatalf("hook saw %+v, want %+v", got, want)
	}
}

func TestFaultOnLaterPage(t *testing.T) {
	c := newOrg(t, sim.WithPageSize(2))
	for range 5 {
		c.AddImage(srcAcct, region, sim.ImageSpec{})
	}
	src := c.Client(srcAcct, region)
	n := 0
	c.SetFault(func(_ context.Context, call sim.Call) error {
		if n++; n == 2 {
			return cloud.Errorf(call.Op, "RequestLimitExceeded", "page 2")
		}
		return nil
	})
	got, err := src.DescribeImages(context.Background(), cloud.ImageQuery{})
	wantCode(t, err, "RequestLimitExceeded")
	if got != nil || c.Calls(cloud.OpDescribeImages, "", "") != 2 {
		t.Fatalf("got %v after %d calls", got, c.Calls(cloud.OpDescribeImages, "", ""))
	}
}

func TestCancelledContext(t *testing.T) {
	c := newOrg(t)
	s := newScene(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, sc := range sceneCalls {
		if err := sc.call(ctx, c, s); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: error %v", sc.op, err)
		}
	}
	if _, err := c.Connector(srcAcct, sim.WithAttempts(1)).Target(ctx, tgtB, region); !errors.Is(err, context.Canceled) {
		t.Errorf("Target: %v", err)
	}
	if n := len(c.CallCounts()); n != 0 {
		t.Fatalf("cancelled calls were counted: %v", c.CallCounts())
	}
}

func TestCallsFilter(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	for _, acct := range []string{srcAcct, tgtA} {
		for _, reg := range []string{region, region2} {
			for range 2 {
				if _, err := c.Client(acct, reg).DescribeImages(ctx, cloud.ImageQuery{}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if _, err := c.Connector(srcAcct, sim.WithAttempts(1)).Target(ctx, tgtA, region); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		op, account, region string
		want                int64
	}{
		{"", "", "", 9},
		{cloud.OpDescribeImages, "", "", 8},
		{cloud.OpDescribeImages, srcAcct, "", 4},
		{cloud.OpDescribeImages, "", region2, 4},
		{cloud.OpDescribeImages, tgtA, region, 2},
		{"", tgtA, "", 5},
		{cloud.OpAssumeRole, tgtA, "", 1},
		{cloud.OpAssumeRole, tgtA, region, 0},
		{cloud.OpCopyImage, "", "", 0},
	} {
		if got := c.Calls(tt.op, tt.account, tt.region); got != tt.want {
			t.Errorf("Calls(%q, %q, %q) = %d, want %d", tt.op, tt.account, tt.region, got, tt.want)
		}
	}
	c.ResetCounters()
	if c.Calls("", "", "") != 0 || len(c.CallCounts()) != 0 || c.MutatingCalls() != 0 {
		t.Fatal("ResetCounters left counts")
	}
}
