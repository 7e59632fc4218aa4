package config

import "testing"

func TestKMSKeyFor(t *testing.T) {
	c := Default()
	c.Encryption.KMSKey = "alias/default"
	c.Encryption.Overrides = []KeyOverride{
		{Region: "eu-central-1", KMSKey: "alias/region"},
		{Account: "222222222222", Region: "eu-central-1", KMSKey: "alias/account-region"},
		{Account: "222222222222", KMSKey: "alias/account"},
		{Account: "333333333333", KMSKey: "alias/account-333"},
		{Region: "eu-central-1", KMSKey: "alias/region-second"},
	}
	cases := []struct {
		account, region, want string
	}{
		{"222222222222", "eu-central-1", "alias/account-region"},
		{"222222222222", "us-east-1", "alias/account"},
		{"333333333333", "eu-central-1", "alias/account-333"},
		{"444444444444", "eu-central-1", "alias/region"},
		{"444444444444", "us-east-1", "alias/default"},
		{"", "", "alias/default"},
	}
	for _, tc := range cases {
		if got := c.KMSKeyFor(tc.account, tc.region); got != tc.want {
			t.Errorf("KMSKeyFor(%q, %q) = %q, want %q", tc.account, tc.region, got, tc.want)
		}
	}
	if got := Default().KMSKeyFor("222222222222", "eu-west-1"); got != "" {
		t.Errorf("no key configured: got %q, want the account default", got)
	}
}

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
