package bench

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/pause"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// Sharded: the catch-up is split into Scenario.Shards runs at once, each
// an engine of its own over one shard of the target accounts
// (reconcile.Shard), as the Step Functions Distributed Map of
// docs/sharding.md runs them.
const Sharded Kind = "sharded"

// MaxShardedWallRatio is how far above the floor of the source account's
// buckets a sharded run's wall time may be.
const MaxShardedWallRatio = 1.3

// ShardedScenario is sharded-10000: 10 shards at once against an
// organisation of 10,000 accounts in 2 Regions, one new AMI per Region for
// every account (20,000 missing pairs, all startable).
func ShardedScenario() Scenario {
	two := []string{"eu-west-1", "us-east-1"}
	return Scenario{
		Name: "sharded-10000", Kind: Sharded, Shards: 10, Accounts: 10000, OUs: 50, Regions: two,
		Images:      []ImageSet{{Region: two[0], Count: 1, Snapshots: 1, OU: -1}, {Region: two[1], Count: 1, Snapshots: 1, OU: -1}},
		InFlightCap: 20, Concurrency: 64, Latency: 25 * time.Millisecond, Throttle: true,
		Doc: "10 shards at once over 10,000 accounts x 2 Regions: a catch-up of 20,000 pairs, one copy each, the shards' reports equal to one unsharded plan",
	}
}

// ShardedResult is a sharded scenario's measurements, printed as one JSON
// line.
type ShardedResult struct {
	Scenario string `json:"scenario"`
	Kind     Kind   `json:"kind"`
	Shards   int    `json:"shards"`
	Accounts int    `json:"accounts"`
	Regions  int    `json:"regions"`
	AMIs     int    `json:"amis"`
	Pairs    int    `json:"pairs"`
	Missing  int    `json:"missing"`
	// ShardAccounts is how many target accounts each shard holds.
	ShardAccounts []int `json:"shard_accounts"`

	// CopiesStarted is what the shards' reports say they started; the
	// census after the run counts the copies in the organisation per
	// pair: PairsWithOneCopy, DuplicateCopies (pairs with more than one),
	// MissingCopies (wanted pairs with none) and UnwantedCopies (copies
	// of no wanted pair).
	CopiesStarted    int `json:"copies_started"`
	PairsWithOneCopy int `json:"pairs_with_one_copy"`
	DuplicateCopies  int `json:"duplicate_copies"`
	MissingCopies    int `json:"pairs_without_copy"`
	UnwantedCopies   int `json:"unwanted_copies"`

	// PlanPairs and PlanCounts are the unsharded plan made on the same
	// organisation before the shards ran; ReportsPairs and ReportsCounts
	// the union of the shards' reports. ReportsEqualPlan says every pair
	// (source, account, Region) is in both with the same category, and
	// no pair is in two reports; ReportDiff shows the first differences.
	PlanPairs        int            `json:"plan_pairs"`
	PlanCounts       map[string]int `json:"plan_counts"`
	PlanSeconds      float64        `json:"plan_seconds"`
	ReportsPairs     int            `json:"reports_pairs"`
	ReportsCounts    map[string]int `json:"reports_counts"`
	ReportsEqualPlan bool           `json:"reports_equal_plan"`
	ReportDiff       []string       `json:"report_diff,omitempty"`

	// APICalls sums the calls of every shard, ShardCalls gives each
	// shard's. UnshardedBound is the lower bound of one unsharded run;
	// ShardedBound is the same with the work per account (AssumeRole,
	// target describes, sharing, copies) counted shard by shard and the
	// observation of the source and the organisation once;
	// ShardingAllowance is (shards - 1) x (source describes +
	// organisation pages), what every further shard repeats. MaxCalls is
	// ShardedBound + ShardingAllowance, CallsRatio calls / MaxCalls.
	APICalls          APICalls   `json:"api_calls"`
	ShardCalls        []int64    `json:"shard_calls"`
	UnshardedBound    LowerBound `json:"unsharded_bound"`
	ShardedBound      LowerBound `json:"sharded_bound"`
	ShardingAllowance int        `json:"sharding_allowance"`
	MaxCalls          int        `json:"max_calls"`
	CallsRatio        float64    `json:"calls_ratio"`

	// WallSeconds is from the first shard's start to the last one's end;
	// FloorSeconds the time the source account's buckets need for the
	// calls every shard makes through them (SourceBucket names the
	// busiest); UnshardedFloorSeconds the floor of one unsharded run.
	WallSeconds           float64   `json:"wall_seconds"`
	ShardWallSeconds      []float64 `json:"shard_wall_seconds"`
	FloorSeconds          float64   `json:"floor_seconds"`
	SourceBucket          string    `json:"source_bucket"`
	WallRatio             float64   `json:"wall_ratio"`
	UnshardedFloorSeconds float64   `json:"unsharded_floor_seconds"`

	CPUSeconds             float64  `json:"cpu_seconds"`
	LatencyMS              float64  `json:"latency_ms"`
	Concurrency            int      `json:"concurrency"`
	InFlightCap            int      `json:"in_flight_cap"`
	BuildSeconds           float64  `json:"build_seconds"`
	StateWrites            int64    `json:"state_writes"`
	MaxShareEntities       int      `json:"max_share_entities"`
	StaleGrantsAfter       int      `json:"stale_grants_after"`
	ThrottleErrorsSurfaced int64    `json:"throttle_errors_surfaced"`
	ThrottledCalls         int64    `json:"throttled_calls"`
	Statuses               []string `json:"statuses"`
	Errors                 []string `json:"errors,omitempty"`
	Pass                   bool     `json:"pass"`
	Reasons                []string `json:"reasons,omitempty"`
}

