package awsapi

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// wantForm checks that every field of want is in the request with that
// value.
func wantForm(t *testing.T, got url.Values, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if g := got.Get(k); g != v {
			t.Errorf("form field %s = %q, want %q (form %v)", k, g, v, got)
		}
	}
}

func TestDescribeImagesPaginatesWithFilters(t *testing.T) {
	c := newCloud(t)
	var want []string
	for i := range 7 {
		im := c.AddImage(srcAccount, region1, sim.ImageSpec{
			Name: fmt.Sprintf("golden-%d", i), Tags: map[string]string{"BuiltBy": "amigo", "Recipe": "r"},
			Devices: []sim.DeviceSpec{{Size: 8}, {Size: 20, Encrypted: true}},
		})
		want = append(want, im.ID)
	}
	c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "other", Tags: map[string]string{"BuiltBy": "packer"}})
	c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "pending", State: cloud.ImagePending, Tags: map[string]string{"BuiltBy": "amigo"}})
	f := newFixture(t, c, awsfake.Options{PageSize: 3}, nil)

	ec2c, err := f.sess.Connect(runID, ConnectOptions{}).Source(context.Background(), region1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ec2c.DescribeImages(context.Background(), cloud.ImageQuery{
		States: []cloud.ImageState{cloud.ImageAvailable},
		Tags:   map[string][]string{"BuiltBy": {"amigo"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if ids := sortedIDs(got); !slices.Equal(ids, want) {
		t.Fatalf("images %v, want %v", ids, want)
	}
	reqs := f.requests("DescribeImages")
	if len(reqs) != 3 {
		t.Fatalf("%d DescribeImages requests, want 3 pages of at most 3", len(reqs))
	}
	for i, r := range reqs {
		wantForm(t, r.Form, map[string]string{
			"Action": "DescribeImages", "Version": "2016-11-15", "Owner.1": "self", "MaxResults": "1000", "IncludeDisabled": "true",
			"Filter.1.Name": "state", "Filter.1.Value.1": "available",
			"Filter.2.Name": "tag:BuiltBy", "Filter.2.Value.1": "amigo",
		})
		if r.Account != srcAccount || r.Region != region1 || r.AccessKeyID != awsfake.BaseAccessKeyID {
			t.Errorf("request %d as %s in %s with %s, want the source account's own credentials", i, r.Account, r.Region, r.AccessKeyID)
		}
		token := r.Form.Get("NextToken")
		if (i == 0) != (token == "") {
			t.Errorf("request %d NextToken %q", i, token)
		}
	}
	// Every field reaches the engine's type, but for the snapshot keys
	// DescribeImages does not report (the simulator's inspection does).
	sim0, _ := c.Image(srcAccount, region1, want[0])
	if sim0.BlockDevices[1].KMSKeyID == "" {
		t.Fatal("the inspection lost the key of the encrypted volume")
	}
	for i := range sim0.BlockDevices {
		sim0.BlockDevices[i].KMSKeyID = ""
	}
	var conv cloud.Image
	for _, im := range got {
		if im.ID == want[0] {
			conv = im
		}
	}
	if !reflect.DeepEqual(conv, sim0) {
		t.Errorf("converted image\n %+v\nwant\n %+v", conv, sim0)
	}
}

func TestDescribeImagesFilterValuesAreLiteral(t *testing.T) {
	c := newCloud(t)
	star := c.AddImage(srcAccount, region1, sim.ImageSpec{Tags: map[string]string{"Stage": "a*b", "CopiedFromAMI": "x"}})
	c.AddImage(srcAccount, region1, sim.ImageSpec{Tags: map[string]string{"Stage": "axb", "CopiedFromAMI": "x"}})
	only := c.AddImage(srcAccount, region1, sim.ImageSpec{Tags: map[string]string{"Stage": "a*b"}})
	f := newFixture(t, c, awsfake.Options{}, nil)
	ec2c, err := f.sess.Connect(runID, ConnectOptions{}).Source(context.Background(), region1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ec2c.DescribeImages(context.Background(), cloud.ImageQuery{
		TagKeys: []string{"CopiedFromAMI"}, Tags: map[string][]string{"Stage": {"a*b"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ids := sortedIDs(got); !slices.Equal(ids, []string{star.ID}) {
		t.Fatalf("images %v, want only %s (not %s)", ids, star.ID, only.ID)
	}
	wantForm(t, f.requests("DescribeImages")[0].Form, map[string]string{
		"Filter.1.Name": "tag:Stage", "Filter.1.Value.1": `a\*b`,
		"Filter.2.Name": "tag-key", "Filter.2.Value.1": "CopiedFromAMI",
	})
}

func TestDescribeImagesByIDUsesFilterInChunks(t *testing.T) {
	c := newCloud(t)
	im := c.AddImage(srcAccount, region1, sim.ImageSpec{})
	ids := []string{im.ID}
	for i := range 250 {
		ids = append(ids, fmt.Sprintf("ami-%017x", 0xdead0000+i))
	}
	f := newFixture(t, c, awsfake.Options{}, nil)
	ec2c, _ := f.sess.Connect(runID, ConnectOptions{}).Source(context.Background(), region1)
	got, err := ec2c.DescribeImages(context.Background(), cloud.ImageQuery{ImageIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != im.ID {
		t.Fatalf("got %v, want only %s: unknown ids simply do not match", sortedIDs(got), im.ID)
	}
	reqs := f.requests("DescribeImages")
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (200 ids per image-id filter)", len(reqs))
	}
	for _, r := range reqs {
		if r.Form.Get("Filter.1.Name") != "image-id" || r.Form.Has("ImageId.1") {
			t.Errorf("ids must go in the image-id filter: %v", r.Form)
		}
	}
	if reqs[0].Form.Get("Filter.1.Value.200") == "" || reqs[0].Form.Has("Filter.1.Value.201") {
		t.Errorf("first chunk must hold exactly 200 ids")
	}
}

func TestSharingRequests(t *testing.T) {
	c := newCloud(t)
	ou := c.AddOU("", "workloads")
	key := c.AddKey(srcAccount, region1, "golden")
	im := c.AddImage(srcAccount, region1, sim.ImageSpec{Devices: []sim.DeviceSpec{{KMSKeyARN: key}, {KMSKeyARN: key}}})
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	conn := f.sess.Connect(runID, ConnectOptions{})
	ec2c, _ := conn.Source(ctx, region1)
	org, err := conn.Organization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info, err := org.DescribeOrganization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != sim.OrganizationID || info.ARN != sim.OrganizationARN() || info.ManagementAccount != sim.ManagementAccount {
		t.Fatalf("DescribeOrganization = %+v", info)
	}
	ouARN := info.OUARN(ou)
	if ouARN != sim.OUARN(ou) {
		t.Fatalf("OU ARN %s, the organisation's is %s", ouARN, sim.OUARN(ou))
	}

	grant := cloud.LaunchPermission{Accounts: []string{acctA, acctB}, OUs: []string{ouARN}, Organizations: []string{info.ARN}}
	if err := ec2c.AddImageLaunchPermission(ctx, im.ID, grant); err != nil {
		t.Fatal(err)
	}
	got, err := ec2c.ImageLaunchPermission(ctx, im.ID)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got.Accounts)
	if !slices.Equal(got.Accounts, grant.Accounts) || !slices.Equal(got.OUs, grant.OUs) ||
		!slices.Equal(got.Organizations, grant.Organizations) || got.Public {
		t.Errorf("launch permission %+v, want %+v", got, grant)
	}
	wantForm(t, f.requests("ModifyImageAttribute")[0].Form, map[string]string{
		"ImageId": im.ID, "LaunchPermission.Add.1.UserId": acctA, "LaunchPermission.Add.2.UserId": acctB,
		"LaunchPermission.Add.3.OrganizationalUnitArn": ouARN, "LaunchPermission.Add.4.OrganizationArn": info.ARN,
	})
	wantForm(t, f.requests("DescribeImageAttribute")[0].Form, map[string]string{"ImageId": im.ID, "Attribute": "launchPermission"})

	// Removals go in calls of their own.
	if err := ec2c.RemoveImageLaunchPermission(ctx, im.ID, cloud.LaunchPermission{Accounts: []string{acctB}, OUs: []string{ouARN}}); err != nil {
		t.Fatal(err)
	}
	rm := f.requests("ModifyImageAttribute")[1].Form
	wantForm(t, rm, map[string]string{"LaunchPermission.Remove.1.UserId": acctB, "LaunchPermission.Remove.2.OrganizationalUnitArn": ouARN})
	if rm.Has("LaunchPermission.Add.1.UserId") {
		t.Errorf("a removal carries an addition: %v", rm)
	}
	if p := c.LaunchPermission(srcAccount, region1, im.ID); !slices.Equal(p.Accounts, []string{acctA}) || len(p.OUs) != 0 {
		t.Errorf("after the removal the image is shared with %+v", p)
	}

	snap := im.BlockDevices[1].SnapshotID
	if err := ec2c.AddSnapshotVolumePermissions(ctx, snap, []string{acctA, acctB}); err != nil {
		t.Fatal(err)
	}
	if err := ec2c.RemoveSnapshotVolumePermissions(ctx, snap, []string{acctA}); err != nil {
		t.Fatal(err)
	}
	perms, err := ec2c.SnapshotVolumePermissions(ctx, snap)
	if err != nil || !slices.Equal(perms, []string{acctB}) {
		t.Errorf("snapshot permissions %v, %v", perms, err)
	}
	wantForm(t, f.requests("ModifySnapshotAttribute")[0].Form, map[string]string{
		"SnapshotId": snap, "Attribute": "createVolumePermission", "CreateVolumePermission.Add.1.UserId": acctA,
	})
	wantForm(t, f.requests("ModifySnapshotAttribute")[1].Form, map[string]string{
		"SnapshotId": snap, "Attribute": "createVolumePermission", "CreateVolumePermission.Remove.1.UserId": acctA,
	})
	wantForm(t, f.requests("DescribeSnapshotAttribute")[0].Form, map[string]string{"SnapshotId": snap, "Attribute": "createVolumePermission"})

	// Bad batches never leave the process.
	before := f.fake.Calls("")
	for _, bad := range []cloud.LaunchPermission{
		{}, {Accounts: []string{"12345"}}, {Accounts: make([]string, cloud.MaxLaunchPermissionBatch+1)},
		{OUs: []string{"ou-sim0-00000001"}}, {Organizations: []string{ouARN}}, {Public: true},
	} {
		if err := ec2c.AddImageLaunchPermission(ctx, im.ID, bad); err == nil {
			t.Errorf("batch %+v accepted", bad)
		}
		if err := ec2c.RemoveImageLaunchPermission(ctx, im.ID, bad); err == nil {
			t.Errorf("removal %+v accepted", bad)
		}
	}
	for _, ids := range [][]string{nil, {"not-an-account"}, make([]string, cloud.MaxShareBatch+1)} {
		if err := ec2c.AddSnapshotVolumePermissions(ctx, snap, ids); err == nil {
			t.Errorf("snapshot batch of %d accepted", len(ids))
		}
		if err := ec2c.RemoveSnapshotVolumePermissions(ctx, snap, ids); err == nil {
			t.Errorf("snapshot removal of %d accepted", len(ids))
		}
	}
	if err := ec2c.AddSnapshotVolumePermissions(ctx, snap, []string{"not-an-account"}); err == nil || !strings.Contains(err.Error(), `"not-an-account"`) {
		t.Errorf("error %v must name the bad id", err)
	}
	if f.fake.Calls("") != before {
		t.Error("a refused batch was sent")
	}
}

func TestCopyImageRequest(t *testing.T) {
	c := newCloud(t)
	key := c.AddKey(srcAccount, region1, "golden")
	c.AllowKeyUseByOrganization(key)
	src := c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "golden", Devices: []sim.DeviceSpec{{KMSKeyARN: key}}})
	c.AddKey(acctA, region2, "amicopier")
	c.ShareImage(srcAccount, region1, src.ID, acctA)
	f := newFixture(t, c, awsfake.Options{ExternalID: "ext-1"}, nil)
	ctx := context.Background()
	conn := f.sess.Connect(runID, ConnectOptions{})
	tgt, err := conn.Target(ctx, acctA, region2)
	if err != nil {
		t.Fatal(err)
	}
	id, err := tgt.CopyImage(ctx, cloud.CopyImageInput{
		SourceImageID: src.ID, SourceRegion: region1, Name: "golden-encrypted-" + src.ID, Description: "copy",
		Encrypted: true, KMSKeyID: "alias/amicopier", ClientToken: "tok-1",
		Tags: map[string]string{"CopiedFromAMI": src.ID, "Encrypted": "true", "amicopier:managed": "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.requests("CopyImage")
	if len(reqs) != 1 {
		t.Fatalf("%d CopyImage requests", len(reqs))
	}
	r := reqs[0]
	if r.Account != acctA || r.Region != region2 || r.AccessKeyID == awsfake.BaseAccessKeyID || r.SecurityToken == "" {
		t.Errorf("CopyImage sent as %s in %s with key %s: want the target's assumed role in the destination Region", r.Account, r.Region, r.AccessKeyID)
	}
	want := map[string]string{
		"SourceImageId": src.ID, "SourceRegion": region1, "Name": "golden-encrypted-" + src.ID, "Description": "copy",
		"Encrypted": "true", "KmsKeyId": "alias/amicopier", "ClientToken": "tok-1",
	}
	for i, rt := range []string{"image", "snapshot"} {
		n := i + 1
		want[fmt.Sprintf("TagSpecification.%d.ResourceType", n)] = rt
		for j, k := range []string{"CopiedFromAMI", "Encrypted", "amicopier:managed"} {
			want[fmt.Sprintf("TagSpecification.%d.Tag.%d.Key", n, j+1)] = k
		}
		want[fmt.Sprintf("TagSpecification.%d.Tag.1.Value", n)] = src.ID
		want[fmt.Sprintf("TagSpecification.%d.Tag.2.Value", n)] = "true"
	}
	wantForm(t, r.Form, want)
	if got, ok := c.Image(acctA, region2, id); !ok || got.State != cloud.ImagePending || got.Tags["CopiedFromAMI"] != src.ID {
		t.Errorf("copy %s in the simulator: %+v", id, got)
	}
	// The same token again is the same copy (EC2 idempotency).
	again, err := tgt.CopyImage(ctx, cloud.CopyImageInput{
		SourceImageID: src.ID, SourceRegion: region1, Name: "golden-encrypted-" + src.ID, Description: "copy",
		Encrypted: true, KMSKeyID: "alias/amicopier", ClientToken: "tok-1",
		Tags: map[string]string{"CopiedFromAMI": src.ID, "Encrypted": "true", "amicopier:managed": "true"},
	})
	if err != nil || again != id {
		t.Errorf("replayed CopyImage: %s, %v; want %s", again, err, id)
	}
}

func TestRemoveAndInstances(t *testing.T) {
	c := newCloud(t)
	used := c.AddImage(acctA, region1, sim.ImageSpec{})
	unused := c.AddImage(acctA, region1, sim.ImageSpec{})
	c.LaunchInstance(acctA, region1, used.ID)
	c.LaunchInstance(acctA, region1, used.ID)
	gone := c.LaunchInstance(acctA, region1, unused.ID)
	c.TerminateInstance(acctA, region1, gone)
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	tgt, err := f.sess.Connect(runID, ConnectOptions{}).Target(ctx, acctA, region1)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := tgt.InstancesUsingImages(ctx, []string{used.ID, unused.ID})
	if err != nil {
		t.Fatal(err)
	}
	if counts[used.ID] != 2 || counts[unused.ID] != 0 || len(counts) != 2 {
		t.Errorf("counts %v", counts)
	}
	r := f.requests("DescribeInstances")[0]
	wantForm(t, r.Form, map[string]string{"Filter.1.Name": "image-id", "Filter.2.Name": "instance-state-name", "MaxResults": "1000"})
	if states := awsfake.Filters(r.Form)[1].Values; slices.Contains(states, "terminated") || len(states) != 5 {
		t.Errorf("instance states %v: every state but terminated", states)
	}
	if _, err := tgt.DeregisterImage(ctx, unused.ID, false); err != nil {
		t.Fatal(err)
	}
	if d := f.requests("DeregisterImage")[0].Form; d.Get("ImageId") != unused.ID || d.Has("DeleteAssociatedSnapshots") {
		t.Errorf("DeregisterImage form %v: the image alone", d)
	}
	c.Advance(sim.SnapshotRelease)
	if err := tgt.DeleteSnapshot(ctx, unused.BlockDevices[0].SnapshotID); err != nil {
		t.Fatal(err)
	}
	wantForm(t, f.requests("DeleteSnapshot")[0].Form, map[string]string{"SnapshotId": unused.BlockDevices[0].SnapshotID})
	_, err = tgt.DeregisterImage(ctx, unused.ID, false)
	if cloud.ClassOf(err) != cloud.ClassNotFound || cloud.CodeOf(err) != "InvalidAMIID.NotFound" {
		t.Errorf("deregistering twice: %v (class %v)", err, cloud.ClassOf(err))
	}
}

// DeregisterImage with DeleteAssociatedSnapshots reads EC2's verdict per
// snapshot: a snapshot another image uses is skipped (not a failure), one
// EC2 could not delete is reported failed.
func TestDeregisterImageDeletesItsSnapshots(t *testing.T) {
	c := newCloud(t)
	plain := c.AddImage(acctA, region1, sim.ImageSpec{Devices: []sim.DeviceSpec{{Size: 8}, {Size: 20}}})
	broken := c.AddImage(acctA, region1, sim.ImageSpec{})
	c.BreakSnapshotDeletion(acctA, region1, broken.BlockDevices[0].SnapshotID, true)
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	tgt, err := f.sess.Connect(runID, ConnectOptions{}).Target(ctx, acctA, region1)
	if err != nil {
		t.Fatal(err)
	}
	failed, err := tgt.DeregisterImage(ctx, plain.ID, true)
	if err != nil || len(failed) != 0 {
		t.Fatalf("DeregisterImage = %v, %v", failed, err)
	}
	wantForm(t, f.requests("DeregisterImage")[0].Form, map[string]string{"ImageId": plain.ID, "DeleteAssociatedSnapshots": "true"})
	for _, id := range plain.SnapshotIDs() {
		if _, ok := c.Snapshot(acctA, region1, id); ok {
			t.Errorf("snapshot %s of the deregistered image is still there", id)
		}
	}
	failed, err = tgt.DeregisterImage(ctx, broken.ID, true)
	if err != nil || !slices.Equal(failed, broken.SnapshotIDs()) {
		t.Errorf("DeregisterImage of an image whose snapshot cannot go = %v, %v; want %v failed", failed, err, broken.SnapshotIDs())
	}
}

// EC2 counts filter values over a whole call: ids share the 200 with the
// other filters, and the adapter and the simulator split alike.
func TestFilterValuesAreCountedPerCall(t *testing.T) {
	c := newCloud(t)
	im := c.AddImage(acctA, region1, sim.ImageSpec{Tags: map[string]string{"Env": "prod"}})
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	tgt, err := f.sess.Connect(runID, ConnectOptions{}).Target(ctx, acctA, region1)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{im.ID}
	for i := range 300 {
		ids = append(ids, fmt.Sprintf("ami-%017x", i+1))
	}
	q := cloud.ImageQuery{ImageIDs: ids, States: []cloud.ImageState{cloud.ImageAvailable, cloud.ImagePending},
		Tags: map[string][]string{"Env": {"prod", "dev"}}, TagKeys: []string{"Env"}}
	got, err := tgt.DescribeImages(ctx, q)
	if err != nil || len(got) != 1 || got[0].ID != im.ID {
		t.Fatalf("DescribeImages = %v, %v", sortedIDs(got), err)
	}
	reqs := f.requests("DescribeImages")
	for _, r := range reqs {
		n := 0
		for _, flt := range awsfake.Filters(r.Form) {
			n += len(flt.Values)
		}
		if n > cloud.MaxFilterValues {
			t.Errorf("one DescribeImages carries %d filter values, EC2 takes %d", n, cloud.MaxFilterValues)
		}
	}
	room := cloud.MaxFilterValues - q.FilterValues()
	if want := (len(ids) + room - 1) / room; len(reqs) != want {
		t.Errorf("%d DescribeImages calls, want %d (%d ids, room for %d next to %d other values)", len(reqs), want, len(ids), room, q.FilterValues())
	}
	// The simulator, behind the port, splits the same way.
	before := c.Calls("DescribeImages", acctA, region1)
	if _, err := c.Client(acctA, region1).DescribeImages(ctx, q); err != nil {
		t.Fatal(err)
	}
	if n := c.Calls("DescribeImages", acctA, region1) - before; n != int64(len(reqs)) {
		t.Errorf("the simulator made %d calls for the query, the adapter %d", n, len(reqs))
	}

	if _, err := tgt.InstancesUsingImages(ctx, ids); err != nil {
		t.Fatal(err)
	}
	for _, r := range f.requests("DescribeInstances") {
		n := 0
		for _, flt := range awsfake.Filters(r.Form) {
			n += len(flt.Values)
		}
		if n > cloud.MaxFilterValues {
			t.Errorf("one DescribeInstances carries %d filter values, EC2 takes %d", n, cloud.MaxFilterValues)
		}
	}
	if n := len(f.requests("DescribeInstances")); n != 2 {
		t.Errorf("%d DescribeInstances calls for %d ids next to 5 states, want 2", n, len(ids))
	}
}

func TestReadOnlyConnectorSendsNoMutatingCall(t *testing.T) {
	c := newCloud(t)
	im := c.AddImage(srcAccount, region1, sim.ImageSpec{})
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	ec2c, _ := f.sess.Connect(runID, ConnectOptions{ReadOnly: true}).Source(ctx, region1)
	if _, err := ec2c.DescribeImages(ctx, cloud.ImageQuery{}); err != nil {
		t.Fatal(err)
	}
	err := ec2c.AddImageLaunchPermission(ctx, im.ID, cloud.LaunchPermission{Accounts: []string{acctA}})
	if err == nil || !strings.Contains(err.Error(), "dry run") {
		t.Fatalf("mutating call through a read-only connector: %v", err)
	}
	if _, err := ec2c.CopyImage(ctx, cloud.CopyImageInput{SourceImageID: im.ID, SourceRegion: region1, Name: "x-copy", Encrypted: true}); err == nil {
		t.Fatal("CopyImage through a read-only connector succeeded")
	}
	if n := f.fake.MutatingCalls(); n != 0 {
		t.Errorf("%d mutating calls reached the server", n)
	}
}
