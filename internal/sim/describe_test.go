package sim_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

func imageIDs(images []cloud.Image) []string {
	ids := make([]string, len(images))
	for i, im := range images {
		ids[i] = im.ID
	}
	return ids
}

func TestDescribeImagesFilters(t *testing.T) {
	c := newOrg(t)
	ctx := context.Background()
	mk := func(name string, tags map[string]string, state cloud.ImageState) string {
		return c.AddImage(srcAcct, region, sim.ImageSpec{Name: name, Tags: tags, State: state}).ID
	}
	plain := mk("plain", nil, "")
	ubuntu := mk("ubuntu", map[string]string{"Recipe": "ubuntu", "Team": "core"}, "")
	debian := mk("debian", map[string]string{"Recipe": "debian"}, "")
	pending := mk("pending", map[string]string{"Recipe": "ubuntu"}, cloud.ImagePending)
	failed := mk("failed", map[string]string{"Recipe": "ubuntu"}, cloud.ImageFailed)
	gone := mk("gone", map[string]string{"Recipe": "ubuntu"}, "")
	disabled := mk("disabled", map[string]string{"Recipe": "ubuntu"}, cloud.ImageDisabled)
	turned := mk("turned", map[string]string{"Recipe": "debian"}, "")
	c.DisableImage(srcAcct, region, turned)
	// Other owners' images and other Regions are never listed.
	foreign := c.AddImage(tgtA, region, sim.ImageSpec{Name: "foreign", Tags: map[string]string{"Recipe": "ubuntu"}}).ID
	c.AddImage(srcAcct, region2, sim.ImageSpec{Name: "elsewhere", Tags: map[string]string{"Recipe": "ubuntu"}})
	src, err := c.Connector(srcAcct, sim.WithAttempts(1)).Source(ctx, region)
	if err != nil {
		t.Fatal(err)
	}
	if err := deregister(ctx, src, gone); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		q    cloud.ImageQuery
		want []string
	}{
		{"everything owned and registered", cloud.ImageQuery{}, []string{plain, ubuntu, debian, pending, failed, disabled, turned}},
		{"ids", cloud.ImageQuery{ImageIDs: []string{debian, plain, debian}}, []string{plain, debian}},
		{"disabled ids, as with IncludeDisabled", cloud.ImageQuery{ImageIDs: []string{turned, disabled}}, []string{disabled, turned}},
		{"ids of others, unknown and deregistered match nothing", cloud.ImageQuery{ImageIDs: []string{foreign, gone, "ami-0123456789abcdef0", "bogus"}}, nil},
		{"tag key", cloud.ImageQuery{TagKeys: []string{"Recipe"}}, []string{ubuntu, debian, pending, failed, disabled, turned}},
		{"every tag key", cloud.ImageQuery{TagKeys: []string{"Recipe", "Team"}}, []string{ubuntu}},
		{"tag value", cloud.ImageQuery{Tags: map[string][]string{"Recipe": {"debian"}}}, []string{debian, turned}},
		{"one of tag values", cloud.ImageQuery{Tags: map[string][]string{"Recipe": {"debian", "ubuntu"}}}, []string{ubuntu, debian, pending, failed, disabled, turned}},
		{"tag without values is presence", cloud.ImageQuery{Tags: map[string][]string{"Team": nil}}, []string{ubuntu}},
		{"state", cloud.ImageQuery{States: []cloud.ImageState{cloud.ImageAvailable}}, []string{plain, ubuntu, debian}},
		{"states", cloud.ImageQuery{States: []cloud.ImageState{cloud.ImagePending, cloud.ImageFailed}}, []string{pending, failed}},
		{"disabled state", cloud.ImageQuery{States: []cloud.ImageState{cloud.ImageDisabled}}, []string{disabled, turned}},
		{"deregistered never shows", cloud.ImageQuery{States: []cloud.ImageState{cloud.ImageDeregistered}}, nil},
		{"unknown state matches nothing", cloud.ImageQuery{States: []cloud.ImageState{"bogus"}}, nil},
		{"combined", cloud.ImageQuery{TagKeys: []string{"Recipe"}, Tags: map[string][]string{"Recipe": {"ubuntu"}}, States: []cloud.ImageState{cloud.ImageAvailable}}, []string{ubuntu}},
		{"ids and filters", cloud.ImageQuery{ImageIDs: []string{plain, ubuntu}, TagKeys: []string{"Team"}}, []string{ubuntu}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := src.DescribeImages(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if ids := imageIDs(got); !slices.Equal(ids, tt.want) {
				t.Fatalf("got %v, want %v", ids, tt.want)
			}
			for _, im := range got {
				if im.Region != region || im.OwnerID != srcAcct {
					t.Errorf("%s: region %q owner %q", im.ID, im.Region, im.OwnerID)
				}
			}
		})
	}
}

