package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// The lifecycle of the copies beyond copying (lifecycle_planner.go
// decides): a copy follows its source's deprecation time, and the copies
// of builds source.keep_latest no longer keeps are superseded and, under
// the prune policy, removed. This file keeps what observation found of
// both and carries out the decisions.

// retiredSource is an image of the source account that is no source any
// more but whose copies amicopier still looks after: a superseded build,
// or a deprecated AMI (unless source.include_deprecated). Its targets are
// resolved so that the accounts and Regions its copies are in are
// observed.
type retiredSource struct {
	sourceImage
	superseded bool
	rank       BuildRank
}

// zoneRef is one account and Region and its client.
type zoneRef struct {
	account, region string
	client          cloud.EC2
}

// deprecationWork is one copy whose deprecation time is to change.
type deprecationWork struct {
	zone zoneRef
	dec  DeprecationDecision
	line report.Deprecation
}

// supersededCandidate is one pair's copies of a superseded build, as
// observed.
type supersededCandidate struct {
	zone   zoneRef
	key    state.PairKey
	src    *retiredSource
	copies []cloud.Image
	// newer is a good copy of a build the group keeps in the same
	// account and Region ("" none).
	newer string
}

// supersededWork is a candidate and what the run decided about it.
type supersededWork struct {
	c      supersededCandidate
	dec    SupersededDecision
	stored *state.Pair
	item   report.Item
}

// lifecycle is the run's part of the copies' lifecycle.
type lifecycle struct {
	mu           sync.Mutex // guards deprecations and candidates while observing
	deprecations []*deprecationWork
	candidates   []supersededCandidate
	// superseded is planned after observation (planSuperseded) and read
	// only after.
	superseded []*supersededWork
	// removed holds the copies the run deregistered (their deprecation
	// no longer matters).
	removed map[string]bool
}

func (l *lifecycle) add(deps []*deprecationWork, cands []supersededCandidate) {
	if len(deps) == 0 && len(cands) == 0 {
		return
	}
	l.mu.Lock()
	l.deprecations = append(l.deprecations, deps...)
	l.candidates = append(l.candidates, cands...)
	l.mu.Unlock()
}

// hasChanges reports whether the run changes a deprecation time, removes
// a superseded copy or writes a superseded pair's record.
func (l *lifecycle) hasChanges() bool {
	for _, d := range l.deprecations {
		if d.dec.Changes() {
			return true
		}
	}
	for _, sw := range l.superseded {
		if sw.dec.Prune || sw.dec.Record != nil {
			return true
		}
	}
	return false
}

// inScope reports whether a listed image is within the run's --only-ami
// scope. With keep_latest the listing is not narrowed to the scope (a
// build's rank depends on its whole group), so the scope applies here.
func (r *run) inScope(img *cloud.Image) bool {
	return len(r.req.OnlyImages) == 0 || slices.Contains(r.req.OnlyImages, img.ID)
}

// sourceQueryIDs is the image ids the source listing is narrowed to.
func (r *run) sourceQueryIDs() []string {
	if r.e.set.KeepLatest.Count > 0 {
		return nil
	}
	return r.req.OnlyImages
}

// rankBuilds ranks every build the source listing found
// (source.keep_latest); copies are no builds.
func (r *run) rankBuilds(found [][]cloud.Image) {
	if r.e.set.KeepLatest.Count < 1 {
		return
	}
	var builds []cloud.Image
	for _, imgs := range found {
		for i := range imgs {
			if !IsCopy(&imgs[i]) {
				builds = append(builds, imgs[i])
			}
		}
	}
	r.found.ranks = RankBuilds(builds, r.e.set.KeepLatest)
}

// superseded reports whether keep_latest no longer keeps img, noting it
// for the report.
func (r *run) superseded(img *cloud.Image) bool {
	rank, ok := r.found.ranks[img.ID]
	if !ok || !rank.Superseded() {
		return false
	}
	r.found.skipped = append(r.found.skipped, report.Skipped{ID: img.ID, Name: img.Name, Region: img.Region,
		Reason: fmt.Sprintf("superseded: build %d of %d of %s=%s in %s, and source.keep_latest keeps the %d newest (%s)",
			rank.Rank, rank.Of, r.e.set.KeepLatest.GroupBy, rank.Group, img.Region, len(rank.Kept), strings.Join(rank.Kept, ", "))})
	return true
}

