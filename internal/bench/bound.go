package bench

import (
	"fmt"
	"slices"
	"strings"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// LowerBound is the number of API calls a run of the scenario cannot do
// without, by the formula of SPEC section 8, computed from the scenario's
// description (never from the run being measured):
//
//	source describes   sum over source Regions of pages(source AMIs, 1000)
//	organisation       pages(accounts + 1, 20) of ListAccounts, plus for each
//	                   OU the metadata names: 1 ListOrganizationalUnitsForParent
//	                   + pages(its accounts, 20) ListAccountsForParent
//	AssumeRole         1 per target account
//	target describes   sum over target accounts and Regions of
//	                   pages(copies there, 1000), at least 1
//	sharing            per source AMI copied in this run:
//	                   (1 launch permission + 1 per snapshot) x
//	                   ceil(accounts copying it / 500)
//	CopyImage          1 per copy the run can start
//
// Two refinements make the bound stricter than the SPEC's "M CopyImage":
// M counts only the missing pairs the in-flight cap lets start this run (a
// pair beyond limits.in_flight_copies is deferred without a call), and
// sharing counts only the accounts that copy an AMI this run (the engine
// grants the others in the run that copies). The bound leaves out the
// DescribeImageAttribute and DescribeSnapshotAttribute reads that make
// sharing skip accounts already granted: they are the engine's overhead,
// and the calls ratio shows them.
type LowerBound struct {
	SourceDescribes  int `json:"source_describes"`
	OrganizationList int `json:"organization_pages"`
	AssumeRole       int `json:"assume_role"`
	TargetDescribes  int `json:"target_describes"`
	Sharing          int `json:"sharing"`
	CopyImage        int `json:"copy_image"`
	Total            int `json:"total"`
}

// Floor is the least wall time a run of the scenario can take.
type Floor struct {
	// LatencySeconds: the organisation listing's pages one after the
	// other (nothing can be resolved before it), then every other call
	// of the lower bound spread perfectly over limits.concurrency
	// workers, each call taking the simulated latency.
	LatencySeconds float64 `json:"latency_seconds"`
	// BucketSeconds: the time the busiest token bucket needs to refill
	// for the calls of the lower bound that draw on it, beyond its
	// burst: max(0, (calls - burst) / refill). EC2 meters each API in
	// its own bucket per account and Region, so each (account, Region,
	// API) is a bucket here.
	BucketSeconds float64 `json:"bucket_seconds"`
	// Bucket names the busiest bucket.
	Bucket string `json:"bucket"`
	// Seconds is the larger of the two: the floor.
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
	namedOUs := map[int]bool{}
	for _, im := range w.images {
		if im.set.OU >= 0 && !namedOUs[im.set.OU] {
			namedOUs[im.set.OU] = true
			b.OrganizationList += 1 + pages(len(w.ous[im.set.OU]), sim.DefaultOrgPageSize)
		}
	}

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
	copyingAccounts := make([]int, len(w.images)) // accounts copying each image now
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
			copyingAccounts[i]++
		}
	}
	e.DeferredCap = e.Missing - e.Startable
	// Sharing, per API: EC2 meters ModifyImageAttribute and
	// ModifySnapshotAttribute in buckets of their own.
	launchPerRegion, snapshotPerRegion := map[string]int{}, map[string]int{}
	for i, n := range copyingAccounts {
		if n == 0 {
			continue
		}
		batches := (n + cloud.MaxShareBatch - 1) / cloud.MaxShareBatch
		launchPerRegion[w.images[i].region] += batches
		snapshotPerRegion[w.images[i].region] += w.images[i].set.Snapshots * batches
		b.Sharing += (1 + w.images[i].set.Snapshots) * batches
	}
	b.CopyImage = e.Startable
	b.Total = b.SourceDescribes + b.OrganizationList + b.AssumeRole + b.TargetDescribes + b.Sharing + b.CopyImage
	e.Bound = b

	// The floor.
	lat := w.sc.Latency.Seconds()
	serial := b.OrganizationList
	e.Floor.LatencySeconds = lat * (float64(serial) + float64(b.Total-serial)/float64(max(1, w.sc.Concurrency)))
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
		consider(b.OrganizationList, th.Organizations, "organizations")
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
	}
	e.Floor.Seconds = max(e.Floor.LatencySeconds, e.Floor.BucketSeconds)
	return e
}
