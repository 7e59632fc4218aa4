package config

import "strings"

// AccountPlaceholder is replaced by the target account id in
// targets.role_arn_template.
const AccountPlaceholder = "{account}"

// TargetRoleARN returns the role to assume in a target account: the
// role_arn_template with every "{account}" replaced, else the role_name in
// the aws partition (other partitions need role_arn_template).
func (c *Config) TargetRoleARN(account string) string {
	if c.Targets.RoleARNTemplate != "" {
		return strings.ReplaceAll(c.Targets.RoleARNTemplate, AccountPlaceholder, account)
	}
	return "arn:aws:iam::" + account + ":role/" + c.Targets.RoleName
}
