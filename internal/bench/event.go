package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/lambdafn"
	"github.com/amicopier/amicopier/internal/pacing"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// Event is the scenario kind of the event path: one AMI State Change
// event for one new AMI, handled by the Lambda handler, in a large
// organisation of which the AMI names a few accounts and one OU.
const Event Kind = "event"

// The event scenario's shape (BENCHMARKS.md derives its bound from it).
const (
	// eventNamed accounts the AMI's metadata names one by one, spread
	// over the workload OUs.
	eventNamed = 5
	// eventTeam accounts sit in the one OU the metadata names.
	eventTeam = 20
	// eventSnapshots is the new AMI's EBS snapshots.
	eventSnapshots = 2
	// eventOlder is how many older builds the source account holds (for
	// "*"), each with a copy in every target of the event: listing every
	// copy of a target would take two pages, the event's own one.
	eventOlder = 1200
)

// EventScenario is event-10000: 10,000 accounts, one new AMI with two
// snapshots for five named accounts and an OU of 20.
func EventScenario() Scenario {
	return Scenario{
		Name: "event-10000", Kind: Event, Accounts: 10000, OUs: 100, Regions: []string{"eu-west-1"},
		InFlightCap: 20, Concurrency: 64, Latency: 25 * time.Millisecond, Throttle: true,
		Doc: "one AMI State Change event through the Lambda handler in an organisation of 10,000 accounts: " +
			"a new AMI with 2 snapshots for 5 named accounts and an OU of 20, each target holding 1,200 copies of older builds",
	}
}

// EventResult is what the event scenario prints.
type EventResult struct {
	Scenario string `json:"scenario"`
	Accounts int    `json:"accounts"`
	// Targets: the named accounts and the OU's.
	Targets         int        `json:"targets"`
	CopiesStarted   int        `json:"copies_started"`
	APICalls        APICalls   `json:"api_calls"`
	LowerBoundCalls int        `json:"lower_bound_calls"`
	LowerBound      LowerBound `json:"lower_bound"`
	CallsRatio      float64    `json:"calls_ratio"`
	WallSeconds     float64    `json:"wall_seconds"`
	FloorSeconds    float64    `json:"floor_seconds"`
	Floor           Floor      `json:"floor"`
	WallRatio       float64    `json:"wall_ratio"`
	// SecondsToLastCopy: from the event's arrival at the handler to the
	// last CopyImage EC2 accepted.
	SecondsToLastCopy float64 `json:"seconds_to_last_copy"`
	// FullListingPages is what listing the organisation would have cost
	// (ListAccounts pages), for comparison: the run makes none.
	FullListingPages int      `json:"full_listing_pages"`
	ThrottledCalls   int64    `json:"throttled_calls"`
	StaleGrantsAfter int      `json:"stale_grants_after"`
	Outcome          string   `json:"outcome"`
	Status           string   `json:"status"`
	Errors           []string `json:"errors,omitempty"`
	Pass             bool     `json:"pass"`
	Reasons          []string `json:"reasons,omitempty"`
}

// eventWorld is the event scenario's organisation.
type eventWorld struct {
	sc      Scenario
	cloud   *sim.Cloud
	cfg     *config.Config
	image   cloud.Image
	named   []string
	team    []string
	teamOU  string
	members int // accounts of the organisation, the source's included
}

