package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/amicopier/amicopier/internal/cloud"
)

// AutoScalingRoleName is the default name of the Auto Scaling
// service-linked role ("Service-linked roles for Amazon EC2 Auto Scaling",
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html).
const AutoScalingRoleName = "AWSServiceRoleForAutoScaling"

// AutoScalingRoleARN returns the ARN of account's Auto Scaling
// service-linked role called name.
func AutoScalingRoleARN(account, name string) string {
	return "arn:aws:iam::" + account + ":role/aws-service-role/autoscaling.amazonaws.com/" + name
}

// KMS is a KMS client acting as one account in one Region, as returned by
// Connector.TargetKeys (the copier role) or Cloud.KeyClient (the account's
// administrator). It implements cloud.KeyInspector; every method is one
// API call through the Cloud's gate.
type KMS struct {
	cloud           *Cloud
	conn            *Connector
	account, region string
	calls           *cell
	// assumed: the client acts as the copier role, whose IAM policy
	// DenyCopierActions may restrict.
	assumed bool
}

// KeyClient returns a KMS client acting as account's administrator in
// region, with no connector: for test setup and assertions. Its calls are
// counted by the Cloud. It panics on a malformed account id or Region.
func (c *Cloud) KeyClient(account, region string) *KMS {
	c.mustZone("KeyClient", account, region)
	return &KMS{cloud: c, account: account, region: region, calls: c.calls.cell(account, region)}
}

func (k *KMS) do(ctx context.Context, op opCode, resource string, fn func() error) error {
	return k.cloud.do(ctx, k.conn, k.calls, op, k.account, k.region, resource, fn)
}

// allowed refuses an action the copier role's IAM policy lacks.
func (k *KMS) allowed(op, action, resource string) error {
	if k.assumed && !k.cloud.copierAllows(k.account, action) {
		return accessDeniedKMS(op, k.account, action, resource)
	}
	return nil
}

func kmsNotFound(op, ref string) error {
	if strings.Contains(ref, "alias/") {
		return cloud.Errorf(op, "NotFoundException", "Alias %s is not found.", ref)
	}
	return cloud.Errorf(op, "NotFoundException", "Key '%s' does not exist", ref)
}

// lookup finds the key ref names for the caller. KMS is regional: a key
// or alias ARN of another Region is not found by this Region's endpoint
// (the API reference does not say which error that is; not found is what
// the check reports either way). aliases says whether ref may be an alias
// (GetKeyPolicy and ListGrants take a key id or key ARN only).
func (k *KMS) lookup(op, ref string, aliases bool) (*kmsKey, error) {
	if ref == "" {
		return nil, cloud.Errorf(op, "ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	if !aliases && strings.Contains(ref, "alias/") {
		return nil, kmsNotFound(op, ref)
	}
	key := k.cloud.kms.resolve(k.account, k.region, ref)
	if key == nil || key.region != k.region {
		return nil, kmsNotFound(op, ref)
	}
	return key, nil
}

// reachable refuses a key whose policy does not let the caller's account
// use it (a key of another account that names neither it nor its
// organisation, or another account's AWS managed key).
func (k *KMS) reachable(op, action string, key *kmsKey) error {
	inOrg := k.cloud.inOrg(k.account)
	k.cloud.kms.mu.RLock()
	ok := k.cloud.kms.reachable(key, k.account, inOrg)
	k.cloud.kms.mu.RUnlock()
	if !ok {
		return accessDeniedKMS(op, k.account, action, key.arn)
	}
	return nil
}

// DescribeKey describes a key as KMS DescribeKey does
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html):
// any key state, a key id or alias name of the caller's Region or a key
// or alias ARN ("To specify a KMS key in a different AWS account, you must
// use the key ARN or alias ARN"); the predefined alias aws/ebs names the
// account's AWS managed key, made on first use. A missing key or alias is
// NotFoundException, a key the caller may not use AccessDeniedException.
func (k *KMS) DescribeKey(ctx context.Context, keyID string) (cloud.KeyInfo, error) {
	const op = cloud.OpDescribeKey
	var out cloud.KeyInfo
	err := k.do(ctx, opDescribeKey, keyID, func() error {
		if err := k.allowed(op, "kms:DescribeKey", keyID); err != nil {
			return err
		}
		key, err := k.lookup(op, keyID, true)
		if err != nil {
			return err
		}
		if err := k.reachable(op, "kms:DescribeKey", key); err != nil {
			return err
		}
		out = k.cloud.kms.info(key)
		return nil
	})
	return out, err
}