// RunSharded builds the scenario, makes one unsharded plan of it, waits
// for the buckets the plan drew on to refill, then runs its shards at
// once, each an engine of its own sharing one state store, and checks
// what they did together.
func RunSharded(ctx context.Context, sc Scenario) (*ShardedResult, error) {
	if sc.Kind != Sharded || sc.Shards < 2 {
		return nil, fmt.Errorf("scenario %s is not a sharded scenario of 2 shards or more", sc.Name)
	}
	built := time.Now()
	w, err := build(ctx, sc)
	if err != nil {
		return nil, err
	}
	exp := w.expect()
	if exp.Missing != exp.Startable {
		return nil, fmt.Errorf("scenario %s: %d of %d missing pairs are beyond the in-flight cap; the sharded bound assumes every one can start",
			sc.Name, exp.Missing-exp.Startable, exp.Missing)
	}
	out := &ShardedResult{
		Scenario: sc.Name, Kind: sc.Kind, Shards: sc.Shards, Accounts: sc.Accounts, Regions: len(sc.Regions), AMIs: sc.AMIs(),
		Pairs: exp.Pairs, Missing: exp.Missing, UnshardedBound: exp.Bound, UnshardedFloorSeconds: exp.Floor.Seconds,
		LatencyMS: float64(sc.Latency) / float64(time.Millisecond), Concurrency: sc.Concurrency, InFlightCap: sc.InFlightCap,
		BuildSeconds: time.Since(built).Seconds(),
	}
	out.shardedBound(w, exp)

	planStart := time.Now()
	plan, err := runEngine(ctx, w, state.NewMemory(state.WithClock(w.cloud.Now)), reconcile.Request{Mode: reconcile.ModePlan, Trigger: "bench-plan"}, 1)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: unsharded plan: %w", sc.Name, err)
	}
	out.PlanSeconds = time.Since(planStart).Seconds()
	if plan.res.Summary.Status != report.StatusSucceeded {
		return nil, fmt.Errorf("scenario %s: unsharded plan %s: %v", sc.Name, plan.res.Summary.Status, plan.res.Summary.Errors)
	}
	if err := waitForRefill(ctx, sc); err != nil {
		return nil, err
	}
	w.cloud.ResetCounters()

	shards, err := runShards(ctx, w, sc.Shards)
	if err != nil {
		return nil, err
	}
	out.measure(w, shards)
	out.compare(plan.res.Report, shards)
	out.check()
	return out, nil
}

// waitForRefill sleeps until every bucket the plan drew on (EC2's
// describes, STS, Organizations) is full again, so the shards start as a
// scheduled run does: with their buckets at their burst.
func waitForRefill(ctx context.Context, sc Scenario) error {
	if !sc.Throttle {
		return nil
	}
	th := sim.DefaultThrottling()
	var d time.Duration
	for _, b := range []sim.Bucket{th.Describe, th.STS, th.Organizations} {
		if b.Refill > 0 {
			d = max(d, time.Duration(float64(b.Burst)/b.Refill*float64(time.Second)))
		}
	}
	return pause.For(ctx, d+100*time.Millisecond)
}

// engineRun is one run of an engine and what it cost.
type engineRun struct {
	res  *reconcile.Result
	conn *sdkConnector
	wall float64
}

