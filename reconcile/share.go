package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// The executor of sharing (grants.go decides). Per source image, one
// goroutine: read the launch permission and each snapshot's create-volume
// permission, plan, remember what it is about to add (state.Grants), add
// (one call per image and per snapshot, in batches EC2 accepts), let the
// image's copies go, then take back what is no longer needed and remember
// that too. The source account's buckets are shared by every target, so
// this is where per-pair sharing would collapse.

// imageShare is the sharing of one image in one run.
type imageShare struct {
	image, region string
	src           *sourceImage // nil: the image is no source any more
	snapshots     []string
	facts         GrantFacts
	// preview is the plan made before anything is read: what the run
	// would do as far as the records tell (the dry run's report).
	preview GrantPlan

	done chan struct{} // closed once the additions are over
	// Set before done is closed:
	granted  map[string]bool   // accounts that may copy now
	added    map[string]bool   // accounts granted moments ago by this run
	deferred map[string]string // accounts whose copies wait for the quota
	err      error             // the sharing failed; its copies wait
	rejected error             // EC2 refuses to share the image at all
	rep      report.ImageSharing
}

// grantRecords indexes the loaded grants records by image.
type grantRecords map[string][]state.Grants

func (r *run) loadGrants(ctx context.Context) error {
	recs, err := r.e.store.GrantsOf(ctx, r.e.set.SourceAccount)
	if err != nil {
		return errorf(err, "state store: read the grants of source %s", r.e.set.SourceAccount)
	}
	r.sharing.grants = grantRecords{}
	for _, g := range recs {
		r.sharing.grants[g.Key.Image] = append(r.sharing.grants[g.Key.Image], g)
	}
	return nil
}

// planShares works out, after observation, the sharing of every image that
// is copied in this run or holds grants amicopier made.
func (r *run) planShares(ctx context.Context) {
	need := r.shareNeeds()
	r.sharing.images = map[string]*imageShare{}
	images := map[string]bool{}
	for id := range need {
		images[id] = true
	}
	for id := range r.sharing.grants {
		if r.scoped && r.found.byID[id] == nil {
			continue // a scoped run judges only its own images: no lookup
		}
		images[id] = true
	}
	gone := r.lookupGrantedImages(ctx, images)
	for _, id := range sortedKeys(images) {
		if gone[id] {
			r.dropGrants(ctx, id)
			continue
		}
		sh := r.imageShare(ctx, id, sortedKeys(need[id]))
		sh.preview = PlanGrants(sh.facts)
		if len(sh.facts.Need) > 0 || sh.preview.Changes() || r.e.set.Sharing.Audit {
			r.sharing.images[id] = sh
		}
	}
	if r.req.Mode == ModePlan {
		for _, id := range sortedKeys(r.sharing.images) {
			sh := r.sharing.images[id]
			if r.e.set.Sharing.Audit {
				r.readSharing(ctx, sh) // a dry run may read: it reports foreign grants
			}
			sh.rep = sharingReport(sh, sh.preview)
			r.addSharing(sh.rep)
		}
	}
}

// imageShare gathers what is known of the sharing of image id, which the
// accounts of need copy in this run: its snapshots, this scope's ledger
// record and every scope's grants, and the OU grants its targets allow.
func (r *run) imageShare(ctx context.Context, id string, need []string) *imageShare {
	scope := r.e.ScopeFor(r.shard)
	src := r.found.byID[id]
	sh := &imageShare{image: id, src: src, done: make(chan struct{})}
	ts := &targetSet{}
	if src != nil {
		sh.region, sh.snapshots, ts = src.img.Region, src.img.SnapshotIDs(), &src.targets
	} else if img, ok := r.sharing.grantedImages[id]; ok {
		sh.region, sh.snapshots = img.Region, img.SnapshotIDs()
	}
	mine := state.Grants{Key: state.GrantsKey{Image: id, Scope: scope}, Source: r.e.set.SourceAccount, Region: sh.region}
	ours := map[string]bool{}
	for _, g := range r.sharing.grants[id] {
		if g.Key.Scope == scope {
			mine = g
		}
		for _, e := range g.Launch {
			ours[e] = true
		}
	}
	if src == nil {
		sh.region = mine.Region
		if len(sh.snapshots) == 0 {
			sh.snapshots = mine.Snapshots
		}
	}
	f := GrantFacts{
		Image: id, Snapshots: sh.snapshots, Need: need,
		Keep:     func(a string) bool { return r.keepsGrant(id, a) },
		Judged:   func(a string) bool { return r.judges(ts, a) },
		Revoke:   !r.scoped && !r.found.incomplete,
		Mine:     mine,
		Ours:     ours,
		IsTarget: ts.isTarget,
		Room:     cloud.SharingQuota,
	}
	switch {
	case !r.e.set.Sharing.OUGrants:
		f.CoverKnown = true // no OU is ever granted: any OU grant of ours goes
	case len(f.Need) > 0 || hasOrgEntity(ours):
		cover, err := r.found.org.cover(ctx, ts, r.e.set.SourceAccount)
		if err != nil {
			r.fail(fmt.Sprintf("work out the OU grants of %s (its accounts are granted one by one this run)", id), err)
		} else {
			f.Cover, f.CoverKnown = cover, true
		}
	}
	sh.facts = f
	return sh
}

