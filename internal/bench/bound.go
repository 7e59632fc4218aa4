package bench

import (
	"fmt"
	"slices"
	"strings"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// LowerBound is the number of API calls a run of the scenario cannot do
// without, computed from the scenario's description (never from the run
// being measured), for the sharing design of docs/sharing.md:
//
//	source describes   sum over source Regions of pages(source AMIs, 1000)
//	organisation       pages(accounts + 1, 20) of ListAccounts; then, for
//	                   each OU the metadata names, and (when an image
//	                   targeting "*" is copied this run) for the root and
//	                   every OU: pages(child OUs, 20) of
//	                   ListOrganizationalUnitsForParent + pages(child
//	                   accounts, 20) of ListAccountsForParent; ListRoots
//	                   once when the root is walked; DescribeOrganization
//	                   once when an OU or the organisation is granted
//	AssumeRole         1 per target account
//	target describes   sum over target accounts and Regions of
//	                   pages(copies there, 1000), at least 1
//	sharing            per source AMI copied in this run: the reads
//	                   (1 DescribeImageAttribute + 1 DescribeSnapshotAttribute
//	                   per snapshot); ceil(entities / 1000)
//	                   ModifyImageAttribute, where the entities are the
//	                   OU ARNs (the organisation's) standing for wholly
//	                   targeted OUs plus every other account copying it;
//	                   per snapshot ceil(accounts copying it / 500)
//	                   ModifySnapshotAttribute (create-volume takes account
//	                   ids only). A catch-up run of new AMIs takes nothing
//	                   back: the just-in-time grants go in the run after
//	                   their copies are available.
//	CopyImage          1 per copy the run can start
//
// CopyImage counts only the missing pairs the in-flight cap lets start
// this run (a pair beyond limits.in_flight_copies is deferred without a
// call), and sharing only the accounts that copy an AMI this run (the
// engine grants the others in the run that copies).
type LowerBound struct {
	SourceDescribes  int `json:"source_describes"`
	OrganizationList int `json:"organization_pages"`
	AssumeRole       int `json:"assume_role"`
	TargetDescribes  int `json:"target_describes"`
	Sharing          int `json:"sharing"`
	CopyImage        int `json:"copy_image"`
	Total            int `json:"total"`
	// SharingEntities is the most entities any AMI's launch permission
	// holds after the run, by the design (at most 1,000).
	SharingEntities int `json:"sharing_entities"`
}

// Floor is the least wall time a run of the scenario can take.
type Floor struct {
	// LatencySeconds: the organisation listing's pages one after the
	// other (nothing can be resolved before it), then every other call
	// of the lower bound spread perfectly over limits.concurrency
	// workers, each call taking the simulated latency; when an image
	// targets "*", the AssumeRole calls spread over the workers while
	// the pages come (orglisting.go in the engine).
	LatencySeconds float64 `json:"latency_seconds"`
	// BucketSeconds: the time the busiest token bucket needs to refill
	// for the calls of the lower bound that draw on it, beyond its
	// burst: max(0, (calls - burst) / refill). EC2 meters each API in
	// its own bucket per account and Region, so each (account, Region,
	// API) is a bucket here.
	BucketSeconds float64 `json:"bucket_seconds"`
	// Bucket names the busiest bucket.
	Bucket string `json:"bucket"`
	// ChainSeconds: every Organizations call comes before the first
	// copy (the targets and the OU grants depend on them, and a copy on
	// its image's grant), so the Organizations bucket's time for all of
	// them (or their latency, ListAccounts' pages one after the other,
	// if longer), then the CopyImage calls spread over the workers.
	ChainSeconds float64 `json:"chain_seconds"`
	// Seconds is the largest of the three: the floor.
	Seconds float64 `json:"seconds"`
}

// Expect is what the scenario must do and cost.
type Expect struct {
	Pairs int
	// Missing pairs; Startable of them get a copy this run, DeferredCap
	// are beyond the in-flight cap.
	Missing, Startable, DeferredCap int
	Bound                           LowerBound
	Floor                           Floor
}

func ceilDiv(n, d int) int { return (n + d - 1) / d }

// treeCalls counts the Organizations calls beyond ListAccounts: the
// listing of every OU the metadata names (to expand it); when an image
// targeting the whole organisation is copied this run, ListRoots, and
// unless every member is a target (the organisation is granted whole,
// from ListAccounts alone) the listing of the root and every OU (to find
// the OUs it may grant whole); DescribeOrganization once something is
// granted.
func (w *world) treeCalls(copying [][]string) int {
	named := map[int]bool{}
	whole, granted := false, false
	for i, im := range w.images {
		if im.set.OU >= 0 {
			named[im.set.OU] = true
		}
		if len(copying[i]) > 0 {
			granted = true
			whole = whole || im.set.OU < 0
		}
	}
	n := 0
	if whole {
		n++ // ListRoots
		if len(w.excluded) > 0 {
			// Not every member is a target: the tree tells which OUs
			// are. The root: its OUs and the source account.
			n += pages(len(w.ous), sim.DefaultOrgPageSize) + pages(1, sim.DefaultOrgPageSize)
			for o := range w.ous {
				named[o] = true
			}
		}
	}
	for o := range named {
		n += 1 + pages(len(w.ous[o]), sim.DefaultOrgPageSize) // no child OUs: one page
	}
	if granted {
		n++ // DescribeOrganization
	}
	return n
}

// launchEntities is how many entities the launch permission of im holds
// once accts (the accounts copying it now) are granted: the
// organisation's ARN when every member is a target, else one ARN per OU
// whose every account is one, and each other copying account by itself.
func (w *world) launchEntities(im image, accts []string) int {
	ous := []int{im.set.OU}
	if im.set.OU < 0 {
		if len(w.excluded) == 0 {
			return 1
		}
		ous = ous[:0]
		for o := range w.ous {
			ous = append(ous, o)
		}
	}
	whole := map[int]bool{}
	for _, o := range ous {
		whole[o] = !slices.ContainsFunc(w.ous[o], func(a string) bool { return w.excluded[a] })
	}
	ouOf := map[string]int{}
	for o, accounts := range w.ous {
		for _, a := range accounts {
			ouOf[a] = o
		}
	}
	n, counted := 0, map[int]bool{}
	for _, a := range accts {
		switch o := ouOf[a]; {
		case whole[o] && !counted[o]:
			counted[o] = true
			n++
		case !whole[o]:
			n++
		}
	}
	return n
}

// targetsWhole reports whether some image targets the whole
// organisation ("*").
func (w *world) targetsWhole() bool {
	return slices.ContainsFunc(w.images, func(im image) bool { return im.set.OU < 0 })
}

func pages(n, size int) int {
	if n <= size {
		return 1
	}
	return (n + size - 1) / size
}

type zoneKey struct{ account, region string }

// expect computes the scenario's expectations from its description.
func (w *world) expect() Expect {
	var e Expect
	var b LowerBound

	perRegion := map[string]int{}
	for _, im := range w.images {
		perRegion[im.region]++
	}
	for _, region := range w.sc.Regions {
		b.SourceDescribes += pages(perRegion[region], sim.DefaultPageSize)
	}
	b.OrganizationList = pages(len(w.accounts)+1, sim.DefaultOrgPageSize)
	// Per account and Region: copies present, and missing pairs in the
	// engine's order (by source id), of which the cap lets the first start.
	copies := map[zoneKey]int{}
	missing := map[zoneKey][]int{} // indexes into w.images
	accounts := map[string]bool{}
	for i, im := range w.images {
		for _, a := range w.targets(im) {
			k := zoneKey{a, im.region}
			accounts[a] = true
			e.Pairs++
			if im.set.Copied {
				copies[k]++
			} else {
				missing[k] = append(missing[k], i)
			}
		}
	}
	b.AssumeRole = len(accounts)
	zones := map[zoneKey]bool{}
	for k := range copies {
		zones[k] = true
	}
	for k := range missing {
		zones[k] = true
	}
	copying := make([][]string, len(w.images)) // accounts copying each image now
	perZoneCopies := map[zoneKey]int{}
	for k := range zones {
		b.TargetDescribes += pages(copies[k], sim.DefaultPageSize)
		ms := missing[k]
		slices.SortFunc(ms, func(x, y int) int { return strings.Compare(w.images[x].img.ID, w.images[y].img.ID) })
		start := min(len(ms), w.sc.InFlightCap)
		e.Missing += len(ms)
		e.Startable += start
		perZoneCopies[k] = start
		for _, i := range ms[:start] {
			copying[i] = append(copying[i], k.account)
		}
	}
	e.DeferredCap = e.Missing - e.Startable
	b.OrganizationList += w.treeCalls(copying)
	// Sharing, per API: EC2 meters each in a bucket of its own.
	launchPerRegion, snapshotPerRegion := map[string]int{}, map[string]int{}
	for i, accts := range copying {
		if len(accts) == 0 {
			continue
		}
		im := w.images[i]
		entities := w.launchEntities(im, accts)
		b.SharingEntities = max(b.SharingEntities, entities)
		launch := ceilDiv(entities, cloud.MaxLaunchPermissionBatch)
		volume := im.set.Snapshots * ceilDiv(len(accts), cloud.MaxShareBatch)
		launchPerRegion[im.region] += launch
		snapshotPerRegion[im.region] += volume
		b.Sharing += 1 + im.set.Snapshots + launch + volume
	}
	b.CopyImage = e.Startable
	b.Total = b.SourceDescribes + b.OrganizationList + b.AssumeRole + b.TargetDescribes + b.Sharing + b.CopyImage
	e.Bound = b

	// The floor.
	lat := w.sc.Latency.Seconds()
	serial := pages(len(w.accounts)+1, sim.DefaultOrgPageSize) // ListAccounts, page after page
	workers := float64(max(1, w.sc.Concurrency))
	e.Floor.LatencySeconds = lat * (float64(serial) + float64(b.Total-serial)/workers)
	if w.targetsWhole() {
		// The engine assumes the role in the accounts of "*" while the
		// listing goes on: those calls may overlap its pages.
		e.Floor.LatencySeconds = lat * (max(float64(serial), float64(b.AssumeRole)/workers) + float64(b.Total-serial-b.AssumeRole)/workers)
	}
	orgSeconds := lat * float64(serial)
	if w.sc.Throttle {
		th := sim.DefaultThrottling()
		worst, name := 0.0, ""
		consider := func(n int, bk sim.Bucket, what string) {
			if bk.Burst == 0 || n <= bk.Burst {
				return
			}
			if s := float64(n-bk.Burst) / bk.Refill; s > worst {
				worst, name = s, what
			}
		}
		consider(b.OrganizationList, th.Organizations, "organizations (every call of the run)")
		consider(b.AssumeRole, th.STS, "sts")
		for _, region := range w.sc.Regions {
			consider(pages(perRegion[region], sim.DefaultPageSize), th.Describe, "source describe "+region)
			consider(launchPerRegion[region], th.Mutating, "source ModifyImageAttribute "+region)
			consider(snapshotPerRegion[region], th.Mutating, "source ModifySnapshotAttribute "+region)
		}
		for k := range zones {
			consider(pages(copies[k], sim.DefaultPageSize), th.Describe, fmt.Sprintf("target describe %s/%s", k.account, k.region))
			consider(perZoneCopies[k], th.Mutating, fmt.Sprintf("target CopyImage %s/%s", k.account, k.region))
		}
		e.Floor.BucketSeconds, e.Floor.Bucket = worst, name
		if bk := th.Organizations; b.OrganizationList > bk.Burst {
			orgSeconds = max(orgSeconds, float64(b.OrganizationList-bk.Burst)/bk.Refill)
		}
	}
	e.Floor.ChainSeconds = orgSeconds + lat*float64(b.CopyImage)/workers
	e.Floor.Seconds = max(e.Floor.LatencySeconds, e.Floor.BucketSeconds, e.Floor.ChainSeconds)
	return e
}