// runEngine runs one engine on w with req; the connector paces as one of
// shards parallel runs.
func runEngine(ctx context.Context, w *world, store state.Store, req reconcile.Request, shards int) (*engineRun, error) {
	r := &engineRun{}
	eng, err := newEngine(w, store, shards, nil, func(c *sdkConnector) { r.conn = c })
	if err != nil {
		return nil, err
	}
	start := time.Now()
	r.res, err = eng.Run(ctx, req)
	r.wall = time.Since(start).Seconds()
	return r, err
}

// shardRuns are the runs of every shard, started at once.
type shardRuns struct {
	runs  []*engineRun
	wall  float64
	cpu   float64
	store *state.Counting
}

// runShards runs shards engines at once, one per shard, sharing one state
// store as the shards' Lambda invocations share one table.
func runShards(ctx context.Context, w *world, shards int) (*shardRuns, error) {
	s := &shardRuns{runs: make([]*engineRun, shards), store: state.NewCounting(state.NewMemory(state.WithClock(w.cloud.Now)))}
	errs := make([]error, shards)
	cpu0, _ := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range shards {
		wg.Go(func() {
			req := reconcile.Request{Mode: reconcile.ModeRun, Trigger: "bench", Shard: reconcile.Shard{Index: i + 1, Count: shards}}
			s.runs[i], errs[i] = runEngine(ctx, w, s.store, req, shards)
		})
	}
	wg.Wait()
	s.wall = time.Since(start).Seconds()
	cpu1, _ := cpuTime()
	s.cpu = cpu1 - cpu0
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("scenario %s: shard %d/%d: %w", w.sc.Name, i+1, shards, err)
		}
	}
	return s, nil
}

// shardedBound computes the sharded bound, the allowance for the
// observation every further shard repeats, and the floor of the source
// account's buckets.
func (r *ShardedResult) shardedBound(w *world, exp Expect) {
	n := w.sc.Shards
	b := LowerBound{SourceDescribes: exp.Bound.SourceDescribes, OrganizationList: exp.Bound.OrganizationList}
	perShard := make([][]string, n)
	for _, a := range w.accounts {
		i := reconcile.ShardOf(a, n) - 1
		perShard[i] = append(perShard[i], a)
	}
	src := sourceCalls{}
	for _, accts := range perShard {
		r.ShardAccounts = append(r.ShardAccounts, len(accts))
		e := w.shard(accts).expect()
		b.AssumeRole += e.Bound.AssumeRole
		b.TargetDescribes += e.Bound.TargetDescribes
		b.Sharing += e.Bound.Sharing
		b.CopyImage += e.Bound.CopyImage
		b.SharingEntities = max(b.SharingEntities, e.Bound.SharingEntities)
		src.addShard(w, accts, exp)
	}
	b.Total = b.SourceDescribes + b.OrganizationList + b.AssumeRole + b.TargetDescribes + b.Sharing + b.CopyImage
	r.ShardedBound = b
	r.ShardingAllowance = (n - 1) * (b.SourceDescribes + b.OrganizationList)
	r.MaxCalls = b.Total + r.ShardingAllowance
	src.assumeRole = b.AssumeRole
	if w.sc.Throttle {
		r.FloorSeconds, r.SourceBucket = src.floor(sim.DefaultThrottling())
	}
}

// shard is the world seen by one shard: the same organisation and
// images, with only accts (sorted) as targets.
func (w *world) shard(accts []string) *world {
	s := *w
	s.accounts = accts
	s.ous = make([][]string, len(w.ous))
	for o, members := range w.ous {
		s.ous[o] = slices.DeleteFunc(slices.Clone(members), func(a string) bool {
			_, in := slices.BinarySearch(accts, a)
			return !in
		})
	}
	return &s
}

// sourceCalls counts the calls every shard together makes through the
// source account's buckets: Organizations and STS (metered by the calling
// account), and EC2's per API and Region.
type sourceCalls struct {
	organizations, assumeRole int
	ec2                       map[[2]string]int // (API, Region)
}

