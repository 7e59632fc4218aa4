package awsfake

import (
	"context"
	"encoding/xml"
	"slices"
	"strconv"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// The lifecycle calls: an image's deprecation time and the launch
// templates that name images. The simulator decides (its rules cite EC2's
// documentation); the fake decodes the query protocol strictly and refuses
// what EC2 refuses.

// handleLifecycle serves the lifecycle actions; ok is false for any other.
func (s *Server) handleLifecycle(ctx context.Context, r *Request) (body []byte, ok bool, err error) {
	switch r.Op {
	case cloud.OpEnableImageDeprecation:
		body, err = s.enableImageDeprecation(ctx, r)
	case cloud.OpDisableImageDeprecation:
		body, err = s.disableImageDeprecation(ctx, r)
	case cloud.OpDescribeLaunchTemplateVersions:
		body, err = s.describeLaunchTemplateVersions(ctx, r)
	default:
		return nil, false, nil
	}
	return body, true, err
}

// deprecationClient is the client a deprecation request acts as: the
// copier role (whose IAM policy the simulator applies) for a request
// signed with assumed-role credentials.
func (s *Server) deprecationClient(r *Request) interface {
	EnableImageDeprecation(context.Context, string, time.Time) error
	DisableImageDeprecation(context.Context, string) error
} {
	if r.Assumed {
		return s.cloud.RoleClient(r.Account, r.Region)
	}
	return s.cloud.Client(r.Account, r.Region)
}

// imageParam reads the required ImageId of a request.
func imageParam(r *Request) (string, error) {
	id := r.Form.Get("ImageId")
	if id == "" {
		return "", cloud.Errorf(r.Op, "MissingParameter", "The request must contain the parameter ImageId")
	}
	if dry, err := boolParam(r.Form, "DryRun"); err != nil || dry {
		return "", cloud.Errorf(r.Op, "InvalidParameterValue", "awsfake does not serve DryRun for %s", r.Op)
	}
	return id, nil
}

// enableImageDeprecation serves EnableImageDeprecation: ImageId and
// DeprecateAt, a timestamp in ISO 8601 (the query protocol's timestamps,
// YYYY-MM-DDTHH:MM:SSZ with optional fractions;
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EnableImageDeprecation.html).
func (s *Server) enableImageDeprecation(ctx context.Context, r *Request) ([]byte, error) {
	id, err := imageParam(r)
	if err != nil {
		return nil, err
	}
	raw := r.Form.Get("DeprecateAt")
	if raw == "" {
		return nil, cloud.Errorf(r.Op, "MissingParameter", "The request must contain the parameter DeprecateAt")
	}
	at, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "Value (%s) for parameter DeprecateAt is invalid: expected YYYY-MM-DDTHH:MM:SSZ", raw)
	}
	if err := s.deprecationClient(r).EnableImageDeprecation(ctx, id, at); err != nil {
		return nil, err
	}
	return returnTrue("EnableImageDeprecationResponse", s.requestID())
}

func (s *Server) disableImageDeprecation(ctx context.Context, r *Request) ([]byte, error) {
	id, err := imageParam(r)
	if err != nil {
		return nil, err
	}
	if err := s.deprecationClient(r).DisableImageDeprecation(ctx, id); err != nil {
		return nil, err
	}
	return returnTrue("DisableImageDeprecationResponse", s.requestID())
}

// describeLaunchTemplateVersions serves the account-wide form the adapter
// sends: no template id or name, Versions $Latest and/or $Default ("You
// cannot specify numbers" in that form), MaxResults between 1 and 200,
// NextToken (DescribeLaunchTemplateVersions:
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeLaunchTemplateVersions.html).
// Filters are not served.
func (s *Server) describeLaunchTemplateVersions(ctx context.Context, r *Request) ([]byte, error) {
	f := r.Form
	if f.Get("LaunchTemplateId") != "" || f.Get("LaunchTemplateName") != "" {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "awsfake serves only the versions of every launch template of the account (no LaunchTemplateId or LaunchTemplateName)")
	}
	versions := indexed(f, "LaunchTemplateVersion.%d")
	if len(versions) == 0 {
		return nil, cloud.Errorf(r.Op, "MissingParameter", "Without a launch template id or name, the request must contain LaunchTemplateVersion ($Latest, $Default)")
	}
	for _, v := range versions {
		if v != "$Latest" && v != "$Default" {
			return nil, cloud.Errorf(r.Op, "InvalidParameterValue",
				"Version %q: to describe the launch templates of the account the valid values are $Latest and $Default; you cannot specify numbers", v)
		}
	}
	if len(Filters(f)) > 0 || f.Get("MinVersion") != "" || f.Get("MaxVersion") != "" {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "awsfake serves DescribeLaunchTemplateVersions without filters or version ranges")
	}
	if _, err := boolParam(f, "ResolveAlias"); err != nil {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "%v", err)
	}
	size := 200
	if v := f.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "MaxResults %q: this value can be between 1 and 200", v)
		}
		size = n
	}
	all, err := s.cloud.Client(r.Account, r.Region).LaunchTemplateImages(ctx)
	if err != nil {
		return nil, err
	}
	all = keepVersions(all, slices.Contains(versions, "$Default"), slices.Contains(versions, "$Latest"))
	page, next, err := paginate(all, f.Get("NextToken"), size)
	if err != nil {
		return nil, cloud.Errorf(r.Op, "InvalidPaginationToken", "%v", err)
	}
	type data struct {
		ImageID string `xml:"imageId"`
	}
	type item struct {
		ID         string `xml:"launchTemplateId"`
		Name       string `xml:"launchTemplateName"`
		Version    int64  `xml:"versionNumber"`
		Default    bool   `xml:"defaultVersion"`
		CreateTime string `xml:"createTime"`
		CreatedBy  string `xml:"createdBy"`
		Data       data   `xml:"launchTemplateData"`
	}
	resp := struct {
		XMLName   xml.Name `xml:"DescribeLaunchTemplateVersionsResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		RequestID string   `xml:"requestId"`
		Versions  []item   `xml:"launchTemplateVersionSet>item"`
		NextToken string   `xml:"nextToken,omitempty"`
	}{Xmlns: ec2Namespace, RequestID: s.requestID(), NextToken: next}
	for _, v := range page {
		resp.Versions = append(resp.Versions, item{ID: v.TemplateID, Name: v.TemplateName, Version: v.Version, Default: v.Default,
			CreateTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01-02T15:04:05.000Z"),
			CreatedBy:  "arn:aws:iam::" + r.Account + ":root", Data: data{ImageID: v.ImageID}})
	}
	return marshalXML(resp)
}

// keepVersions keeps the default versions (wantDefault) and the latest
// ones (wantLatest) of the simulator's listing, which holds each
// template's default version, then its latest when that is another.
func keepVersions(all []cloud.LaunchTemplateVersion, wantDefault, wantLatest bool) []cloud.LaunchTemplateVersion {
	var out []cloud.LaunchTemplateVersion
	for i, v := range all {
		latest := !v.Default || i+1 == len(all) || all[i+1].TemplateID != v.TemplateID
		if (v.Default && wantDefault) || (latest && wantLatest) {
			out = append(out, v)
		}
	}
	return out
}
