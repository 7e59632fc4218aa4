package sim_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

func accountIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("9%011d", i)
	}
	return ids
}

func TestImageLaunchPermissions(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		caller   string // account of the client; srcAcct when empty
		region   string // region of the client; region when empty
		image    string // "" = the source image, "gone" = a deregistered one, other = literal
		add      []string
		wantCode string
		wantMsg  string
		want     []string // launch permission afterwards
	}{
		{name: "grant", add: []string{tgtB, tgtA}, want: []string{tgtA, tgtB}},
		{name: "grant again is fine", add: []string{tgtA, tgtA}, want: []string{tgtA}},
		// LaunchPermission: "Up to 10 000 account IDs can be specified in
		// a single request"; the sharing quota (1,000) comes first.
		{name: "1000 ids", add: accountIDs(1000), want: accountIDs(1000)},
		{name: "1001 ids: the sharing quota", add: accountIDs(1001), wantCode: "ResourceLimitExceeded", wantMsg: "quota of 1000"},
		{name: "malformed account", add: []string{tgtA, "12345"}, wantCode: "InvalidAMIAttributeItemValue", wantMsg: "12345"},
		{name: "no accounts", add: []string{}, wantCode: "MissingParameter"},
		{name: "not the owner", caller: tgtA, add: []string{tgtB}, wantCode: "AuthFailure"},
		{name: "other region", region: region2, add: []string{tgtB}, wantCode: "InvalidAMIID.NotFound"},
		{name: "missing image", image: "ami-00000990000000000", add: []string{tgtA}, wantCode: "InvalidAMIID.NotFound"},
		{name: "deregistered image", image: "gone", add: []string{tgtA}, wantCode: "InvalidAMIID.NotFound"},
		{name: "malformed image id", image: "ami-xyz", add: []string{tgtA}, wantCode: "InvalidAMIID.Malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newOrg(t)
			im := c.AddImage(srcAcct, region, sim.ImageSpec{Name: "golden"})
			gone := c.AddImage(srcAcct, region, sim.ImageSpec{Name: "gone"})
			if err := deregister(ctx, c.Client(srcAcct, region), gone.ID); err != nil {
				t.Fatal(err)
			}
			id := im.ID
			switch tt.image {
			case "":
			case "gone":
				id = gone.ID
			default:
				id = tt.image
			}
			caller, reg := srcAcct, region
			if tt.caller != "" {
				caller = tt.caller
			}
			if tt.region != "" {
				reg = tt.region
			}
			e := c.Client(caller, reg)
			err := e.AddImageLaunchPermission(ctx, id, cloud.LaunchPermission{Accounts: tt.add})
			wantCode(t, err, tt.wantCode)
			wantContains(t, err, tt.wantMsg)
			_, err = e.ImageLaunchPermission(ctx, id)
			if tt.wantCode != "" && tt.wantCode != "InvalidParameterValue" && tt.wantCode != "InvalidAMIAttributeItemValue" && tt.wantCode != "MissingParameter" && tt.wantCode != "ResourceLimitExceeded" {
				wantCode(t, err, tt.wantCode) // the read fails for the same reason
			}
			got := c.LaunchPermissions(srcAcct, region, im.ID)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("launch permission = %v, want %v", got, tt.want)
			}
			if tt.wantCode == "" {
				read, err := e.ImageLaunchPermission(ctx, id)
				if err != nil || !slices.Equal(read.Accounts, tt.want) {
					t.Fatalf("ImageLaunchPermissions = %v, %v", read, err)
				}
			}
		})
	}
}

