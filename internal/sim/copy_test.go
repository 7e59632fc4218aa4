package sim_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// copyCase prepares a source in c and returns the CopyImage input a target
// client (tgtA in region unless the case says otherwise) sends.
type copyCase struct {
	name   string
	prep   func(t *testing.T, c *sim.Cloud) cloud.CopyImageInput
	caller string // tgtA when empty
	code   string // expected error code; "" = accepted
	msg    string // the error must mention this
	state  cloud.ImageState
	reason string // the settled copy's StateReason must mention this
	// keyWant returns the key the copy's volumes must use.
	keyWant func(c *sim.Cloud) string
	// unencrypted: the copy's volumes must not be encrypted.
	unencrypted bool
}

// shared adds an available source image shared (image and snapshots) with
// both targets.
func shared(c *sim.Cloud, devices ...sim.DeviceSpec) cloud.Image {
	im := c.AddImage(srcAcct, region, sim.ImageSpec{Name: "golden", Tags: map[string]string{"Recipe": "base"}, Devices: devices})
	c.ShareImage(srcAcct, region, im.ID, tgtA, tgtB)
	return im
}

func simple(mod func(in *cloud.CopyImageInput)) func(*testing.T, *sim.Cloud) cloud.CopyImageInput {
	return func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
		in := copyInput(shared(c), "copy of golden")
		if mod != nil {
			mod(&in)
		}
		return in
	}
}

func manyTags(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%02d", i)] = "v"
	}
	return m
}

