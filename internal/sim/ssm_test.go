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

func paramStore(t *testing.T, c *sim.Cloud, account string) cloud.ParameterStore {
	t.Helper()
	s, err := c.Connector(srcAcct, sim.WithAttempts(1)).TargetParameters(context.Background(), account, region)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// availableImage adds an available image to account in region.
func availableImage(c *sim.Cloud, account string) cloud.Image {
	return c.AddImage(account, region, sim.ImageSpec{Name: "img", Devices: []sim.DeviceSpec{{Encrypted: true}}})
}

func TestGetParametersTakesTenNames(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	s := paramStore(t, c, tgtA)
	c.SetParameter(tgtA, region, sim.ParameterSpec{Name: "/a/1", Value: "x"})
	names := []string{"/a/1"}
	for i := range 9 {
		names = append(names, fmt.Sprintf("/a/missing-%d", i))
	}
	got, err := s.GetParameters(ctx, names)
	if err != nil || len(got) != 1 || got["/a/1"].Value != "x" || got["/a/1"].Version != 1 || got["/a/1"].DataType != cloud.DataTypeText {
		t.Fatalf("ten names: %v, %v", got, err)
	}
	_, err = s.GetParameters(ctx, append(names, "/a/eleven"))
	wantCode(t, err, "ValidationException")
	_, err = s.GetParameters(ctx, nil)
	wantCode(t, err, "ValidationException")
	_, err = s.GetParameters(ctx, []string{"/a b"})
	wantCode(t, err, "ValidationException")
}

func TestPutParameterRules(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	img := availableImage(c, tgtA)
	c.SetParameter(tgtA, region, sim.ParameterSpec{Name: "/text", Value: "x"})
	c.SetParameter(tgtA, region, sim.ParameterSpec{Name: "/secret", Value: "x", Type: "SecureString"})
	deep := strings.Repeat("/l", 16)
	for _, tc := range []struct {
		name string
		in   cloud.PutParameterInput
		code string
	}{
		{"create", cloud.PutParameterInput{Name: "/new", Value: "v"}, ""},
		{"exists without overwrite", cloud.PutParameterInput{Name: "/text", Value: "y"}, "ParameterAlreadyExists"},
		{"overwrite", cloud.PutParameterInput{Name: "/text", Value: "y", Overwrite: true}, ""},
		{"tags with overwrite", cloud.PutParameterInput{Name: "/text", Value: "y", Overwrite: true, Tags: map[string]string{"k": "v"}}, "ValidationException"},
		{"text to aws:ec2:image", cloud.PutParameterInput{Name: "/text", Value: img.ID, Overwrite: true, DataType: cloud.DataTypeEC2Image}, "ValidationException"},
		{"another type", cloud.PutParameterInput{Name: "/secret", Value: "y", Overwrite: true}, "HierarchyTypeMismatchException"},
		{"sixteen levels", cloud.PutParameterInput{Name: deep, Value: "v"}, "HierarchyLevelLimitExceededException"},
		{"reserved prefix", cloud.PutParameterInput{Name: "/aws/x", Value: "v"}, "ValidationException"},
		{"a space", cloud.PutParameterInput{Name: "/a b", Value: "v"}, "ValidationException"},
		{"unknown data type", cloud.PutParameterInput{Name: "/d", Value: "v", DataType: "integer"}, "ValidationException"},
		{"too long a value", cloud.PutParameterInput{Name: "/long", Value: strings.Repeat("x", 4097)}, "ValidationException"},
		{"empty value", cloud.PutParameterInput{Name: "/empty"}, "ValidationException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := paramStore(t, c, tgtA).PutParameter(ctx, tc.in)
			wantCode(t, err, tc.code)
		})
	}
	if p, _ := c.Parameter(tgtA, region, "/text"); p.Value != "y" || p.Version != 2 {
		t.Errorf("/text after the overwrite: %+v", p)
	}
}