// addShard adds one shard's calls: the whole observation of the source and
// the organisation, and the sharing of every image its accounts copy
// (every missing pair starts: RunSharded checks it).
func (s *sourceCalls) addShard(w *world, accts []string, exp Expect) {
	if s.ec2 == nil {
		s.ec2 = map[[2]string]int{}
	}
	s.organizations += exp.Bound.OrganizationList
	perRegion := map[string]int{}
	for _, im := range w.images {
		perRegion[im.region]++
	}
	for region, n := range perRegion {
		s.ec2[[2]string{"DescribeImages", region}] += pages(n, sim.DefaultPageSize)
	}
	for _, im := range w.images {
		if im.set.Copied {
			continue
		}
		copying := slices.DeleteFunc(slices.Clone(w.targets(im)), func(a string) bool {
			_, in := slices.BinarySearch(accts, a)
			return !in
		})
		if len(copying) == 0 {
			continue
		}
		s.ec2[[2]string{"DescribeImageAttribute", im.region}]++
		s.ec2[[2]string{"DescribeSnapshotAttribute", im.region}] += im.set.Snapshots
		s.ec2[[2]string{"ModifyImageAttribute", im.region}] += ceilDiv(w.launchEntities(im, copying), cloud.MaxLaunchPermissionBatch)
		s.ec2[[2]string{"ModifySnapshotAttribute", im.region}] += im.set.Snapshots * ceilDiv(len(copying), cloud.MaxShareBatch)
	}
}

// floor is the time the busiest of the source account's buckets needs to
// refill for its calls beyond its burst, and that bucket's name.
func (s *sourceCalls) floor(th sim.Throttling) (float64, string) {
	worst, name := 0.0, ""
	consider := func(n int, bk sim.Bucket, what string) {
		if bk.Burst == 0 || n <= bk.Burst {
			return
		}
		if t := float64(n-bk.Burst) / bk.Refill; t > worst {
			worst, name = t, fmt.Sprintf("%s (%d calls)", what, n)
		}
	}
	consider(s.organizations, th.Organizations, "organizations")
	consider(s.assumeRole, th.STS, "sts")
	byName := func(a, b [2]string) int { return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1])) }
	for _, k := range slices.SortedFunc(maps.Keys(s.ec2), byName) {
		bk := th.Mutating
		if k[0] == "DescribeImages" || k[0] == "DescribeImageAttribute" || k[0] == "DescribeSnapshotAttribute" {
			bk = th.Describe
		}
		consider(s.ec2[k], bk, "source "+k[0]+" "+k[1])
	}
	return worst, name
}

// measure fills in what the shards did and cost, and counts the copies
// per pair.
func (r *ShardedResult) measure(w *world, s *shardRuns) {
	r.WallSeconds, r.CPUSeconds = s.wall, s.cpu
	for _, run := range s.runs {
		sum := run.res.Summary
		r.Statuses = append(r.Statuses, sum.Status)
		r.Errors = append(r.Errors, sum.Errors...)
		r.ThrottleErrorsSurfaced += sum.ThrottleErrors
		r.CopiesStarted += sum.Actions["copy"]
		r.ShardWallSeconds = append(r.ShardWallSeconds, run.wall)
		var calls int64
		for op, n := range run.conn.CallCounts() {
			if r.APICalls.ByOperation == nil {
				r.APICalls.ByOperation = map[string]int64{}
			}
			r.APICalls.ByOperation[op] += n
			calls += n
		}
		r.ShardCalls = append(r.ShardCalls, calls)
		r.APICalls.Total += calls
	}
	r.Errors = firstN(r.Errors, 5)
	r.CallsRatio = ratio(float64(r.APICalls.Total), float64(r.MaxCalls))
	r.WallRatio = ratio(r.WallSeconds, r.FloorSeconds)
	r.StateWrites = s.store.Writes().Total()
	r.MaxShareEntities = w.cloud.MaxShareEntities()
	r.StaleGrantsAfter = w.staleGrants()
	r.ThrottledCalls = w.cloud.ThrottledCalls()
	c := w.copyCensus()
	r.PairsWithOneCopy, r.DuplicateCopies, r.MissingCopies, r.UnwantedCopies = c.one, c.more, c.none, c.unwanted
}

// pairKey names a pair in a report.
type pairKey struct{ source, account, region string }