// retire keeps a discovered image that is no source for the care of its
// copies.
func (r *run) retire(src *sourceImage) {
	rs := &retiredSource{sourceImage: *src, rank: r.found.ranks[src.img.ID]}
	rs.superseded = rs.rank.Superseded()
	if r.found.retiredByID == nil {
		r.found.retiredByID = map[string]*retiredSource{}
	}
	r.found.retiredByID[src.img.ID] = rs
	r.found.retired = append(r.found.retired, rs)
}

// retiredRegions is every Region a retired source targets in account: its
// copies there are observed.
func (r *run) retiredRegions(account string) []string {
	var out []string
	for _, rs := range r.found.retired {
		if _, ok := slices.BinarySearch(rs.targets.Accounts, account); ok {
			for _, reg := range rs.targets.Regions {
				if !slices.Contains(out, reg) {
					out = append(out, reg)
				}
			}
		}
	}
	return out
}

// retiredAccounts adds the accounts retired sources target to set.
func (r *run) retiredAccounts(set map[string]bool) {
	for _, rs := range r.found.retired {
		for _, a := range rs.targets.Accounts {
			set[a] = true
		}
	}
}

// noteDeprecations adds to deps the copies amicopier made of src among
// copies whose deprecation time is not the one they should have. Only
// available copies: a pending one is set by a later run (whether EC2
// takes a deprecation time for a pending image is not documented).
func (r *run) noteDeprecations(deps []*deprecationWork, z zoneRef, src *cloud.Image, copies []cloud.Image) []*deprecationWork {
	after := r.e.set.Copy.DeprecateAfter
	for i := range copies {
		c := &copies[i]
		if src.DeprecationTime.IsZero() && after == 0 && c.DeprecationTime.IsZero() {
			continue // the common case: nothing deprecates anything
		}
		if !Managed(c) || c.State != cloud.ImageAvailable {
			continue
		}
		dec := PlanDeprecation(DeprecationFacts{Current: c.DeprecationTime, Created: c.CreationDate, Source: src.DeprecationTime, After: after}, r.policy.Now)
		if !dec.Changes() {
			continue
		}
		action := report.DeprecationSet
		if dec.Disable {
			action = report.DeprecationCancel
		}
		deps = append(deps, &deprecationWork{zone: z, dec: dec, line: report.Deprecation{
			Image: c.ID, SourceImage: src.ID, Account: z.account, Region: z.region,
			Current: c.DeprecationTime, Wanted: dec.Want, Action: action, Reason: dec.Reason,
		}})
	}
	return deps
}

// noteRetired looks after the copies of retired sources among a Region's
// copies no pair asked for (unwanted): their deprecation (deps), and, in
// a run that is not scoped, the copies amicopier made of superseded
// builds, which it takes out of unwanted (they are no orphans). It
// returns the superseded sources it found copies of.
func (r *run) noteRetired(z zoneRef, unwanted map[string][]cloud.Image, x copyIndex, deps []*deprecationWork) (map[string]bool, []*deprecationWork) {
	var cands []supersededCandidate
	var sources map[string]bool
	for _, from := range sortedKeys(unwanted) {
		rs := r.found.retiredByID[from]
		if rs == nil {
			continue
		}
		deps = r.noteDeprecations(deps, z, &rs.img, unwanted[from])
		if !rs.superseded || r.scoped {
			continue
		}
		var ours []cloud.Image
		for _, c := range unwanted[from] {
			if Managed(&c) && c.Tags[TagSourceAccount] == r.e.set.SourceAccount && c.State != cloud.ImageDeregistered {
				ours = append(ours, c)
			}
		}
		if len(ours) == 0 {
			continue
		}
		delete(unwanted, from)
		if sources == nil {
			sources = map[string]bool{}
		}
		sources[from] = true
		cands = append(cands, supersededCandidate{zone: z, src: rs, copies: ours,
			key:   state.PairKey{SourceImage: from, Account: z.account, Region: z.region},
			newer: r.newerCopy(x, rs.rank, r.e.set.Keys.For(z.account, z.region))})
	}
	r.life.add(nil, cands)
	return sources, deps
}

