package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// Result is what a run produced.
type Result struct {
	Report  *report.Report
	Summary *report.Summary
	// Record is the run record written to the state store (ModeRun),
	// nil for a plan or when it could not be written.
	Record *state.Run
	// Started lists the copies the run started, in the order started,
	// when the request asked (Request.TrackCopies).
	Started []StartedCopy
}

// sourceImage is a discovered source AMI and its resolved targets.
type sourceImage struct {
	img     cloud.Image
	targets targetSet
}

// pairWork is a pair the run has to act on (or record).
type pairWork struct {
	src    *sourceImage
	key    state.PairKey
	dec    PairDecision
	plan   copyPlan
	stored *state.Pair // the record as loaded (its version guards the write)
	// item is the pair's line in the report, which the worker owning the
	// pair's Region edits as it acts; reported is false for work that
	// only settles a record (a retired pair), which the report does not
	// show. An ok pair is counted, and listed only with IncludeOK.
	item     report.Item
	reported bool
	// capped, when set, says the in-flight cap defers the pair's copy
	// this run (trimDeferred dropped its copy request).
	capped string
	// leftovers are snapshots of failed copies EC2 could not delete.
	leftovers []string
}

// regionWork is one account and Region as observed: the work it holds,
// and its lines of the report. The worker that applies a Region owns it
// and edits it without a lock; finish gathers every Region's lines.
type regionWork struct {
	account, region string
	client          cloud.EC2
	inFlight        int // copies pending in EC2 when observed
	pairs           []*pairWork
	// lines are the Region's listed pairs that need no work; unlistedOK
	// counts its ok pairs the report does not list.
	lines      []report.Item
	unlistedOK int
}

// addLine reports a pair that needs no work: listed, or only counted when
// it is ok and the run lists no ok pair.
func (rw *regionWork) addLine(it report.Item, includeOK bool) {
	if it.Category == report.OK && !includeOK {
		rw.unlistedOK++
		return
	}
	rw.lines = append(rw.lines, it)
}

// orphanCandidate is a copy amicopier made whose source the run did not
// discover; it is orphaned only if the source no longer exists at all.
// It keeps only what prune needs, not the whole image.
type orphanCandidate struct {
	account, region string
	client          cloud.EC2
	copyID          string
	snapshotIDs     []string
	sourceID        string
	sourceRegion    string
}

// run is one reconciliation (or observation) as it goes. Each phase
// keeps what it found in a part of its own: discovery in found (written by
// discover alone, read-only after), observation in seen, sharing in
// sharing, the orphaned copies in pruneWork; out tallies what the run
// did. finish makes the report from them.
type run struct {
	e       *Engine
	req     Request
	id      string
	started time.Time // wall clock
	policy  PairPolicy
	conn    cloud.Connector
	scoped  bool
	shard   Shard
	// release gives the lease up; nil while the run holds none.
	release func()

	found      discovery
	seen       observation
	sharing    sharingWork
	pruneWork  []*pruneWork
	life       lifecycle
	srcClients sourceClients
	out        *tally
	stop       stopWatch
	// params is the run's SSM parameter work, nil when publish.ssm is
	// off (publish.go).
	params *paramRun
}

// stopWatch is what the run knows of its end: when it stops starting
// work (deadline, wall clock; zero: never), and of the caller stopping it
// (interrupt.go) the cause and how much work it cut short.
type stopWatch struct {
	deadline time.Time
	cause    func() error
	cutOffs  atomic.Int64
}

// discovery is what discover found: the sources and their targets, the
// organisation, and its own lines of the report.
type discovery struct {
	sources []*sourceImage
	byID    map[string]*sourceImage
	org     *orgView
	// lines are the rejected targets; skipped the images of the source
	// account that are not sources, copiesInSource the copies among them.
	lines          []report.Item
	skipped        []report.Skipped
	copiesInSource int
	// unmatched is what the request's scope asked for and found nothing
	// for (scope.go), nil when everything matched.
	unmatched *report.Unmatched
	// retired are the images that are no sources but whose copies
	// amicopier still looks after (lifecycle.go); ranks the builds'
	// places in their groups (source.keep_latest).
	retired     []*retiredSource
	retiredByID map[string]*retiredSource
	ranks       map[string]BuildRank
	// incomplete says some image's targets may be missing (a metadata
	// source failed, an OU could not be listed): a pair absent from this
	// run's targets may still be wanted, so no record is retired as no
	// longer wanted.
	incomplete bool
	// warm keeps what assuming the role in the accounts of "*" met while
	// the organisation was listed (orglisting.go).
	warm warmth
}

