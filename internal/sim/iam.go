package sim

import (
	"fmt"

	"github.com/amicopier/amicopier/internal/cloud"
)

// The copier role's IAM policy is modelled by what it does not allow: by
// default the role a Connector assumes in an account may make every call
// the engine makes (the member template's policy), and DenyCopierActions
// takes actions away, as a role deployed without them or an SCP would.
// Only clients handed out by Connector.Target and Connector.TargetKeys act
// as the copier role; Cloud.Client and Cloud.KeyClient act as the
// account's administrator and are never refused.

// DenyCopierActions makes the copier role of account lack IAM actions
// ("ec2:CopyImage", "ec2:CreateTags", "kms:DescribeKey", "kms:GetKeyPolicy",
// "kms:ListGrants", "kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt",
// "kms:CreateGrant", ...). EC2 refuses such calls with
// UnauthorizedOperation, KMS with AccessDeniedException; a copy whose key
// the role may not use (it needs kms:CreateGrant, kms:Decrypt,
// kms:DescribeKey, kms:GenerateDataKeyWithoutPlaintext and kms:ReEncrypt*)
// is accepted and fails later, as KMS problems do. It panics on a
// malformed account id.
func (c *Cloud) DenyCopierActions(account string, actions ...string) {
	if !cloud.IsAccountID(account) {
		panic(fmt.Sprintf("sim: DenyCopierActions(%q): account id is not 12 digits", account))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.copierDenied == nil {
		c.copierDenied = map[string]map[string]bool{}
	}
	if c.copierDenied[account] == nil {
		c.copierDenied[account] = map[string]bool{}
	}
	for _, a := range actions {
		c.copierDenied[account][a] = true
	}
}

// AllowCopierActions undoes DenyCopierActions.
func (c *Cloud) AllowCopierActions(account string, actions ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range actions {
		delete(c.copierDenied[account], a)
	}
}

// copierAllows reports whether the copier role of account may make an IAM
// action.
func (c *Cloud) copierAllows(account, action string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return !c.copierDenied[account][action]
}

// DenyCentralActions makes the central identity (the credentials a
// Connector acts from, which publish the run's events) lack IAM actions
// ("events:PutEvents"); EventBridge refuses such calls with
// AccessDeniedException.
func (c *Cloud) DenyCentralActions(actions ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.centralDenied == nil {
		c.centralDenied = map[string]bool{}
	}
	for _, a := range actions {
		c.centralDenied[a] = true
	}
}

// AllowCentralActions undoes DenyCentralActions.
func (c *Cloud) AllowCentralActions(actions ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range actions {
		delete(c.centralDenied, a)
	}
}

func (c *Cloud) centralAllows(action string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return !c.centralDenied[action]
}

// copyKeyActions are the KMS actions CopyImage needs on the destination
// key, which EBS uses on the caller's behalf ("Grant permissions to copy
// Amazon EC2 AMIs", Amazon EC2 User Guide,
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/copy-ami-permissions.html,
// and the key policy the copies' key needs).
var copyKeyActions = []string{
	"kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext",
	"kms:ReEncryptFrom", "kms:ReEncryptTo",
}

// copierMayUseKey reports whether the copier role of account holds every
// KMS action a copy needs.
func (c *Cloud) copierMayUseKey(account string) bool {
	for _, a := range copyKeyActions {
		if !c.copierAllows(account, a) {
			return false
		}
	}
	return true
}

// unauthorizedEC2 is EC2's refusal of an action IAM does not allow
// ("Error codes for the Amazon EC2 API": UnauthorizedOperation, "You are
// not authorized to perform this operation",
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
func unauthorizedEC2(op, account, action string) error {
	return cloud.Errorf(op, "UnauthorizedOperation",
		"You are not authorized to perform this operation. User: arn:aws:sts::%s:assumed-role/copier is not authorized to perform: %s", account, action)
}

// accessDeniedKMS is KMS's refusal of a call IAM or the key policy does
// not allow.
func accessDeniedKMS(op, account, action, resource string) error {
	return cloud.Errorf(op, "AccessDeniedException",
		"User: arn:aws:sts::%s:assumed-role/copier is not authorized to perform: %s on resource: %s", account, action, resource)
}

// RoleClient returns an EC2 client acting as the copier role of account in
// region without a connector (no AssumeRole call): a fake AWS endpoint
// serves requests signed with assumed-role credentials through it, so
// DenyCopierActions applies to them. It panics on a malformed account id
// or Region.
func (c *Cloud) RoleClient(account, region string) *EC2 {
	return &EC2{cloud: c, zone: c.mustZone("RoleClient", account, region), assumed: true}
}

// RoleKeyClient is RoleClient for KMS.
func (c *Cloud) RoleKeyClient(account, region string) *KMS {
	k := c.KeyClient(account, region)
	k.assumed = true
	return k
}