// compare checks that the union of the shards' reports is the unsharded
// plan: the same pairs, each in the same category, none reported twice.
func (r *ShardedResult) compare(plan *report.Report, s *shardRuns) {
	want := map[pairKey]report.Category{}
	for _, it := range plan.Items {
		want[pairKey{it.SourceImage, it.Account, it.Region}] = it.Category
	}
	r.PlanPairs, r.PlanCounts = plan.Pairs, nonZero(plan.Counts)
	got := map[pairKey]report.Category{}
	counts := map[report.Category]int{}
	var diff []string
	for i, run := range s.runs {
		rep := run.res.Report
		r.ReportsPairs += rep.Pairs
		for c, n := range rep.Counts {
			counts[c] += n
		}
		for _, it := range rep.Items {
			k := pairKey{it.SourceImage, it.Account, it.Region}
			if _, twice := got[k]; twice {
				diff = append(diff, fmt.Sprintf("%s/%s/%s reported twice (again by shard %d)", k.source, k.account, k.region, i+1))
			}
			got[k] = it.Category
		}
	}
	r.ReportsCounts = nonZero(counts)
	for k, c := range want {
		if g, ok := got[k]; !ok || g != c {
			diff = append(diff, fmt.Sprintf("%s/%s/%s: plan %s, shards %q", k.source, k.account, k.region, c, g))
		}
	}
	for k, c := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, fmt.Sprintf("%s/%s/%s: shards %s, not in the plan", k.source, k.account, k.region, c))
		}
	}
	slices.Sort(diff)
	r.ReportsEqualPlan = len(diff) == 0 && r.ReportsPairs == r.PlanPairs && maps.Equal(r.ReportsCounts, r.PlanCounts)
	if r.ReportsPairs != r.PlanPairs {
		diff = append(diff, fmt.Sprintf("the shards observed %d pairs, the plan %d", r.ReportsPairs, r.PlanPairs))
	}
	r.ReportDiff = firstN(diff, 5)
}

// check applies the sharded scenario's assertions.
func (r *ShardedResult) check() {
	fail := func(format string, args ...any) { r.Reasons = append(r.Reasons, fmt.Sprintf(format, args...)) }
	for i, st := range r.Statuses {
		if st != report.StatusSucceeded {
			fail("shard %d/%d status %s, want %s", i+1, r.Shards, st, report.StatusSucceeded)
		}
	}
	if r.ThrottleErrorsSurfaced != 0 {
		fail("throttle_errors_surfaced = %d, want 0", r.ThrottleErrorsSurfaced)
	}
	if r.DuplicateCopies != 0 || r.MissingCopies != 0 || r.UnwantedCopies != 0 || r.PairsWithOneCopy != r.Pairs {
		fail("copies per pair: %d with one, %d with more, %d with none, %d unwanted; want one for each of the %d pairs",
			r.PairsWithOneCopy, r.DuplicateCopies, r.MissingCopies, r.UnwantedCopies, r.Pairs)
	}
	if r.CopiesStarted != r.Missing {
		fail("the shards started %d copies, want %d (every missing pair)", r.CopiesStarted, r.Missing)
	}
	if !r.ReportsEqualPlan {
		fail("the union of the shards' reports is not the unsharded plan: %v", r.ReportDiff)
	}
	if r.APICalls.Total > int64(r.MaxCalls) {
		fail("%d calls > %d (the sharded bound %d + (%d - 1) x (source describes + organisation pages))",
			r.APICalls.Total, r.MaxCalls, r.ShardedBound.Total, r.Shards)
	}
	if r.WallRatio > MaxShardedWallRatio {
		fail("wall_ratio %.3f > %.2f (the floor of the source account's buckets)", r.WallRatio, MaxShardedWallRatio)
	}
	if r.MaxShareEntities > cloud.SharingQuota {
		fail("max_share_entities %d > %d (the AMI sharing quota)", r.MaxShareEntities, cloud.SharingQuota)
	}
	if r.StaleGrantsAfter != 0 {
		fail("stale_grants_after = %d, want 0", r.StaleGrantsAfter)
	}
	r.Pass = len(r.Reasons) == 0
}

// census is the copies found in the organisation per wanted pair.
type census struct{ one, more, none, unwanted int }

// copyCensus counts, in every target account and Region, the copies
// (images tagged with the source they copy, failed ones left out) of each
// source: pairs with one, with more than one, wanted pairs with none, and
// copies of no wanted pair.
func (w *world) copyCensus() census {
	var c census
	wanted := map[zoneKey]map[string]bool{}
	for _, im := range w.images {
		for _, a := range w.targets(im) {
			k := zoneKey{a, im.region}
			if wanted[k] == nil {
				wanted[k] = map[string]bool{}
			}
			wanted[k][im.img.ID] = true
		}
	}
	for _, a := range w.accounts {
		for _, region := range w.sc.Regions {
			k := zoneKey{a, region}
			perSource := map[string]int{}
			for _, img := range w.cloud.Images(a, region) {
				if from := img.Tags[reconcile.TagCopiedFrom]; from != "" && img.State != cloud.ImageFailed {
					perSource[from]++
				}
			}
			for src := range wanted[k] {
				switch perSource[src] {
				case 0:
					c.none++
				case 1:
					c.one++
				default:
					c.more++
				}
			}
			for src, n := range perSource {
				if !wanted[k][src] {
					c.unwanted += n
				}
			}
		}
	}
	return c
}
