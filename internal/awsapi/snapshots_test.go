package awsapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
)

// unknownSnapshots returns n snapshot ids no account holds; they sort
// after every id the simulator makes.
func unknownSnapshots(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("snap-f%016x", i)
	}
	return ids
}

func TestSnapshotKeysRequests(t *testing.T) {
	c := newCloud(t)
	key := c.AddKey(srcAccount, region1, "golden")
	im := c.AddImage(srcAccount, region1, sim.ImageSpec{Devices: []sim.DeviceSpec{{KMSKeyARN: key}, {AWSManagedKey: true}, {}}})
	customer, managed, plain := im.BlockDevices[0].SnapshotID, im.BlockDevices[1].SnapshotID, im.BlockDevices[2].SnapshotID
	foreignKey := c.AddKey(acctA, region1, "")
	foreign := c.AddImage(acctA, region1, sim.ImageSpec{Devices: []sim.DeviceSpec{{KMSKeyARN: foreignKey}}})
	c.ShareImage(acctA, region1, foreign.ID, srcAccount)
	// Two snapshots per page: the three found in the first chunk take two.
	f := newFixture(t, c, awsfake.Options{PageSize: 2}, nil)
	ctx := context.Background()
	conn := f.sess.Connect(runID, ConnectOptions{ReadOnly: true})
	src, err := conn.Source(ctx, region1)
	if err != nil {
		t.Fatal(err)
	}
	ids := append([]string{plain, managed, customer, foreign.BlockDevices[0].SnapshotID, customer}, unknownSnapshots(250)...)
	got, err := src.SnapshotKeys(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{customer: key, managed: c.DefaultEBSKey(srcAccount, region1)}
	if !maps.Equal(got, want) {
		t.Fatalf("keys %v, want %v (unencrypted, foreign and unknown snapshots absent)", got, want)
	}

	reqs := f.requests("DescribeSnapshots")
	if len(reqs) != 3 {
		t.Fatalf("%d DescribeSnapshots requests, want 3: 254 ids in chunks of 200 and 54, the first chunk over two pages", len(reqs))
	}
	for i, r := range reqs {
		wantForm(t, r.Form, map[string]string{
			"Action": "DescribeSnapshots", "Version": "2016-11-15", "Owner.1": "self", "MaxResults": "1000",
			"Filter.1.Name": "snapshot-id",
		})
		if r.Form.Has("Owner.2") || r.Form.Has("Filter.2.Name") || r.Form.Has("SnapshotId.1") || r.Form.Has("RestorableBy.1") {
			t.Errorf("request %d: unexpected fields in %v", i, r.Form)
		}
		if r.Account != srcAccount || r.Region != region1 {
			t.Errorf("request %d as %s in %s", i, r.Account, r.Region)
		}
		if token := r.Form.Get("NextToken"); (i == 1) != (token != "") {
			t.Errorf("request %d NextToken %q: only the first chunk's second page continues", i, token)
		}
	}
	values := func(r awsfake.Request) []string { return awsfake.Filters(r.Form)[0].Values }
	if first := values(reqs[0]); len(first) != 200 || !slices.IsSorted(first) || !slices.Contains(first, customer) ||
		len(slices.Compact(slices.Clone(first))) != len(first) {
		t.Errorf("first chunk: %d values, want 200 distinct sorted ids including %s", len(first), customer)
	}
	if !slices.Equal(values(reqs[1]), values(reqs[0])) {
		t.Error("a continuation page must repeat the chunk's filter")
	}
	if n := len(values(reqs[2])); n != 54 {
		t.Errorf("second chunk: %d values, want 54", n)
	}
	if n := conn.CallCounts()["DescribeSnapshots"]; n != 3 {
		t.Errorf("connector counted %d DescribeSnapshots", n)
	}
	if n := c.Calls(cloud.OpDescribeSnapshots, srcAccount, region1); n != 3 {
		t.Errorf("simulator counted %d DescribeSnapshots, one per request", n)
	}

	// No ids, no call.
	before := f.fake.Calls("DescribeSnapshots")
	if got, err := src.SnapshotKeys(ctx, nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("no ids: %v, %v", got, err)
	}
	if f.fake.Calls("DescribeSnapshots") != before {
		t.Error("SnapshotKeys without ids made a call")
	}
}

func TestSnapshotKeysErrors(t *testing.T) {
	c := newCloud(t)
	im := c.AddImage(srcAccount, region1, sim.ImageSpec{Devices: []sim.DeviceSpec{{Encrypted: true}}})
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	src, _ := f.sess.Connect(runID, ConnectOptions{}).Source(ctx, region1)
	f.fake.FailNext("DescribeSnapshots", "UnauthorizedOperation")
	_, err := src.SnapshotKeys(ctx, im.SnapshotIDs())
	if cloud.CodeOf(err) != "UnauthorizedOperation" || cloud.ClassOf(err) != cloud.ClassAccessDenied {
		t.Fatalf("error %v (class %v): want the AWS code, classified", err, cloud.ClassOf(err))
	}
	// Throttling is retried by the SDK.
	f.fake.FailNext("DescribeSnapshots", "RequestLimitExceeded")
	got, err := src.SnapshotKeys(ctx, im.SnapshotIDs())
	if err != nil || got[im.BlockDevices[0].SnapshotID] != c.DefaultEBSKey(srcAccount, region1) {
		t.Fatalf("after a throttle: %v, %v", got, err)
	}
}

func TestDescribeImagesIncludesDisabled(t *testing.T) {
	c := newCloud(t)
	live := c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "live"})
	off := c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "off"})
	c.DisableImage(srcAccount, region1, off.ID)
	born := c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "born-disabled", State: cloud.ImageDisabled})
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	src, _ := f.sess.Connect(runID, ConnectOptions{}).Source(ctx, region1)
	tests := []struct {
		name string
		q    cloud.ImageQuery
		want []string
	}{
		{"everything", cloud.ImageQuery{}, []string{live.ID, off.ID, born.ID}},
		{"by id", cloud.ImageQuery{ImageIDs: []string{off.ID}}, []string{off.ID}},
		{"available only", cloud.ImageQuery{States: []cloud.ImageState{cloud.ImageAvailable}}, []string{live.ID}},
		{"disabled only", cloud.ImageQuery{States: []cloud.ImageState{cloud.ImageDisabled}}, []string{off.ID, born.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := src.DescribeImages(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Sorted(slices.Values(tt.want))
			if ids := sortedIDs(got); !slices.Equal(ids, want) {
				t.Fatalf("images %v, want %v", ids, want)
			}
			for _, im := range got {
				wantState := cloud.ImageDisabled
				if im.ID == live.ID {
					wantState = cloud.ImageAvailable
				}
				if im.State != wantState {
					t.Errorf("%s: state %q, want %q", im.ID, im.State, wantState)
				}
			}
		})
	}
	for _, r := range f.requests("DescribeImages") {
		wantForm(t, r.Form, map[string]string{"IncludeDisabled": "true"})
	}
}

