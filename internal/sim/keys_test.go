package sim_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

func TestDescribeKey(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	own := c.AddKey(tgtA, region, "copies")
	other := c.AddKey(srcAcct, region, "golden")
	shared := c.AddKey(srcAcct, region, "shared")
	c.AllowKeyUse(shared, tgtA)
	orgKey := c.AddKey(srcAcct, region, "org")
	c.AllowKeyUseByOrganization(orgKey)
	elsewhere := c.AddKey(tgtA, region2, "copies")
	k, _ := c.Key(own)
	conn := c.Connector(srcAcct)
	keys, err := conn.TargetKeys(ctx, tgtA, region)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, ref, wantARN, code string
	}{
		{"alias name", "alias/copies", own, ""},
		{"key id", k.ID, own, ""},
		{"key ARN", own, own, ""},
		{"alias ARN", sim.AliasARN(region, tgtA, "copies"), own, ""},
		{"missing alias", "alias/nope", "", "NotFoundException"},
		{"key of another Region", elsewhere, "", "NotFoundException"},
		{"another account's key, not shared", other, "", "AccessDeniedException"},
		{"another account's key, shared", shared, shared, ""},
		{"the organisation's key", orgKey, orgKey, ""},
		{"another account's AWS managed key", c.DefaultEBSKey(srcAcct, region), "", "AccessDeniedException"},
		{"empty", "", "", "ValidationException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := keys.DescribeKey(ctx, tc.ref)
			wantCode(t, err, tc.code)
			if tc.code == "" && (info.ARN != tc.wantARN || info.State != cloud.KeyEnabled || !info.Symmetric() || info.Manager != cloud.KeyManagerCustomer) {
				t.Fatalf("DescribeKey(%s) = %+v", tc.ref, info)
			}
		})
	}
	// The predefined alias names the account's AWS managed key.
	info, err := keys.DescribeKey(ctx, sim.DefaultEBSKeyAlias)
	if err != nil || info.Manager != cloud.KeyManagerAWS || info.ARN != c.DefaultEBSKey(tgtA, region) {
		t.Fatalf("aws/ebs: %+v, %v", info, err)
	}
	// Any state is described; the spec is reported.
	c.SetKeyState(own, cloud.KeyPendingDeletion)
	c.SetKeySpec(own, "RSA_2048", "SIGN_VERIFY")
	info, err = keys.DescribeKey(ctx, own)
	if err != nil || info.State != cloud.KeyPendingDeletion || info.Symmetric() {
		t.Fatalf("pending deletion, RSA: %+v, %v", info, err)
	}
	if n := c.Calls(cloud.OpDescribeKey, tgtA, region); n != 13 {
		t.Errorf("%d DescribeKey calls counted, want 13", n)
	}
}

func TestDryRunDataKey(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(c *sim.Cloud, key string)
		code  string
	}{
		{"enabled", func(*sim.Cloud, string) {}, ""},
		{"disabled", func(c *sim.Cloud, k string) { c.SetKeyEnabled(k, false) }, "DisabledException"},
		{"pending deletion", func(c *sim.Cloud, k string) { c.SetKeyState(k, cloud.KeyPendingDeletion) }, "KMSInvalidStateException"},
		{"asymmetric", func(c *sim.Cloud, k string) { c.SetKeySpec(k, "RSA_2048", "SIGN_VERIFY") }, "InvalidKeyUsageException"},
		{"role lacks the action", func(c *sim.Cloud, _ string) {
			c.DenyCopierActions(tgtA, "kms:GenerateDataKeyWithoutPlaintext")
		}, "AccessDeniedException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newOrg(t)
			key := c.AddKey(tgtA, region, "copies")
			tc.setup(c, key)
			keys, err := c.Connector(srcAcct).TargetKeys(ctx, tgtA, region)
			if err != nil {
				t.Fatal(err)
			}
			wantCode(t, keys.DryRunDataKey(ctx, "alias/copies"), tc.code)
			// The administrator's own client is never refused by the
			// copier role's policy.
			if tc.name == "role lacks the action" {
				wantCode(t, c.KeyClient(tgtA, region).DryRunDataKey(ctx, key), "")
			}
			if c.MutatingCalls() != 0 {
				t.Fatal("a dry run counted as mutating")
			}
		})
	}
}

