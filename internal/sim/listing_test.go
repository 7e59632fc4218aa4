package sim_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// A new copy stays out of DescribeImages for the listing delay, yet it
// exists: its token replays, its name is taken and it counts in flight.
func TestListingDelayHidesNewCopies(t *testing.T) {
	c := newOrg(t, sim.WithListingDelay(2*time.Minute), sim.WithInFlightQuota(1))
	ctx := context.Background()
	src := shared(c)
	tgt := c.Client(tgtA, region)
	in := copyInput(src, "copy")
	in.ClientToken = "token-1"
	id, err := tgt.CopyImage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	listed := func(q cloud.ImageQuery) bool {
		t.Helper()
		imgs, err := tgt.DescribeImages(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(imgs, func(im cloud.Image) bool { return im.ID == id })
	}
	if listed(cloud.ImageQuery{}) || listed(cloud.ImageQuery{ImageIDs: []string{id}}) {
		t.Fatal("a copy inside the listing delay is listed")
	}
	if again, err := tgt.CopyImage(ctx, in); err != nil || again != id {
		t.Errorf("the token replays %q, %v; want %s", again, err, id)
	}
	other := copyInput(src, "copy")
	other.ClientToken = "token-2"
	wantCode(t, func() error { _, err := tgt.CopyImage(ctx, other); return err }(), "InvalidAMIName.Duplicate")
	other.Name = "copy 2"
	wantCode(t, func() error { _, err := tgt.CopyImage(ctx, other); return err }(), "ResourceLimitExceeded")
	if n := c.PendingCopies(tgtA, region); n != 1 {
		t.Errorf("%d copies in flight, want the unlisted one", n)
	}
	c.Advance(2 * time.Minute)
	if !listed(cloud.ImageQuery{}) || !listed(cloud.ImageQuery{ImageIDs: []string{id}}) {
		t.Error("the copy is not listed once the delay is over")
	}
}

// A deregistered image stays listed, in state deregistered, for the
// configured interval; a state filter without deregistered leaves it out.
func TestDeregisteredImagesStayListedAWhile(t *testing.T) {
	c := newOrg(t, sim.WithDeregisteredListing(time.Hour))
	ctx := context.Background()
	im := c.AddImage(srcAcct, region, sim.ImageSpec{Tags: map[string]string{"Recipe": "r"}})
	src := c.Client(srcAcct, region)
	if err := deregister(ctx, src, im.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		q    cloud.ImageQuery
		want bool
	}{
		{cloud.ImageQuery{}, true},
		{cloud.ImageQuery{ImageIDs: []string{im.ID}}, true},
		{cloud.ImageQuery{TagKeys: []string{"Recipe"}}, true},
		{cloud.ImageQuery{States: []cloud.ImageState{cloud.ImageDeregistered}}, true},
		{cloud.ImageQuery{States: []cloud.ImageState{cloud.ImageAvailable}}, false},
	}
	for _, tt := range tests {
		imgs, err := src.DescribeImages(ctx, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		got := len(imgs) == 1 && imgs[0].ID == im.ID
		if got != tt.want {
			t.Errorf("%+v: listed %v, want %v", tt.q, got, tt.want)
		}
		if got && imgs[0].State != cloud.ImageDeregistered {
			t.Errorf("%+v: listed in state %s, want deregistered", tt.q, imgs[0].State)
		}
	}
	// Operations on it still fail as on a deregistered image.
	_, err := src.ImageLaunchPermission(ctx, im.ID)
	wantCode(t, err, "InvalidAMIID.NotFound")
	c.Advance(time.Hour)
	if imgs, _ := src.DescribeImages(ctx, cloud.ImageQuery{}); len(imgs) != 0 {
		t.Errorf("still listed after the interval: %v", imageIDs(imgs))
	}
}

// EC2 counts filter values over a whole call; behind the port the
// simulator splits ids as the adapter does, and refuses a query whose other
// filters alone leave no room.
func TestFilterValuesPerCall(t *testing.T) {
	c := newOrg(t)
	ctx := context.Background()
	im := c.AddImage(srcAcct, region, sim.ImageSpec{})
	src := c.Client(srcAcct, region)
	ids := []string{im.ID}
	for i := range 250 {
		ids = append(ids, fmt.Sprintf("ami-%017x", i+1))
	}
	q := cloud.ImageQuery{ImageIDs: ids, States: []cloud.ImageState{cloud.ImageAvailable, cloud.ImagePending}}
	before := c.Calls("DescribeImages", srcAcct, region)
	imgs, err := src.DescribeImages(ctx, q)
	if err != nil || len(imgs) != 1 {
		t.Fatalf("DescribeImages = %v, %v", imageIDs(imgs), err)
	}
	if n := c.Calls("DescribeImages", srcAcct, region) - before; n != 2 {
		t.Errorf("%d calls for 251 ids next to 2 states, want 2 (198 ids a call)", n)
	}
	many := cloud.ImageQuery{Tags: map[string][]string{"Recipe": make([]string, cloud.MaxFilterValues)}}
	for i := range many.Tags["Recipe"] {
		many.Tags["Recipe"][i] = fmt.Sprint(i)
	}
	_, err = src.DescribeImages(ctx, many)
	wantCode(t, err, "FilterLimitExceeded")

	before = c.Calls("DescribeInstances", srcAcct, region)
	if _, err := src.InstancesUsingImages(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if n := c.Calls("DescribeInstances", srcAcct, region) - before; n != 2 {
		t.Errorf("%d DescribeInstances for 251 ids next to 5 states, want 2", n)
	}
}

// A grant takes the propagation delay, on the simulator's clock, before
// CopyImage honours it: until then the image looks as it does to an
// account it is not shared with.
func TestGrantPropagation(t *testing.T) {
	c := newOrg(t, sim.WithGrantPropagation(time.Minute))
	ctx := context.Background()
	im := c.AddImage(srcAcct, region, sim.ImageSpec{Name: "golden"})
	src := c.Client(srcAcct, region)
	if err := src.AddImageLaunchPermission(ctx, im.ID, cloud.LaunchPermission{Accounts: []string{tgtA}}); err != nil {
		t.Fatal(err)
	}
	if err := src.AddSnapshotVolumePermissions(ctx, im.BlockDevices[0].SnapshotID, []string{tgtA}); err != nil {
		t.Fatal(err)
	}
	tgt := c.Client(tgtA, region)
	_, err := tgt.CopyImage(ctx, copyInput(im, "copy"))
	wantCode(t, err, "InvalidAMIID.NotFound")
	c.Advance(time.Minute)
	if _, err := tgt.CopyImage(ctx, copyInput(im, "copy")); err != nil {
		t.Fatalf("once propagated: %v", err)
	}
}