// EC2 lists a deregistered image for a while: the adapter leaves it out
// unless the query asks for that state.
func TestDescribeImagesDropsDeregistered(t *testing.T) {
	c := newCloud(t, sim.WithDeregisteredListing(time.Hour))
	live := c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "live"})
	gone := c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "gone"})
	if _, err := c.Client(srcAccount, region1).DeregisterImage(context.Background(), gone.ID, false); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	src, _ := f.sess.Connect(runID, ConnectOptions{}).Source(ctx, region1)
	for _, tt := range []struct {
		q    cloud.ImageQuery
		want []string
	}{
		{cloud.ImageQuery{}, []string{live.ID}},
		{cloud.ImageQuery{ImageIDs: []string{gone.ID, live.ID}}, []string{live.ID}},
		{cloud.ImageQuery{States: []cloud.ImageState{cloud.ImageDeregistered}}, []string{gone.ID}},
	} {
		got, err := src.DescribeImages(ctx, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if ids := sortedIDs(got); !slices.Equal(ids, tt.want) {
			t.Errorf("%+v: images %v, want %v", tt.q, ids, tt.want)
		}
	}
}

const recordedSnapshotsPage1 = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>6f9e8e2b-9f1a-4d3c-8a27-0c3bEXAMPLE</requestId>
    <snapshotSet>
        <item>
            <snapshotId>snap-0123456789abcdef0</snapshotId>
            <volumeId>vol-ffffffff</volumeId>
            <status>completed</status>
            <startTime>2025-12-20T09:00:00.000Z</startTime>
            <progress>100%</progress>
            <ownerId>111111111111</ownerId>
            <volumeSize>8</volumeSize>
            <description>Created by CreateImage(i-0abc) for ami-0abcdef1234567890</description>
            <encrypted>true</encrypted>
            <kmsKeyId>arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab</kmsKeyId>
            <storageTier>standard</storageTier>
            <tagSet>
                <item><key>Recipe</key><value>ubuntu-jammy-web</value></item>
            </tagSet>
        </item>
        <item>
            <snapshotId>snap-0aaaabbbbccccdddd</snapshotId>
            <volumeId>vol-ffffffff</volumeId>
            <status>completed</status>
            <startTime>2025-06-01T00:00:00.000Z</startTime>
            <progress>100%</progress>
            <ownerId>111111111111</ownerId>
            <volumeSize>8</volumeSize>
            <encrypted>false</encrypted>
            <storageTier>standard</storageTier>
        </item>
    </snapshotSet>
    <nextToken>eyJ2IjoiMiIsImMiOiJzbmFwMiJ9</nextToken>
