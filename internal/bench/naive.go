package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/pacing"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
)

// The naive peer is the yardstick for amicopier's numbers: the reconciler
// many teams write by hand, a Lambda that, for every pair of a source AMI
// and a target account, describes the target (DescribeImages in the
// target account, filtered by the source id tag its copies carry), and if
// no copy is there shares the AMI with that one account
// (ModifyImageAttribute, and ModifySnapshotAttribute per snapshot) and
// copies it (CopyImage). It exists only in the benchmark, never in the
// product.
//
// It is given what a careful hand-written Lambda would have, so the
// comparison is fair to it: the same simulator, latency and token
// buckets; the same connector, with the SDK's retries and amicopier's
// client-side pacing (limits.*_rate and *_burst), so it is never
// throttled into failure; one AssumeRole per account (the session
// reused); limits.concurrency workers, as many as amicopier's; and the
// pairs in the most favourable of the simple orders: Region after Region
// in turn, and within a Region image by image, account by account, so
// the workers spread over the target accounts' buckets and every
// source Region's sharing buckets are busy at once. It has no in-flight
// cap: it starts every missing copy.

// NaivePeer is what the naive peer did and cost on a scenario's
// organisation, next to amicopier's run of the same scenario.
type NaivePeer struct {
	NaiveCalls       int64            `json:"naive_calls"`
	NaiveByOperation map[string]int64 `json:"naive_by_operation"`
	NaiveWallSeconds float64          `json:"naive_wall_seconds"`
	NaiveCPUSeconds  float64          `json:"naive_cpu_seconds"`
	// NaiveCallsRatio and NaiveWallRatio are the peer's calls and wall
	// time over amicopier's in the same benchmark run.
	NaiveCallsRatio float64 `json:"naive_calls_ratio"`
	NaiveWallRatio  float64 `json:"naive_wall_ratio"`
	NaiveWorkers    int     `json:"naive_workers"`
	// NaiveCopiesStarted are the peer's CopyImage calls that succeeded,
	// NaivePairsFound the pairs whose copy it found; NaiveThrottled its
	// throttled attempts (retried).
	NaiveCopiesStarted int      `json:"naive_copies_started"`
	NaivePairsFound    int      `json:"naive_pairs_found"`
	NaiveThrottled     int64    `json:"naive_throttled_calls"`
	NaiveErrors        []string `json:"naive_errors,omitempty"`
}

// naivePair is one pair of the peer's work list.
type naivePair struct {
	img     cloud.Image
	account string
}

// naive is one run of the peer.
type naive struct {
	w       *world
	conn    *sim.Connector
	workers int

	copies, found atomic.Int64
	mu            sync.Mutex
	errs          []string
}

// runNaive runs the naive peer once on w's organisation.
func runNaive(ctx context.Context, w *world) (*NaivePeer, error) {
	pace, err := pacing.New(w.cfg.Limits.PaceRates(), SourceAccount, 1)
	if err != nil {
		return nil, err
	}
	n := &naive{w: w, conn: w.cloud.Connector(SourceAccount, sim.WithPacing(pace)), workers: max(1, w.sc.Concurrency)}
	cpu0, _ := cpuTime()
	start := time.Now()
	pairs, err := n.list(ctx)
	if err == nil {
		n.work(ctx, pairs)
	}
	wall := time.Since(start).Seconds()
	cpu1, _ := cpuTime()
	if err != nil {
		return nil, fmt.Errorf("naive peer on %s: %w", w.sc.Name, err)
	}
	p := &NaivePeer{
		NaiveByOperation: n.conn.CallCounts(), NaiveWallSeconds: wall, NaiveCPUSeconds: cpu1 - cpu0, NaiveWorkers: n.workers,
		NaiveCopiesStarted: int(n.copies.Load()), NaivePairsFound: int(n.found.Load()), NaiveErrors: firstN(n.errs, 5),
	}
	for _, c := range p.NaiveByOperation {
		p.NaiveCalls += c
	}
	p.NaiveThrottled, _ = n.conn.Throttles()
	return p, nil
}

// list reads the organisation's active accounts and the source AMIs of
// every Region, resolves each AMI's targets tag ("*" or an OU id, each
// OU listed once) and returns the pairs in the peer's order.
func (n *naive) list(ctx context.Context) ([]naivePair, error) {
	org, err := n.conn.Organization(ctx)
	if err != nil {
		return nil, err
	}
	all, err := org.ListAccounts(ctx)
	if err != nil {
		return nil, err
	}
	excluded := map[string]bool{SourceAccount: true}
	for _, a := range n.w.cfg.Targets.ExcludeAccounts {
		excluded[a] = true
	}
	var members []string
	for _, a := range all {
		if a.State == cloud.AccountActive && !excluded[a.ID] {
			members = append(members, a.ID)
		}
	}
	slices.Sort(members)
	ous := map[string][]string{}
	var perRegion [][]naivePair
	for _, region := range n.w.sc.Regions {
		src, err := n.conn.Source(ctx, region)
		if err != nil {
			return nil, err
		}
		imgs, err := src.DescribeImages(ctx, cloud.ImageQuery{TagKeys: []string{n.w.cfg.Targets.TagKey}})
		if err != nil {
			return nil, err
		}
		var pairs []naivePair
		for _, img := range imgs {
			targets, err := n.targets(ctx, org, img.Tags[n.w.cfg.Targets.TagKey], members, ous, excluded)
			if err != nil {
				return nil, err
			}
			for _, a := range targets {
				pairs = append(pairs, naivePair{img: img, account: a})
			}
		}
		perRegion = append(perRegion, pairs)
	}
	return interleave(perRegion), nil
}

