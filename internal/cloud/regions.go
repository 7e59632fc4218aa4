package cloud

import (
	"regexp"
	"slices"
	"strings"
)

// The Regions amicopier accepts are those of the partition metadata of the
// AWS SDK it is built with (aws-sdk-go-v2's partitions.json, which its
// endpoint resolvers use). The SDK keeps that metadata internal, so it is
// generated into regions_gen.go, and TestRegionsGenerated fails when the
// SDK in go.mod ships other metadata than the generated file holds.
//go:generate go test -run ^TestRegionsGenerated$ -update-regions .

// Region is an AWS Region the SDK knows.
type Region struct {
	// Name as in API calls: "eu-west-1".
	Name string
	// Partition: "aws", "aws-cn", "aws-us-gov"...
	Partition string
	// Description as AWS gives it: "Europe (Ireland)".
	Description string
}

// KnownRegion returns the Region named name, if the SDK's partition
// metadata lists it. Global pseudo-Regions (aws-global) are not Regions.
func KnownRegion(name string) (Region, bool) {
	regions := knownRegions()
	i, ok := slices.BinarySearchFunc(regions, name, func(r Region, name string) int { return strings.Compare(r.Name, name) })
	if !ok {
		return Region{}, false
	}
	return regions[i], true
}

// KnownRegions lists every Region the SDK's partition metadata knows, by
// name.
func KnownRegions() []Region { return knownRegions() }

// RegionsSource names the metadata KnownRegion answers from (the SDK
// module and version), for messages.
const RegionsSource = regionsSource

// PartitionByPattern returns the partition whose Region names look like
// name (its regionRegex), whether or not the SDK lists name: a Region
// opened after the SDK was released has such a name.
func PartitionByPattern(name string) (string, bool) {
	for _, p := range partitionPatterns() {
		if regexp.MustCompile(p.pattern).MatchString(name) {
			return p.id, true
		}
	}
	return "", false
}

// partitionPattern is a partition's regionRegex.
type partitionPattern struct{ id, pattern string }