</DescribeSnapshotsResponse>`

const recordedSnapshotsPage2 = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>0b7c1e55-71a3-4f6e-9d4e-2a5fEXAMPLE</requestId>
    <snapshotSet>
        <item>
            <snapshotId>snap-0fedcba9876543210</snapshotId>
            <volumeId>vol-ffffffff</volumeId>
            <status>completed</status>
            <startTime>2025-12-22T03:00:00.000Z</startTime>
            <progress>100%</progress>
            <ownerId>111111111111</ownerId>
            <volumeSize>30</volumeSize>
            <encrypted>true</encrypted>
            <kmsKeyId>arn:aws:kms:eu-west-1:111111111111:key/0f0f0f0f-1111-2222-3333-444444444444</kmsKeyId>
            <storageTier>archive</storageTier>
        </item>
    </snapshotSet>
</DescribeSnapshotsResponse>`

// TestRecordedSnapshots reads DescribeSnapshots answers shaped like AWS's,
// independently of the awsfake renderer.
func TestRecordedSnapshots(t *testing.T) {
	fakeEnv(t)
	var (
		mu    sync.Mutex
		forms []url.Values
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		mu.Lock()
		forms = append(forms, form)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		if form.Get("NextToken") == "" {
			_, _ = io.WriteString(w, recordedSnapshotsPage1)
		} else {
			_, _ = io.WriteString(w, recordedSnapshotsPage2)
		}
	}))
	defer srv.Close()
	cfg := config.Default()
	cfg.Source.AccountID = srcAccount
	cfg.Source.Regions = []string{region1}
	cfg.AWS.Region = region1
	cfg.AWS.Endpoints.EC2 = srv.URL
	sess, err := NewSession(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, _ := sess.Connect(runID, ConnectOptions{}).Source(ctx, region1)
	ids := []string{"snap-0fedcba9876543210", "snap-0aaaabbbbccccdddd", "snap-0123456789abcdef0"}
	got, err := src.SnapshotKeys(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"snap-0123456789abcdef0": "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"snap-0fedcba9876543210": "arn:aws:kms:eu-west-1:111111111111:key/0f0f0f0f-1111-2222-3333-444444444444",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	if len(forms) != 2 {
		t.Fatalf("%d requests, want two pages", len(forms))
	}
	sorted := slices.Sorted(slices.Values(ids))
	for i, f := range forms {
		wantForm(t, f, map[string]string{
			"Action": "DescribeSnapshots", "Owner.1": "self", "MaxResults": "1000",
			"Filter.1.Name": "snapshot-id", "Filter.1.Value.1": sorted[0], "Filter.1.Value.2": sorted[1], "Filter.1.Value.3": sorted[2],
		})
		if f.Has("Filter.1.Value.4") {
			t.Errorf("request %d: more filter values than ids", i)
		}
	}
	if forms[1].Get("NextToken") != "eyJ2IjoiMiIsImMiOiJzbmFwMiJ9" {
		t.Errorf("second page token %q", forms[1].Get("NextToken"))
	}
}

// The owner sees its deprecated images, with their DeprecationTime.
func TestDescribeImagesReportsDeprecation(t *testing.T) {
	c := newCloud(t)
	at := c.Now().Add(-time.Hour).Truncate(time.Millisecond)
	old := c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "old", DeprecationTime: at})
	live := c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "live"})
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	src, _ := f.sess.Connect(runID, ConnectOptions{}).Source(ctx, region1)
	got, err := src.DescribeImages(ctx, cloud.ImageQuery{})
	if err != nil || len(got) != 2 {
		t.Fatalf("DescribeImages = %v, %v", sortedIDs(got), err)
	}
	for _, im := range got {
		switch im.ID {
		case old.ID:
			if !im.DeprecationTime.Equal(at) {
				t.Errorf("deprecation time %v, want %v", im.DeprecationTime, at)
			}
		case live.ID:
			if !im.DeprecationTime.IsZero() {
				t.Errorf("an image never deprecated has deprecation time %v", im.DeprecationTime)
			}
		}
	}
}
