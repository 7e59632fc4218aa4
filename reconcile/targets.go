package reconcile

import (
	"context"
	"path"

	"github.com/amicopier/amicopier/internal/cloud"
)

// TagTargets reads targets from an AMI tag.
type TagTargets struct {
	Key string
}

// Targets implements TargetSource.
func (s TagTargets) Targets(_ context.Context, img *cloud.Image) (cloud.TargetSpec, error) {
	v, ok := img.Tags[s.Key]
	if !ok || s.Key == "" {
		return cloud.TargetSpec{}, nil
	}
	refs, invalid := cloud.ParseTargetList(v, "tag "+s.Key)
	return cloud.TargetSpec{Refs: refs, Invalid: invalid}, nil
}

// RuleTargets maps AMI tags to targets with the rules of the settings.
type RuleTargets struct {
	Rules []Rule
}

// Targets implements TargetSource.
func (s RuleTargets) Targets(_ context.Context, img *cloud.Image) (cloud.TargetSpec, error) {
	var spec cloud.TargetSpec
	for _, rule := range s.Rules {
		if !RuleMatches(rule, img.Tags) {
			continue
		}
		origin := "rule " + rule.Name
		for _, a := range rule.Accounts {
			if a == "*" {
				spec.Refs = append(spec.Refs, cloud.TargetRef{Kind: cloud.TargetOrganization, Origin: origin})
				continue
			}
			spec.Refs = append(spec.Refs, cloud.TargetRef{Kind: cloud.TargetAccount, ID: a, Origin: origin})
		}
		for _, ou := range rule.OUs {
			spec.Refs = append(spec.Refs, cloud.TargetRef{Kind: cloud.TargetOU, ID: ou, Origin: origin})
		}
		spec.Regions = append(spec.Regions, rule.Regions...)
	}
	return spec, nil
}

// RuleMatches reports whether every key of the rule's match is a tag whose
// value matches the glob.
func RuleMatches(rule Rule, tags map[string]string) bool {
	if len(rule.Match) == 0 {
		return false
	}
	for k, pattern := range rule.Match {
		v, ok := tags[k]
		if !ok {
			return false
		}
		if matched, err := path.Match(pattern, v); err != nil || !matched {
			return false
		}
	}
	return true
}
