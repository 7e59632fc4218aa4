package config

import (
	"strings"
)

// DefaultAutoScalingRole is the name Auto Scaling gives its service-linked
// role in every account ("Service-linked roles for Amazon EC2 Auto
// Scaling": AWSServiceRoleForAutoScaling, or with a custom suffix
// AWSServiceRoleForAutoScaling_<suffix>).
const DefaultAutoScalingRole = "AWSServiceRoleForAutoScaling"

// Check tunes the preflight check (amicopier check, and the key checks of
// plan).
type Check struct {
	// AutoScalingRole is the Auto Scaling service-linked role whose use of
	// the copies' key is checked in each target account; "" skips that
	// check (no Auto Scaling group launches from the copies).
	AutoScalingRole string `yaml:"auto_scaling_role"`
	// CopyDryRun makes CopyImage dry runs (DryRun=true: nothing is copied)
	// to ask IAM whether the copier role may copy and tag.
	CopyDryRun bool `yaml:"copy_dry_run"`
	// InPlan makes plan check the keys of the pairs it would copy and mark
	// those a key problem would fail (kms_problem).
	InPlan bool `yaml:"in_plan"`
}

func defaultCheck() Check {
	return Check{AutoScalingRole: DefaultAutoScalingRole, CopyDryRun: true, InPlan: true}
}

func (v *validator) check(c *Check) {
	if r := c.AutoScalingRole; r != "" {
		suffix, ok := strings.CutPrefix(r, DefaultAutoScalingRole)
		if !ok || !isRoleName(r) || (suffix != "" && !strings.HasPrefix(suffix, "_")) {
			v.add("check.auto_scaling_role", "%q is not the name of an Auto Scaling service-linked role (%s, or %s_SUFFIX for one with a custom suffix; \"\" skips the check)",
				r, DefaultAutoScalingRole, DefaultAutoScalingRole)
		}
	}
}
