package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// discover lists the source AMIs of every configured Region, reads the
// organisation, and resolves each image's targets. A run scoped to images
// (an event, --only-ami) reads the organisation only as far as their
// metadata names it (partialOrg), unless it names "*".
func (r *run) discover(ctx context.Context) error {
	partial := len(r.req.OnlyImages) > 0 && !r.req.IncludeOK
	var listing *orgListing
	if !partial {
		listing = r.startOrgListing(ctx)
	}
	found, err := r.listSources(ctx)
	if err != nil {
		if listing != nil {
			err = errors.Join(err, listing.finish(ctx, r, false))
		}
		return err
	}
	r.found.byID = map[string]*sourceImage{}
	r.rankBuilds(found) // lifecycle.go
	cands := r.candidates(ctx, found)
	if listing != nil {
		// A run narrowed to accounts has few to warm, and a strict one
		// must not touch them before its scope is checked.
		err = listing.finish(ctx, r, targetsWhole(cands) && len(r.req.OnlyAccounts) == 0)
	} else {
		err = r.readOrgFor(ctx, cands)
	}
	if err != nil {
		return err
	}
	opt := r.resolveOptions()
	// Images with the same target metadata resolve once and share one
	// target set: with "*" on every image, that is one account list for
	// all of them instead of one per image (memory grows with accounts
	// plus images, not their product).
	resolved := map[string]targetSet{}
	for _, c := range cands {
		key := specKey(c.specs, c.src.img.Region)
		ts, ok := resolved[key]
		if !ok {
			ts = r.found.org.resolve(ctx, c.specs, c.src.img.Region, opt)
			resolved[key] = ts
		}
		c.src.targets = ts
		if c.retired {
			r.retire(c.src)
			continue
		}
		r.found.byID[c.src.img.ID] = c.src
		r.found.sources = append(r.found.sources, c.src)
	}
	slices.SortFunc(r.found.sources, func(a, b *sourceImage) int {
		if a.img.Region != b.img.Region {
			return strings.Compare(a.img.Region, b.img.Region)
		}
		return strings.Compare(a.img.ID, b.img.ID)
	})
	r.reportRejected()
	return nil
}

// candidate is a discovered image that is a source or retired, with its
// target metadata, before the organisation resolves it.
type candidate struct {
	src     *sourceImage
	specs   []cloud.TargetSpec
	retired bool
}

// candidates keeps the images of found in scope that are sources or
// retired ones, each once, with their target metadata.
func (r *run) candidates(ctx context.Context, found [][]cloud.Image) []candidate {
	var out []candidate
	seen := map[string]bool{}
	for _, imgs := range found {
		for _, img := range imgs {
			if seen[img.ID] || !r.inScope(&img) {
				continue
			}
			source, retired := r.isSource(&img)
			if !source && !retired {
				continue
			}
			seen[img.ID] = true
			src := &sourceImage{img: img}
			specs, err := r.targetSpecs(ctx, &src.img)
			if err != nil {
				r.fail(fmt.Sprintf("read target metadata of %s", img.ID), err)
				// A retired image's targets only say where its copies
				// are looked after: no pair depends on them.
				r.found.incomplete = r.found.incomplete || source
			}
			out = append(out, candidate{src: src, specs: specs, retired: retired})
		}
	}
	return out
}

// readOrgFor reads the organisation for a run scoped to images: the
// whole of it when some image's metadata names "*" (every member is a
// target), else only the accounts and OUs the metadata names.
func (r *run) readOrgFor(ctx context.Context, cands []candidate) error {
	org, err := r.conn.Organization(ctx)
	if err != nil {
		return errorf(err, "read the organisation")
	}
	var refs []cloud.TargetRef
	for _, c := range cands {
		for _, s := range c.specs {
			for _, ref := range s.Refs {
				if ref.Kind == cloud.TargetOrganization {
					if r.found.org, err = loadOrg(ctx, org, nil); err != nil {
						return errorf(err, "read the organisation")
					}
					return nil
				}
				if ref.ID != r.e.set.SourceAccount {
					refs = append(refs, ref)
				}
			}
		}
	}
	for _, id := range r.req.OnlyAccounts {
		// Looked up too, so the report can say why one matched nothing.
		refs = append(refs, cloud.TargetRef{Kind: cloud.TargetAccount, ID: id})
	}
	r.found.org = partialOrg(ctx, org, refs, r.e.set.Concurrency)
	return nil
}