// KeyPolicy returns the key's policy as GetKeyPolicy does
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html):
// policy name "default", a key id or key ARN, and "Cross-account use: No"
// (the page does not name the error; the simulator answers
// AccessDeniedException).
func (k *KMS) KeyPolicy(ctx context.Context, keyID string) (string, error) {
	const op = cloud.OpGetKeyPolicy
	var out string
	err := k.do(ctx, opGetKeyPolicy, keyID, func() error {
		if err := k.allowed(op, "kms:GetKeyPolicy", keyID); err != nil {
			return err
		}
		key, err := k.lookup(op, keyID, false)
		if err != nil {
			return err
		}
		if key.account != k.account {
			return accessDeniedKMS(op, k.account, "kms:GetKeyPolicy", key.arn)
		}
		out = k.cloud.kms.policyJSON(key)
		return nil
	})
	return out, err
}

// KeyGrants lists the key's grants to grantee as ListGrants with
// GranteePrincipal does
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListGrants.html:
// a key id or key ARN; "Cross-account use: Yes" with the key ARN). The
// simulator's grants fit one page.
func (k *KMS) KeyGrants(ctx context.Context, keyID, grantee string) ([]cloud.KeyGrant, error) {
	const op = cloud.OpListGrants
	var out []cloud.KeyGrant
	err := k.do(ctx, opListGrants, keyID, func() error {
		if err := k.allowed(op, "kms:ListGrants", keyID); err != nil {
			return err
		}
		key, err := k.lookup(op, keyID, false)
		if err != nil {
			return err
		}
		if err := k.reachable(op, "kms:ListGrants", key); err != nil {
			return err
		}
		k.cloud.kms.mu.RLock()
		defer k.cloud.kms.mu.RUnlock()
		for _, g := range key.grants {
			if grantee == "" || g.GranteePrincipal == grantee {
				out = append(out, cloud.KeyGrant{GranteePrincipal: g.GranteePrincipal, Operations: slices.Clone(g.Operations)})
			}
		}
		return nil
	})
	return out, err
}

// DryRunDataKey answers GenerateDataKeyWithoutPlaintext with DryRun
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateDataKeyWithoutPlaintext.html;
// DryRun: "Testing your permissions", AWS KMS Developer Guide,
// https://docs.aws.amazon.com/kms/latest/developerguide/programming-dryrun.html):
// nil where KMS answers DryRunOperationException (the call would
// succeed), AccessDeniedException where IAM or the key policy refuses it,
// and the errors the key's state gives without DryRun (DisabledException,
// KMSInvalidStateException; InvalidKeyUsageException for a key that does
// not encrypt). Whether KMS checks the key's state in a dry run is not
// documented: the simulator does, after the permissions, and the engine
// reads the state from DescribeKey either way.
func (k *KMS) DryRunDataKey(ctx context.Context, keyID string) error {
	const op = cloud.OpGenerateDataKeyWithoutPlaintext
	const action = "kms:GenerateDataKeyWithoutPlaintext"
	return k.do(ctx, opGenerateDataKeyWithoutPlaintext, keyID, func() error {
		if err := k.allowed(op, action, keyID); err != nil {
			return err
		}
		key, err := k.lookup(op, keyID, true)
		if err != nil {
			return err
		}
		if err := k.reachable(op, action, key); err != nil {
			return err
		}
		k.cloud.kms.mu.RLock()
		state, sym := key.keyState(), key.symmetric()
		k.cloud.kms.mu.RUnlock()
		switch {
		case state == cloud.KeyDisabled:
			return cloud.Errorf(op, "DisabledException", "%s is disabled.", key.arn)
		case state != cloud.KeyEnabled:
			return cloud.Errorf(op, "KMSInvalidStateException", "%s is %s and cannot be used.", key.arn, state)
		case !sym:
			return cloud.Errorf(op, "InvalidKeyUsageException", "%s key usage is not ENCRYPT_DECRYPT with a symmetric key spec.", key.arn)
		}
		return nil
	})
}

// info renders a key as DescribeKey reports it.
func (r *kmsRegistry) info(k *kmsKey) cloud.KeyInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := cloud.KeyInfo{
		ID: k.id, ARN: k.arn, Account: k.account, Region: k.region, State: k.keyState(),
		Spec: k.spec, Usage: k.usage, Manager: cloud.KeyManagerCustomer,
	}
	if out.Spec == "" {
		out.Spec = cloud.KeySpecSymmetric
	}
	if out.Usage == "" {
		out.Usage = cloud.KeyUsageEncryptDecr
	}
	if k.awsManaged {
		out.Manager = cloud.KeyManagerAWS
	}
	return out
}