// newerCopy returns a good copy, among a Region's, of a build the group
// keeps ("" when there is none).
func (r *run) newerCopy(x copyIndex, rank BuildRank, wantKey string) string {
	for _, id := range rank.Kept {
		for _, c := range x.find(id) {
			if cls, _ := classifyCopy(&c, wantKey); cls == copyGood {
				return c.ID
			}
		}
	}
	return ""
}

// find returns the copies of source without marking it wanted.
func (x copyIndex) find(source string) []cloud.Image {
	j, ok := x.first[source]
	if !ok {
		return nil
	}
	if m, ok := x.multi[source]; ok {
		return m
	}
	return x.copies[j : j+1 : j+1]
}

// planSuperseded decides about each pair of superseded copies
// (PlanSuperseded), reads what uses the ones due for removal, and makes
// their lines of the report. A scoped run leaves them be.
func (r *run) planSuperseded(ctx context.Context) {
	cands := r.life.candidates
	r.life.candidates = nil
	slices.SortFunc(cands, func(a, b supersededCandidate) int { return comparePairKeys(a.key, b.key) })
	policy := r.e.set.Prune
	policy.Now = r.policy.Now
	var due []*supersededWork
	for _, c := range cands {
		var rec *state.Pair
		if p, ok := r.seen.records[[2]string{c.key.Account, c.key.Region}][c.key]; ok {
			rec = &p
		}
		sw := &supersededWork{c: c, stored: rec}
		sw.dec = PlanSuperseded(r.supersededFacts(sw, imageUse{}, false), policy)
		if !policy.Enabled && rec != nil && !r.found.incomplete {
			// Pruning is off: a superseded pair has nothing left to
			// remember (its grace, a copy in flight of a build no
			// longer kept); the record leaves the unsettled index.
			next := Retire(*rec, "Superseded", "its source is superseded (source.keep_latest) and pruning is off; its copy is only reported")
			sw.dec.Record = &next
		}
		if sw.dec.Due {
			due = append(due, sw)
		}
		r.life.superseded = append(r.life.superseded, sw)
	}
	r.checkSupersededUse(ctx, due, policy)
	for _, sw := range r.life.superseded {
		sw.item = r.supersededItem(sw)
	}
}

// supersededFacts are the facts of sw, with what uses its copies when
// checked.
func (r *run) supersededFacts(sw *supersededWork, use imageUse, checked bool) SupersededFacts {
	f := SupersededFacts{Key: sw.c.key, Record: sw.stored, Source: r.e.set.SourceAccount, Newer: sw.c.newer,
		Group: r.e.set.KeepLatest.GroupBy + "=" + sw.c.src.rank.Group, Checked: checked}
	for _, c := range sw.c.copies {
		f.CopyIDs = append(f.CopyIDs, c.ID)
		f.InUse += use.instances[c.ID]
		f.Templates = append(f.Templates, use.templatesNaming(c.ID)...)
	}
	slices.Sort(f.Templates)
	f.Templates = slices.Compact(f.Templates)
	return f
}

// checkSupersededUse reads, once per account and Region, the instances
// and launch templates that use the due copies, and decides again.
func (r *run) checkSupersededUse(ctx context.Context, due []*supersededWork, policy PrunePolicy) {
	groups := map[[2]string][]*supersededWork{}
	for _, sw := range due {
		k := [2]string{sw.c.key.Account, sw.c.key.Region}
		groups[k] = append(groups[k], sw)
	}
	for _, k := range sortedKeys2(groups) {
		ws := groups[k]
		var ids []string
		for _, sw := range ws {
			for _, c := range sw.c.copies {
				ids = append(ids, c.ID)
			}
		}
		use, err := readImageUse(ctx, ws[0].c.zone.client, ids)
		if err != nil {
			r.fail(fmt.Sprintf("check instances and launch templates using superseded copies in %s/%s", k[0], k[1]), err)
		}
		for _, sw := range ws {
			if err != nil {
				// Unknown use means keep: never remove what might be used.
				sw.dec = SupersededDecision{Reason: sw.dec.Reason + "; could not check the instances and launch templates using it (" + err.Error() + "), so it is kept"}
				continue
			}
			sw.dec = PlanSuperseded(r.supersededFacts(sw, use, true), policy)
		}
	}
}