// hasOrgEntity reports whether any entity is an OU or organisation ARN.
func hasOrgEntity(es map[string]bool) bool {
	for e := range es {
		if isOrgEntity(e) {
			return true
		}
	}
	return false
}

// keepsGrant reports whether an account still needs its grants on image:
// one of its pairs has a copy in flight or still to make.
func (r *run) keepsGrant(image, account string) bool {
	r.sharing.mu.Lock()
	defer r.sharing.mu.Unlock()
	return r.sharing.keep[[2]string{image, account}]
}

// judges reports whether this run may take an account's grants back: one
// of its shard whose every target Region it observed, or one that is no
// target of the image any more.
func (r *run) judges(ts *targetSet, account string) bool {
	if !r.shard.Contains(account) {
		return false
	}
	if !ts.isTarget(account) {
		return true
	}
	for _, region := range ts.Regions {
		if !r.seen.wasDescribed(account, region) {
			return false
		}
	}
	return true
}

// lookupGrantedImages describes the images grants records name that
// discovery did not find (deprecated, filtered out, gone), per source
// Region: it returns those that no longer exist, and keeps the others'
// descriptions (their snapshots) in r.sharing.grantedImages.
func (r *run) lookupGrantedImages(ctx context.Context, images map[string]bool) (gone map[string]bool) {
	gone = map[string]bool{}
	byRegion := map[string][]string{}
	for id := range images {
		if r.found.byID[id] != nil {
			continue
		}
		for _, g := range r.sharing.grants[id] {
			byRegion[g.Region] = append(byRegion[g.Region], id)
			break
		}
	}
	r.sharing.grantedImages = map[string]cloud.Image{}
	for _, region := range sortedKeys(byRegion) {
		ids := byRegion[region]
		slices.Sort(ids)
		c, err := r.sourceClient(ctx, region)
		if err == nil {
			var imgs []cloud.Image
			if imgs, err = c.DescribeImages(ctx, cloud.ImageQuery{ImageIDs: ids}); err == nil {
				for _, im := range imgs {
					if im.State != cloud.ImageDeregistered {
						r.sharing.grantedImages[im.ID] = im
					}
				}
			}
		}
		if err != nil {
			r.fail(fmt.Sprintf("look up images amicopier shared in %s (their grants are kept this run)", region), err)
			for _, id := range ids {
				delete(images, id)
			}
			continue
		}
		for _, id := range ids {
			if _, ok := r.sharing.grantedImages[id]; !ok {
				gone[id] = true
			}
		}
	}
	return gone
}

// dropGrants forgets the grants of an image that no longer exists: its
// launch permission went with it. (Its snapshots' create-volume grants go
// with the snapshots; a snapshot that outlives its image keeps them until
// it is deleted, and is no source amicopier copies.)
func (r *run) dropGrants(ctx context.Context, image string) {
	if r.req.Mode != ModeRun || r.scoped || r.found.incomplete {
		return
	}
	r.sharing.dropped = append(r.sharing.dropped, image)
}