type policyStatement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal map[string]any               `json:"Principal"`
	Action    []string                     `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// policyJSON renders the key's modelled policy as the document
// GetKeyPolicy returns: the default statement delegating to the account's
// IAM policies, then one statement per allowed account, one for the
// organisation, and the Auto Scaling service-linked role's two statements
// as the Auto Scaling User Guide writes them.
func (r *kmsRegistry) policyJSON(k *kmsKey) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	root := func(account string) map[string]any {
		return map[string]any{"AWS": "arn:aws:iam::" + account + ":root"}
	}
	use := []string{"kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:ListGrants"}
	grant := map[string]map[string]string{"Bool": {"kms:GrantIsForAWSResource": "true"}}
	st := []policyStatement{{Sid: "Enable IAM User Permissions", Effect: "Allow", Principal: root(k.account), Action: []string{"kms:*"}, Resource: "*"}}
	for _, a := range k.allow.ids {
		st = append(st,
			policyStatement{Sid: "AllowUseBy" + a, Effect: "Allow", Principal: root(a), Action: use, Resource: "*"},
			policyStatement{Sid: "AllowGrantsBy" + a, Effect: "Allow", Principal: root(a), Action: []string{"kms:CreateGrant"}, Resource: "*", Condition: grant})
	}
	if k.allowOrg {
		org := map[string]map[string]string{"StringEquals": {"aws:PrincipalOrgID": OrganizationID}}
		st = append(st, policyStatement{Sid: "AllowUseByOrganization", Effect: "Allow", Principal: map[string]any{"AWS": "*"}, Action: append(slices.Clone(use), "kms:CreateGrant"), Resource: "*", Condition: org})
	}
	if k.autoScaling {
		slr := map[string]any{"AWS": AutoScalingRoleARN(k.account, AutoScalingRoleName)}
		st = append(st,
			policyStatement{Sid: "Allow service-linked role use of the customer managed key", Effect: "Allow", Principal: slr,
				Action: []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"}, Resource: "*"},
			policyStatement{Sid: "Allow attachment of persistent resources", Effect: "Allow", Principal: slr,
				Action: []string{"kms:CreateGrant"}, Resource: "*", Condition: grant})
	}
	b, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Id": "key-default-1", "Statement": st})
	if err != nil {
		panic(fmt.Sprintf("sim: render key policy of %s: %v", k.arn, err))
	}
	return string(b)
}

// SetKeyState puts a key in a KMS key state (Disabled, PendingDeletion,
// PendingImport, Unavailable, ...). Only an Enabled key can be used:
// copies started with a key in another state turn failed when they
// complete, as with a disabled key.
func (c *Cloud) SetKeyState(keyARN string, state cloud.KeyState) {
	k := c.mustKey("SetKeyState", keyARN)
	c.kms.mu.Lock()
	defer c.kms.mu.Unlock()
	k.state = state
}

// SetKeySpec changes a key's KeySpec and KeyUsage (say RSA_2048 and
// SIGN_VERIFY, or HMAC_256 and GENERATE_VERIFY_MAC): EBS encrypts only
// with symmetric encryption keys, so copies with any other fail.
func (c *Cloud) SetKeySpec(keyARN, spec, usage string) {
	k := c.mustKey("SetKeySpec", keyARN)
	c.kms.mu.Lock()
	defer c.kms.mu.Unlock()
	k.spec, k.usage = spec, usage
}

// AllowAutoScaling adds (or, allowed false, removes) the key policy
// statements that let the Auto Scaling service-linked role of the key's
// account use it. Keys made by AddKey have a default key policy, without
// them, as KMS gives a key created without a policy.
func (c *Cloud) AllowAutoScaling(keyARN string, allowed bool) {
	k := c.mustKey("AllowAutoScaling", keyARN)
	c.kms.mu.Lock()
	defer c.kms.mu.Unlock()
	k.autoScaling = allowed
}

// AddKeyGrant records a grant of the key to grantee for operations (KMS
// operation names: Decrypt, CreateGrant, ...), as CreateGrant would.
func (c *Cloud) AddKeyGrant(keyARN, grantee string, operations ...string) {
	k := c.mustKey("AddKeyGrant", keyARN)
	c.kms.mu.Lock()
	defer c.kms.mu.Unlock()
	k.grants = append(k.grants, cloud.KeyGrant{GranteePrincipal: grantee, Operations: slices.Clone(operations)})
}

var _ cloud.KeyInspector = (*KMS)(nil)