// buildEvent makes the organisation: the workload OUs' accounts, the
// team OU, the new AMI, and the older builds with their copies in the
// event's targets (scenery, made directly in the simulator).
func buildEvent(sc Scenario) (*eventWorld, error) {
	cfg, err := scenarioConfig(sc)
	if err != nil {
		return nil, err
	}
	l := sc.Latency
	c := sim.New(sim.WithLatency(sim.Latency{Describe: l, Mutating: l, STS: l, Organizations: l}), sim.WithThrottling(sim.DefaultThrottling()))
	w := &eventWorld{sc: sc, cloud: c, cfg: cfg, members: sc.Accounts + 1}
	if err := c.AddAccount(SourceAccount, "golden-images", "", cloud.AccountActive); err != nil {
		return nil, err
	}
	var ous []string
	for o := range sc.OUs {
		ous = append(ous, c.AddOU("", fmt.Sprintf("workloads-%d", o)))
	}
	w.teamOU = c.AddOU("", "team")
	workloads := sc.Accounts - eventTeam
	for i := range sc.Accounts {
		id, ou := accountID(i), w.teamOU
		if i < workloads {
			ou = ous[i*len(ous)/workloads]
			if i%(workloads/eventNamed) == workloads/eventNamed/2 && len(w.named) < eventNamed {
				w.named = append(w.named, id)
			}
		} else {
			w.team = append(w.team, id)
		}
		if err := c.AddAccount(id, fmt.Sprintf("acct-%d", i+1), ou, cloud.AccountActive); err != nil {
			return nil, err
		}
	}
	region := sc.Regions[0]
	w.addOlder(region)
	devs := make([]sim.DeviceSpec, eventSnapshots)
	for i := range devs {
		devs[i] = sim.DeviceSpec{Size: 8}
	}
	targets := strings.Join(append(slices.Clone(w.named), w.teamOU), " ")
	w.image = c.AddImage(SourceAccount, region, sim.ImageSpec{Name: "golden-new", Tags: map[string]string{config.DefaultTagKey: targets, "Recipe": "golden-new"}, Devices: devs})
	return w, nil
}

// addOlder adds the older builds and a good copy of each in every
// target of the event.
func (w *eventWorld) addOlder(region string) {
	devs := []sim.DeviceSpec{{Size: 8, AWSManagedKey: true}}
	for n := range eventOlder {
		name := fmt.Sprintf("golden-%04d", n+1)
		img := w.cloud.AddImage(SourceAccount, region, sim.ImageSpec{Name: name, Tags: map[string]string{config.DefaultTagKey: "*", "Recipe": name}, Devices: devs})
		tags := map[string]string{
			reconcile.TagCopiedFrom: img.ID, reconcile.TagEncrypted: "true", reconcile.TagManaged: "true",
			reconcile.TagSourceAccount: SourceAccount, reconcile.TagSourceRegion: region, "Recipe": name,
		}
		for _, a := range w.targets() {
			w.cloud.AddImage(a, region, sim.ImageSpec{Name: name + "-encrypted-" + img.ID, Tags: tags, Devices: devs})
		}
	}
}

func (w *eventWorld) targets() []string { return append(slices.Clone(w.named), w.team...) }

// expect is the event's lower bound and floor (BENCHMARKS.md, "The event
// path"), from the scenario's shape alone.
func (w *eventWorld) expect() (LowerBound, Floor) {
	targets := len(w.named) + len(w.team)
	var b LowerBound
	b.SourceDescribes = 1 // DescribeImages of the event's one image id
	// Each named account looked up; the OU's child OUs (none: one page)
	// and its accounts; DescribeOrganization for the OU's ARN, granted
	// whole.
	b.OrganizationList = len(w.named) + 1 + pages(len(w.team), sim.DefaultOrgPageSize) + 1
	b.AssumeRole = targets
	b.TargetDescribes = targets // one page: the describe names the image
	entities := len(w.named) + 1
	b.SharingEntities = entities
	b.Sharing = 1 + eventSnapshots + ceilDiv(entities, cloud.MaxLaunchPermissionBatch) + eventSnapshots*ceilDiv(targets, cloud.MaxShareBatch)
	b.CopyImage = targets
	b.Total = b.SourceDescribes + b.OrganizationList + b.AssumeRole + b.TargetDescribes + b.Sharing + b.CopyImage

	// The chain of calls each waiting for the one before: the source
	// describe (the targets are its tags), an account's membership
	// (DescribeAccount, or the OU's account listing), AssumeRole, the
	// target's describe (is a copy there?), the grant, CopyImage.
	const chain = 6
	lat := w.sc.Latency.Seconds()
	workers := float64(max(1, w.sc.Concurrency))
	var f Floor
	f.LatencySeconds = lat * (chain + float64(b.Total-chain)/workers)
	f.ChainSeconds = lat * chain
	th := sim.DefaultThrottling()
	for _, c := range []struct {
		n    int
		bk   sim.Bucket
		what string
	}{{b.OrganizationList, th.Organizations, "organizations"}, {b.AssumeRole, th.STS, "sts"}} {
		if c.n > c.bk.Burst {
			if s := float64(c.n-c.bk.Burst) / c.bk.Refill; s > f.BucketSeconds {
				f.BucketSeconds, f.Bucket = s, c.what
			}
		}
	}
	f.Seconds = max(f.LatencySeconds, f.BucketSeconds, f.ChainSeconds)
	return b, f
}

