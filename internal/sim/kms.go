package sim

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/amicopier/amicopier/internal/cloud"
)

// DefaultEBSKeyAlias is the alias of the AWS-managed key EBS uses when no
// key is named.
const DefaultEBSKeyAlias = "alias/aws/ebs"

var aliasPattern = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)

// kmsKey is one KMS key. The identity fields are immutable; the others
// are guarded by kmsRegistry.mu.
//
// Its key policy is modelled by what it lets whom do, enough for the
// preflight check: the key's own account always delegates to IAM (the
// default key policy's first statement, "Default key policy", AWS KMS
// Developer Guide,
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html);
// allow and allowOrg are cross-account statements granting the use of the
// key (kms:Decrypt, kms:DescribeKey, kms:ReEncrypt*, kms:GenerateDataKey*,
// kms:CreateGrant for AWS resources, kms:ListGrants); autoScaling is the
// pair of statements the Auto Scaling service-linked role of the key's
// account needs (Required AWS KMS key policy for use with encrypted
// volumes,
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html).
// keyPolicyJSON renders the same model as the document GetKeyPolicy
// returns.
type kmsKey struct {
	id, arn, account, region string
	awsManaged               bool

	aliases     []string
	allow       accountSet
	allowOrg    bool
	autoScaling bool
	// state is a KMS key state; "" reads as Enabled.
	state cloud.KeyState
	// spec and usage are the KeySpec and KeyUsage; "" reads as
	// SYMMETRIC_DEFAULT and ENCRYPT_DECRYPT.
	spec, usage string
	grants      []cloud.KeyGrant
}

// keyState is the key's state, Enabled unless set. Caller holds the
// registry's lock.
func (k *kmsKey) keyState() cloud.KeyState {
	if k.state == "" {
		return cloud.KeyEnabled
	}
	return k.state
}

func (k *kmsKey) symmetric() bool {
	return (k.spec == "" || k.spec == cloud.KeySpecSymmetric) && (k.usage == "" || k.usage == cloud.KeyUsageEncryptDecr)
}

type aliasKey struct{ account, region, alias string }

// kmsRegistry holds every key of the Cloud. Its lock is a leaf: nothing
// else is locked while it is held, so zone code may consult it freely.
type kmsRegistry struct {
	mu       sync.RWMutex
	byARN    map[string]*kmsKey
	byID     map[string]*kmsKey
	aliases  map[aliasKey]*kmsKey
	defaults map[zoneKey]*kmsKey
	next     uint64
}

func keyARN(region, account, id string) string {
	return "arn:aws:kms:" + region + ":" + account + ":key/" + id
}

// AliasARN returns the ARN of alias (with or without its "alias/" prefix)
// in account and region.
func AliasARN(region, account, alias string) string {
	return "arn:aws:kms:" + region + ":" + account + ":" + normalizeAlias(alias)
}

func normalizeAlias(alias string) string {
	if strings.HasPrefix(alias, "alias/") {
		return alias
	}
	return "alias/" + alias
}

// create makes a key; the caller holds r.mu for writing.
func (r *kmsRegistry) create(account, region string, awsManaged bool) *kmsKey {
	if r.byARN == nil {
		r.byARN = make(map[string]*kmsKey)
		r.byID = make(map[string]*kmsKey)
		r.aliases = make(map[aliasKey]*kmsKey)
		r.defaults = make(map[zoneKey]*kmsKey)
	}
	r.next++
	id := keyUUID(r.next)
	k := &kmsKey{id: id, arn: keyARN(region, account, id), account: account, region: region, awsManaged: awsManaged}
	r.byARN[k.arn] = k
	r.byID[id] = k
	return k
}

// add makes a customer key, optionally with an alias.
func (r *kmsRegistry) add(account, region, alias string) (*kmsKey, error) {
	if alias != "" {
		alias = normalizeAlias(alias)
		if !aliasPattern.MatchString(alias) {
			return nil, fmt.Errorf("KMS alias %q is malformed", alias)
		}
		if strings.HasPrefix(alias, "alias/aws/") {
			return nil, fmt.Errorf("KMS alias %q is reserved for AWS-managed keys", alias)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ak := aliasKey{account, region, alias}
	if alias != "" && r.aliases[ak] != nil {
		return nil, fmt.Errorf("KMS alias %q already exists in account %s Region %s", alias, account, region)
	}
	k := r.create(account, region, false)
	if alias != "" {
		k.aliases = append(k.aliases, alias)
		r.aliases[ak] = k
	}
	return k, nil
}

// defaultKey returns the AWS-managed EBS key of account and region, making
// it on first use as AWS does.
func (r *kmsRegistry) defaultKey(account, region string) *kmsKey {
	zk := zoneKey{account, region}
	r.mu.RLock()
	k := r.defaults[zk]
	r.mu.RUnlock()
	if k != nil {
		return k
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if k = r.defaults[zk]; k == nil {
		k = r.create(account, region, true)
		k.aliases = []string{DefaultEBSKeyAlias}
		r.defaults[zk] = k
		r.aliases[aliasKey{account, region, DefaultEBSKeyAlias}] = k
	}
	return k
}

func (r *kmsRegistry) get(arn string) *kmsKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byARN[arn]
}

// resolve finds the key ref names for a caller in account and region. ref is
// a key id or alias name (both relative to the caller), or a key or alias
// ARN (which may name another account or Region; usable decides whether the
// caller may use it). nil means no such key.
func (r *kmsRegistry) resolve(account, region, ref string) *kmsKey {
	if strings.HasPrefix(ref, "arn:") {
		parts := strings.SplitN(ref, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" {
			return nil
		}
		switch res := parts[5]; {
		case strings.HasPrefix(res, "key/"):
			return r.get(keyARN(parts[3], parts[4], strings.TrimPrefix(res, "key/")))
		case strings.HasPrefix(res, "alias/"):
			return r.alias(parts[4], parts[3], res)
		}
		return nil
	}
	if strings.HasPrefix(ref, "alias/") {
		return r.alias(account, region, ref)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if k := r.byID[ref]; k != nil && k.account == account && k.region == region {
		return k
	}
	return nil
}

func (r *kmsRegistry) alias(account, region, alias string) *kmsKey {
	if alias == DefaultEBSKeyAlias {
		return r.defaultKey(account, region)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.aliases[aliasKey{account, region, alias}]
}

// usable reports whether account may use k to encrypt or decrypt: an
// Enabled symmetric encryption key (EBS encrypts with nothing else), used
// by its own account always, by other accounts only for customer keys
// whose policy names them or the organisation (inOrg says whether account
// belongs to it). AWS-managed keys never serve other accounts, which is
// why snapshots encrypted with them cannot be shared.
func (r *kmsRegistry) usable(k *kmsKey, account string, inOrg bool) bool {
	if k == nil {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if k.keyState() != cloud.KeyEnabled || !k.symmetric() {
		return false
	}
	return r.reachable(k, account, inOrg)
}

// reachable reports whether k's policy lets account use it at all,
// whatever its state. Caller holds r.mu.
func (r *kmsRegistry) reachable(k *kmsKey, account string, inOrg bool) bool {
	if k.account == account {
		return true
	}
	return !k.awsManaged && (k.allow.has(account) || (k.allowOrg && inOrg))
}

func (r *kmsRegistry) isAWSManaged(arn string) bool {
	k := r.get(arn)
	return k != nil && k.awsManaged
}