func (r *run) supersededItem(sw *supersededWork) report.Item {
	action := "none"
	if sw.dec.Prune {
		action = "prune"
	}
	return report.Item{
		SourceImage: sw.c.key.SourceImage, SourceName: sw.c.src.img.Name, SourceRegion: sw.c.src.img.Region,
		Account: sw.c.key.Account, AccountName: r.accountName(sw.c.key.Account), Region: sw.c.key.Region,
		Category: report.Superseded, Reason: sw.dec.Reason, CopyImages: imageIDs(sw.c.copies),
		Copies: copyInventory(sw.c.copies), Action: action,
	}
}

// removeSuperseded deregisters the superseded copies due for removal (with
// their snapshots) and writes the superseded pairs' records.
func (r *run) removeSuperseded(ctx context.Context) {
	for _, sw := range r.life.superseded {
		if ctx.Err() != nil {
			return
		}
		r.carryOut(ctx, removal{key: sw.c.key, stored: sw.stored, prune: sw.dec.Prune, reason: sw.dec.Reason,
			record: &sw.dec.Record, item: &sw.item, what: "superseded copy",
			remove: func() ([]string, bool) { return r.removeCopies(ctx, sw) }})
	}
}

// removeCopies deregisters the copies of sw, deleting their snapshots in
// the same call; it returns the snapshots EC2 could not delete.
func (r *run) removeCopies(ctx context.Context, sw *supersededWork) (left []string, ok bool) {
	z := sw.c.zone
	for _, c := range sw.c.copies {
		failed, err := z.client.DeregisterImage(ctx, c.ID, true)
		if err != nil && cloud.ClassOf(err) != cloud.ClassNotFound {
			r.fail(fmt.Sprintf("prune superseded copy %s in %s/%s: deregister", c.ID, z.account, z.region), err)
			sw.item.Action = "prune_failed"
			sw.item.LastError = err.Error()
			return nil, false
		}
		left = append(left, failed...)
		r.count("prune_superseded", 1)
		r.life.mu.Lock()
		if r.life.removed == nil {
			r.life.removed = map[string]bool{}
		}
		r.life.removed[c.ID] = true
		r.life.mu.Unlock()
	}
	return left, true
}

// applyDeprecations sets and cancels the copies' deprecation times, one
// account and Region at a time per worker. A copy the run removed is
// left out; a denied call stops the Region's others (they would be
// denied alike).
func (r *run) applyDeprecations(ctx context.Context) {
	byZone := map[[2]string][]*deprecationWork{}
	for _, d := range r.life.deprecations {
		if d.dec.Changes() && !r.life.removed[d.line.Image] {
			k := [2]string{d.zone.account, d.zone.region}
			byZone[k] = append(byZone[k], d)
		}
	}
	zones := sortedKeys2(byZone)
	parallel(ctx, len(zones), r.e.set.Concurrency, func(ctx context.Context, i int) {
		denied := ""
		for _, d := range byZone[zones[i]] {
			switch {
			case denied != "":
				d.line.Action, d.line.Error = report.DeprecationFailed, denied
			case ctx.Err() != nil || r.outOfTime():
				d.line.Action = report.DeprecationDeferred
			default:
				if err := r.deprecate(ctx, d); err != nil && cloud.ClassOf(err) == cloud.ClassAccessDenied {
					denied = err.Error()
				}
			}
		}
	})
}

