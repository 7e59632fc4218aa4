package sim_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// DescribeImages must not tell keys: EC2 does not, and an engine reading
// them there would pass here and fail against AWS.
func TestDescribeImagesReportsNoKeys(t *testing.T) {
	c := newOrg(t)
	key := c.AddKey(srcAcct, region, "golden")
	im := c.AddImage(srcAcct, region, sim.ImageSpec{Devices: []sim.DeviceSpec{{KMSKeyARN: key}, {AWSManagedKey: true}, {}}})
	got, err := c.Client(srcAcct, region).DescribeImages(context.Background(), cloud.ImageQuery{ImageIDs: []string{im.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].BlockDevices) != 3 {
		t.Fatalf("got %+v", got)
	}
	for i, bd := range got[0].BlockDevices {
		if bd.KMSKeyID != "" {
			t.Errorf("device %d: DescribeImages reported key %q", i, bd.KMSKeyID)
		}
		if want := i < 2; bd.Encrypted != want {
			t.Errorf("device %d: encrypted %v, want %v", i, bd.Encrypted, want)
		}
	}
	// The inspection methods still tell keys, for tests.
	if insp, _ := c.Image(srcAcct, region, im.ID); insp.BlockDevices[0].KMSKeyID != key ||
		insp.BlockDevices[1].KMSKeyID != c.DefaultEBSKey(srcAcct, region) || insp.BlockDevices[2].KMSKeyID != "" {
		t.Errorf("Image() devices %+v", insp.BlockDevices)
	}
	if all := c.Images(srcAcct, region); all[0].BlockDevices[0].KMSKeyID != key {
		t.Errorf("Images() devices %+v", all[0].BlockDevices)
	}
}

func TestSnapshotKeys(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	key := c.AddKey(srcAcct, region, "golden")
	managed := c.DefaultEBSKey(srcAcct, region)
	im := c.AddImage(srcAcct, region, sim.ImageSpec{Devices: []sim.DeviceSpec{{KMSKeyARN: key}, {AWSManagedKey: true}, {}}})
	customer, awsKey, plain := im.BlockDevices[0].SnapshotID, im.BlockDevices[1].SnapshotID, im.BlockDevices[2].SnapshotID
	old := c.AddImage(srcAcct, region, sim.ImageSpec{Devices: []sim.DeviceSpec{{Encrypted: true}}})
	src := c.Client(srcAcct, region)
	if _, err := src.DeregisterImage(ctx, old.ID, true); err != nil {
		t.Fatal(err)
	}
	deleted := old.BlockDevices[0].SnapshotID
	// Another account's snapshot, even shared with the caller, and the
	// caller's own in another Region are not the caller's here.
	otherKey := c.AddKey(tgtA, region, "")
	foreign := c.AddImage(tgtA, region, sim.ImageSpec{Devices: []sim.DeviceSpec{{KMSKeyARN: otherKey}}})
	c.ShareImage(tgtA, region, foreign.ID, srcAcct)
	elsewhere := c.AddImage(srcAcct, region2, sim.ImageSpec{Devices: []sim.DeviceSpec{{Encrypted: true}}})

	tests := []struct {
		name string
		ids  []string
		want map[string]string
	}{
		{"customer and managed keys", []string{customer, awsKey}, map[string]string{customer: key, awsKey: managed}},
		{"unencrypted is absent", []string{plain, customer}, map[string]string{customer: key}},
		{"duplicates", []string{customer, customer}, map[string]string{customer: key}},
		{"deleted is absent", []string{deleted}, map[string]string{}},
		{"other account's is absent", []string{foreign.BlockDevices[0].SnapshotID}, map[string]string{}},
		{"other Region's is absent", []string{elsewhere.BlockDevices[0].SnapshotID}, map[string]string{}},
		{"unknown and malformed are absent", []string{"snap-0123456789abcdef0", "snap-x", "", customer}, map[string]string{customer: key}},
		{"no ids", nil, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := src.SnapshotKeys(ctx, tt.ids)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !maps.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSnapshotKeysCallsPer200Ids(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	im := c.AddImage(srcAcct, region, sim.ImageSpec{Devices: []sim.DeviceSpec{{Encrypted: true}}})
	own := im.BlockDevices[0].SnapshotID
	unknown := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("snap-%017x", 0xbeef0000+i)
		}
		return ids
	}
	tests := []struct {
		name      string
		ids       []string
		wantCalls int64
	}{
		{"none", nil, 0},
		{"one", []string{own}, 1},
		{"200", append(unknown(199), own), 1},
		{"201", append(unknown(200), own), 2},
		{"400", unknown(400), 2},
		{"401", unknown(401), 3},
		{"duplicates count once", append(append(unknown(150), unknown(150)...), own), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.ResetCounters()
			conn := c.Connector(srcAcct, sim.WithAttempts(1))
			src, err := conn.Source(ctx, region)
			if err != nil {
				t.Fatal(err)
			}
			got, err := src.SnapshotKeys(ctx, tt.ids)
			if err != nil {
				t.Fatal(err)
			}
			if n := c.Calls(cloud.OpDescribeSnapshots, srcAcct, region); n != tt.wantCalls {
				t.Fatalf("DescribeSnapshots calls = %d, want %d", n, tt.wantCalls)
			}
			if n := conn.CallCounts()[cloud.OpDescribeSnapshots]; n != tt.wantCalls {
				t.Fatalf("connector counted %d, want %d", n, tt.wantCalls)
			}
			if c.MutatingCalls() != 0 {
				t.Fatal("DescribeSnapshots counted as mutating")
			}
			_, hasOwn := got[own]
			if wantOwn := len(tt.ids) > 0 && tt.ids[len(tt.ids)-1] == own; hasOwn != wantOwn || len(got) > 1 {
				t.Fatalf("got %v", got)
			}
		})
	}
}

func TestSnapshotKeysFaultOnLaterCall(t *testing.T) {
	c := newOrg(t)
	ids := make([]string, 300)
	for i := range ids {
		ids[i] = fmt.Sprintf("snap-%017x", 0xbeef0000+i)
	}
	n := 0
	c.SetFault(func(_ context.Context, call sim.Call) error {
		if n++; n == 2 {
			return cloud.Errorf(call.Op, "UnauthorizedOperation", "second call")
		}
		return nil
	})
	got, err := c.Client(srcAcct, region).SnapshotKeys(context.Background(), ids)
	wantCode(t, err, "UnauthorizedOperation")
	if got != nil || c.Calls(cloud.OpDescribeSnapshots, "", "") != 2 {
		t.Fatalf("got %v after %d calls", got, c.Calls(cloud.OpDescribeSnapshots, "", ""))
	}
}