func TestCopyImageRules(t *testing.T) {
	tests := []copyCase{
		{name: "accepted", prep: simple(nil), state: cloud.ImageAvailable},
		{name: "owner copies its own image", caller: srcAcct, prep: simple(nil), state: cloud.ImageAvailable},

		// The source.
		{name: "source missing", prep: simple(func(in *cloud.CopyImageInput) { in.SourceImageID = "ami-00000990000000000" }), code: "InvalidAMIID.NotFound"},
		{name: "source id malformed", prep: simple(func(in *cloud.CopyImageInput) { in.SourceImageID = "ami-nope" }), code: "InvalidAMIID.Malformed"},
		{name: "source in another region", prep: simple(func(in *cloud.CopyImageInput) { in.SourceRegion = region2 }), code: "InvalidAMIID.NotFound"},
		{name: "source region malformed", prep: simple(func(in *cloud.CopyImageInput) { in.SourceRegion = "mars" }), code: "InvalidParameterValue"},
		{name: "source deregistered", prep: func(t *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			im := shared(c)
			if err := deregister(context.Background(), c.Client(srcAcct, region), im.ID); err != nil {
				t.Fatal(err)
			}
			return copyInput(im, "copy")
		}, code: "InvalidAMIID.NotFound"},
		{name: "source pending", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			im := c.AddImage(srcAcct, region, sim.ImageSpec{State: cloud.ImagePending})
			c.ShareImage(srcAcct, region, im.ID, tgtA)
			return copyInput(im, "copy")
		}, code: "InvalidAMIID.Unavailable"},
		{name: "source failed", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			im := c.AddImage(srcAcct, region, sim.ImageSpec{State: cloud.ImageFailed})
			c.ShareImage(srcAcct, region, im.ID, tgtA)
			return copyInput(im, "copy")
		}, code: "InvalidAMIID.Unavailable"},
		{name: "not shared is invisible", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			return copyInput(c.AddImage(srcAcct, region, sim.ImageSpec{}), "copy")
		}, code: "InvalidAMIID.NotFound"},
		{name: "shared with someone else is invisible", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			im := c.AddImage(srcAcct, region, sim.ImageSpec{})
			c.ShareImage(srcAcct, region, im.ID, tgtB)
			return copyInput(im, "copy")
		}, code: "InvalidAMIID.NotFound"},
		{name: "launch permission without snapshot permission", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			im := c.AddImage(srcAcct, region, sim.ImageSpec{Devices: []sim.DeviceSpec{{}, {}}})
			c.GrantLaunchPermission(srcAcct, region, im.ID, tgtA)
			c.GrantVolumePermission(srcAcct, region, im.BlockDevices[0].SnapshotID, tgtA)
			return copyInput(im, "copy")
		}, code: "AuthFailure", msg: "snap-"},

		// Request validation.
		{name: "key without encrypted", prep: simple(func(in *cloud.CopyImageInput) { in.Encrypted, in.KMSKeyID = false, "alias/x" }), code: "InvalidParameterCombination"},
		{name: "name too short", prep: simple(func(in *cloud.CopyImageInput) { in.Name = "ab" }), code: "InvalidAMIName.Malformed"},
		{name: "name too long", prep: simple(func(in *cloud.CopyImageInput) { in.Name = strings.Repeat("n", 129) }), code: "InvalidAMIName.Malformed"},
		{name: "name 128 long", prep: simple(func(in *cloud.CopyImageInput) { in.Name = strings.Repeat("n", 128) }), state: cloud.ImageAvailable},
		{name: "name bad character", prep: simple(func(in *cloud.CopyImageInput) { in.Name = "copy!" }), code: "InvalidAMIName.Malformed", msg: "copy!"},
		{name: "name every allowed character", prep: simple(func(in *cloud.CopyImageInput) { in.Name = "aZ09 ()[]./-'@_" }), state: cloud.ImageAvailable},
		{name: "description too long", prep: simple(func(in *cloud.CopyImageInput) { in.Description = strings.Repeat("d", 256) }), code: "InvalidParameterValue"},
		{name: "description 255", prep: simple(func(in *cloud.CopyImageInput) { in.Description = strings.Repeat("d", 255) }), state: cloud.ImageAvailable},
		{name: "51 tags", prep: simple(func(in *cloud.CopyImageInput) { in.Tags = manyTags(51) }), code: "TagLimitExceeded"},
		{name: "50 tags", prep: simple(func(in *cloud.CopyImageInput) { in.Tags = manyTags(50) }), state: cloud.ImageAvailable},
		{name: "empty tag key", prep: simple(func(in *cloud.CopyImageInput) { in.Tags[""] = "v" }), code: "InvalidParameterValue"},
		{name: "tag key too long", prep: simple(func(in *cloud.CopyImageInput) { in.Tags[strings.Repeat("k", 129)] = "v" }), code: "InvalidParameterValue"},
		{name: "tag key 128", prep: simple(func(in *cloud.CopyImageInput) { in.Tags[strings.Repeat("k", 128)] = "v" }), state: cloud.ImageAvailable},
		{name: "tag value too long", prep: simple(func(in *cloud.CopyImageInput) { in.Tags["k"] = strings.Repeat("v", 257) }), code: "InvalidParameterValue"},
		{name: "tag value 256", prep: simple(func(in *cloud.CopyImageInput) { in.Tags["k"] = strings.Repeat("v", 256) }), state: cloud.ImageAvailable},
		{name: "aws: tag key", prep: simple(func(in *cloud.CopyImageInput) { in.Tags["aws:cloudformation:stack"] = "v" }), code: "InvalidParameterValue", msg: "aws:"},
		{name: "client token too long", prep: simple(func(in *cloud.CopyImageInput) { in.ClientToken = strings.Repeat("t", 65) }), code: "InvalidParameterValue"},
		{name: "client token 64", prep: simple(func(in *cloud.CopyImageInput) { in.ClientToken = strings.Repeat("t", 64) }), state: cloud.ImageAvailable},
		{name: "client token not ASCII", prep: simple(func(in *cloud.CopyImageInput) { in.ClientToken = "tökén" }), code: "InvalidParameterValue"},

		// Names are unique per account and Region.
		{name: "duplicate name", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			c.AddImage(tgtA, region, sim.ImageSpec{Name: "taken"})
			return copyInput(shared(c), "taken")
		}, code: "InvalidAMIName.Duplicate", msg: "taken"},
		{name: "duplicate of a failed image", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			c.AddImage(tgtA, region, sim.ImageSpec{Name: "taken", State: cloud.ImageFailed})
			return copyInput(shared(c), "taken")
		}, code: "InvalidAMIName.Duplicate"},
		{name: "name of a deregistered image is free", prep: func(t *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			old := c.AddImage(tgtA, region, sim.ImageSpec{Name: "taken"})
			if err := deregister(context.Background(), c.Client(tgtA, region), old.ID); err != nil {
				t.Fatal(err)
			}
			return copyInput(shared(c), "taken")
		}, state: cloud.ImageAvailable},
		{name: "same name in another account", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			c.AddImage(tgtB, region, sim.ImageSpec{Name: "taken"})
			c.AddImage(tgtA, region2, sim.ImageSpec{Name: "taken"})
			return copyInput(shared(c), "taken")
		}, state: cloud.ImageAvailable},

		// Encryption and keys.
		{name: "unencrypted stays unencrypted", prep: simple(func(in *cloud.CopyImageInput) { in.Encrypted = false }),
			state: cloud.ImageAvailable, unencrypted: true},
		{name: "encrypted uses the default EBS key", prep: simple(nil), state: cloud.ImageAvailable,
			keyWant: func(c *sim.Cloud) string { return c.DefaultEBSKey(tgtA, region) }},
		{name: "encrypted source is re-encrypted even without Encrypted", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			k := c.AddKey(srcAcct, region, "golden")
			c.AllowKeyUse(k, tgtA)
			in := copyInput(shared(c, sim.DeviceSpec{KMSKeyARN: k}), "copy")
			in.Encrypted = false
			return in
		}, state: cloud.ImageAvailable, keyWant: func(c *sim.Cloud) string { return c.DefaultEBSKey(tgtA, region) }},
		{name: "key id", prep: keyRef(func(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }),
			state: cloud.ImageAvailable, keyWant: targetKey},
		{name: "alias name", prep: keyRef(func(string) string { return "alias/copies" }), state: cloud.ImageAvailable, keyWant: targetKey},
		{name: "key ARN", prep: keyRef(func(arn string) string { return arn }), state: cloud.ImageAvailable, keyWant: targetKey},
		{name: "alias ARN", prep: keyRef(func(string) string { return sim.AliasARN(region, tgtA, "copies") }), state: cloud.ImageAvailable, keyWant: targetKey},
		{name: "aws/ebs alias", prep: keyRef(func(string) string { return sim.DefaultEBSKeyAlias }), state: cloud.ImageAvailable,
			keyWant: func(c *sim.Cloud) string { return c.DefaultEBSKey(tgtA, region) }},
		{name: "unknown alias fails later", prep: keyRef(func(string) string { return "alias/nope" }),
			state: cloud.ImageFailed, reason: "Client.InvalidKMSKey.InvalidState"},
		{name: "unknown key id fails later", prep: keyRef(func(string) string { return "0e0e0e0e-0000-4000-8000-000000000000" }),
			state: cloud.ImageFailed, reason: "Client.InvalidKMSKey.InvalidState"},
		{name: "key id of another account fails later", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			k := c.AddKey(tgtB, region, "")
			in := copyInput(shared(c), "copy")
			in.KMSKeyID = k[strings.LastIndex(k, "/")+1:]
			return in
		}, state: cloud.ImageFailed, reason: "Client.InvalidKMSKey.InvalidState"},
		{name: "key in another region fails later", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			in := copyInput(shared(c), "copy")
			in.KMSKeyID = c.AddKey(tgtA, region2, "")
			return in
		}, state: cloud.ImageFailed, reason: "Client.InvalidKMSKey.InvalidState"},
		{name: "disabled key fails later", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			in := copyInput(shared(c), "copy")
			in.KMSKeyID = c.AddKey(tgtA, region, "")
			c.SetKeyEnabled(in.KMSKeyID, false)
			return in
		}, state: cloud.ImageFailed, reason: "Client.InvalidKMSKey.InvalidState"},
		{name: "another account's key it may use", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			in := copyInput(shared(c), "copy")
			in.KMSKeyID = c.AddKey(tgtB, region, "")
			c.AllowKeyUse(in.KMSKeyID, tgtA)
			return in
		}, state: cloud.ImageAvailable},
		{name: "source key not shared fails later", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			k := c.AddKey(srcAcct, region, "golden")
			return copyInput(shared(c, sim.DeviceSpec{KMSKeyARN: k}), "copy")
		}, state: cloud.ImageFailed, reason: "source snapshot"},
		{name: "source key shared with the account", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			k := c.AddKey(srcAcct, region, "golden")
			c.AllowKeyUse(k, tgtA)
			return copyInput(shared(c, sim.DeviceSpec{KMSKeyARN: k}), "copy")
		}, state: cloud.ImageAvailable},
		{name: "source key shared with the organisation", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			k := c.AddKey(srcAcct, region, "golden")
			c.AllowKeyUseByOrganization(k)
			return copyInput(shared(c, sim.DeviceSpec{KMSKeyARN: k}), "copy")
		}, state: cloud.ImageAvailable},
		{name: "organisation key does not serve outsiders", caller: outsider, prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			k := c.AddKey(srcAcct, region, "golden")
			c.AllowKeyUseByOrganization(k)
			im := shared(c, sim.DeviceSpec{KMSKeyARN: k})
			c.ShareImage(srcAcct, region, im.ID, outsider)
			return copyInput(im, "copy")
		}, state: cloud.ImageFailed, reason: "source snapshot"},
		{name: "source under the AWS-managed key fails later", prep: func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
			return copyInput(shared(c, sim.DeviceSpec{AWSManagedKey: true}), "copy")
		}, state: cloud.ImageFailed, reason: "source snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newOrg(t)
			in := tt.prep(t, c)
			caller := tgtA
			if tt.caller != "" {
				caller = tt.caller
			}
			e := c.Client(caller, region)
			before := len(c.Images(caller, region))
			id, err := e.CopyImage(context.Background(), in)
			wantCode(t, err, tt.code)
			wantContains(t, err, tt.msg)
			if n := c.Calls(cloud.OpCopyImage, caller, region); n != 1 {
				t.Fatalf("CopyImage calls = %d, want 1", n)
			}
			if tt.code != "" {
				if id != "" || len(c.Images(caller, region)) != before {
					t.Fatalf("failed CopyImage made an image (%q)", id)
				}
				return
			}
			im, ok := c.Image(caller, region, id)
			if !ok || im.State != cloud.ImagePending || im.OwnerID != caller || im.Name != in.Name || im.Description != in.Description {
				t.Fatalf("new copy = %+v, %v", im, ok)
			}
			c.Advance(sim.DefaultCopyDuration)
			im, _ = c.Image(caller, region, id)
			if im.State != tt.state {
				t.Fatalf("settled state = %s (%s), want %s", im.State, im.StateReason, tt.state)
			}
			if tt.reason != "" && !strings.Contains(im.StateReason, tt.reason) {
				t.Fatalf("state reason %q does not mention %q", im.StateReason, tt.reason)
			}
			src, _ := c.Image(srcAcct, region, in.SourceImageID)
			if len(im.BlockDevices) != len(src.BlockDevices) {
				t.Fatalf("copy has %d devices, source %d", len(im.BlockDevices), len(src.BlockDevices))
			}
			for i, bd := range im.BlockDevices {
				if bd.SnapshotID == src.BlockDevices[i].SnapshotID || bd.DeviceName != src.BlockDevices[i].DeviceName || bd.VolumeSize != src.BlockDevices[i].VolumeSize {
					t.Fatalf("device %d = %+v, source %+v", i, bd, src.BlockDevices[i])
				}
				if bd.Encrypted == tt.unencrypted {
					t.Fatalf("device %d encrypted = %v", i, bd.Encrypted)
				}
				if tt.keyWant != nil && bd.KMSKeyID != tt.keyWant(c) {
					t.Fatalf("device %d key = %s, want %s", i, bd.KMSKeyID, tt.keyWant(c))
				}
				s, ok := c.Snapshot(caller, region, bd.SnapshotID)
				if !ok || s.OwnerID != caller || s.ImageID != id || fmt.Sprint(s.Tags) != fmt.Sprint(in.Tags) {
					t.Fatalf("snapshot %+v, %v", s, ok)
				}
			}
			if fmt.Sprint(im.Tags) != fmt.Sprint(in.Tags) {
				t.Fatalf("copy tags %v, want %v", im.Tags, in.Tags)
			}
		})
	}
}

