package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// The lifecycle of images beyond copying: their deprecation time
// (EnableImageDeprecation, DisableImageDeprecation) and the launch
// templates that name them (DescribeLaunchTemplateVersions).

// managedTag is amicopier's marker. The member template lets the copier
// role change the deprecation of an image only when the image carries it
// (an aws:ResourceTag condition, as for DeregisterImage), and the
// simulator's copier role has that policy.
const managedTag = "amicopier:managed"

// EnableImageDeprecation sets the deprecation time of one of the caller's
// images. The rules are EC2's (EnableImageDeprecation, Amazon EC2 API
// Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EnableImageDeprecation.html):
// the seconds are rounded to the nearest minute; "You can't specify a
// date in the past"; "The upper limit for DeprecateAt is 10 years from
// now" (cloud.MaxDeprecationAhead; the simulator has no public images,
// whose limit is two years from creation). Only the owner may deprecate
// an image ("To deprecate an AMI, you must be the owner of the AMI",
// Deprecate an AMI, Amazon EC2 User Guide,
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-deprecate.html):
// another account's image fails with AuthFailure, as the other owner-only
// calls do. The documentation names neither the error code of a refused
// time nor whether an image that is not available may be deprecated:
// the simulator refuses a bad time with InvalidParameterValue (EC2's code
// for a parameter value it does not accept, Error codes for the Amazon
// EC2 API) and an image that is not available with IncorrectState, the
// safe side (the engine only deprecates available copies). The copier
// role needs ec2:EnableImageDeprecation and may use it only on images
// tagged amicopier:managed=true (the member template's condition).
func (e *EC2) EnableImageDeprecation(ctx context.Context, imageID string, at time.Time) error {
	const op = cloud.OpEnableImageDeprecation
	return e.withOwnImage(ctx, opEnableImageDeprecation, op, imageID, true, func(im *image) error {
		if err := e.authorizeDeprecation(op, "ec2:EnableImageDeprecation", imageID, im); err != nil {
			return err
		}
		now := e.cloud.clock.Now()
		if st, _ := im.stateAt(now.UnixNano()); st != stAvailable {
			return cloud.Errorf(op, "IncorrectState", "The image '%s' is %s, not available", imageID, stateNames[st])
		}
		if at.IsZero() {
			return cloud.Errorf(op, "MissingParameter", "The request must contain the parameter DeprecateAt")
		}
		t := cloud.DeprecationMinute(at)
		switch {
		case t.Before(now):
			return cloud.Errorf(op, "InvalidParameterValue",
				"DeprecateAt %s is in the past: you can't specify a date in the past", t.Format(time.RFC3339))
		case t.After(now.Add(cloud.MaxDeprecationAhead)):
			return cloud.Errorf(op, "InvalidParameterValue",
				"DeprecateAt %s is more than 10 years from now", t.Format(time.RFC3339))
		}
		im.ensureExtra().deprecateAt = t.UnixNano()
		return nil
	})
}

// DisableImageDeprecation cancels the deprecation time of one of the
// caller's images ("Cancels the deprecation of the specified AMI",
// DisableImageDeprecation, Amazon EC2 API Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DisableImageDeprecation.html);
// owner only, as EnableImageDeprecation. The reference does not say what
// cancelling an image with no deprecation time does: the simulator
// accepts it (nothing to cancel). The copier role needs
// ec2:DisableImageDeprecation on an image tagged amicopier:managed=true.
func (e *EC2) DisableImageDeprecation(ctx context.Context, imageID string) error {
	const op = cloud.OpDisableImageDeprecation
	return e.withOwnImage(ctx, opDisableImageDeprecation, op, imageID, true, func(im *image) error {
		if err := e.authorizeDeprecation(op, "ec2:DisableImageDeprecation", imageID, im); err != nil {
			return err
		}
		if im.extra != nil {
			im.extra.deprecateAt = 0
		}
		return nil
	})
}

// authorizeDeprecation is IAM's verdict on a deprecation call of the
// copier role: the action allowed, on an image tagged as amicopier's.
func (e *EC2) authorizeDeprecation(op, action, imageID string, im *image) error {
	if !e.assumed {
		return nil
	}
	if !e.cloud.copierAllows(e.zone.account, action) {
		return unauthorizedEC2(op, e.zone.account, action)
	}
	if v, _ := im.tags.lookup(managedTag); v != "true" {
		return cloud.Errorf(op, "UnauthorizedOperation",
			"You are not authorized to perform this operation. User: arn:aws:sts::%s:assumed-role/copier is not authorized to perform: %s on resource image/%s (it is not tagged %s=true)",
			e.zone.account, action, imageID, managedTag)
	}
	return nil
}

// launchTemplate is one launch template of a zone; versions[i] is the
// image version i+1 names (an AMI id, or a "resolve:ssm:" reference).
type launchTemplate struct {
	name           string
	versions       []string
	defaultVersion int64
	deleted        bool
}

const prefixLaunchTemplate = "lt-"