// observation is what observing the targets found.
type observation struct {
	// records holds the unsettled records by account and Region, as
	// read at the start (read-only after).
	records map[[2]string]map[state.PairKey]state.Pair

	mu sync.Mutex // guards what follows
	// marks say which account/Regions the run visited (factObserved,
	// whether or not their copies could be listed) and whose copies were
	// listed (factDescribed): only there does a missing copy mean it is
	// gone.
	marks zoneMarks
	// work holds each observed Region's work and lines (a Region with
	// neither is not kept: its ok pairs are only counted, in unlistedOK);
	// orphans the copies whose source was not discovered.
	work       []*regionWork
	unlistedOK int
	orphans    []orphanCandidate
}

func (o *observation) mark(f zoneFact, account, region string) {
	o.mu.Lock()
	o.marks.set(account, region, f)
	o.mu.Unlock()
}

func (o *observation) marked(f zoneFact, account, region string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.marks.has(account, region, f)
}

// wasDescribed reports whether the copies of account in region were
// listed this run.
func (o *observation) wasDescribed(account, region string) bool {
	return o.marked(factDescribed, account, region)
}

// sharingWork is the sharing of the run's images (share.go).
type sharingWork struct {
	// grants holds the grants records of every scope of the source
	// account by image; images the sharing work of each image with some;
	// grantedImages the images records name that discovery did not find;
	// dropped the images whose records go (the image is gone).
	grants        grantRecords
	images        map[string]*imageShare
	grantedImages map[string]cloud.Image
	dropped       []string

	mu sync.Mutex // guards what follows
	// keep marks the (image, account) whose grants a pair still needs.
	keep map[[2]string]bool
	// lines say, per image, what the run granted and took back.
	lines []report.ImageSharing
}

// sourceClients caches the source account's client of each Region.
type sourceClients struct {
	mu sync.Mutex
	m  map[string]cloud.EC2
}

// newRun starts the bookkeeping of one run (or check) of req.
func (e *Engine) newRun(req Request) (*run, error) {
	if err := req.Shard.Validate(); err != nil {
		return nil, fmt.Errorf("shard %s: %w", req.Shard, err)
	}
	r := &run{e: e, req: req, started: time.Now(), id: req.RunID, shard: req.Shard,
		scoped: len(req.OnlyImages) > 0 || len(req.OnlyAccounts) > 0, out: newTally()}
	r.sharing.keep = map[[2]string]bool{}
	r.srcClients.m = map[string]cloud.EC2{}
	r.policy = e.set.Pairs
	r.policy.Now = e.clock.Now()
	r.params = newParamRun(e.set.Publish)
	if r.policy.VisibilityGrace <= 0 {
		r.policy.VisibilityGrace = DefaultVisibilityGrace
	}
	if r.id == "" {
		r.id = NewRunID(r.policy.Now)
	}
	return r, nil
}

