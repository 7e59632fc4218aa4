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

// EnableImageDeprecation as EC2 documents it: whole minutes, never in the
// past, at most ten years ahead, the owner only; the copier role only on
// amicopier's images.
func TestEnableImageDeprecation(t *testing.T) {
	ctx := context.Background()
	managed := map[string]string{"amicopier:managed": "true"}
	tests := []struct {
		name  string
		spec  sim.ImageSpec
		owner string // the image's account (default tgtA)
		at    func(now time.Time) time.Time
		// role: call as the copier role (Connector.Target), else as the
		// account's administrator; deny takes the action from the role.
		role, deny bool
		code       string
		want       func(now time.Time) time.Time // the DeprecationTime DescribeImages reports after
	}{
		{name: "a whole minute", at: func(now time.Time) time.Time { return now.Add(48 * time.Hour) },
			want: func(now time.Time) time.Time { return now.Add(48 * time.Hour) }},
		{name: "seconds are rounded to the nearest minute", at: func(now time.Time) time.Time { return now.Add(time.Hour + 40*time.Second) },
			want: func(now time.Time) time.Time { return now.Add(time.Hour + time.Minute) }},
		{name: "seconds below half a minute round down", at: func(now time.Time) time.Time { return now.Add(time.Hour + 29*time.Second) },
			want: func(now time.Time) time.Time { return now.Add(time.Hour) }},
		{name: "a time in the past", at: func(now time.Time) time.Time { return now.Add(-2 * time.Minute) }, code: "InvalidParameterValue"},
		{name: "more than ten years ahead", at: func(now time.Time) time.Time { return now.Add(cloud.MaxDeprecationAhead + 24*time.Hour) }, code: "InvalidParameterValue"},
		{name: "exactly the limit", at: func(now time.Time) time.Time { return now.Add(cloud.MaxDeprecationAhead) },
			want: func(now time.Time) time.Time { return now.Add(cloud.MaxDeprecationAhead) }},
		{name: "no time", at: func(time.Time) time.Time { return time.Time{} }, code: "MissingParameter"},
		{name: "another account's image", owner: srcAcct, at: func(now time.Time) time.Time { return now.Add(time.Hour) }, code: "AuthFailure"},
		{name: "a pending image", spec: sim.ImageSpec{State: cloud.ImagePending}, at: func(now time.Time) time.Time { return now.Add(time.Hour) }, code: "IncorrectState"},
		{name: "the copier role on amicopier's copy", spec: sim.ImageSpec{Tags: managed}, role: true,
			at: func(now time.Time) time.Time { return now.Add(time.Hour) }, want: func(now time.Time) time.Time { return now.Add(time.Hour) }},
		{name: "the copier role on an image not tagged as amicopier's", role: true,
			at: func(now time.Time) time.Time { return now.Add(time.Hour) }, code: "UnauthorizedOperation"},
		{name: "the copier role without the action", spec: sim.ImageSpec{Tags: managed}, role: true, deny: true,
			at: func(now time.Time) time.Time { return now.Add(time.Hour) }, code: "UnauthorizedOperation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newOrg(t)
			owner := tt.owner
			if owner == "" {
				owner = tgtA
			}
			img := c.AddImage(owner, region, tt.spec)
			var client cloud.EC2 = c.Client(tgtA, region)
			if tt.role {
				if tt.deny {
					c.DenyCopierActions(tgtA, "ec2:EnableImageDeprecation")
				}
				var err error
				if client, err = c.Connector(srcAcct).Target(ctx, tgtA, region); err != nil {
					t.Fatal(err)
				}
			}
			now := c.Now()
			err := client.EnableImageDeprecation(ctx, img.ID, tt.at(now))
			wantCode(t, err, tt.code)
			got, _ := c.Image(owner, region, img.ID)
			if tt.code != "" {
				if !got.DeprecationTime.IsZero() {
					t.Fatalf("a refused call set the deprecation time to %v", got.DeprecationTime)
				}
				return
			}
			if want := tt.want(now); !got.DeprecationTime.Equal(want) {
				t.Fatalf("DeprecationTime = %v, want %v", got.DeprecationTime, want)
			}
			listed, err := c.Client(owner, region).DescribeImages(ctx, cloud.ImageQuery{ImageIDs: []string{img.ID}})
			if err != nil || len(listed) != 1 || !listed[0].DeprecationTime.Equal(got.DeprecationTime) {
				t.Fatalf("DescribeImages %+v, %v: want the deprecation time", listed, err)
			}
		})
	}
}