// keyRef makes a key with alias "copies" in tgtA and names it for
// CopyImage the way ref says.
func keyRef(ref func(arn string) string) func(*testing.T, *sim.Cloud) cloud.CopyImageInput {
	return func(_ *testing.T, c *sim.Cloud) cloud.CopyImageInput {
		arn := c.AddKey(tgtA, region, "copies")
		c.AddKey(tgtB, region, "copies") // same alias elsewhere must not be picked
		in := copyInput(shared(c), "copy")
		in.KMSKeyID = ref(arn)
		return in
	}
}

func targetKey(c *sim.Cloud) string {
	k, _ := c.ResolveKey(tgtA, region, "alias/copies")
	return k.ARN
}

func TestResolveKeyForms(t *testing.T) {
	c := newOrg(t)
	arn := c.AddKey(tgtA, region, "copies")
	other := c.AddKey(tgtB, region, "copies")
	id := arn[strings.LastIndex(arn, "/")+1:]
	for _, tt := range []struct {
		account, ref, want string
	}{
		{tgtA, id, arn},
		{tgtA, "alias/copies", arn},
		{tgtA, arn, arn},
		{tgtA, sim.AliasARN(region, tgtA, "copies"), arn},
		{tgtB, "alias/copies", other},
		{tgtA, sim.AliasARN(region, tgtB, "alias/copies"), other},
		{tgtB, id, ""}, // a bare key id is relative to the caller
		{tgtA, "alias/missing", ""},
		{tgtA, "arn:aws:kms:eu-west-1:" + tgtA + ":key/nope", ""},
		{tgtA, "arn:aws:s3:::bucket", ""},
	} {
		k, ok := c.ResolveKey(tt.account, region, tt.ref)
		if k.ARN != tt.want || ok != (tt.want != "") {
			t.Errorf("ResolveKey(%s, %q) = %q, %v; want %q", tt.account, tt.ref, k.ARN, ok, tt.want)
		}
	}
	if k, ok := c.ResolveKey(tgtA, region, sim.DefaultEBSKeyAlias); !ok || !k.AWSManaged || k.ARN != c.DefaultEBSKey(tgtA, region) {
		t.Errorf("aws/ebs resolves to %+v", k)
	}
}