func TestSnapshotVolumePermissions(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		device   sim.DeviceSpec
		caller   string
		snapshot string // "" = the image's snapshot, "deleted" = a deleted one, other = literal
		add      []string
		wantCode string
		wantMsg  string
		want     []string
	}{
		{name: "unencrypted", add: []string{tgtB, tgtA}, want: []string{tgtA, tgtB}},
		{name: "customer key", device: sim.DeviceSpec{KMSKeyARN: "golden"}, add: []string{tgtA}, want: []string{tgtA}},
		{name: "grant again is fine", add: []string{tgtA, tgtA}, want: []string{tgtA}},
		{name: "500 ids", add: accountIDs(500), want: accountIDs(500)},
		{name: "501 ids", add: accountIDs(501), wantCode: "InvalidParameterValue", wantMsg: "501"},
		{name: "malformed account", add: []string{"abc"}, wantCode: "InvalidParameterValue", wantMsg: "abc"},
		{name: "AWS-managed key cannot be shared", device: sim.DeviceSpec{AWSManagedKey: true}, add: []string{tgtA},
			wantCode: "OperationNotPermitted", wantMsg: "cannot be shared with other accounts"},
		{name: "default encryption is the AWS-managed key", device: sim.DeviceSpec{Encrypted: true}, add: []string{tgtA},
			wantCode: "OperationNotPermitted"},
		{name: "not the owner", caller: tgtA, add: []string{tgtB}, wantCode: "AuthFailure"},
		{name: "missing snapshot", snapshot: "snap-00000990000000000", add: []string{tgtA}, wantCode: "InvalidSnapshot.NotFound"},
		{name: "deleted snapshot", snapshot: "deleted", add: []string{tgtA}, wantCode: "InvalidSnapshot.NotFound"},
		{name: "malformed snapshot id", snapshot: "snap-zz", add: []string{tgtA}, wantCode: "InvalidSnapshotID.Malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newOrg(t)
			if tt.device.KMSKeyARN != "" {
				tt.device.KMSKeyARN = c.AddKey(srcAcct, region, tt.device.KMSKeyARN)
			}
			im := c.AddImage(srcAcct, region, sim.ImageSpec{Name: "golden", Devices: []sim.DeviceSpec{tt.device}})
			snap := im.BlockDevices[0].SnapshotID
			src := c.Client(srcAcct, region)
			gone := c.AddImage(srcAcct, region, sim.ImageSpec{Name: "gone"})
			if _, err := src.DeregisterImage(ctx, gone.ID, true); err != nil {
				t.Fatal(err)
			}
			if err := src.DeleteSnapshot(ctx, gone.BlockDevices[0].SnapshotID); !isCode(err, "InvalidSnapshot.NotFound") {
				t.Fatal(err)
			}
			id := snap
			switch tt.snapshot {
			case "":
			case "deleted":
				id = gone.BlockDevices[0].SnapshotID
			default:
				id = tt.snapshot
			}
			e := src
			if tt.caller != "" {
				e = c.Client(tt.caller, region)
			}
			err := e.AddSnapshotVolumePermissions(ctx, id, tt.add)
			wantCode(t, err, tt.wantCode)
			wantContains(t, err, tt.wantMsg)
			if got := c.SnapshotPermissions(srcAcct, region, snap); !slices.Equal(got, tt.want) {
				t.Fatalf("create-volume permission = %v, want %v", got, tt.want)
			}
			read, err := e.SnapshotVolumePermissions(ctx, id)
			switch tt.wantCode {
			case "AuthFailure", "InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed":
				wantCode(t, err, tt.wantCode)
			default:
				if err != nil || !slices.Equal(read, tt.want) {
					t.Fatalf("SnapshotVolumePermissions = %v, %v; want %v", read, err, tt.want)
				}
			}
		})
	}
}

func TestRemoveImagesAndSnapshots(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	im := c.AddImage(srcAcct, region, sim.ImageSpec{Name: "x"})
	snap := im.BlockDevices[0].SnapshotID
	src := c.Client(srcAcct, region)
	other := c.Client(tgtA, region)

	wantCode(t, src.DeleteSnapshot(ctx, snap), "InvalidSnapshot.InUse")
	wantContains(t, src.DeleteSnapshot(ctx, snap), im.ID)
	wantCode(t, deregister(ctx, other, im.ID), "AuthFailure")
	wantCode(t, other.DeleteSnapshot(ctx, snap), "AuthFailure")
	wantCode(t, deregister(ctx, src, "ami-00000990000000000"), "InvalidAMIID.NotFound")
	wantCode(t, deregister(ctx, src, "ami-1"), "InvalidAMIID.Malformed")

	wantCode(t, deregister(ctx, src, im.ID), "")
	wantCode(t, deregister(ctx, src, im.ID), "InvalidAMIID.NotFound")
	if got, _ := src.DescribeImages(ctx, cloud.ImageQuery{}); len(got) != 0 {
		t.Fatalf("deregistered image still described: %v", got)
	}
	if len(c.Images(srcAcct, region)) != 0 {
		t.Fatal("Images() lists a deregistered image")
	}
	if got, ok := c.Image(srcAcct, region, im.ID); !ok || got.State != cloud.ImageDeregistered {
		t.Fatalf("Image() = %+v, %v", got, ok)
	}
	if s, ok := c.Snapshot(srcAcct, region, snap); !ok || s.ImageID != "" {
		t.Fatalf("snapshot after deregistration = %+v, %v", s, ok)
	}
	// Right after the deregistration the snapshot is still in use (the
	// race DeleteAssociatedSnapshots avoids), for SnapshotRelease.
	wantCode(t, src.DeleteSnapshot(ctx, snap), "InvalidSnapshot.InUse")
	c.Advance(sim.SnapshotRelease)
	wantCode(t, src.DeleteSnapshot(ctx, snap), "")
	wantCode(t, src.DeleteSnapshot(ctx, snap), "InvalidSnapshot.NotFound")
	if _, ok := c.Snapshot(srcAcct, region, snap); ok {
		t.Fatal("deleted snapshot still inspected")
	}
}

func TestInstancesUsingImages(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	a := c.AddImage(tgtA, region, sim.ImageSpec{Name: "a"}).ID
	b := c.AddImage(tgtA, region, sim.ImageSpec{Name: "b"}).ID
	unused := c.AddImage(tgtA, region, sim.ImageSpec{Name: "u"}).ID
	shared := c.AddImage(srcAcct, region, sim.ImageSpec{Name: "s"}).ID
	c.LaunchInstance(tgtA, region, a)
	c.LaunchInstance(tgtA, region, a)
	c.TerminateInstance(tgtA, region, c.LaunchInstance(tgtA, region, b))
	c.LaunchInstance(tgtA, region, shared)
	c.LaunchInstance(tgtB, region, unused) // another account's instance does not count
	got, err := c.Client(tgtA, region).InstancesUsingImages(ctx, []string{a, b, unused, shared, "ami-nope"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{a: 2, b: 0, unused: 0, shared: 1, "ami-nope": 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if n := c.Calls(cloud.OpDescribeInstances, tgtA, region); n != 1 {
		t.Fatalf("DescribeInstances calls = %d", n)
	}
}
