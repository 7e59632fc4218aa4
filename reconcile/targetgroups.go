package reconcile

import (
	"slices"
	"strconv"
	"strings"

	"github.com/amicopier/amicopier/internal/cloud"
)

// At organisation scale most images name the same targets ("*", an OU, a
// rule): discover resolves each distinct piece of target metadata once, so
// such images share one sorted account list, and observation gathers an
// account's images from these few lists when it comes to the account. The
// run's memory then grows with accounts plus images, never with their
// product.

// specKey identifies target metadata for resolution: images whose keys are
// equal resolve to the same target set.
func specKey(specs []cloud.TargetSpec, sourceRegion string) string {
	const unit, record, group = "\x1f", "\x1e", "\x1d"
	var b strings.Builder
	b.WriteString(sourceRegion)
	for _, sp := range specs {
		b.WriteString(group)
		for _, ref := range sp.Refs {
			b.WriteString(strconv.Itoa(int(ref.Kind)))
			b.WriteString(unit + ref.ID + unit + ref.Origin + record)
		}
		b.WriteString(group)
		for _, reg := range sp.Regions {
			b.WriteString(reg + record)
		}
		b.WriteString(group)
		for _, bad := range sp.Invalid {
			b.WriteString(bad.Token + unit + bad.Origin + unit + bad.Reason + record)
		}
	}
	return b.String()
}

// targetGroup is the images (indexes into run.sources) sharing one target
// account list, and those images by target Region, in run.sources order:
// what observing one of its accounts needs, shared by all of them.
type targetGroup struct {
	accounts []string // sorted
	images   []int32
	byRegion map[string][]*sourceImage
}

type targetGroups []targetGroup

// targetGroups groups the run's sources by shared target list.
func (r *run) targetGroups() targetGroups {
	index := map[*string]int{}
	var gs targetGroups
	for i, src := range r.found.sources {
		accounts := src.targets.Accounts
		if len(accounts) == 0 {
			continue
		}
		g, ok := index[&accounts[0]]
		if !ok {
			g = len(gs)
			index[&accounts[0]] = g
			gs = append(gs, targetGroup{accounts: accounts})
		}
		gs[g].images = append(gs[g].images, int32(i))
	}
	for g := range gs {
		gs[g].byRegion = map[string][]*sourceImage{}
		for _, i := range gs[g].images {
			src := r.found.sources[i]
			for _, region := range src.targets.Regions {
				gs[g].byRegion[region] = append(gs[g].byRegion[region], src)
			}
		}
	}
	return gs
}

// regionsOf returns the sources targeting account by target Region, in
// run.sources order. An account of one group (every image for "*", say)
// gets the group's own map, shared: callers must not change it.
func (gs targetGroups) regionsOf(account string, sources []*sourceImage) map[string][]*sourceImage {
	var only *targetGroup
	for i := range gs {
		if _, ok := slices.BinarySearch(gs[i].accounts, account); ok {
			if only != nil {
				return regionsOfImages(sources, gs.imagesOf(account))
			}
			only = &gs[i]
		}
	}
	if only == nil {
		return nil
	}
	return only.byRegion
}

// regionsOfImages groups sources[i] for each i of images by target Region.
func regionsOfImages(sources []*sourceImage, images []int32) map[string][]*sourceImage {
	out := map[string][]*sourceImage{}
	for _, i := range images {
		src := sources[i]
		for _, region := range src.targets.Regions {
			out[region] = append(out[region], src)
		}
	}
	return out
}

// imagesOf returns the sources targeting account, in run.sources order.
func (gs targetGroups) imagesOf(account string) []int32 {
	var out []int32
	for _, g := range gs {
		if _, ok := slices.BinarySearch(g.accounts, account); ok {
			out = append(out, g.images...)
		}
	}
	slices.Sort(out)
	return out
}

// copyIndex finds an account and Region's copies by source. Nearly every
// source has exactly one copy, which of returns as a window on the
// described slice: planning a pair allocates nothing for its copies.
type copyIndex struct {
	copies []cloud.Image
	first  map[string]int32
	// wanted marks, by the index of a source's first copy, the sources
	// some pair asked for.
	wanted []bool
	// multi holds the sources with more than one copy.
	multi map[string][]cloud.Image
}

func indexCopies(copies []cloud.Image) copyIndex {
	x := copyIndex{copies: copies, first: make(map[string]int32, len(copies)), wanted: make([]bool, len(copies))}
	for i := range copies {
		from := copies[i].Tags[TagCopiedFrom]
		j, dup := x.first[from]
		if !dup {
			x.first[from] = int32(i)
			continue
		}
		if x.multi == nil {
			x.multi = map[string][]cloud.Image{}
		}
		if x.multi[from] == nil {
			x.multi[from] = []cloud.Image{copies[j]}
		}
		x.multi[from] = append(x.multi[from], copies[i])
	}
	return x
}

// of returns the copies of source, in the order described, and marks the
// source wanted.
func (x copyIndex) of(source string) []cloud.Image {
	j, ok := x.first[source]
	if !ok {
		return nil
	}
	x.wanted[j] = true
	if m, ok := x.multi[source]; ok {
		return m
	}
	return x.copies[j : j+1 : j+1]
}

// unwanted returns the copies of every source no pair asked for, by
// source: the candidates for orphans.
func (x copyIndex) unwanted() map[string][]cloud.Image {
	out := map[string][]cloud.Image{}
	for from, j := range x.first {
		if !x.wanted[j] {
			out[from] = x.copies[j : j+1 : j+1]
			if m, ok := x.multi[from]; ok {
				out[from] = m
			}
		}
	}
	return out
}
