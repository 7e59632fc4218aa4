package sim_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

func TestDisabledImage(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	im := shared(c)
	src, tgt := c.Client(srcAcct, region), c.Client(tgtA, region)
	c.DisableImage(srcAcct, region, im.ID)

	// The owner still sees it, with its state; a state filter applies.
	got, err := src.DescribeImages(ctx, cloud.ImageQuery{ImageIDs: []string{im.ID}})
	if err != nil || len(got) != 1 || got[0].State != cloud.ImageDisabled {
		t.Fatalf("owner's describe: %+v, %v", got, err)
	}
	if got, _ := src.DescribeImages(ctx, cloud.ImageQuery{States: []cloud.ImageState{cloud.ImageAvailable}}); len(got) != 0 {
		t.Fatalf("a query for available images listed %v", imageIDs(got))
	}
	// Disabling removed every launch permission, not the snapshots' ones.
	if p := c.LaunchPermissions(srcAcct, region, im.ID); len(p) != 0 {
		t.Fatalf("launch permissions %v after disabling", p)
	}
	if p := c.SnapshotPermissions(srcAcct, region, im.BlockDevices[0].SnapshotID); !slices.Equal(p, []string{tgtA, tgtB}) {
		t.Fatalf("snapshot permissions %v", p)
	}
	// It can be neither shared nor copied, and its snapshots stay in use.
	err = src.AddImageLaunchPermission(ctx, im.ID, cloud.LaunchPermission{Accounts: []string{tgtA}})
	wantCode(t, err, "InvalidAMIID.Unavailable")
	wantContains(t, err, "disabled")
	_, err = tgt.CopyImage(ctx, copyInput(im, "copy"))
	wantCode(t, err, "InvalidAMIID.NotFound")
	c.GrantLaunchPermission(srcAcct, region, im.ID, tgtA) // past the API's refusal
	_, err = tgt.CopyImage(ctx, copyInput(im, "copy"))
	wantCode(t, err, "InvalidAMIID.Unavailable")
	wantCode(t, src.DeleteSnapshot(ctx, im.BlockDevices[0].SnapshotID), "InvalidSnapshot.InUse")

	// Enabled again, it is available but not shared again.
	c.EnableImage(srcAcct, region, im.ID)
	if got, _ := c.Image(srcAcct, region, im.ID); got.State != cloud.ImageAvailable {
		t.Fatalf("state %s after enabling", got.State)
	}
	if p := c.LaunchPermissions(srcAcct, region, im.ID); !slices.Equal(p, []string{tgtA}) {
		t.Fatalf("launch permissions %v: only the grant made after disabling", p)
	}
	if err := src.AddImageLaunchPermission(ctx, im.ID, cloud.LaunchPermission{Accounts: []string{tgtB}}); err != nil {
		t.Fatal(err)
	}
}

func TestDisabledSettledCopy(t *testing.T) {
	c := newOrg(t, sim.WithCopyDuration(time.Hour))
	im := shared(c)
	id, err := c.Client(tgtA, region).CopyImage(context.Background(), copyInput(im, "copy"))
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Hour)
	c.DisableImage(tgtA, region, id)
	if got, _ := c.Image(tgtA, region, id); got.State != cloud.ImageDisabled {
		t.Fatalf("copy state %s, want disabled", got.State)
	}
	if n := c.PendingCopies(tgtA, region); n != 0 {
		t.Fatalf("%d pending copies", n)
	}
	c.EnableImage(tgtA, region, id)
	if got, _ := c.Image(tgtA, region, id); got.State != cloud.ImageAvailable {
		t.Fatalf("copy state %s, want available", got.State)
	}
}

func TestDisableImagePanics(t *testing.T) {
	c := newOrg(t)
	pending := c.AddImage(srcAcct, region, sim.ImageSpec{State: cloud.ImagePending})
	available := c.AddImage(srcAcct, region, sim.ImageSpec{})
	for name, f := range map[string]func(){
		"disable pending":    func() { c.DisableImage(srcAcct, region, pending.ID) },
		"enable available":   func() { c.EnableImage(srcAcct, region, available.ID) },
		"disable other's":    func() { c.DisableImage(tgtA, region, available.ID) },
		"disable unknown id": func() { c.DisableImage(srcAcct, region, "ami-0123456789abcdef0") },
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