// share runs the sharing of every image with work, a few at a time, in
// the background: each copy waits only for its own source (shareOutcome),
// and the returned function waits for the whole step, revocations
// included.
func (r *run) share(ctx context.Context) (wait func()) {
	ids := sortedKeys(r.sharing.images)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for _, image := range r.sharing.dropped {
			r.forget(ctx, image)
		}
		// A few images at a time: the source account's buckets are the
		// bottleneck, more parallelism would only wait on them.
		parallel(ctx, len(ids), min(4, r.e.set.Concurrency), func(ctx context.Context, i int) {
			r.shareImage(ctx, r.sharing.images[ids[i]])
		})
		// parallel stops early when the run's context ends: never leave
		// a copy waiting for an image nobody shares.
		for _, id := range ids {
			sh := r.sharing.images[id]
			select {
			case <-sh.done:
			default:
				sh.err = fmt.Errorf("share %s: not attempted: %w", id, context.Cause(ctx))
				close(sh.done)
			}
		}
	}()
	return func() { <-finished }
}

// forget deletes the grants records of an image that no longer exists.
func (r *run) forget(ctx context.Context, image string) {
	for _, g := range r.sharing.grants[image] {
		if g.Key.Scope != r.e.ScopeFor(r.shard) {
			continue
		}
		empty := g
		empty.Launch, empty.Volume, empty.Snapshots = nil, nil, nil
		if err := r.putGrants(ctx, g, empty); err != nil {
			r.fail(fmt.Sprintf("forget the grants of %s, which no longer exists", image), err)
		}
	}
}

// readSharing reads the launch permission of sh's image and the
// create-volume permission of each snapshot into sh.facts, all at once:
// the reads are independent, and each is a round trip the image's copies
// wait for.
func (r *run) readSharing(ctx context.Context, sh *imageShare) error {
	c, err := r.sourceClient(ctx, sh.region)
	if err != nil {
		return err
	}
	var cur cloud.LaunchPermission
	var curErr error
	perms := make([][]string, len(sh.snapshots))
	errs := make([]error, len(sh.snapshots))
	var wg sync.WaitGroup
	wg.Go(func() { cur, curErr = c.ImageLaunchPermission(ctx, sh.image) })
	for i, snap := range sh.snapshots {
		wg.Go(func() { perms[i], errs[i] = c.SnapshotVolumePermissions(ctx, snap) })
	}
	wg.Wait()
	if curErr != nil {
		return errorf(curErr, "read launch permission of %s", sh.image)
	}
	vol := make(map[string][]string, len(sh.snapshots))
	for i, snap := range sh.snapshots {
		if err := errs[i]; err != nil {
			if cloud.ClassOf(err) == cloud.ClassNotFound {
				continue // deleted with its image
			}
			return errorf(err, "read create-volume permission of %s (snapshot of %s)", snap, sh.image)
		}
		vol[snap] = perms[i]
	}
	sh.facts.Current, sh.facts.CurrentVolume, sh.facts.Read = cur, vol, true
	sh.facts.RevokeForeign = r.e.set.Sharing.RevokeForeign
	// The run's share of the room the quota leaves: a shard of N leaves
	// the rest to the others.
	sh.facts.Room = max(0, cloud.SharingQuota-cur.Len()) / max(1, r.shard.Count)
	return nil
}

// shareImage shares one image: read, plan, remember, add, let the copies
// go, take back, remember.
func (r *run) shareImage(ctx context.Context, sh *imageShare) {
	closed := false
	release := func() {
		if !closed {
			closed = true
			close(sh.done)
		}
	}
	defer release()
	defer func() { r.addSharing(sh.rep) }()
	sh.granted, sh.added, sh.deferred = map[string]bool{}, map[string]bool{}, map[string]string{}
	if r.outOfTime() {
		sh.err = errTimeBudget
		return
	}
	c, err := r.sourceClient(ctx, sh.region)
	if err == nil {
		err = r.readSharing(ctx, sh)
	}
	if err != nil {
		sh.err = err
		r.fail(fmt.Sprintf("share %s", sh.image), err)
		return
	}
	plan := PlanGrants(sh.facts)
	sh.rep = sharingReport(sh, plan)
	for a, why := range plan.Deferred {
		sh.deferred[a] = why
	}
	mine := sh.facts.Mine
	if plan.Ahead != nil {
		if err := r.putGrants(ctx, mine, *plan.Ahead); err != nil {
			sh.err = err
			r.fail(fmt.Sprintf("share %s: not shared", sh.image), err)
			return
		}
		mine = *plan.Ahead
	}
	if err := r.addGrants(ctx, c, sh, plan); err != nil {
		if cloud.IsShareRefused(err) {
			sh.rejected = err
		} else {
			sh.err = err
		}
		r.fail(fmt.Sprintf("share %s with %d account(s)", sh.image, len(sh.facts.Need)), err)
	} else {
		for _, a := range sh.facts.Need {
			if _, waits := sh.deferred[a]; !waits {
				sh.granted[a] = true
			}
		}
	}
	release() // the copies go; what follows concerns no copy of this run
	removed := r.removeGrants(ctx, c, sh, plan)
	if plan.After != nil {
		after := *plan.After
		// Keep remembering what could not be taken back.
		after.Launch = union(after.Launch, slices.DeleteFunc(slices.Clone(plan.RemoveLaunch.Entities()), func(e string) bool { return removed[e] }))
		for _, accts := range plan.RemoveVolume {
			for _, a := range accts {
				if !removed["volume:"+a] {
					after.Volume = union(after.Volume, []string{a})
				}
			}
		}
		if len(after.Volume) > 0 && len(after.Snapshots) == 0 {
			after.Snapshots = mine.Snapshots
		}
		if err := r.putGrants(ctx, mine, after); err != nil {
			r.fail(fmt.Sprintf("share %s: remember the grants taken back", sh.image), err)
		}
	}
}