// targets resolves a targets tag the way a hand-written Lambda does: "*"
// is every active member, anything else an OU whose accounts it lists.
func (n *naive) targets(ctx context.Context, org cloud.Organization, tag string, members []string, ous map[string][]string, excluded map[string]bool) ([]string, error) {
	if tag == "*" {
		return members, nil
	}
	if accts, ok := ous[tag]; ok {
		return accts, nil
	}
	children, err := org.ListChildren(ctx, tag)
	if err != nil {
		return nil, fmt.Errorf("list the accounts of %s: %w", tag, err)
	}
	accts := slices.DeleteFunc(children.AccountIDs(), func(a string) bool {
		_, member := slices.BinarySearch(members, a)
		return excluded[a] || !member
	})
	ous[tag] = accts
	return accts, nil
}

// interleave takes one pair of each list in turn.
func interleave(lists [][]naivePair) []naivePair {
	var out []naivePair
	for i := 0; ; i++ {
		took := false
		for _, l := range lists {
			if i < len(l) {
				out = append(out, l[i])
				took = true
			}
		}
		if !took {
			return out
		}
	}
}

// work runs the pairs over n.workers workers.
func (n *naive) work(ctx context.Context, pairs []naivePair) {
	next := make(chan naivePair)
	var wg sync.WaitGroup
	for range n.workers {
		wg.Go(func() {
			for p := range next {
				if err := n.reconcile(ctx, p); err != nil {
					n.mu.Lock()
					n.errs = append(n.errs, err.Error())
					n.mu.Unlock()
				}
			}
		})
	}
	for _, p := range pairs {
		select {
		case next <- p:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
}

// reconcile is the peer's whole logic for one pair: describe, share,
// copy.
func (n *naive) reconcile(ctx context.Context, p naivePair) error {
	region := p.img.Region
	tgt, err := n.conn.Target(ctx, p.account, region)
	if err != nil {
		return err
	}
	have, err := tgt.DescribeImages(ctx, cloud.ImageQuery{Tags: map[string][]string{reconcile.TagCopiedFrom: {p.img.ID}}})
	if err != nil {
		return fmt.Errorf("describe %s/%s: %w", p.account, region, err)
	}
	if len(have) > 0 {
		n.found.Add(1)
		return nil
	}
	src, err := n.conn.Source(ctx, region)
	if err != nil {
		return err
	}
	if err := src.AddImageLaunchPermission(ctx, p.img.ID, cloud.LaunchPermission{Accounts: []string{p.account}}); err != nil {
		return fmt.Errorf("share %s with %s: %w", p.img.ID, p.account, err)
	}
	for _, snap := range p.img.SnapshotIDs() {
		if err := src.AddSnapshotVolumePermissions(ctx, snap, []string{p.account}); err != nil {
			return fmt.Errorf("share %s with %s: %w", snap, p.account, err)
		}
	}
	_, err = tgt.CopyImage(ctx, cloud.CopyImageInput{
		SourceImageID: p.img.ID, SourceRegion: region, Name: p.img.Name + "-naive-" + p.img.ID, Encrypted: true,
		ClientToken: p.img.ID + "-" + p.account, Tags: map[string]string{reconcile.TagCopiedFrom: p.img.ID},
	})
	if err != nil {
		return fmt.Errorf("copy %s to %s/%s: %w", p.img.ID, p.account, region, err)
	}
	n.copies.Add(1)
	return nil
}

// addNaive runs the naive peer on the scenario's organisation when the
// scenario asks for it (Scenario.Naive), after amicopier's timed run: on
// the same world for a no-op (the run changed nothing), on one built again
// from the same description otherwise. It checks the peer did its job (or
// the yardstick would flatter amicopier): no mutating call in a no-op, one
// copy for every pair in a catch-up.
func (r *Result) addNaive(ctx context.Context, sc Scenario, w *world) error {
	if !sc.Naive {
		return nil
	}
	if sc.Kind != NoOp {
		var err error
		if w, err = build(ctx, sc); err != nil {
			return err
		}
	}
	p, err := runNaive(ctx, w)
	if err != nil {
		return err
	}
	p.NaiveCallsRatio = ratio(float64(p.NaiveCalls), float64(r.APICalls.Total))
	p.NaiveWallRatio = ratio(p.NaiveWallSeconds, r.WallSeconds)
	r.NaivePeer = p
	fail := func(format string, args ...any) {
		r.Reasons = append(r.Reasons, "naive peer: "+fmt.Sprintf(format, args...))
	}
	if len(p.NaiveErrors) > 0 {
		fail("errors %v", p.NaiveErrors)
	}
	switch sc.Kind {
	case NoOp:
		if p.NaivePairsFound != r.Pairs || p.NaiveCopiesStarted != 0 {
			fail("found %d of %d pairs' copies, started %d copies", p.NaivePairsFound, r.Pairs, p.NaiveCopiesStarted)
		}
	case CatchUp:
		if c := w.copyCensus(); c.one != r.Pairs || c.more+c.none+c.unwanted != 0 {
			fail("copies per pair: %d with one, %d with more, %d with none, %d unwanted; want one for each of the %d pairs",
				c.one, c.more, c.none, c.unwanted, r.Pairs)
		}
	}
	r.Pass = len(r.Reasons) == 0
	return nil
}
