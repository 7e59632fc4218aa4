package cloud

import (
	"context"
	"strings"
	"time"
)

// The preflight check (amicopier check) reads KMS keys and asks EC2 and
// KMS whether calls would be allowed, without making them. Its ports are
// apart from EC2 and Connector: an implementation that has no KMS client
// simply does not implement them, and the engine says the key checks were
// skipped.

// Operation names of the calls only the check makes, as AWS spells them
// (OpCopyImageDryRun excepted: see there).
const (
	OpDescribeKey                     = "DescribeKey"
	OpGetKeyPolicy                    = "GetKeyPolicy"
	OpListGrants                      = "ListGrants"
	OpGenerateDataKeyWithoutPlaintext = "GenerateDataKeyWithoutPlaintext"
	// OpCopyImageDryRun is a CopyImage request with DryRun set. AWS calls
	// it CopyImage; counters and the read-only guard keep it apart, since
	// it changes nothing, so a count of mutating calls stays a count of
	// real changes.
	OpCopyImageDryRun = "CopyImage.DryRun"
)

// KeyState is a KMS key state ("Key states of AWS KMS keys",
// https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html).
type KeyState string

// Key states. Only an Enabled key can be used by CopyImage; Creating,
// Updating and PendingReplicaDeletion apply to multi-Region keys,
// PendingImport to keys with imported key material, Unavailable to keys in
// a disconnected custom key store.
const (
	KeyEnabled                KeyState = "Enabled"
	KeyDisabled               KeyState = "Disabled"
	KeyPendingDeletion        KeyState = "PendingDeletion"
	KeyPendingImport          KeyState = "PendingImport"
	KeyPendingReplicaDeletion KeyState = "PendingReplicaDeletion"
	KeyUnavailable            KeyState = "Unavailable"
	KeyCreating               KeyState = "Creating"
	KeyUpdating               KeyState = "Updating"
)

// Key specs and usages EBS accepts: "The key must be symmetric. Amazon EBS
// does not support asymmetric customer managed keys" (Required AWS KMS key
// policy for use with encrypted volumes, Amazon EC2 Auto Scaling User
// Guide,
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html).
const (
	KeySpecSymmetric    = "SYMMETRIC_DEFAULT"
	KeyUsageEncryptDecr = "ENCRYPT_DECRYPT"
	// KeyManagerAWS marks an AWS managed key (aws/ebs and friends);
	// KeyManagerCustomer a customer managed key.
	KeyManagerAWS      = "AWS"
	KeyManagerCustomer = "CUSTOMER"
)

// KeyInfo is what DescribeKey tells of a key.
type KeyInfo struct {
	ID, ARN         string
	Account, Region string
	State           KeyState
	// Spec is the KeySpec (SYMMETRIC_DEFAULT, RSA_2048, HMAC_256, ...),
	// Usage the KeyUsage (ENCRYPT_DECRYPT, SIGN_VERIFY, ...), Manager
	// KeyManagerAWS or KeyManagerCustomer.
	Spec, Usage, Manager string
	// DeletionDate is when a key pending deletion is deleted.
	DeletionDate time.Time
}

// Symmetric reports whether EBS can encrypt with the key.
func (k KeyInfo) Symmetric() bool {
	return k.Spec == KeySpecSymmetric && k.Usage == KeyUsageEncryptDecr
}

// KeyGrant is one grant of a key: who it lets do what.
type KeyGrant struct {
	GranteePrincipal string
	// Operations are KMS operation names (Decrypt, CreateGrant, ...).
	Operations []string
}

// KeyInspector reads KMS keys as one account in one Region: the copier
// role in a target account. keyID may be a key id, alias name, key ARN or
// alias ARN, as CopyImage's KmsKeyId.
type KeyInspector interface {
	// DescribeKey describes a key (KMS DescribeKey).
	DescribeKey(ctx context.Context, keyID string) (KeyInfo, error)
	// KeyPolicy returns the key's policy document (GetKeyPolicy, policy
	// name "default"); keys of the caller's own account only.
	KeyPolicy(ctx context.Context, keyID string) (string, error)
	// KeyGrants lists the key's grants to grantee (ListGrants with
	// GranteePrincipal), every page.
	KeyGrants(ctx context.Context, keyID, grantee string) ([]KeyGrant, error)
	// DryRunDataKey asks whether the caller may generate a data key with
	// the key (GenerateDataKeyWithoutPlaintext with DryRun, which KMS
	// answers DryRunOperationException when it would succeed): nil when it
	// may, the refusal otherwise.
	DryRunDataKey(ctx context.Context, keyID string) error
}

// KeyConnector hands out key inspectors acting as the copier role of a
// target account, in any Region (the source snapshots' keys live in the
// source Region). It reuses the account's session, as Connector.Target.
type KeyConnector interface {
	TargetKeys(ctx context.Context, accountID, region string) (KeyInspector, error)
}

// CopyDryRunner asks EC2 whether a CopyImage would be authorised, with
// DryRun set: nil when EC2 answers DryRunOperation, the answer otherwise
// (UnauthorizedOperation when IAM refuses it).
type CopyDryRunner interface {
	DryRunCopyImage(ctx context.Context, in CopyImageInput) error
}

// KeyRegion returns the Region of a key or alias ARN, "" for a key id or
// alias name (which name a key of the caller's Region).
func KeyRegion(ref string) string { return arnField(ref, 3) }

// KeyAccount returns the account of a key or alias ARN, "" for a key id or
// alias name.
func KeyAccount(ref string) string { return arnField(ref, 4) }

// arnField returns field i of an ARN (arn:partition:service:region:
// account:resource), "" when ref is no ARN.
func arnField(ref string, i int) string {
	parts := strings.SplitN(ref, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return ""
	}
	return parts[i]
}

// Partition returns the partition of an ARN ("aws" when ref is none).
func Partition(ref string) string {
	if parts := strings.SplitN(ref, ":", 3); len(parts) == 3 && parts[0] == "arn" && parts[1] != "" {
		return parts[1]
	}
	return "aws"
}