// addGrants makes the additions of plan: the launch permission (OU and
// organisation grants, then accounts) and each snapshot's create-volume
// permission, the image and each snapshot at once (EC2 meters the two
// APIs in buckets of their own, and a copy needs both). The ledger
// already lists every addition (plan.Ahead), so one that fails while
// another succeeds is remembered and taken back in time.
func (r *run) addGrants(ctx context.Context, c cloud.EC2, sh *imageShare, plan GrantPlan) error {
	var mu sync.Mutex
	added := func(accounts ...string) {
		mu.Lock()
		for _, a := range accounts {
			sh.added[a] = true
		}
		mu.Unlock()
	}
	snaps := sortedKeys(plan.AddVolume)
	errs := make([]error, 1+len(snaps))
	var wg sync.WaitGroup
	wg.Go(func() {
		for batch := range slices.Chunk(plan.AddLaunch.Entities(), cloud.MaxLaunchPermissionBatch) {
			if err := c.AddImageLaunchPermission(ctx, sh.image, splitEntities(batch)); err != nil {
				errs[0] = errorf(err, "grant launch permission of %s", sh.image)
				return
			}
			r.count("share_launch_permission", 1)
			for _, e := range batch {
				if !isOrgEntity(e) {
					added(e)
					continue
				}
				for _, cg := range sh.facts.Cover {
					if cg.ARN == e {
						added(cg.Accounts...)
					}
				}
			}
		}
	})
	for i, snap := range snaps {
		wg.Go(func() {
			for batch := range slices.Chunk(plan.AddVolume[snap], cloud.MaxShareBatch) {
				if err := c.AddSnapshotVolumePermissions(ctx, snap, batch); err != nil {
					errs[1+i] = errorf(err, "grant create-volume permission of %s (snapshot of %s)", snap, sh.image)
					return
				}
				r.count("share_snapshot", 1)
				added(batch...)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// removeGrants takes back what plan says; it returns what it took back
// (launch entities by name, create-volume accounts as "volume:<id>",
// taken off every snapshot).
func (r *run) removeGrants(ctx context.Context, c cloud.EC2, sh *imageShare, plan GrantPlan) map[string]bool {
	removed := map[string]bool{}
	if r.outOfTime() {
		return removed
	}
	entities := plan.RemoveLaunch.Entities()
	for batch := range slices.Chunk(entities, cloud.MaxLaunchPermissionBatch) {
		if err := c.RemoveImageLaunchPermission(ctx, sh.image, splitEntities(batch)); err != nil {
			r.fail(fmt.Sprintf("take back launch permission of %s from %d grantee(s)", sh.image, len(batch)), err)
			continue
		}
		r.count("revoke_launch_permission", 1)
		for _, e := range batch {
			removed[e] = true
		}
	}
	failed := map[string]bool{}
	for _, snap := range sortedKeys(plan.RemoveVolume) {
		for batch := range slices.Chunk(plan.RemoveVolume[snap], cloud.MaxShareBatch) {
			err := c.RemoveSnapshotVolumePermissions(ctx, snap, batch)
			if err != nil && cloud.ClassOf(err) != cloud.ClassNotFound {
				r.fail(fmt.Sprintf("take back create-volume permission of %s (snapshot of %s)", snap, sh.image), err)
				for _, a := range batch {
					failed[a] = true
				}
				continue
			}
			r.count("revoke_snapshot", 1)
		}
	}
	for _, accts := range plan.RemoveVolume {
		for _, a := range accts {
			if !failed[a] {
				removed["volume:"+a] = true
			}
		}
	}
	return removed
}

// putGrants writes a grants record, guarded by the version of was.
func (r *run) putGrants(ctx context.Context, was, want state.Grants) error {
	if was.SameContent(want) {
		return nil
	}
	want.Version = was.Version
	want.RunID = r.id
	got, err := r.e.store.PutGrants(ctx, want)
	if err != nil {
		return errorf(err, "state store: write grants %s", want.Key)
	}
	r.out.writes.Add(1)
	_ = got
	return nil
}

// sharingReport is the report of one image's sharing.
func sharingReport(sh *imageShare, plan GrantPlan) report.ImageSharing {
	rep := report.ImageSharing{Image: sh.image, Region: sh.region, Deferred: len(plan.Deferred), Foreign: plan.Foreign, Revoked: plan.Revoked}
	rep.GrantedAccounts = len(plan.AddLaunch.Accounts)
	rep.GrantedOUs = len(plan.AddLaunch.OUs) + len(plan.AddLaunch.Organizations)
	seen := map[string]bool{}
	for _, accts := range plan.AddVolume {
		for _, a := range accts {
			seen[a] = true
		}
	}
	rep.GrantedVolume = len(seen)
	if sh.facts.Read {
		rep.Entities = sh.facts.Current.Len() + plan.AddLaunch.Len() - plan.RemoveLaunch.Len()
	}
	return rep
}

func (r *run) addSharing(rep report.ImageSharing) {
	if rep.GrantedAccounts+rep.GrantedOUs+rep.GrantedVolume+rep.Deferred+len(rep.Revoked)+len(rep.Foreign) == 0 {
		return
	}
	r.sharing.mu.Lock()
	r.sharing.lines = append(r.sharing.lines, rep)
	r.sharing.mu.Unlock()
}

// shareNeeds returns, per source image, the accounts that copy it in this
// run: the copy requests trimDeferred kept (the cap's slots, allocated
// there once), the source account's own excepted (the owner needs no
// permission).
func (r *run) shareNeeds() map[string]map[string]bool {
	need := map[string]map[string]bool{}
	for _, rw := range r.seen.work {
		if rw.account == r.e.set.SourceAccount {
			continue
		}
		for _, pw := range rw.pairs {
			if !pw.dec.Copy || trimmed(pw) {
				continue
			}
			id := pw.src.img.ID
			if need[id] == nil {
				need[id] = map[string]bool{}
			}
			need[id][rw.account] = true
		}
	}
	return need
}

// shareResult is what the sharing of a pair's source means for the pair.
type shareResult struct {
	// granted: the account may copy; justAdded: moments ago, by this run.
	granted, justAdded bool
	// waits says why the copy waits for a later run (the quota), rejected
	// why EC2 refuses to share the source at all, err why sharing failed.
	waits    string
	rejected error
	err      error
}

// shareOutcome waits until the sharing of image id is over and says what
// it means for account's copy.
func (r *run) shareOutcome(ctx context.Context, id, account string) shareResult {
	sh, ok := r.sharing.images[id]
	if !ok {
		return shareResult{}
	}
	select {
	case <-sh.done:
	case <-ctx.Done():
		return shareResult{err: fmt.Errorf("waiting for the sharing of %s: %w", id, context.Cause(ctx))}
	}
	return shareResult{
		granted: sh.granted[account], justAdded: sh.added[account],
		waits: sh.deferred[account], rejected: sh.rejected, err: sh.err,
	}
}

// sortPairs puts a Region's pairs in the order trimDeferred allocates the
// in-flight cap's slots in, and share and applyAll follow. observeRegion
// sorts each Region once.
func sortPairs(pairs []*pairWork) {
	slices.SortFunc(pairs, func(a, b *pairWork) int { return strings.Compare(a.key.SourceImage, b.key.SourceImage) })
}

var errTimeBudget = errors.New("time budget reached; the next run continues")