func TestCopyCompletesAfterDuration(t *testing.T) {
	c := newOrg(t, sim.WithCopyDuration(time.Hour))
	e := c.Client(tgtA, region)
	id, err := e.CopyImage(context.Background(), copyInput(shared(c), "copy"))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		advance time.Duration
		want    cloud.ImageState
	}{{0, cloud.ImagePending}, {59 * time.Minute, cloud.ImagePending}, {time.Minute, cloud.ImageAvailable}, {time.Hour, cloud.ImageAvailable}} {
		c.Advance(step.advance)
		got, _ := e.DescribeImages(context.Background(), cloud.ImageQuery{ImageIDs: []string{id}})
		if len(got) != 1 || got[0].State != step.want {
			t.Fatalf("after %s: %+v, want %s", step.advance, got, step.want)
		}
	}
}

func TestCopyImageClientToken(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	src := shared(c)
	e := c.Client(tgtA, region)
	in := copyInput(src, "copy")
	in.ClientToken = "pair-1-attempt-1"
	first, err := e.CopyImage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	// Same token, same parameters: same id, nothing new, even with the
	// tags map rebuilt.
	again := in
	again.Tags = map[string]string{"CopiedFromAMI": src.ID}
	if id, err := e.CopyImage(ctx, again); err != nil || id != first {
		t.Fatalf("replay = %q, %v; want %q", id, err, first)
	}
	if n := len(c.Images(tgtA, region)); n != 1 {
		t.Fatalf("%d images after replay", n)
	}
	// Still the same answer once the copy is gone.
	if err := deregister(ctx, e, first); err != nil {
		t.Fatal(err)
	}
	if id, err := e.CopyImage(ctx, in); err != nil || id != first {
		t.Fatalf("replay after deregistration = %q, %v", id, err)
	}
	if n := len(c.Images(tgtA, region)); n != 0 {
		t.Fatalf("%d images after replay of a deregistered copy", n)
	}
	// Same token, other parameters.
	for name, mod := range map[string]func(*cloud.CopyImageInput){
		"name":        func(in *cloud.CopyImageInput) { in.Name = "other" },
		"description": func(in *cloud.CopyImageInput) { in.Description = "other" },
		"tags":        func(in *cloud.CopyImageInput) { in.Tags = map[string]string{"CopiedFromAMI": "x"} },
		"key":         func(in *cloud.CopyImageInput) { in.KMSKeyID = "alias/x" },
		"encrypted":   func(in *cloud.CopyImageInput) { in.Encrypted = false },
		"source":      func(in *cloud.CopyImageInput) { in.SourceImageID = "ami-00000990000000000" },
	} {
		t.Run(name, func(t *testing.T) {
			other := in
			mod(&other)
			_, err := e.CopyImage(ctx, other)
			wantCode(t, err, "IdempotentParameterMismatch")
		})
	}
	// Tokens are per account and Region.
	if id, err := c.Client(tgtB, region).CopyImage(ctx, in); err != nil || id == first {
		t.Fatalf("same token in another account = %q, %v", id, err)
	}
}

