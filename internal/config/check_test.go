package config

import (
	"strings"
	"testing"
)

func TestCheckSettings(t *testing.T) {
	for _, tc := range []struct {
		name, doc, message string
		want               func(c Check) bool
	}{
		{"defaults", "", "", func(c Check) bool {
			return c.AutoScalingRole == DefaultAutoScalingRole && c.CopyDryRun && c.InPlan
		}},
		{"custom suffix", "check:\n  auto_scaling_role: AWSServiceRoleForAutoScaling_fleet\n", "", func(c Check) bool {
			return c.AutoScalingRole == "AWSServiceRoleForAutoScaling_fleet"
		}},
		{"off", "check:\n  auto_scaling_role: \"\"\n  copy_dry_run: false\n  in_plan: false\n", "", func(c Check) bool {
			return c.AutoScalingRole == "" && !c.CopyDryRun && !c.InPlan
		}},
		{"another role", "check:\n  auto_scaling_role: amicopier-copier # <-\n", `"amicopier-copier" is not the name of an Auto Scaling service-linked role`, nil},
		{"suffix without underscore", "check:\n  auto_scaling_role: AWSServiceRoleForAutoScalingX # <-\n", "is not the name of an Auto Scaling service-linked role", nil},
		{"too long", "check:\n  auto_scaling_role: AWSServiceRoleForAutoScaling_" + strings.Repeat("x", 40) + " # <-\n", "is not the name", nil},
		{"not a bool", "check:\n  copy_dry_run: sometimes # <-\n", "copy_dry_run", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := parseCase(t, base+tc.doc, tc.message)
			if ok && !tc.want(c.Check) {
				t.Fatalf("check settings %+v", c.Check)
			}
		})
	}
}

// parseCase parses and validates doc. With message empty it must be
// valid (ok: the caller checks the settings); otherwise it must give one
// problem, at the line marked "# <-", whose message or path has message.
func parseCase(t *testing.T, doc, message string) (c *Config, ok bool) {
	t.Helper()
	c, err := Parse([]byte(doc), "config.yaml")
	if err == nil {
		err = c.Validate()
	}
	if message == "" {
		if err != nil {
			t.Fatal(err)
		}
		return c, true
	}
	errs := validationErrors(t, err)
	if len(errs) != 1 || !strings.Contains(errs[0].Message, message) && !strings.Contains(errs[0].Path, message) || errs[0].Line != markerLine(doc) {
		t.Fatalf("errors %+v, want one at line %d mentioning %q", errs, markerLine(doc), message)
	}
	return nil, false
}