// Run performs one reconciliation (or, in ModePlan, one observation).
// It returns an error only when the run could not do its job at all (no
// lease, no state, no source listing); per-account failures are reported
// in the result with status "partial".
func (e *Engine) Run(ctx context.Context, req Request) (*Result, error) {
	if req.Mode != ModePlan && req.Mode != ModeRun {
		return nil, fmt.Errorf("unknown run mode %q (want %q or %q)", req.Mode, ModePlan, ModeRun)
	}
	r, err := e.newRun(req)
	if err != nil {
		return nil, err
	}
	r.watchStop(ctx)
	r.setDeadline()
	log := e.log.With("run_id", r.id, "mode", string(req.Mode))
	if req.Shard.Sharded() {
		log = log.With("shard", req.Shard.String())
	}

	// Reading the unsettled records first also proves the state store
	// works before anything in AWS is touched. The lease comes later,
	// once the plan shows there is something to change (lease.go).
	defer r.releaseLease()
	if err := r.loadRecords(ctx); err != nil {
		return r.stopOr(ctx, err)
	}
	if err := r.loadGrants(ctx); err != nil {
		return r.stopOr(ctx, err)
	}
	conn, err := e.connect(ctx, r.id)
	if err != nil {
		return r.stopOr(ctx, errorf(err, "connect to AWS"))
	}
	r.conn = conn
	log.Info("run started", "trigger", req.Trigger)

	if err := r.discover(ctx); err != nil {
		return r.stopOr(ctx, err)
	}
	r.found.unmatched = r.unmatched()
	if req.RequireScopeMatch && r.found.unmatched.Scoped() {
		return nil, &ScopeError{Unmatched: r.found.unmatched}
	}
	r.observeAll(ctx)
	r.findOrphans(ctx)
	r.planSuperseded(ctx) // lifecycle.go
	r.planShares(ctx)
	if req.Mode == ModePlan {
		r.kmsProblems(ctx) // check.go
	}
	if req.Mode == ModeRun && !r.hasChanges() {
		// Nothing to change but copies the cap defers: no lease, and the
		// report says they wait.
		r.deferTrimmed()
	}
	if req.Mode == ModeRun && r.hasChanges() {
		lctx, err := r.change(ctx, log)
		if err != nil {
			return r.stopOr(ctx, err)
		}
		ctx = lctx
	}
	res := r.finish(ctx)
	r.releaseLease()
	if req.Mode == ModeRun {
		res.Summary.StateWrites = int(r.out.writes.Load())
	}
	log.Info("run finished", "status", res.Summary.Status, "drift", res.Report.Drift(),
		"copies", r.out.counted("copy"), "duration", time.Since(r.started).Round(time.Millisecond))
	return res, nil
}

// setDeadline is when the run stops starting work: the request's
// deadline or the time budget, whichever comes first, less the margin.
func (r *run) setDeadline() {
	r.stop.deadline = r.req.Deadline
	if b := r.e.set.TimeBudget; b > 0 {
		if end := r.started.Add(b); r.stop.deadline.IsZero() || end.Before(r.stop.deadline) {
			r.stop.deadline = end
		}
	}
	if !r.stop.deadline.IsZero() {
		r.stop.deadline = r.stop.deadline.Add(-r.e.set.DeadlineMargin)
	}
}

// change makes the run's changes under the lease: it takes the lease,
// checks nobody changed the state meanwhile, shares and copies (sharing
// runs alongside the copies: each copy waits only for its own source to be
// shared), prunes orphaned and superseded copies, sets the copies'
// deprecation times and deletes leftover snapshots. It returns the lease's
// context, which finish records the run under.
func (r *run) change(ctx context.Context, log *slog.Logger) (context.Context, error) {
	ctx, err := r.takeLease(ctx, log)
	if err != nil {
		return nil, err
	}
	if err := r.checkFresh(ctx); err != nil {
		return nil, err
	}
	shared := r.share(ctx)
	r.apply(ctx)
	shared()
	r.prune(ctx)
	r.removeSuperseded(ctx) // lifecycle.go
	r.applyDeprecations(ctx)
	r.cleanLeftovers(ctx)
	r.applyParameters(ctx) // publish.go: after the copies
	return ctx, nil
}

// keepLease renews the lease every third of its lifetime; if the lease is
// lost, the run's context is cancelled (its cause wrapping
// state.ErrLeaseLost) so it stops starting work. A renewal that fails for
// another reason (the table throttled, the network) is tried again at the
// next tick, but only while the lease surely still runs: once its expiry
// is closer than a third of its lifetime, another run may take it over
// any moment, so this run stops as if it had lost it. Expiry is judged on
// the engine's clock, the clock the store dates leases by in every wiring.
func (r *run) keepLease(ctx context.Context, lease state.Lease, log interface{ Warn(string, ...any) }) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	ttl := r.e.set.LeaseTTL
	margin := ttl / 3
	tick, stopTick := r.e.ticker(max(ttl/3, time.Second))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer stopTick()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick:
				l, err := r.e.store.RenewLease(ctx, lease, ttl)
				if err == nil {
					r.out.writes.Add(1)
					lease = l
					continue
				}
				if errors.Is(err, state.ErrLeaseLost) {
					cancel(fmt.Errorf("renew the run lease of scope %s: %w", lease.Scope, err))
					return
				}
				if !r.e.clock.Now().Before(lease.Expires.Add(-margin)) {
					cancel(fmt.Errorf("the run lease of scope %s expires at %s and could not be renewed (%v): %w",
						lease.Scope, lease.Expires.UTC().Format(time.RFC3339), err, state.ErrLeaseLost))
					return
				}
				log.Warn("renew run lease; tried again at the next tick", "scope", lease.Scope,
					"expires", lease.Expires.UTC().Format(time.RFC3339), "error", err)
			}
		}
	}()
	return ctx, func() {
		close(done)
		wg.Wait()
		cancel(nil)
	}
}