// listSources lists the source images of every source Region, all at
// once.
func (r *run) listSources(ctx context.Context) ([][]cloud.Image, error) {
	set := &r.e.set
	regions := set.SourceRegions
	found := make([][]cloud.Image, len(regions))
	errs := make([]error, len(regions))
	var wg sync.WaitGroup
	for i, region := range regions {
		wg.Go(func() {
			c, err := r.sourceClient(ctx, region)
			if err != nil {
				errs[i] = err
				return
			}
			q := cloud.ImageQuery{States: []cloud.ImageState{cloud.ImageAvailable}, Tags: set.SourceFilters, ImageIDs: r.sourceQueryIDs()}
			found[i], err = c.DescribeImages(ctx, q)
			if err != nil {
				errs[i] = errorf(err, "discover source images of account %s in %s", set.SourceAccount, region)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return found, nil
}

// resolveOptions narrows resolution to the run's scope and exclusions.
func (r *run) resolveOptions() resolveOptions {
	set := &r.e.set
	opt := resolveOptions{source: set.SourceAccount, regions: set.TargetRegions, exclude: map[string]bool{}, shard: r.shard,
		cutShort: func(err error) bool {
			if !r.cutOff(err) {
				return false
			}
			r.noteCutOff(1)
			return true
		}}
	for _, a := range set.ExcludeAccounts {
		opt.exclude[a] = true
	}
	if len(r.req.OnlyAccounts) > 0 {
		opt.onlyAccounts = map[string]bool{}
		for _, a := range r.req.OnlyAccounts {
			opt.onlyAccounts[a] = true
		}
	}
	return opt
}

// isSource tells whether an image the source account owns is a source. A
// copy is not. Nor (noted for the report) is a build source.keep_latest
// no longer keeps, or, unless configured, a deprecated AMI: those are
// retired, and their copies still follow them (lifecycle.go).
func (r *run) isSource(img *cloud.Image) (source, retired bool) {
	if IsCopy(img) {
		// A copy in the source account (AMIgo's, another tool's, an
		// earlier amicopier's) is never a source: copying it would breed a
		// generation of copies every run.
		r.found.copiesInSource++
		return false, false
	}
	if r.superseded(img) {
		return false, true
	}
	if dt := img.DeprecationTime; !r.e.set.IncludeDeprecated && !dt.IsZero() && !dt.After(r.policy.Now) {
		// Its owner still sees a deprecated AMI (DescribeImages lists them
		// all to the owner, whatever IncludeDeprecated says): without
		// this, every new account would get copies of every retired
		// golden AMI.
		r.found.skipped = append(r.found.skipped, report.Skipped{ID: img.ID, Name: img.Name, Region: img.Region,
			Reason: "deprecated since " + dt.UTC().Format(time.RFC3339) + " (source.include_deprecated is false)"})
		return false, true
	}
	return true, false
}

// reportRejected makes the report's lines of the targets resolution
// rejected; one that could not be checked (an OU the organisation would
// not list) is unreachable and leaves discovery incomplete.
func (r *run) reportRejected() {
	for _, src := range r.found.sources {
		if src.targets.CutShort {
			r.found.incomplete = true // no revocation, no orphan, as for an unreachable OU
		}
		for _, rej := range src.targets.Rejected {
			cat := report.RejectedTarget
			if rej.Unreachable {
				cat = report.Unreachable
				r.found.incomplete = true
				r.out.markPartial()
			}
			r.found.lines = append(r.found.lines, report.Item{
				SourceImage: src.img.ID, SourceName: src.img.Name, SourceRegion: src.img.Region,
				Account: rej.Target, AccountName: r.accountName(rej.Target), Region: src.img.Region,
				Category: cat, Reason: rej.Reason, Action: "none",
			})
		}
	}
}

func (r *run) targetSpecs(ctx context.Context, img *cloud.Image) ([]cloud.TargetSpec, error) {
	specs := make([]cloud.TargetSpec, 0, len(r.e.sources)+1)
	var firstErr error
	for _, s := range r.e.sources {
		spec, err := s.Targets(ctx, img)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		specs = append(specs, spec)
	}
	if len(r.req.ExtraTargets) > 0 {
		specs = append(specs, cloud.TargetSpec{Refs: r.req.ExtraTargets})
	}
	return specs, firstErr
}

func (r *run) accountName(id string) string {
	if a, ok := r.found.org.accounts[id]; ok {
		return a.Name
	}
	return ""
}

// describeInventory lists the sources and accounts in the report.
func (r *run) describeInventory(rep *report.Report) {
	seen := map[string]bool{}
	addAccount := func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		a := r.found.org.accounts[id]
		rep.Accounts = append(rep.Accounts, report.Account{ID: id, Name: a.Name, State: string(a.State), OU: r.found.org.accountOU(id)})
	}
	// Images resolved from the same metadata share one target set
	// (discover); list each set once.
	seenSet := map[*string]bool{}
	for _, src := range r.found.sources {
		rep.Sources = append(rep.Sources, report.Source{
			ID: src.img.ID, Name: src.img.Name, Region: src.img.Region, Recipe: src.img.Tags["Recipe"],
			Created: src.img.CreationDate, Targets: len(src.targets.Accounts) * len(src.targets.Regions),
		})
		if len(src.targets.Accounts) > 0 && seenSet[&src.targets.Accounts[0]] {
			continue // a target set shared with an image already listed
		}
		for _, id := range src.targets.Accounts {
			addAccount(id)
		}
		if len(src.targets.Accounts) > 0 {
			seenSet[&src.targets.Accounts[0]] = true
		}
	}
	for _, src := range r.found.sources {
		for _, rej := range src.targets.Rejected {
			if _, member := r.found.org.accounts[rej.Target]; member {
				addAccount(rej.Target)
			}
		}
	}
}

// observeAll observes every target account, a bounded number at a time,
// and plans each of its pairs. Each account's images are gathered when its
// turn comes, from the few distinct target sets, and dropped once it is
// planned: nothing the size of accounts x images is ever held.
func (r *run) observeAll(ctx context.Context) {
	groups := r.targetGroups()
	set := map[string]bool{}
	for _, g := range groups {
		for _, a := range g.accounts {
			set[a] = true
		}
	}
	// With pruning on, copies may outlive every pair of an account: look
	// at every ACTIVE account and Region, not just today's targets.
	var sweep []string
	if r.e.set.Prune.Enabled && !r.scoped {
		sweep = r.sweepRegions()
		for _, a := range r.found.org.active {
			if r.shard.Contains(a) {
				set[a] = true
			}
		}
	}
	r.retiredAccounts(set) // their copies follow them (lifecycle.go)
	accounts := sortedKeys(set)
	r.e.progress.Phase("observe", len(accounts))
	parallel(ctx, len(accounts), r.e.set.Concurrency, func(ctx context.Context, i int) {
		r.observeAccount(ctx, accounts[i], groups.regionsOf(accounts[i], r.found.sources), sweep)
		r.e.progress.Step(1)
	})
	if ctx.Err() != nil {
		// A stop by the caller is the summary's to report (interrupt.go).
		if r.stopped() == nil {
			r.fail("observation interrupted", context.Cause(ctx))
		}
		return
	}
	if !r.scoped && !r.found.incomplete {
		r.settleUntargeted()
	}
	r.planParameters(ctx) // publish.go: the parameters read with the Regions
}

// settleUntargeted retires unsettled records of accounts and Regions no
// source targets any more (nothing else would ever visit them). An
// account/Region the run visited but could not observe is not among them.
func (r *run) settleUntargeted() {
	for _, k := range sortedKeys2(r.seen.records) {
		if r.seen.marked(factObserved, k[0], k[1]) {
			continue
		}
		rw := &regionWork{account: k[0], region: k[1]}
		r.noteStale(r.seen.records[k], nil, nil, rw)
		for _, rec := range r.seen.records[k] {
			if rec.Status == state.PairOrphaned || rec.Status == state.PairSuperseded {
				// Every ACTIVE account is observed while pruning is on:
				// this one left, or pruning was turned off.
				rw.pairs = append(rw.pairs, retire(rec, "NotObserved", "the account and Region are no longer observed"))
			}
		}
		if len(rw.pairs) > 0 {
			r.seen.work = append(r.seen.work, rw)
		}
	}
}

// sweepRegions is every Region a copy could be in: the source Regions,
// the configured extra Regions and every image's target Regions.
func (r *run) sweepRegions() []string {
	set := map[string]bool{}
	for _, reg := range r.e.set.SourceRegions {
		set[reg] = true
	}
	for _, reg := range r.e.set.TargetRegions {
		set[reg] = true
	}
	for _, src := range r.found.sources {
		for _, reg := range src.targets.Regions {
			set[reg] = true
		}
	}
	return sortedKeys(set)
}

// observeAccount observes each Region of account: those its sources
// target (byRegion, which it must not change), those pruning sweeps and
// those a retired source targets (lifecycle.go).
func (r *run) observeAccount(ctx context.Context, account string, byRegion map[string][]*sourceImage, sweep []string) {
	regions := make([]string, 0, len(byRegion)+len(sweep))
	for region := range byRegion {
		regions = append(regions, region)
	}
	regions = append(regions, sweep...)
	regions = append(regions, r.retiredRegions(account)...)
	slices.Sort(regions)
	for _, region := range slices.Compact(regions) {
		r.observeRegion(ctx, account, region, byRegion[region])
	}
}

func (r *run) markObserved(account, region string) {
	r.seen.mark(factObserved, account, region)
}

// regionUnreachable reports every pair of an account and Region that
// could not be observed.
func (r *run) regionUnreachable(rw *regionWork, srcs []*sourceImage, err error) {
	account, region := rw.account, rw.region
	if r.cutOff(err) {
		// Not observed because the caller stopped the run: not
		// unreachable, and not reported as anything (interrupt.go).
		r.noteCutOff(1)
		return
	}
	r.out.markPartial()
	reason := fmt.Sprintf("account %s in %s cannot be observed: %v", account, region, err)
	if cloud.ClassOf(err) == cloud.ClassAccessDenied {
		reason = fmt.Sprintf("cannot work in account %s (%s): %v; check the copier role and its trust policy", account, region, err)
	}
	for _, src := range srcs {
		rw.lines = append(rw.lines, r.item(src, account, region, report.Unreachable, reason, nil))
	}
	r.e.log.Warn("account unreachable", "run_id", r.id, "account", account, "region", region, "error", err)
}

func (r *run) observeRegion(ctx context.Context, account, region string, srcs []*sourceImage) {
	r.markObserved(account, region)
	rw := &regionWork{account: account, region: region}
	defer r.addWork(rw)
	// The first Target call of an account assumes the role (one session
	// per account, reused in every Region).
	client, err := r.target(ctx, account, region)
	if err != nil {
		r.regionUnreachable(rw, srcs, err)
		return
	}
	copies, err := client.DescribeImages(ctx, r.copiesQuery(srcs))
	if err != nil {
		r.regionUnreachable(rw, srcs, err)
		return
	}
	r.seen.mark(factDescribed, account, region)
	r.learnSnapshotKeys(ctx, account, region, client, copies)
	bySource := indexCopies(copies)
	inFlight := 0
	for i := range copies {
		if copies[i].State == cloud.ImagePending {
			inFlight++
		}
	}
	records := r.seen.records[[2]string{account, region}]
	rw.client, rw.inFlight = client, inFlight
	z := zoneRef{account: account, region: region, client: client}
	var deps []*deprecationWork
	for _, src := range srcs {
		key := state.PairKey{SourceImage: src.img.ID, Account: account, Region: region}
		var rec *state.Pair
		if p, found := records[key]; found {
			stored := p // only a remembered pair costs an allocation
			rec = &stored
		}
		cs := bySource.of(src.img.ID)
		r.planPair(rw, src, key, cs, rec)
		deps = r.noteDeprecations(deps, z, &src.img, cs) // lifecycle.go
	}
	sortPairs(rw.pairs) // once: trimDeferred, share and applyAll follow this order
	r.trimDeferred(rw)
	var unwanted map[string][]cloud.Image
	var superseded map[string]bool
	if !r.scoped || len(r.found.retired) > 0 {
		unwanted = bySource.unwanted()
		superseded, deps = r.noteRetired(z, unwanted, bySource, deps)
	}
	r.life.add(deps, nil)
	if !r.scoped {
		// Built only when there are records to check: a steady-state
		// Region has none, and thousands of them must not cost a set each.
		var wanted map[string]bool
		if len(records) > 0 {
			wanted = make(map[string]bool, len(srcs))
			for _, src := range srcs {
				wanted[src.img.ID] = true
			}
		}
		orphanSources := r.noteOrphans(account, region, client, unwanted, wanted)
		for from := range superseded {
			if orphanSources == nil {
				orphanSources = map[string]bool{}
			}
			orphanSources[from] = true // the superseded pairs are lifecycle.go's
		}
		if !r.found.incomplete {
			r.noteStale(records, wanted, orphanSources, rw)
		}
	}
	r.observeParameters(ctx, account, region, srcs, copies) // publish.go
}

// maxScopedSources is the most source ids a run scoped to images puts in
// the describe of a target's copies (one tag value each, well within the
// cloud.MaxFilterValues one EC2 describe takes); beyond, it lists every
// copy.
const maxScopedSources = cloud.MaxFilterValues / 2

// copiesQuery is the describe of a target Region's copies: every image
// carrying amicopier's CopiedFromAMI tag, or, in a run scoped to images
// (an event, --only-ami), only the copies of those images (retired ones
// included: their copies are looked after too), so an event costs the
// copies it names. Such a run sees no other copy: it judges no orphan and
// retires no record (it is scoped), and the in-flight cap counts only its
// own images' pending copies, so it may start its one copy per image
// where other copies are pending; EC2's own quota of concurrent copies
// (ResourceLimitExceeded) defers it then. With publishing on, it lists
// every copy: the parameter it reads may name a copy of another build.
func (r *run) copiesQuery(srcs []*sourceImage) cloud.ImageQuery {
	every := cloud.ImageQuery{TagKeys: []string{TagCopiedFrom}}
	if len(r.req.OnlyImages) == 0 || r.params != nil {
		return every
	}
	ids := make([]string, 0, len(srcs)+len(r.found.retired))
	for _, src := range srcs {
		ids = append(ids, src.img.ID)
	}
	for _, rs := range r.found.retired {
		ids = append(ids, rs.img.ID)
	}
	if len(ids) == 0 || len(ids) > maxScopedSources {
		return every
	}
	return cloud.ImageQuery{Tags: map[string][]string{TagCopiedFrom: ids}}
}

// addWork keeps an observed Region's work and lines for the apply and
// the report; a Region with neither is dropped, its ok pairs counted
// (a no-op run at 10,000 accounts keeps nothing per Region).
func (r *run) addWork(rw *regionWork) {
	r.seen.mu.Lock()
	defer r.seen.mu.Unlock()
	if len(rw.pairs) == 0 && len(rw.lines) == 0 {
		r.seen.unlistedOK += rw.unlistedOK
		return
	}
	r.seen.work = append(r.seen.work, rw)
}

// learnSnapshotKeys fills in the KMS keys of the snapshots of copies made
// by other tools, when a key id or ARN is configured: DescribeImages does
// not report keys, DescribeSnapshots does. amicopier's own copies record
// the key they were made with, so a steady-state Region of its copies
// costs no call here. Keys that cannot be read stay unknown, and such
// copies get the benefit of the doubt.
func (r *run) learnSnapshotKeys(ctx context.Context, account, region string, client cloud.EC2, copies []cloud.Image) {
	want := r.e.set.Keys.For(account, region)
	var ids []string
	for i := range copies {
		if needsSnapshotKeys(&copies[i], want) {
			ids = append(ids, copies[i].SnapshotIDs()...)
		}
	}
	if len(ids) == 0 {
		return
	}
	keys, err := client.SnapshotKeys(ctx, ids)
	if err != nil {
		r.fail(fmt.Sprintf("read the KMS keys of copies made by other tools in %s/%s (they are not judged by key this run)", account, region), err)
		return
	}
	for i := range copies {
		for j := range copies[i].BlockDevices {
			bd := &copies[i].BlockDevices[j]
			if k, ok := keys[bd.SnapshotID]; ok && bd.KMSKeyID == "" {
				bd.KMSKeyID = k
			}
		}
	}
}

// planPair plans one pair of rw: its work (in rw.pairs) when there is
// any, else its line in the report (rw.lines; an ok pair the report does
// not list is only counted). A copy started but not listed yet counts in
// rw.inFlight (it holds a slot of the in-flight cap).
func (r *run) planPair(rw *regionWork, src *sourceImage, key state.PairKey, copies []cloud.Image, rec *state.Pair) {
	wantKey := r.e.set.Keys.For(key.Account, key.Region)
	// The common case, one good copy and nothing remembered, needs no
	// copy request: skip rendering it (a no-op run plans every pair).
	if rec == nil && len(copies) == 1 {
		if cls, _ := classifyCopy(&copies[0], wantKey); cls == copyGood {
			if !r.req.IncludeOK {
				rw.unlistedOK++ // listed nowhere: build no item
				return
			}
			rw.lines = append(rw.lines, r.item(src, key.Account, key.Region, report.OK, "encrypted copy "+copies[0].ID+" is available", copies))
			return
		}
	}
	plan, err := r.e.shaper.shape(&src.img, key.Account, key.Region)
	if err != nil {
		r.fail(fmt.Sprintf("pair %s", key), err)
		rw.lines = append(rw.lines, r.item(src, key.Account, key.Region, report.Missing, "cannot shape the copy: "+err.Error(), copies))
		return
	}
	dec := PlanPair(PairFacts{
		Key: key, Copies: copies, Record: rec, WantKey: wantKey,
		Fingerprint: plan.Fingerprint, Source: r.e.set.SourceAccount,
	}, r.policy)
	if dec.Unlisted {
		rw.inFlight++
	}
	switch dec.Category {
	case report.InProgress, report.Missing, report.Failed:
		// A copy in flight or still to make: the source's grants stay.
		r.sharing.mu.Lock()
		r.sharing.keep[[2]string{src.img.ID, key.Account}] = true
		r.sharing.mu.Unlock()
	}
	it := r.item(src, key.Account, key.Region, dec.Category, dec.Reason, nil)
	it.CopyImages, it.Action, it.Attempts, it.LastError = dec.CopyImages, dec.Action(), dec.Attempts, dec.LastError
	it.Copies = copyInventory(copies)
	if !dec.Copy && len(dec.Deregister) == 0 && dec.Record == nil {
		rw.addLine(it, r.req.IncludeOK)
		return
	}
	rw.pairs = append(rw.pairs, &pairWork{src: src, key: key, dec: dec, plan: plan, stored: rec, item: it, reported: true})
}

func (r *run) item(src *sourceImage, account, region string, cat report.Category, reason string, copies []cloud.Image) report.Item {
	return report.Item{
		SourceImage: src.img.ID, SourceName: src.img.Name, SourceRegion: src.img.Region,
		Account: account, AccountName: r.accountName(account), Region: region,
		Category: cat, Reason: reason, CopyImages: imageIDs(copies), Copies: copyInventory(copies), Action: "none",
	}
}

// noteOrphans keeps copies made by amicopier for this source account
// whose source the run did not discover, and returns their sources.
func (r *run) noteOrphans(account, region string, client cloud.EC2, bySource map[string][]cloud.Image, wanted map[string]bool) (sources map[string]bool) {
	var found []orphanCandidate
	for from, copies := range bySource {
		if wanted[from] || r.found.byID[from] != nil || r.found.retiredByID[from] != nil {
			// A retired source exists: its copies are no orphans, and
			// its pairs' records are noteStale's.
			continue
		}
		for i := range copies {
			c := &copies[i]
			if !Managed(c) || c.Tags[TagSourceAccount] != r.e.set.SourceAccount {
				continue
			}
			found = append(found, orphanCandidate{
				account: account, region: region, client: client, copyID: c.ID, snapshotIDs: c.SnapshotIDs(),
				sourceID: from, sourceRegion: c.Tags[TagSourceRegion],
			})
			if sources == nil {
				sources = map[string]bool{}
			}
			sources[from] = true
		}
	}
	if len(found) > 0 {
		r.seen.mu.Lock()
		r.seen.orphans = append(r.seen.orphans, found...)
		r.seen.mu.Unlock()
	}
	return sources
}

// noteStale retires unsettled records of pairs no longer wanted (the
// source is gone or no longer targets the account), so they leave the
// unsettled index instead of being read by every run forever. A pair
// whose source left an amicopier copy behind (orphanSources) is the prune
// step's (prune.go).
func (r *run) noteStale(records map[state.PairKey]state.Pair, wanted, orphanSources map[string]bool, rw *regionWork) {
	for key, rec := range records {
		if wanted[key.SourceImage] || rec.Status == state.PairOrphaned || orphanSources[key.SourceImage] {
			continue
		}
		rw.pairs = append(rw.pairs, retire(rec, "NoLongerTargeted",
			"the pair is no longer wanted: its source is gone or no longer targets this account and Region"))
	}
}

// retire is the work that settles an unsettled record for good (Retire).
func retire(rec state.Pair, code, msg string) *pairWork {
	next := Retire(rec, code, msg)
	return &pairWork{key: rec.Key, dec: PairDecision{Record: &next}, stored: &rec}
}
