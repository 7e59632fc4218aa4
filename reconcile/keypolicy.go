package reconcile

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/amicopier/amicopier/internal/cloud"
)

// The check asks whether a key lets the Auto Scaling service-linked role
// use it. Its own IAM policy grants nothing on customer managed keys, so
// only the key policy (or a grant) can: "To use it with Amazon EC2 Auto
// Scaling, you must at least add two policy statements to the key policy"
// (Required AWS KMS key policy for use with encrypted volumes, Amazon EC2
// Auto Scaling User Guide,
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html):
// one for the use of the key, one for kms:CreateGrant on AWS resources.
//
// policyAllows evaluates a key policy for one principal, as far as it can
// know the request: the principal's ARN and account, and that its grants
// are for AWS resources. A statement whose principal is the account root
// does not count (it delegates to IAM policies, which the service-linked
// role cannot have); a condition on any other key cannot be judged here,
// so an Allow with one gets the benefit of the doubt and a Deny with one
// is not held against the role. That errs toward no finding rather than a
// false alarm; the fix of a real finding is always the documented
// statements.

// autoScalingKeyActions are what the Auto Scaling service-linked role
// needs on the copies' key: the actions of the two documented statements
// that launching from an encrypted AMI uses.
var autoScalingKeyActions = []string{
	"kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext",
	"kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:CreateGrant",
}

// autoScalingGrantOps are the same as grant operations (ListGrants names
// them without the service prefix).
func autoScalingGrantOps() []string {
	out := make([]string, len(autoScalingKeyActions))
	for i, a := range autoScalingKeyActions {
		out[i] = strings.TrimPrefix(a, "kms:")
	}
	return out
}

// strings1 is a policy value that is a string or a list of strings.
type strings1 []string

func (s *strings1) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*s = many
	return nil
}

type policyPrincipal struct {
	any bool // "*"
	aws []string
}

func (p *policyPrincipal) UnmarshalJSON(b []byte) error {
	var star string
	if err := json.Unmarshal(b, &star); err == nil {
		p.any = star == "*"
		return nil
	}
	var m map[string]strings1
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("principal: %w", err)
	}
	p.aws = m["AWS"]
	p.any = slices.Contains(p.aws, "*")
	return nil
}

type keyPolicyStatement struct {
	Effect       string                         `json:"Effect"`
	Principal    *policyPrincipal               `json:"Principal"`
	NotPrincipal json.RawMessage                `json:"NotPrincipal"`
	Action       strings1                       `json:"Action"`
	NotAction    strings1                       `json:"NotAction"`
	Condition    map[string]map[string]strings1 `json:"Condition"`
}

type keyPolicyDoc struct {
	Statement json.RawMessage `json:"Statement"`
}

func parseKeyPolicy(doc string) ([]keyPolicyStatement, error) {
	var p keyPolicyDoc
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return nil, fmt.Errorf("key policy is not a JSON policy document: %w", err)
	}
	var list []keyPolicyStatement
	if err := json.Unmarshal(p.Statement, &list); err != nil {
		var one keyPolicyStatement
		if err1 := json.Unmarshal(p.Statement, &one); err1 != nil {
			return nil, fmt.Errorf("key policy statements: %w", err)
		}
		list = []keyPolicyStatement{one}
	}
	return list, nil
}

// policyAllows reports which of actions the policy does not let principal
// (an IAM role ARN of account) make; none means it allows them all.
func policyAllows(doc, principal, account string, actions []string) (missing []string, err error) {
	stmts, err := parseKeyPolicy(doc)
	if err != nil {
		return nil, err
	}
	for _, action := range actions {
		if !statementsAllow(stmts, principal, account, action) {
			missing = append(missing, action)
		}
	}
	return missing, nil
}

// statementsAllow applies IAM's rule within one policy: an explicit deny
// wins, else some allow is needed.
func statementsAllow(stmts []keyPolicyStatement, principal, account, action string) bool {
	allowed := false
	for i := range stmts {
		s := &stmts[i]
		switch verdict := s.applies(principal, account, action); {
		case verdict == appliesNot:
		case strings.EqualFold(s.Effect, "Deny"):
			if verdict == appliesSurely {
				return false
			}
		case strings.EqualFold(s.Effect, "Allow"):
			allowed = true
		}
	}
	return allowed
}