// RunEvent builds the event scenario and has the Lambda handler handle
// one AMI State Change event for the new AMI.
func RunEvent(ctx context.Context, sc Scenario) (*EventResult, error) {
	w, err := buildEvent(sc)
	if err != nil {
		return nil, err
	}
	bound, floor := w.expect()
	conn := &copyClock{}
	h, err := lambdafn.New(ctx, lambdafn.Deps{
		Config: w.cfg, Stdout: io.Discard, Clock: w.cloud,
		OpenStore: func(context.Context, *config.Config) (state.Store, error) {
			return state.NewMemory(state.WithClock(w.cloud.Now)), nil
		},
		Backend: func(context.Context, string, bool, int) (cloud.Connector, []cloud.TargetSource, error) {
			pace, err := pacing.New(w.cfg.Limits.PaceRates(), SourceAccount, 1)
			if err != nil {
				return nil, nil, err
			}
			conn.Connector = w.cloud.Connector(SourceAccount, sim.WithPacing(pace))
			return conn, nil, nil
		},
	})
	if err != nil {
		return nil, err
	}
	ev, err := amiStateChange(w.image)
	if err != nil {
		return nil, err
	}
	w.cloud.ResetCounters()
	conn.start = time.Now()
	res, err := h.Handle(ctx, ev)
	wall := time.Since(conn.start).Seconds()
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	out := &EventResult{
		Scenario: sc.Name, Accounts: sc.Accounts, Targets: len(w.named) + len(w.team),
		LowerBoundCalls: bound.Total, LowerBound: bound, WallSeconds: wall, FloorSeconds: floor.Seconds, Floor: floor,
		SecondsToLastCopy: conn.lastCopy(), FullListingPages: pages(w.members, sim.DefaultOrgPageSize),
		ThrottledCalls: w.cloud.ThrottledCalls(), StaleGrantsAfter: w.staleGrants(), Outcome: res.Outcome,
	}
	out.APICalls.ByOperation = w.cloud.CallCounts()
	for _, n := range out.APICalls.ByOperation {
		out.APICalls.Total += n
	}
	out.CallsRatio = ratio(float64(out.APICalls.Total), float64(bound.Total))
	out.WallRatio = ratio(wall, floor.Seconds)
	if s := res.Summary; s != nil {
		out.Status, out.CopiesStarted, out.Errors = s.Status, s.Actions["copy"], firstN(s.Errors, 5)
	}
	out.check()
	return out, nil
}