// TestImageParametersAreValidatedAsynchronously: PutParameter of an
// aws:ec2:image value answers with a version before SSM has validated it;
// the value shows only once validated, and never when it names no AMI
// available to the account, or the caller could not describe images.
func TestImageParametersAreValidatedAsynchronously(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t, sim.WithParameterValidation(time.Minute))
	img := availableImage(c, tgtA)
	theirs := availableImage(c, tgtB)
	s := paramStore(t, c, tgtA)
	put := func(name, value string) int64 {
		t.Helper()
		v, err := s.PutParameter(ctx, cloud.PutParameterInput{Name: name, Value: value, DataType: cloud.DataTypeEC2Image, Tags: map[string]string{"k": "v"}})
		if err != nil {
			t.Fatalf("PutParameter(%s): %v", value, err)
		}
		return v
	}
	if v := put("/ok", img.ID); v != 1 {
		t.Fatalf("version %d", v)
	}
	put("/nothing", "ami-0123456789abcdef0")
	put("/not-theirs", theirs.ID)
	put("/malformed", "not-an-ami")
	if got, _ := s.GetParameters(ctx, []string{"/ok"}); len(got) != 0 || c.PendingParameterWrites(tgtA, region) != 4 {
		t.Fatalf("before the validation: %v", got)
	}
	if _, err := s.ParameterTags(ctx, "/ok"); !isCode(err, "InvalidResourceId") {
		t.Fatalf("tags of a parameter not created yet: %v", err)
	}
	c.Advance(time.Minute)
	got, err := s.GetParameters(ctx, []string{"/ok", "/nothing", "/not-theirs", "/malformed"})
	if err != nil || len(got) != 1 || got["/ok"].Value != img.ID || got["/ok"].Version != 1 || got["/ok"].DataType != cloud.DataTypeEC2Image {
		t.Fatalf("after the validation: %v, %v", got, err)
	}
	if tags, err := s.ParameterTags(ctx, "/ok"); err != nil || tags["k"] != "v" {
		t.Fatalf("tags %v, %v", tags, err)
	}
	// Shared with the account, it validates.
	c.ShareImage(tgtB, region, theirs.ID, tgtA)
	put("/shared", theirs.ID)
	// Without ec2:DescribeImages the validation fails.
	c.DenyCopierActions(tgtA, "ec2:DescribeImages")
	put("/undescribed", img.ID)
	c.Advance(time.Minute)
	if names := c.Parameters(tgtA, region); strings.Join(names, " ") != "/ok /shared" {
		t.Fatalf("parameters %v", names)
	}
}

func TestParameterIAM(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	c.SetParameter(tgtA, region, sim.ParameterSpec{Name: "/p", Value: "x"})
	c.DenyCopierActions(tgtA, "ssm:GetParameters", "ssm:PutParameter", "ssm:ListTagsForResource", "ssm:AddTagsToResource")
	s := paramStore(t, c, tgtA)
	_, err := s.GetParameters(ctx, []string{"/p"})
	wantCode(t, err, "AccessDeniedException")
	_, err = s.PutParameter(ctx, cloud.PutParameterInput{Name: "/q", Value: "x"})
	wantCode(t, err, "AccessDeniedException")
	_, err = s.ParameterTags(ctx, "/p")
	wantCode(t, err, "AccessDeniedException")
	wantCode(t, s.TagParameter(ctx, "/p", map[string]string{"a": "b"}), "AccessDeniedException")
	// Tagging on create needs ssm:AddTagsToResource too.
	c.AllowCopierActions(tgtA, "ssm:PutParameter")
	_, err = s.PutParameter(ctx, cloud.PutParameterInput{Name: "/q", Value: "x", Tags: map[string]string{"a": "b"}})
	wantCode(t, err, "AccessDeniedException")
	// The administrator is never refused.
	if _, err := c.ParameterClient(tgtA, region).GetParameters(ctx, []string{"/p"}); err != nil {
		t.Fatal(err)
	}
}

// TestParameterStoreIsThrottled: Parameter Store's buckets are its own
// (40 reads a second per account and Region), answered with
// ThrottlingException.
func TestParameterStoreIsThrottled(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t, sim.WithThrottling(sim.Throttling{ParameterRead: sim.Bucket{Burst: 3, Refill: 1e-6}, ParameterWrite: sim.Bucket{Burst: 1, Refill: 1e-6}}))
	s := paramStore(t, c, tgtA)
	for range 3 {
		if _, err := s.GetParameters(ctx, []string{"/p"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.GetParameters(ctx, []string{"/p"})
	wantCode(t, err, "ThrottlingException")
	// Another account's bucket, and another API's, are untouched.
	if _, err := paramStore(t, c, tgtB).GetParameters(ctx, []string{"/p"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutParameter(ctx, cloud.PutParameterInput{Name: "/p", Value: "x"}); err != nil {
		t.Fatal(err)
	}
	if sim.ClassOf(cloud.OpPutParameter) != sim.BucketParameterWrite || sim.ClassOf(cloud.OpGetParameters) != sim.BucketParameterRead ||
		sim.ClassOf(cloud.OpPutEvents) != sim.BucketEvents {
		t.Error("Parameter Store and EventBridge calls are metered in EC2's buckets")
	}
}
