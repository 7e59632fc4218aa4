package awsfake_test

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/sim"
)

// The fake refuses what EC2 refuses, with EC2's codes, before the
// simulator sees the request.
func TestLifecycleRequestsAreStrict(t *testing.T) {
	c, s := newServer(t)
	im := c.AddImage(owner, region, sim.ImageSpec{})
	c.AddLaunchTemplate(owner, region, "web", im.ID)
	soon := c.Now().Add(time.Hour).Format(time.RFC3339)
	tests := []struct {
		name   string
		form   map[string]string
		status int
		code   string
	}{
		{"deprecation set", map[string]string{"Action": "EnableImageDeprecation", "ImageId": im.ID, "DeprecateAt": soon}, http.StatusOK, ""},
		{"no image", map[string]string{"Action": "EnableImageDeprecation", "DeprecateAt": soon}, http.StatusBadRequest, "MissingParameter"},
		{"no time", map[string]string{"Action": "EnableImageDeprecation", "ImageId": im.ID}, http.StatusBadRequest, "MissingParameter"},
		{"not a timestamp", map[string]string{"Action": "EnableImageDeprecation", "ImageId": im.ID, "DeprecateAt": "next week"}, http.StatusBadRequest, "InvalidParameterValue"},
		{"in the past", map[string]string{"Action": "EnableImageDeprecation", "ImageId": im.ID, "DeprecateAt": "2001-01-01T00:00:00Z"}, http.StatusBadRequest, "InvalidParameterValue"},
		{"no such image", map[string]string{"Action": "DisableImageDeprecation", "ImageId": "ami-00000000000000000"}, http.StatusBadRequest, "InvalidAMIID.NotFound"},
		{"deprecation cancelled", map[string]string{"Action": "DisableImageDeprecation", "ImageId": im.ID}, http.StatusOK, ""},
		{"every template", map[string]string{"Action": "DescribeLaunchTemplateVersions", "LaunchTemplateVersion.1": "$Latest", "LaunchTemplateVersion.2": "$Default"}, http.StatusOK, ""},
		{"numbers without a template", map[string]string{"Action": "DescribeLaunchTemplateVersions", "LaunchTemplateVersion.1": "3"}, http.StatusBadRequest, "InvalidParameterValue"},
		{"no version", map[string]string{"Action": "DescribeLaunchTemplateVersions"}, http.StatusBadRequest, "MissingParameter"},
		{"too many results", map[string]string{"Action": "DescribeLaunchTemplateVersions", "LaunchTemplateVersion.1": "$Latest", "MaxResults": "500"}, http.StatusBadRequest, "InvalidParameterValue"},
		{"a bad token", map[string]string{"Action": "DescribeLaunchTemplateVersions", "LaunchTemplateVersion.1": "$Latest", "NextToken": "page-99"}, http.StatusBadRequest, "InvalidPaginationToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range tt.form {
				form.Set(k, v)
			}
			status, body := post(t, s, form)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if tt.code != "" && !strings.Contains(body, "<Code>"+tt.code+"</Code>") {
				t.Fatalf("body %s, want code %s", body, tt.code)
			}
		})
	}
}

// $Latest alone lists a template's latest version only; $Default alone its
// default; a version that is both is listed by either.
func TestLaunchTemplateVersionsSelected(t *testing.T) {
	c, s := newServer(t)
	a := c.AddImage(owner, region, sim.ImageSpec{}).ID
	b := c.AddImage(owner, region, sim.ImageSpec{}).ID
	web := c.AddLaunchTemplate(owner, region, "web", a)
	c.AddLaunchTemplateVersion(owner, region, web, b, false)
	one := c.AddLaunchTemplate(owner, region, "one", a)
	type version struct {
		ID      string `xml:"launchTemplateId"`
		N       int64  `xml:"versionNumber"`
		Default bool   `xml:"defaultVersion"`
		Image   string `xml:"launchTemplateData>imageId"`
	}
	for _, tt := range []struct {
		versions []string
		want     []version
	}{
		{[]string{"$Latest"}, []version{{web, 2, false, b}, {one, 1, true, a}}},
		{[]string{"$Default"}, []version{{web, 1, true, a}, {one, 1, true, a}}},
		{[]string{"$Latest", "$Default"}, []version{{web, 1, true, a}, {web, 2, false, b}, {one, 1, true, a}}},
	} {
		form := url.Values{"Action": {"DescribeLaunchTemplateVersions"}}
		for i, v := range tt.versions {
			form.Set(fmt.Sprintf("LaunchTemplateVersion.%d", i+1), v)
		}
		status, body := post(t, s, form)
		var resp struct {
			Versions []version `xml:"launchTemplateVersionSet>item"`
		}
		if err := xml.Unmarshal([]byte(body), &resp); err != nil || status != http.StatusOK {
			t.Fatalf("%v: %d %v %s", tt.versions, status, err, body)
		}
		if !slices.Equal(resp.Versions, tt.want) {
			t.Errorf("%v: %+v, want %+v", tt.versions, resp.Versions, tt.want)
		}
	}
}
