package awsapi

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// The deprecation calls over the wire, as the copier role makes them: EC2's
// rules and the role's tag condition hold, and the time DescribeImages
// reports is the one set.
func TestImageDeprecationOverTheWire(t *testing.T) {
	c := newCloud(t)
	ours := c.AddImage(acctA, region1, sim.ImageSpec{Name: "ours", Tags: map[string]string{"amicopier:managed": "true"}})
	theirs := c.AddImage(acctA, region1, sim.ImageSpec{Name: "theirs"})
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	tgt, err := f.sess.Connect(runID, ConnectOptions{}).Target(ctx, acctA, region1)
	if err != nil {
		t.Fatal(err)
	}
	at := c.Now().Add(72 * time.Hour).Truncate(time.Minute)
	tests := []struct {
		name  string
		call  func() error
		code  string
		class cloud.ErrorClass
		want  time.Time // ours' deprecation time after
	}{
		{name: "set", call: func() error { return tgt.EnableImageDeprecation(ctx, ours.ID, at) }, want: at},
		{name: "in the past", call: func() error { return tgt.EnableImageDeprecation(ctx, ours.ID, c.Now().Add(-time.Hour)) },
			code: "InvalidParameterValue", class: cloud.ClassPermanent, want: at},
		{name: "beyond ten years", call: func() error {
			return tgt.EnableImageDeprecation(ctx, ours.ID, c.Now().Add(cloud.MaxDeprecationAhead+48*time.Hour))
		}, code: "InvalidParameterValue", class: cloud.ClassPermanent, want: at},
		{name: "an image not tagged as amicopier's", call: func() error { return tgt.EnableImageDeprecation(ctx, theirs.ID, at) },
			code: "UnauthorizedOperation", class: cloud.ClassAccessDenied, want: at},
		{name: "not an image id", call: func() error { return tgt.EnableImageDeprecation(ctx, "ami-x", at) }, want: at},
		{name: "cancel", call: func() error { return tgt.DisableImageDeprecation(ctx, ours.ID) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			switch {
			case tt.name == "not an image id":
				if err == nil || !strings.Contains(err.Error(), "not an image id") {
					t.Fatalf("error %v, want the adapter to refuse it before sending", err)
				}
			case tt.code == "":
				if err != nil {
					t.Fatal(err)
				}
			default:
				if cloud.CodeOf(err) != tt.code || cloud.ClassOf(err) != tt.class {
					t.Fatalf("error %v (code %q, class %s), want %s (%s)", err, cloud.CodeOf(err), cloud.ClassOf(err), tt.code, tt.class)
				}
			}
			got, err := tgt.DescribeImages(ctx, cloud.ImageQuery{ImageIDs: []string{ours.ID}})
			if err != nil || len(got) != 1 {
				t.Fatalf("describe: %v %v", got, err)
			}
			if !got[0].DeprecationTime.Equal(tt.want) {
				t.Fatalf("DeprecationTime over the wire %v, want %v", got[0].DeprecationTime, tt.want)
			}
		})
	}
	reqs := f.requests(cloud.OpEnableImageDeprecation)
	if len(reqs) == 0 {
		t.Fatal("no EnableImageDeprecation request reached the fake")
	}
	wantForm(t, reqs[0].Form, map[string]string{"ImageId": ours.ID, "DeprecateAt": at.UTC().Format(time.RFC3339)})
	if reqs[0].AccessKeyID == awsfake.BaseAccessKeyID {
		t.Error("EnableImageDeprecation was signed with the base credentials, not the copier role's")
	}
}

// Every launch template's default and latest version, in pages of 200,
// with ResolveAlias: one call per page, no DescribeLaunchTemplates.
func TestLaunchTemplateImagesOverTheWire(t *testing.T) {
	c := newCloud(t)
	img := c.AddImage(acctA, region1, sim.ImageSpec{}).ID
	newer := c.AddImage(acctA, region1, sim.ImageSpec{}).ID
	var first string
	for i := range 130 {
		lt := c.AddLaunchTemplate(acctA, region1, fmt.Sprintf("t-%d", i), img)
		if i == 0 {
			first = lt
		}
		c.AddLaunchTemplateVersion(acctA, region1, lt, newer, false)
	}
	c.AddLaunchTemplate(acctA, region1, "by-parameter", "resolve:ssm:/golden/web")
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	tgt, err := f.sess.Connect(runID, ConnectOptions{ReadOnly: true}).Target(ctx, acctA, region1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tgt.LaunchTemplateImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 261 {
		t.Fatalf("%d versions, want 261", len(got))
	}
	want0 := cloud.LaunchTemplateVersion{TemplateID: first, TemplateName: "t-0", Version: 1, Default: true, ImageID: img}
	want1 := cloud.LaunchTemplateVersion{TemplateID: first, TemplateName: "t-0", Version: 2, ImageID: newer}
	if got[0] != want0 || got[1] != want1 {
		t.Errorf("first versions %+v %+v, want %+v %+v", got[0], got[1], want0, want1)
	}
	if last := got[len(got)-1]; last.Resolved() || last.ImageID != "resolve:ssm:/golden/web" {
		t.Errorf("unresolved parameter: %+v", last)
	}
	reqs := f.requests(cloud.OpDescribeLaunchTemplateVersions)
	if len(reqs) != 2 {
		t.Fatalf("%d requests for 261 versions, want 2", len(reqs))
	}
	wantForm(t, reqs[0].Form, map[string]string{
		"LaunchTemplateVersion.1": "$Latest", "LaunchTemplateVersion.2": "$Default", "ResolveAlias": "true", "MaxResults": "200",
	})
	if reqs[0].Form.Get("LaunchTemplateId") != "" || len(f.requests("DescribeLaunchTemplates")) != 0 {
		t.Error("the listing named a template or described templates one by one")
	}
}

// plan's connector refuses the deprecation calls before they are sent.
func TestReadOnlyConnectorRefusesDeprecation(t *testing.T) {
	c := newCloud(t)
	im := c.AddImage(acctA, region1, sim.ImageSpec{Tags: map[string]string{"amicopier:managed": "true"}})
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	tgt, err := f.sess.Connect(runID, ConnectOptions{ReadOnly: true}).Target(ctx, acctA, region1)
	if err != nil {
		t.Fatal(err)
	}
	if err := tgt.EnableImageDeprecation(ctx, im.ID, c.Now().Add(time.Hour)); err == nil {
		t.Fatal("EnableImageDeprecation through a read-only connector succeeded")
	}
	if err := tgt.DisableImageDeprecation(ctx, im.ID); err == nil {
		t.Fatal("DisableImageDeprecation through a read-only connector succeeded")
	}
	if n := f.fake.MutatingCalls(); n != 0 {
		t.Errorf("%d mutating calls reached the server", n)
	}
}
