package config

import (
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// Bounds of copy.deprecate_after. EC2 takes a deprecation time at most ten
// years ahead (cloud.MaxDeprecationAhead), counted from the call, and a
// copy is deprecated at least a run after it is made: so at most 3650d.
// Below an hour a copy would be deprecated before most schedules run
// again, which is no lifecycle anyone means.
const (
	minDeprecateAfter = time.Hour
	maxDeprecateAfter = cloud.MaxDeprecationAhead
)

// maxKeepLatest bounds source.keep_latest.count: far beyond any need, and
// a typo of several digits is caught.
const maxKeepLatest = 1000

func (v *validator) deprecateAfter(d Duration) {
	switch {
	case d == 0:
	case d < 0:
		v.add("copy.deprecate_after", "must not be negative (got %s); 0 leaves copies to their source's deprecation time", d)
	case d.D() < minDeprecateAfter:
		v.add("copy.deprecate_after", "must be at least %s (got %s), or 0 for none", Duration(minDeprecateAfter), d)
	case d.D() > maxDeprecateAfter:
		v.add("copy.deprecate_after", "must be at most %s (got %s): EC2 takes a deprecation time at most 10 years ahead", Duration(maxDeprecateAfter), d)
	}
}

func (v *validator) keepLatest(k KeepLatest) {
	if !k.Enabled() {
		return
	}
	if k.GroupBy == "" {
		v.required("source.keep_latest.group_by", "the tag key whose value groups the builds, for example Recipe")
	} else {
		v.tagKey("source.keep_latest.group_by", k.GroupBy)
	}
	if k.Count < 1 || k.Count > maxKeepLatest {
		v.add("source.keep_latest.count", "must be between 1 and %d builds per group (got %d)", maxKeepLatest, k.Count)
	}
}
