package cloud

import (
	"strconv"
	"strings"
	"time"
)

// EC2's rules for an image's deprecation time, as EnableImageDeprecation
// states them: "If you specify a value for seconds, Amazon EC2 rounds the
// seconds to the nearest minute. You can't specify a date in the past. The
// upper limit for DeprecateAt is 10 years from now, except for public
// AMIs, where the upper limit is 2 years from the creation date"
// (EnableImageDeprecation, Amazon EC2 API Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EnableImageDeprecation.html).
// DescribeImages reports the time it stored, in UTC
// (Image.DeprecationTime, same reference).
const (
	// MaxDeprecationAhead is the furthest ahead a private image's
	// deprecation may be set: ten years of 365 days, a little short of
	// ten calendar years, so that a time within it is never refused.
	MaxDeprecationAhead = 10 * 365 * 24 * time.Hour
	// MaxPublicDeprecationAge bounds the deprecation time of a public
	// image, counted from its creation (two years of 365 days).
	MaxPublicDeprecationAge = 2 * 365 * 24 * time.Hour
)

// DeprecationMinute is a deprecation time as EC2 stores it: in UTC,
// rounded to the nearest minute.
func DeprecationMinute(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Round(time.Minute)
}

// LaunchTemplateVersion is one version of a launch template and the image
// it launches.
type LaunchTemplateVersion struct {
	TemplateID   string
	TemplateName string
	Version      int64
	// Default says the version is the template's default version; a
	// version listed without it is the template's latest.
	Default bool
	// ImageID is the AMI the version launches; when the version names a
	// Systems Manager parameter EC2 did not resolve, the reference
	// itself ("resolve:ssm:..."): see Resolved.
	ImageID string
}

// Resolved reports whether ImageID is an image id rather than a Systems
// Manager parameter EC2 left unresolved: then which image the template
// launches is not known.
func (v LaunchTemplateVersion) Resolved() bool {
	return !strings.HasPrefix(v.ImageID, "resolve:")
}

// Label names the version for a report: "lt-0abc (web-servers) version 3
// ($Default)".
func (v LaunchTemplateVersion) Label() string {
	s := v.TemplateID
	if v.TemplateName != "" {
		s += " (" + v.TemplateName + ")"
	}
	which := "$Latest"
	if v.Default {
		which = "$Default"
	}
	return s + " version " + strconv.FormatInt(v.Version, 10) + " (" + which + ")"
}