// launchTemplatePageSize is the most versions one
// DescribeLaunchTemplateVersions page holds: "This value can be between 1
// and 200" (MaxResults, DescribeLaunchTemplateVersions, Amazon EC2 API
// Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeLaunchTemplateVersions.html).
const launchTemplatePageSize = 200

// AddLaunchTemplate creates a launch template in account and region whose
// version 1, its default, launches imageID (an AMI id of any account, or a
// Systems Manager reference such as "resolve:ssm:/golden/web", which the
// simulator does not resolve); it returns the template's id.
func (c *Cloud) AddLaunchTemplate(account, region, name, imageID string) string {
	z := c.mustZone("AddLaunchTemplate", account, region)
	z.mu.Lock()
	defer z.mu.Unlock()
	z.templates = append(z.templates, &launchTemplate{name: name, versions: []string{imageID}, defaultVersion: 1})
	return formatID(prefixLaunchTemplate, z.id, len(z.templates)-1)
}

// AddLaunchTemplateVersion adds a version launching imageID to a template
// made by AddLaunchTemplate, as CreateLaunchTemplateVersion does (it
// becomes the latest; the default only when makeDefault), and returns its
// number.
func (c *Cloud) AddLaunchTemplateVersion(account, region, templateID, imageID string, makeDefault bool) int64 {
	var n int64
	c.editTemplate("AddLaunchTemplateVersion", account, region, templateID, func(lt *launchTemplate) {
		lt.versions = append(lt.versions, imageID)
		n = int64(len(lt.versions))
		if makeDefault {
			lt.defaultVersion = n
		}
	})
	return n
}

// SetDefaultLaunchTemplateVersion makes version the template's default.
func (c *Cloud) SetDefaultLaunchTemplateVersion(account, region, templateID string, version int64) {
	c.editTemplate("SetDefaultLaunchTemplateVersion", account, region, templateID, func(lt *launchTemplate) {
		if version < 1 || version > int64(len(lt.versions)) {
			panic(fmt.Sprintf("sim: SetDefaultLaunchTemplateVersion: template %s has no version %d", templateID, version))
		}
		lt.defaultVersion = version
	})
}

// DeleteLaunchTemplate deletes a template made by AddLaunchTemplate.
func (c *Cloud) DeleteLaunchTemplate(account, region, templateID string) {
	c.editTemplate("DeleteLaunchTemplate", account, region, templateID, func(lt *launchTemplate) { lt.deleted = true })
}

func (c *Cloud) editTemplate(method, account, region, templateID string, fn func(*launchTemplate)) {
	z := c.existingZone(account, region)
	zid, idx, ok := parseID(prefixLaunchTemplate, templateID)
	if z == nil || !ok || zid != z.id {
		panic(fmt.Sprintf("sim: %s: no launch template %q in account %s Region %s", method, templateID, account, region))
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if idx >= len(z.templates) || z.templates[idx].deleted {
		panic(fmt.Sprintf("sim: %s: no launch template %q in account %s Region %s", method, templateID, account, region))
	}
	fn(z.templates[idx])
}

// LaunchTemplateImages lists the default and the latest version of every
// launch template of the caller's account and Region, as
// DescribeLaunchTemplateVersions does without a template id or name and
// with Versions $Latest and $Default: "To describe all launch templates in
// your account that are defined as the latest version, the valid value is
// $Latest. To describe all launch templates in your account that are
// defined as the default version, the valid value is $Default. You can
// specify $Latest and $Default in the same request" (Versions, same
// reference). A version that is both is listed once (the reference does not
// say; once is what the engine must cope with either way). The simulator
// does not model Systems Manager: a version naming a parameter keeps the
// reference, as EC2 does when it does not resolve it. Pages hold 200
// versions, each page one counted call.
func (e *EC2) LaunchTemplateImages(ctx context.Context) ([]cloud.LaunchTemplateVersion, error) {
	z := e.zone
	var out []cloud.LaunchTemplateVersion
	next := 0
	for {
		more := false
		err := e.do(ctx, opDescribeLaunchTemplateVersions, "", func() error {
			z.mu.RLock()
			defer z.mu.RUnlock()
			inPage := 0
			for ; next < len(z.templates); next++ {
				lt := z.templates[next]
				if lt.deleted {
					continue
				}
				vs := templateVersions(formatID(prefixLaunchTemplate, z.id, next), lt)
				if inPage+len(vs) > launchTemplatePageSize {
					more = true
					return nil
				}
				out = append(out, vs...)
				inPage += len(vs)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if !more {
			return out, nil
		}
	}
}

// templateVersions is a template's default version, and its latest when
// that is another.
func templateVersions(id string, lt *launchTemplate) []cloud.LaunchTemplateVersion {
	latest := int64(len(lt.versions))
	out := []cloud.LaunchTemplateVersion{{TemplateID: id, TemplateName: lt.name, Version: lt.defaultVersion, Default: true,
		ImageID: lt.versions[lt.defaultVersion-1]}}
	if latest != lt.defaultVersion {
		out = append(out, cloud.LaunchTemplateVersion{TemplateID: id, TemplateName: lt.name, Version: latest, ImageID: lt.versions[latest-1]})
	}
	return out
}