func TestDescribeImagesPagination(t *testing.T) {
	tests := []struct {
		name      string
		pageSize  int
		images    int
		matching  int // the first `matching` images carry the filtered tag
		filtered  bool
		wantCalls int64
	}{
		{"empty is one call", 3, 0, 0, false, 1},
		{"one page", 3, 3, 0, false, 1},
		{"page and one", 3, 4, 0, false, 2},
		{"three pages", 3, 7, 0, false, 3},
		{"exact pages", 3, 9, 0, false, 3},
		{"filter counts matches only", 3, 10, 4, true, 2},
		{"filter matching nothing", 3, 10, 0, true, 1},
		{"default page size", 0, 1001, 0, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []sim.Option
			if tt.pageSize > 0 {
				opts = append(opts, sim.WithPageSize(tt.pageSize))
			}
			c := newOrg(t, opts...)
			for i := range tt.images {
				var tags map[string]string
				if i < tt.matching {
					tags = map[string]string{"Pick": "yes"}
				}
				c.AddImage(srcAcct, region, sim.ImageSpec{Tags: tags})
			}
			conn := c.Connector(srcAcct, sim.WithAttempts(1))
			src, _ := conn.Source(context.Background(), region)
			q := cloud.ImageQuery{}
			want := tt.images
			if tt.filtered {
				q.TagKeys = []string{"Pick"}
				want = tt.matching
			}
			got, err := src.DescribeImages(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != want {
				t.Fatalf("got %d images, want %d", len(got), want)
			}
			if n := c.Calls(cloud.OpDescribeImages, srcAcct, region); n != tt.wantCalls {
				t.Fatalf("DescribeImages calls = %d, want %d", n, tt.wantCalls)
			}
			if n := conn.CallCounts()[cloud.OpDescribeImages]; n != tt.wantCalls {
				t.Fatalf("connector counted %d DescribeImages, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestDescribeImagesResultsAreCopies(t *testing.T) {
	c := newOrg(t)
	c.AddImage(srcAcct, region, sim.ImageSpec{Name: "a", Tags: map[string]string{"K": "v"}})
	src := c.Client(srcAcct, region)
	got, _ := src.DescribeImages(context.Background(), cloud.ImageQuery{})
	got[0].Tags["K"] = "changed"
	got[0].Tags["New"] = "x"
	got[0].BlockDevices[0].Encrypted = true
	again, _ := src.DescribeImages(context.Background(), cloud.ImageQuery{})
	if again[0].Tags["K"] != "v" || len(again[0].Tags) != 1 || again[0].BlockDevices[0].Encrypted {
		t.Fatalf("stored image changed through a result: %+v", again[0])
	}
	// Untagged images still get a map the caller may write to.
	c.AddImage(srcAcct, region, sim.ImageSpec{Name: "b"})
	again, _ = src.DescribeImages(context.Background(), cloud.ImageQuery{})
	again[1].Tags["x"] = "y"
}

func TestDescribeImagesStateAtClock(t *testing.T) {
	c := newOrg(t)
	start := c.Now()
	im := c.AddImage(srcAcct, region, sim.ImageSpec{Name: "p", State: cloud.ImagePending, CompletesAt: start.Add(time.Hour)})
	forever := c.AddImage(srcAcct, region, sim.ImageSpec{Name: "q", State: cloud.ImagePending})
	src := c.Client(srcAcct, region)
	states := func() map[string]cloud.ImageState {
		got, _ := src.DescribeImages(context.Background(), cloud.ImageQuery{})
		m := map[string]cloud.ImageState{}
		for _, g := range got {
			m[g.ID] = g.State
		}
		return m
	}
	if s := states(); s[im.ID] != cloud.ImagePending {
		t.Fatalf("before: %v", s)
	}
	c.Advance(time.Hour)
	if s := states(); s[im.ID] != cloud.ImageAvailable || s[forever.ID] != cloud.ImagePending {
		t.Fatalf("after: %v", s)
	}
	if got := c.PendingCopies(srcAcct, region); got != 1 {
		t.Fatalf("PendingCopies = %d, want 1", got)
	}
}

func TestAddImageDefaultsAndInspection(t *testing.T) {
	c := newOrg(t)
	key := c.AddKey(srcAcct, region, "golden")
	im := c.AddImage(srcAcct, region, sim.ImageSpec{
		Name: "x", Description: "d", Tags: map[string]string{"A": "1"},
		Devices: []sim.DeviceSpec{{}, {Size: 20, KMSKeyARN: key}, {AWSManagedKey: true, DeviceName: "/dev/sdf"}},
	})
	if !cloud.IsImageID(im.ID) || im.State != cloud.ImageAvailable || !im.CreationDate.Equal(sim.DefaultStart()) {
		t.Fatalf("image %+v", im)
	}
	bd := im.BlockDevices
	if len(bd) != 3 || bd[0].DeviceName != "/dev/xvda" || bd[0].VolumeSize != 8 || bd[0].Encrypted ||
		bd[1].DeviceName != "/dev/xvdb" || !bd[1].Encrypted || bd[1].KMSKeyID != key || bd[1].VolumeSize != 20 ||
		bd[2].DeviceName != "/dev/sdf" || bd[2].KMSKeyID != c.DefaultEBSKey(srcAcct, region) {
		t.Fatalf("devices %+v", bd)
	}
	got, ok := c.Image(srcAcct, region, im.ID)
	if !ok || got.Name != "x" || got.Description != "d" || got.Tags["A"] != "1" || len(got.SnapshotIDs()) != 3 {
		t.Fatalf("Image() = %+v, %v", got, ok)
	}
	if _, ok := c.Image(tgtA, region, im.ID); ok {
		t.Fatal("image found under another account")
	}
	s, ok := c.Snapshot(srcAcct, region, bd[1].SnapshotID)
	if !ok || s.ImageID != im.ID || !s.Encrypted || s.KMSKeyARN != key || s.OwnerID != srcAcct {
		t.Fatalf("Snapshot() = %+v, %v", s, ok)
	}
	k, ok := c.Key(key)
	if !ok || k.Account != srcAcct || k.Region != region || !slices.Equal(k.Aliases, []string{"alias/golden"}) || k.AWSManaged {
		t.Fatalf("Key() = %+v", k)
	}
	d, _ := c.Key(c.DefaultEBSKey(srcAcct, region))
	if !d.AWSManaged || !slices.Equal(d.Aliases, []string{sim.DefaultEBSKeyAlias}) {
		t.Fatalf("default key %+v", d)
	}
}

func TestIDsAreDeterministic(t *testing.T) {
	build := func() []string {
		c := newOrg(t)
		var ids []string
		for _, acct := range []string{srcAcct, tgtA} {
			for range 3 {
				im := c.AddImage(acct, region, sim.ImageSpec{})
				ids = append(ids, im.ID, im.BlockDevices[0].SnapshotID)
			}
		}
		ids = append(ids, c.AddKey(tgtA, region, ""), c.AddOU("", "x"), c.LaunchInstance(tgtA, region, ids[0]))
		return ids
	}
	a, b := build(), build()
	if !slices.Equal(a, b) {
		t.Fatalf("ids differ between identical builds:\n%v\n%v", a, b)
	}
	seen := map[string]bool{}
	for _, id := range a {
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
}