func (r *run) loadRecords(ctx context.Context) error {
	recs, err := r.e.store.UnsettledPairs(ctx, r.e.set.SourceAccount)
	if err != nil {
		return errorf(err, "state store: read unsettled pairs of source %s", r.e.set.SourceAccount)
	}
	r.seen.records = map[[2]string]map[state.PairKey]state.Pair{}
	for _, p := range recs {
		if !r.shard.Contains(p.Key.Account) {
			continue // another shard's pair
		}
		k := [2]string{p.Key.Account, p.Key.Region}
		if r.seen.records[k] == nil {
			r.seen.records[k] = map[state.PairKey]state.Pair{}
		}
		r.seen.records[k][p.Key] = p
	}
	return nil
}

// recordTimeout bounds a state write the run makes after its context is
// done (the answer of a call cut off, the run record): long enough for a
// slow table, short enough that a stopped run stops.
const recordTimeout = 10 * time.Second

// fail records an error of the run (which makes it partial): what was
// being done, and the error; it is logged at once in full.
func (r *run) fail(scope string, err error) {
	if r.cutOff(err) {
		// The caller stopped the run: not a failure (interrupt.go).
		r.noteCutOff(1)
		return
	}
	e := runError{scope: scope, err: err}
	r.out.fail(e)
	r.e.log.Warn(e.String(), "run_id", r.id)
}

func (r *run) count(action string, n int) { r.out.count(action, n) }

func (r *run) outOfTime() bool {
	return !r.stop.deadline.IsZero() && time.Now().After(r.stop.deadline)
}

// recategorize moves a pair's line to another category, with a new reason.
func (pw *pairWork) recategorize(to report.Category, reason string) {
	pw.item.Category, pw.item.Reason = to, reason
}

func (r *run) sourceClient(ctx context.Context, region string) (cloud.EC2, error) {
	cs := &r.srcClients
	cs.mu.Lock()
	c, ok := cs.m[region]
	cs.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := r.conn.Source(ctx, region)
	if err != nil {
		return nil, errorf(err, "source account %s in %s", r.e.set.SourceAccount, region)
	}
	cs.mu.Lock()
	cs.m[region] = c
	cs.mu.Unlock()
	return c, nil
}

// parallel runs fn for each index in [0,n) on at most limit goroutines
// and waits for all of them.
func parallel(ctx context.Context, n, limit int, fn func(ctx context.Context, i int)) {
	if n == 0 {
		return
	}
	limit = max(1, min(limit, n))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				fn(ctx, i)
			}
		}()
	}
	wg.Wait()
}

// buildReport makes the run's report, once, from what each phase kept:
// discovery's lines, each Region's lines and pairs, the orphaned copies,
// the sharing; it counts every category and sorts.
func (r *run) buildReport() *report.Report {
	rep := report.New(string(r.req.Mode), r.e.set.SourceAccount, r.e.set.SourceRegions, r.policy.Now)
	rep.IncludesOK = r.req.IncludeOK
	rep.Scope = report.Scope{Images: slices.Clone(r.req.OnlyImages), Accounts: slices.Clone(r.req.OnlyAccounts), Shard: r.req.Shard.String()}
	if r.found.org != nil {
		r.describeInventory(rep)
	}
	rep.Skipped, rep.CopiesInSource = r.found.skipped, r.found.copiesInSource
	rep.Unmatched = r.found.unmatched
	add := func(it report.Item) {
		rep.Pairs++
		rep.Counts[it.Category]++
		if it.Category != report.OK || r.req.IncludeOK {
			rep.Items = append(rep.Items, it)
		}
	}
	for _, it := range r.found.lines {
		add(it)
	}
	rep.Pairs += r.seen.unlistedOK
	rep.Counts[report.OK] += r.seen.unlistedOK
	for _, rw := range r.seen.work {
		rep.Pairs += rw.unlistedOK
		rep.Counts[report.OK] += rw.unlistedOK
		for _, it := range rw.lines {
			add(it)
		}
		for _, pw := range rw.pairs {
			if pw.reported {
				add(pw.item)
			}
		}
	}
	for _, pw := range r.pruneWork {
		add(pw.item)
	}
	for _, sw := range r.life.superseded {
		add(sw.item)
	}
	if r.found.org != nil {
		r.describeSuperseded(rep)
		r.describeItemAccounts(rep)
	}
	rep.Sharing = r.sharing.lines
	rep.Deprecations = r.life.deprecationLines()
	r.reportParameters(rep) // publish.go
	rep.Sort()
	return rep
}