func TestDisableImageDeprecation(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	at := c.Now().Add(24 * time.Hour)
	img := c.AddImage(tgtA, region, sim.ImageSpec{DeprecationTime: at, Tags: map[string]string{"amicopier:managed": "true"}})
	other := c.AddImage(tgtA, region, sim.ImageSpec{DeprecationTime: at})
	role, err := c.Connector(srcAcct).Target(ctx, tgtA, region)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, role.DisableImageDeprecation(ctx, other.ID), "UnauthorizedOperation")
	wantCode(t, role.DisableImageDeprecation(ctx, img.ID), "")
	if got, _ := c.Image(tgtA, region, img.ID); !got.DeprecationTime.IsZero() {
		t.Fatalf("deprecation time %v after DisableImageDeprecation", got.DeprecationTime)
	}
	// Nothing to cancel is no error.
	wantCode(t, role.DisableImageDeprecation(ctx, img.ID), "")
	wantCode(t, c.Client(tgtB, region).DisableImageDeprecation(ctx, img.ID), "AuthFailure")
	wantCode(t, role.DisableImageDeprecation(ctx, "ami-nope"), "InvalidAMIID.Malformed")
	if got, _ := c.Image(tgtA, region, other.ID); !got.DeprecationTime.Equal(at) {
		t.Fatalf("the refused call changed %v", got.DeprecationTime)
	}
}

// DescribeLaunchTemplateVersions with $Latest and $Default and no template:
// every template's default version and, where it is another, its latest.
func TestLaunchTemplateImages(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	a := c.AddImage(tgtA, region, sim.ImageSpec{Name: "a"}).ID
	b := c.AddImage(tgtA, region, sim.ImageSpec{Name: "b"}).ID
	web := c.AddLaunchTemplate(tgtA, region, "web", a)
	c.AddLaunchTemplateVersion(tgtA, region, web, b, false) // latest, not default
	api := c.AddLaunchTemplate(tgtA, region, "api", "resolve:ssm:/golden/api")
	old := c.AddLaunchTemplate(tgtA, region, "old", b)
	c.DeleteLaunchTemplate(tgtA, region, old)
	c.AddLaunchTemplate(tgtB, region, "elsewhere", a) // another account's
	got, err := c.Client(tgtA, region).LaunchTemplateImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []cloud.LaunchTemplateVersion{
		{TemplateID: web, TemplateName: "web", Version: 1, Default: true, ImageID: a},
		{TemplateID: web, TemplateName: "web", Version: 2, ImageID: b},
		{TemplateID: api, TemplateName: "api", Version: 1, Default: true, ImageID: "resolve:ssm:/golden/api"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if got[2].Resolved() || !got[0].Resolved() {
		t.Fatal("Resolved: want false only for the SSM reference")
	}
	c.SetDefaultLaunchTemplateVersion(tgtA, region, web, 2)
	got, _ = c.Client(tgtA, region).LaunchTemplateImages(ctx)
	if len(got) != 2 || got[0].Version != 2 || !got[0].Default {
		t.Fatalf("after making version 2 the default: %+v", got)
	}
	if n := c.Calls(cloud.OpDescribeLaunchTemplateVersions, tgtA, region); n != 2 {
		t.Fatalf("DescribeLaunchTemplateVersions calls = %d, want 2", n)
	}
}

// Past 200 versions a page, the listing takes more calls.
func TestLaunchTemplateImagesPages(t *testing.T) {
	c := newOrg(t)
	img := c.AddImage(tgtA, region, sim.ImageSpec{}).ID
	for i := range 150 {
		lt := c.AddLaunchTemplate(tgtA, region, fmt.Sprintf("t%d", i), img)
		c.AddLaunchTemplateVersion(tgtA, region, lt, img, false)
	}
	got, err := c.Client(tgtA, region).LaunchTemplateImages(context.Background())
	if err != nil || len(got) != 300 {
		t.Fatalf("%d versions, %v", len(got), err)
	}
	if n := c.Calls(cloud.OpDescribeLaunchTemplateVersions, tgtA, region); n != 2 {
		t.Fatalf("%d calls for 300 versions, want 2", n)
	}
}