// check applies the event scenario's assertions.
func (r *EventResult) check() {
	fail := func(format string, args ...any) { r.Reasons = append(r.Reasons, fmt.Sprintf(format, args...)) }
	if r.Outcome != lambdafn.OutcomeReconciled || r.Status != report.StatusSucceeded {
		fail("outcome %s, status %s; want %s, %s", r.Outcome, r.Status, lambdafn.OutcomeReconciled, report.StatusSucceeded)
	}
	if r.CallsRatio > MaxNoOpCallsRatio {
		fail("calls_ratio %.4f > %.2f", r.CallsRatio, MaxNoOpCallsRatio)
	}
	if r.WallRatio > MaxNoOpWallRatio {
		fail("wall_ratio %.3f > %.2f", r.WallRatio, MaxNoOpWallRatio)
	}
	if r.CopiesStarted != r.Targets {
		fail("copies started %d, want one per target (%d)", r.CopiesStarted, r.Targets)
	}
	if n := r.APICalls.ByOperation[cloud.OpListAccounts]; n != 0 {
		fail("%d ListAccounts pages: the event listed the organisation", n)
	}
	if r.StaleGrantsAfter != 0 {
		fail("stale_grants_after = %d, want 0", r.StaleGrantsAfter)
	}
	r.Pass = len(r.Reasons) == 0
}

// staleGrants counts the grants of the new AMI reaching anything but its
// targets: accounts, OUs or the organisation in its launch permission,
// accounts in its snapshots' create-volume permission.
func (w *eventWorld) staleGrants() int {
	want := map[string]bool{}
	for _, a := range w.targets() {
		want[a] = true
	}
	region := w.sc.Regions[0]
	p := w.cloud.LaunchPermission(SourceAccount, region, w.image.ID)
	n := len(p.Organizations)
	for _, arn := range p.OUs {
		if arn != sim.OUARN(w.teamOU) {
			n++
		}
	}
	accts := slices.Clone(p.Accounts)
	for _, snap := range w.image.SnapshotIDs() {
		accts = append(accts, w.cloud.SnapshotPermissions(SourceAccount, region, snap)...)
	}
	for _, a := range accts {
		if !want[a] {
			n++
		}
	}
	return n
}

// amiStateChange is the EventBridge event EC2 sends when img becomes
// available, as the Lambda function receives it.
func amiStateChange(img cloud.Image) ([]byte, error) {
	return json.Marshal(map[string]any{
		"version": "0", "id": "bench-event", "detail-type": "EC2 AMI State Change", "source": "aws.ec2",
		"account": SourceAccount, "time": "2026-01-01T09:05:00Z", "region": img.Region,
		"resources": []string{"arn:aws:ec2:" + img.Region + "::image/" + img.ID},
		"detail":    map[string]string{"RequestId": "bench", "ImageId": img.ID, "State": "available", "ErrorMessage": ""},
	})
}

// copyClock is the connector of the event's run: it notes when EC2
// accepted the last CopyImage, and counts calls as the simulator's
// connector does.
type copyClock struct {
	cloud.Connector
	start time.Time
	mu    sync.Mutex
	last  time.Time
}

// Target wraps the target client so its CopyImage calls are timed.
func (c *copyClock) Target(ctx context.Context, account, region string) (cloud.EC2, error) {
	t, err := c.Connector.Target(ctx, account, region)
	if err != nil {
		return nil, err
	}
	return &timedCopies{EC2: t, clock: c}, nil
}

func (c *copyClock) lastCopy() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last.IsZero() {
		return 0
	}
	return c.last.Sub(c.start).Seconds()
}

// CallCounts implements cloud.CallCounter.
func (c *copyClock) CallCounts() map[string]int64 {
	return c.Connector.(cloud.CallCounter).CallCounts()
}

// Throttles implements cloud.CallCounter.
func (c *copyClock) Throttles() (attempts, surfaced int64) {
	return c.Connector.(cloud.CallCounter).Throttles()
}

// timedCopies is a target client whose accepted copies are timed.
type timedCopies struct {
	cloud.EC2
	clock *copyClock
}

func (t *timedCopies) CopyImage(ctx context.Context, in cloud.CopyImageInput) (string, error) {
	id, err := t.EC2.CopyImage(ctx, in)
	if err == nil {
		now := time.Now()
		t.clock.mu.Lock()
		if now.After(t.clock.last) {
			t.clock.last = now
		}
		t.clock.mu.Unlock()
	}
	return id, err
}
