package config

import "testing"

func TestTargetRoleARN(t *testing.T) {
	c := Default()
	if got, want := c.TargetRoleARN("222222222222"), "arn:aws:iam::222222222222:role/amicopier-copier"; got != want {
		t.Errorf("default: got %q, want %q", got, want)
	}
	c.Targets.RoleName = "other"
	if got, want := c.TargetRoleARN("222222222222"), "arn:aws:iam::222222222222:role/other"; got != want {
		t.Errorf("role name: got %q, want %q", got, want)
	}
	c.Targets.RoleARNTemplate = "arn:aws-cn:iam::{account}:role/ops/{account}-copier"
	if got, want := c.TargetRoleARN("333333333333"), "arn:aws-cn:iam::333333333333:role/ops/333333333333-copier"; got != want {
		t.Errorf("template: got %q, want %q", got, want)
	}
}
