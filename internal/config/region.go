package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/amicopier/amicopier/internal/cloud"
)

// isKnownRegion reports whether name is a Region of the AWS SDK's
// partition metadata (see cloud.KnownRegion).
func isKnownRegion(name string) bool {
	_, ok := cloud.KnownRegion(name)
	return ok
}

// regionProblem explains why name is not a known Region, with the closest
// names when there are some: a typo, a Region in capitals, a city named
// in a Region's description.
func regionProblem(name string) string {
	close := closestRegions(name)
	if len(close) == 0 {
		return fmt.Sprintf("%q is not an AWS Region name (like eu-west-1 or us-east-1)", name)
	}
	quoted := make([]string, len(close))
	for i, r := range close {
		quoted[i] = fmt.Sprintf("%q", r.Name)
		if r.city {
			quoted[i] += " (" + r.Description + ")"
		}
	}
	msg := fmt.Sprintf("%q is not an AWS Region; did you mean %s?", name, orList(quoted))
	if mayBeNew(name) {
		msg += fmt.Sprintf(" (amicopier knows the Regions of %s: if AWS opened %s since, a newer amicopier will know it)", cloud.RegionsSource, name)
	}
	return msg
}

// mayBeNew says whether name could be a Region opened after the SDK was
// released: a partition's pattern fits it and it numbers a place the SDK
// knows ("us-east-3" next to us-east-1), rather than misspelling one.
func mayBeNew(name string) bool {
	partition, ok := cloud.PartitionByPattern(name)
	if !ok {
		return false
	}
	stem := strings.TrimRight(name, "0123456789")
	for _, r := range cloud.KnownRegions() {
		if r.Partition == partition && strings.TrimRight(r.Name, "0123456789") == stem {
			return true
		}
	}
	return false
}

// nearRegion is a suggestion; city is true when it was found by its
// description rather than by its name.
type nearRegion struct {
	cloud.Region
	city bool
}

// maxRegionSuggestions bounds the names a message offers.
const maxRegionSuggestions = 3

// closestRegions returns the known Regions whose names are within two
// edits of name (ignoring case), the closest first, or else those whose
// description names it ("frankfurt": Europe (Frankfurt)).
func closestRegions(name string) []nearRegion {
	lower := strings.ToLower(strings.TrimSpace(name))
	if lower == "" {
		return nil
	}
	type scored struct {
		nearRegion
		dist int
	}
	var near []scored
	for _, r := range cloud.KnownRegions() {
		if d := editDistance(lower, r.Name); d <= 2 {
			near = append(near, scored{nearRegion{r, false}, d})
		}
	}
	if len(near) == 0 && len(lower) >= 4 {
		for _, r := range cloud.KnownRegions() {
			if strings.Contains(strings.ToLower(r.Description), lower) {
				near = append(near, scored{nearRegion{r, true}, 0})
			}
		}
		if len(near) > maxRegionSuggestions { // "Europe": too many to help
			return nil
		}
	}
	slices.SortStableFunc(near, func(a, b scored) int { return a.dist - b.dist })
	if len(near) > 0 {
		best := near[0].dist
		near = slices.DeleteFunc(near, func(s scored) bool { return s.dist > best })
	}
	out := make([]nearRegion, 0, maxRegionSuggestions)
	for _, s := range near[:min(len(near), maxRegionSuggestions)] {
		out = append(out, s.nearRegion)
	}
	return out
}

// orList joins "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