// deprecate makes one deprecation call and records its outcome.
func (r *run) deprecate(ctx context.Context, d *deprecationWork) error {
	var err error
	if d.dec.Disable {
		err = d.zone.client.DisableImageDeprecation(ctx, d.line.Image)
	} else {
		d.line.Set = DeprecateAt(d.dec, r.e.clock.Now())
		err = d.zone.client.EnableImageDeprecation(ctx, d.line.Image, d.line.Set)
	}
	if err != nil {
		d.line.Action, d.line.Error = report.DeprecationFailed, err.Error()
		if cloud.ClassOf(err) == cloud.ClassAccessDenied {
			d.line.Error += "; check the copier role's IAM permissions (ec2:EnableImageDeprecation, ec2:DisableImageDeprecation on images tagged amicopier:managed=true)"
		}
		r.fail(fmt.Sprintf("deprecation of copy %s in %s/%s", d.line.Image, d.zone.account, d.zone.region), err)
		return err
	}
	if d.dec.Disable {
		r.count("cancel_deprecation", 1)
	} else {
		r.count("set_deprecation", 1)
	}
	return nil
}

// deprecationLines are the report's deprecation changes.
func (l *lifecycle) deprecationLines() []report.Deprecation {
	var out []report.Deprecation
	for _, d := range l.deprecations {
		if !l.removed[d.line.Image] {
			out = append(out, d.line)
		}
	}
	return out
}

// describeSuperseded lists, for the report, the superseded builds with
// copies in it (the drift matrix puts them with their group).
func (r *run) describeSuperseded(rep *report.Report) {
	seen := map[string]bool{}
	for _, sw := range r.life.superseded {
		rs := sw.c.src
		if seen[rs.img.ID] {
			continue
		}
		seen[rs.img.ID] = true
		rep.Sources = append(rep.Sources, report.Source{ID: rs.img.ID, Name: rs.img.Name, Region: rs.img.Region,
			Recipe: rs.img.Tags["Recipe"], Created: rs.img.CreationDate, Superseded: true})
	}
}

// imageUse is what uses some images of one account and Region: the
// instances launched from each, the launch template versions that name
// each, and the versions naming a Systems Manager parameter EC2 did not
// resolve (they may name any of them).
type imageUse struct {
	instances  map[string]int
	templates  map[string][]string
	unresolved []string
}

// readImageUse reads the instances launched from ids (DescribeInstances)
// and the default and latest version of every launch template of the
// account and Region (DescribeLaunchTemplateVersions).
func readImageUse(ctx context.Context, client cloud.EC2, ids []string) (imageUse, error) {
	inst, err := client.InstancesUsingImages(ctx, ids)
	if err != nil {
		return imageUse{}, err
	}
	versions, err := client.LaunchTemplateImages(ctx)
	if err != nil {
		return imageUse{}, err
	}
	u := imageUse{instances: inst, templates: map[string][]string{}}
	slices.SortFunc(versions, func(a, b cloud.LaunchTemplateVersion) int {
		return cmp.Or(strings.Compare(a.TemplateID, b.TemplateID), cmp.Compare(a.Version, b.Version))
	})
	for _, v := range versions {
		if !v.Resolved() {
			u.unresolved = append(u.unresolved, fmt.Sprintf("%s names %s, which EC2 did not resolve (it may name this image)", v.Label(), v.ImageID))
			continue
		}
		u.templates[v.ImageID] = append(u.templates[v.ImageID], v.Label()+" names it")
	}
	return u, nil
}

// templatesNaming lists the launch template versions that name id, or may.
func (u imageUse) templatesNaming(id string) []string {
	return append(slices.Clone(u.templates[id]), u.unresolved...)
}

// describeItemAccounts lists the member accounts items name that the
// inventory does not (an orphaned or superseded copy in an account no
// source targets now), so the drift matrix shows them in their OU rather
// than as accounts outside the organisation.
func (r *run) describeItemAccounts(rep *report.Report) {
	listed := make(map[string]bool, len(rep.Accounts))
	for _, a := range rep.Accounts {
		listed[a.ID] = true
	}
	for _, it := range rep.Items {
		a, member := r.found.org.accounts[it.Account]
		if listed[it.Account] || !member {
			continue
		}
		listed[it.Account] = true
		rep.Accounts = append(rep.Accounts, report.Account{ID: it.Account, Name: a.Name, State: string(a.State), OU: r.found.org.accountOU(it.Account)})
	}
}