func TestCopyImageInFlightQuota(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t, sim.WithInFlightQuota(3))
	src := shared(c)
	e := c.Client(tgtA, region)
	c.AddImage(tgtA, region, sim.ImageSpec{Name: "baked elsewhere", State: cloud.ImagePending, CompletesAt: c.Now().Add(time.Hour)})
	var ids []string
	for i := range 2 {
		id, err := e.CopyImage(ctx, copyInput(src, fmt.Sprintf("copy %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	_, err := e.CopyImage(ctx, copyInput(src, "copy 2"))
	wantCode(t, err, "ResourceLimitExceeded")
	if cloud.ClassOf(err) != cloud.ClassLimit {
		t.Fatalf("class %s", cloud.ClassOf(err))
	}
	// Other accounts and Regions have their own quota.
	if _, err := c.Client(tgtB, region).CopyImage(ctx, copyInput(src, "copy 2")); err != nil {
		t.Fatal(err)
	}
	// Deregistering a pending copy frees its slot.
	if err := deregister(ctx, e, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CopyImage(ctx, copyInput(src, "copy 3")); err != nil {
		t.Fatal(err)
	}
	_, err = e.CopyImage(ctx, copyInput(src, "copy 4"))
	wantCode(t, err, "ResourceLimitExceeded")
	// Completed copies free theirs.
	c.Advance(sim.DefaultCopyDuration)
	if got := c.PendingCopies(tgtA, region); got != 1 {
		t.Fatalf("pending = %d, want 1 (the hour-long one)", got)
	}
	for i := range 2 {
		if _, err := e.CopyImage(ctx, copyInput(src, fmt.Sprintf("copy %d", 5+i))); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.CopyImage(ctx, copyInput(src, "copy 7"))
	wantCode(t, err, "ResourceLimitExceeded")
}
