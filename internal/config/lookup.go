package config

import "strings"

// AccountPlaceholder is replaced by the target account id in
// targets.role_arn_template.
const AccountPlaceholder = "{account}"

// KMSKeyFor returns the KMS key for copies in account and region: the
// most specific override wins (account and region, then account, then
// region), else encryption.kms_key. Among overrides equally specific the
// first listed wins (Validate rejects such duplicates anyway). An empty
// result means the account's default EBS encryption key.
func (c *Config) KMSKeyFor(account, region string) string {
	return c.keyPolicy().For(account, region)
}

// TargetRoleARN returns the role to assume in a target account: the
// role_arn_template with every "{account}" replaced, else the role_name in
// the aws partition (other partitions need role_arn_template).
func (c *Config) TargetRoleARN(account string) string {
	if c.Targets.RoleARNTemplate != "" {
		return strings.ReplaceAll(c.Targets.RoleARNTemplate, AccountPlaceholder, account)
	}
	return "arn:aws:iam::" + account + ":role/" + c.Targets.RoleName
}