type applies int

const (
	appliesNot applies = iota
	// appliesPerhaps: principal and action match, and a condition could
	// not be judged.
	appliesPerhaps
	appliesSurely
)

// applies says whether a statement concerns principal making action.
func (s *keyPolicyStatement) applies(principal, account, action string) applies {
	if len(s.NotPrincipal) > 0 || len(s.NotAction) > 0 || s.Principal == nil {
		// Rare in key policies; not judged here.
		return appliesNot
	}
	if !s.Principal.any && !slices.ContainsFunc(s.Principal.aws, func(p string) bool { return p == principal }) {
		return appliesNot
	}
	if !slices.ContainsFunc(s.Action, func(a string) bool { return actionMatches(a, action) }) {
		return appliesNot
	}
	verdict := appliesSurely
	for op, keys := range s.Condition {
		for key, values := range keys {
			switch conditionHolds(op, key, values, principal, account, action) {
			case condFalse:
				return appliesNot
			case condUnknown:
				verdict = appliesPerhaps
			}
		}
	}
	return verdict
}

// actionMatches matches an IAM action pattern (case-insensitive, * and ?
// wildcards) against an action.
func actionMatches(pattern, action string) bool {
	ok, err := path.Match(strings.ToLower(pattern), strings.ToLower(action))
	return err == nil && ok
}

type condResult int

const (
	condTrue condResult = iota
	condFalse
	condUnknown
)

// conditionHolds judges one condition of the request the principal makes:
// the keys known from the request are the principal's ARN and account
// (aws:PrincipalArn, aws:PrincipalAccount, kms:CallerAccount) and, for
// kms:CreateGrant, kms:GrantIsForAWSResource (true: the service creates
// grants for EBS volumes). Anything else is unknown.
func conditionHolds(op, key string, values []string, principal, account, action string) condResult {
	base := strings.TrimSuffix(op, "IfExists")
	var actual string
	switch strings.ToLower(key) {
	case "aws:principalarn":
		actual = principal
	case "aws:principalaccount", "kms:calleraccount":
		actual = account
	case "kms:grantisforawsresource":
		if !strings.EqualFold(action, "kms:CreateGrant") {
			if base != op {
				return condTrue // ...IfExists of an absent key
			}
			return condFalse
		}
		actual = "true"
	default:
		return condUnknown
	}
	match := func(v string) bool {
		switch base {
		case "StringEquals", "ArnEquals", "Bool":
			return v == actual
		case "StringEqualsIgnoreCase":
			return strings.EqualFold(v, actual)
		case "StringLike", "ArnLike":
			ok, err := path.Match(v, actual)
			return err == nil && ok
		}
		return false
	}
	switch base {
	case "StringEquals", "ArnEquals", "Bool", "StringEqualsIgnoreCase", "StringLike", "ArnLike":
		if slices.ContainsFunc(values, match) {
			return condTrue
		}
		return condFalse
	case "StringNotEquals", "ArnNotEquals", "StringNotLike", "ArnNotLike":
		pos := "StringEquals"
		if strings.HasSuffix(base, "Like") {
			pos = "StringLike"
		}
		if conditionHolds(pos, key, values, principal, account, action) == condTrue {
			return condFalse
		}
		return condTrue
	}
	return condUnknown
}

// autoScalingRoleARN is the ARN of the Auto Scaling service-linked role
// called name in account, in the partition of keyARN.
func autoScalingRoleARN(keyARN, account, name string) string {
	return "arn:" + cloud.Partition(keyARN) + ":iam::" + account + ":role/aws-service-role/autoscaling.amazonaws.com/" + name
}

// grantsCover reports whether grants give the operations Auto Scaling
// needs, together.
func grantsCover(grants []cloud.KeyGrant) bool {
	have := map[string]bool{}
	for _, g := range grants {
		for _, op := range g.Operations {
			have[op] = true
		}
	}
	for _, op := range autoScalingGrantOps() {
		if !have[op] {
			return false
		}
	}
	return true
}