func TestKeyPolicyAndGrants(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	key := c.AddKey(tgtA, region, "copies")
	foreign := c.AddKey(srcAcct, region, "golden")
	c.AllowKeyUse(foreign, tgtA)
	slr := sim.AutoScalingRoleARN(tgtA, sim.AutoScalingRoleName)
	keys, _ := c.Connector(srcAcct).TargetKeys(ctx, tgtA, region)

	names := func(doc string) []string {
		var p struct {
			Statement []struct{ Principal map[string]any }
		}
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			t.Fatalf("policy %s: %v", doc, err)
		}
		var out []string
		for _, s := range p.Statement {
			out = append(out, s.Principal["AWS"].(string))
		}
		return out
	}
	doc, err := keys.KeyPolicy(ctx, key)
	if err != nil || strings.Contains(doc, slr) || len(names(doc)) != 1 {
		t.Fatalf("default policy names %v (%v)", names(doc), err)
	}
	c.AllowAutoScaling(key, true)
	if doc, _ = keys.KeyPolicy(ctx, key); !strings.Contains(doc, slr) {
		t.Fatalf("policy with Auto Scaling: %s", doc)
	}
	wantCode(t, func() error { _, err := keys.KeyPolicy(ctx, "alias/copies"); return err }(), "NotFoundException")
	wantCode(t, func() error { _, err := keys.KeyPolicy(ctx, foreign); return err }(), "AccessDeniedException")

	c.AddKeyGrant(foreign, slr, "Decrypt", "CreateGrant")
	c.AddKeyGrant(foreign, "arn:aws:iam::"+tgtB+":role/other", "Decrypt")
	grants, err := keys.KeyGrants(ctx, foreign, slr)
	if err != nil || len(grants) != 1 || grants[0].GranteePrincipal != slr {
		t.Fatalf("grants to the Auto Scaling role: %+v, %v", grants, err)
	}
	c.DenyCopierActions(tgtA, "kms:ListGrants", "kms:GetKeyPolicy")
	wantCode(t, func() error { _, err := keys.KeyGrants(ctx, foreign, slr); return err }(), "AccessDeniedException")
	wantCode(t, func() error { _, err := keys.KeyPolicy(ctx, key); return err }(), "AccessDeniedException")
}

func TestCopyImageAuthorisation(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		deny   []string
		tags   bool
		dry    string // the dry run's answer
		copied string // the real call's answer
	}{
		{"allowed", nil, true, "", ""},
		{"no ec2:CopyImage", []string{"ec2:CopyImage"}, true, "UnauthorizedOperation", "UnauthorizedOperation"},
		{"no ec2:CreateTags, with tags", []string{"ec2:CreateTags"}, true, "UnauthorizedOperation", "UnauthorizedOperation"},
		{"no ec2:CreateTags, without tags", []string{"ec2:CreateTags"}, false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newOrg(t)
			im := shared(c)
			c.DenyCopierActions(tgtA, tc.deny...)
			tgt, err := c.Connector(srcAcct).Target(ctx, tgtA, region)
			if err != nil {
				t.Fatal(err)
			}
			in := copyInput(im, "copy")
			if !tc.tags {
				in.Tags = nil
			}
			wantCode(t, tgt.(cloud.CopyDryRunner).DryRunCopyImage(ctx, in), tc.dry)
			if n := c.Calls(cloud.OpCopyImageDryRun, tgtA, region); n != 1 || c.MutatingCalls() != 0 || len(c.Images(tgtA, region)) != 0 {
				t.Fatalf("dry run: %d counted, %d mutating, %d images", n, c.MutatingCalls(), len(c.Images(tgtA, region)))
			}
			_, err = tgt.CopyImage(ctx, in)
			wantCode(t, err, tc.copied)
		})
	}
	// A malformed request fails a dry run as it fails the call.
	c := newOrg(t)
	im := shared(c)
	in := copyInput(im, "x")
	wantCode(t, c.Client(tgtA, region).DryRunCopyImage(ctx, in), "InvalidAMIName.Malformed")
}

func TestCopyFailsWhenTheRoleMayNotUseTheKey(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	im := shared(c)
	c.AddKey(tgtA, region, "copies")
	c.DenyCopierActions(tgtA, "kms:CreateGrant")
	tgt, _ := c.Connector(srcAcct).Target(ctx, tgtA, region)
	in := copyInput(im, "copy")
	in.KMSKeyID = "alias/copies"
	id, err := tgt.CopyImage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(c.CopyDuration())
	got, _ := c.Image(tgtA, region, id)
	if got.State != cloud.ImageFailed || !strings.Contains(got.StateReason, "InvalidKMSKey") {
		t.Fatalf("copy %s: %s (%s), want failed on the key", id, got.State, got.StateReason)
	}
	// Under the default key, the role needs no KMS permission.
	in.KMSKeyID, in.Name = "", "copy-default-key"
	id, _ = tgt.CopyImage(ctx, in)
	c.Advance(c.CopyDuration())
	if got, _ := c.Image(tgtA, region, id); got.State != cloud.ImageAvailable {
		t.Fatalf("copy under aws/ebs: %s (%s)", got.State, got.StateReason)
	}
}