func (r *run) finish(ctx context.Context) *Result {
	rep := r.buildReport()
	calls := map[string]int64{}
	var throttled, surfaced int64
	if cc, ok := r.conn.(cloud.CallCounter); ok {
		calls = cc.CallCounts()
		throttled, surfaced = cc.Throttles()
	}
	var mutating int64
	for op, n := range calls {
		if cloud.IsMutating(op) {
			mutating += n
		}
	}
	errs, nerrs := r.out.errorList()
	r.out.mu.Lock()
	status := report.StatusSucceeded
	if r.out.partial {
		status = report.StatusPartial
	}
	actions := maps.Clone(r.out.actions)
	r.out.mu.Unlock()
	if cause := context.Cause(ctx); cause != nil && errors.Is(cause, state.ErrLeaseLost) {
		status = report.StatusFailed
		errs = append(errs, "run stopped: "+cause.Error())
		nerrs++
	}
	if line, ok := r.interruption(ctx); ok {
		status = report.StatusInterrupted
		errs = append(errs, line)
		nerrs++
	}
	sum := &report.Summary{
		RunID: r.id, Trigger: r.req.Trigger, Mode: string(r.req.Mode), Status: status,
		Started: r.started.UTC(), Finished: time.Now().UTC(),
		Actions: actions, APICalls: calls, MutatingCalls: mutating,
		Counts: maps.Clone(rep.Counts), Errors: errs, ErrorCount: nerrs,
		ThrottledCalls: throttled, ThrottleErrors: surfaced,
	}
	sum.DurationSeconds = sum.Finished.Sub(sum.Started).Seconds()
	sum.Unreachable, sum.UnreachableCount = report.UnreachableAccounts(rep, report.MaxUnreachable)
	r.publishEvents(ctx, rep, sum) // events.go: may add errors
	if r.req.Mode == ModeRun {
		rec := state.Run{
			ID: r.id, Scope: r.e.Scope(), Trigger: r.req.Trigger, Shard: r.shard.String(), Mode: string(r.req.Mode), Status: sum.Status,
			Started: r.policy.Now, Finished: r.e.clock.Now(), Actions: sum.Actions, Errors: slices.Clone(sum.Errors),
			Counts:      make(map[string]int, len(sum.Counts)),
			Unreachable: recordUnreachable(sum.Unreachable), UnreachableCount: sum.UnreachableCount,
		}
		for c, n := range sum.Counts {
			rec.Counts[string(c)] = n
		}
		if ret := r.e.set.RunRetention; ret > 0 {
			rec.ExpiresAt = rec.Finished.Add(ret)
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if err := r.e.store.PutRun(wctx, rec); err != nil {
			sum.Errors = append(sum.Errors, fmt.Sprintf("record run %s: %v", r.id, err))
			sum.ErrorCount++
			if sum.Status == report.StatusSucceeded {
				sum.Status = report.StatusPartial
			}
		} else {
			r.out.writes.Add(1)
			return &Result{Report: rep, Summary: sum, Record: &rec, Started: r.startedCopies()}
		}
	}
	return &Result{Report: rep, Summary: sum, Started: r.startedCopies()}
}

func (r *run) startedCopies() []StartedCopy {
	r.out.mu.Lock()
	defer r.out.mu.Unlock()
	return slices.Clone(r.out.started)
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := slices.Collect(maps.Keys(m))
	slices.Sort(keys)
	return keys
}
