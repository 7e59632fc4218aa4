package sim

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

var snapshotIDPattern = regexp.MustCompile(`^snap-[0-9a-f]{8}([0-9a-f]{9})?$`)

// EC2 is a client acting as one account in one Region, as returned by a
// Connector (or Cloud.Client). It implements the engine's EC2 port; every
// method is one or more API calls through the Cloud's gate.
type EC2 struct {
	cloud *Cloud
	conn  *Connector
	zone  *zone
	// assumed: the client acts as the copier role (Connector.Target),
	// whose IAM policy DenyCopierActions may restrict.
	assumed bool
}

// Account returns the account the client acts as.
func (e *EC2) Account() string { return e.zone.account }

// Region returns the client's Region.
func (e *EC2) Region() string { return e.zone.region }

func (e *EC2) do(ctx context.Context, op opCode, resource string, fn func() error) error {
	return e.cloud.do(ctx, e.conn, e.zone.calls, op, e.zone.account, e.zone.region, resource, fn)
}

func imageNotFound(op, id string) error {
	return cloud.Errorf(op, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
}

func snapshotNotFound(op, id string) error {
	return cloud.Errorf(op, "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
}

// ownImageIndex resolves id for a call only the owner may make. It returns
// the image's position in the caller's zone, which the caller then checks
// under the zone lock; an image of another account fails with AuthFailure,
// one of another Region (or none at all) with InvalidAMIID.NotFound.
func (e *EC2) ownImageIndex(op, id string) (int, error) {
	if !cloud.IsImageID(id) {
		return 0, cloud.Errorf(op, "InvalidAMIID.Malformed", "Invalid id: %q", id)
	}
	zid, idx, ok := parseID(prefixImage, id)
	if !ok {
		return 0, imageNotFound(op, id)
	}
	if zid == e.zone.id {
		return idx, nil
	}
	other := e.cloud.zoneByID(zid)
	if other == nil || other.region != e.zone.region {
		return 0, imageNotFound(op, id)
	}
	other.mu.RLock()
	im := other.image(idx)
	exists := im != nil && im.state != stDeregistered
	other.mu.RUnlock()
	if !exists {
		return 0, imageNotFound(op, id)
	}
	return 0, cloud.Errorf(op, "AuthFailure", "account %s is not the owner of image %s (owner %s)", e.zone.account, id, other.account)
}

// ownImage returns the caller's registered image at idx. Caller holds
// e.zone.mu.
func (e *EC2) ownImage(op, id string, idx int) (*image, error) {
	im := e.zone.image(idx)
	if im == nil || im.state == stDeregistered {
		return nil, imageNotFound(op, id)
	}
	return im, nil
}

// ownSnapshotIndex is ownImageIndex for snapshots.
func (e *EC2) ownSnapshotIndex(op, id string) (int, error) {
	if !snapshotIDPattern.MatchString(id) {
		return 0, cloud.Errorf(op, "InvalidSnapshotID.Malformed", "Invalid id: %q", id)
	}
	zid, idx, ok := parseID(prefixSnapshot, id)
	if !ok {
		return 0, snapshotNotFound(op, id)
	}
	if zid == e.zone.id {
		return idx, nil
	}
	other := e.cloud.zoneByID(zid)
	if other == nil || other.region != e.zone.region {
		return 0, snapshotNotFound(op, id)
	}
	other.mu.RLock()
	s := other.snapshot(idx)
	exists := s != nil && !s.deleted
	other.mu.RUnlock()
	if !exists {
		return 0, snapshotNotFound(op, id)
	}
	return 0, cloud.Errorf(op, "AuthFailure", "account %s is not the owner of snapshot %s (owner %s)", e.zone.account, id, other.account)
}

func (e *EC2) ownSnapshot(op, id string, idx int) (*snapshot, error) {
	s := e.zone.snapshot(idx)
	if s == nil || s.deleted {
		return nil, snapshotNotFound(op, id)
	}
	return s, nil
}

// queryMatcher evaluates a cloud.ImageQuery against stored images.
type queryMatcher struct {
	q      cloud.ImageQuery
	states []stateCode
}

func newQueryMatcher(q cloud.ImageQuery) queryMatcher {
	m := queryMatcher{q: q}
	for _, s := range q.States {
		if code, ok := stateCodeOf(s); ok {
			m.states = append(m.states, code)
		} else {
			// An unknown state matches nothing, but the filter is
			// still there: keep it non-empty.
			m.states = append(m.states, numStates)
		}
	}
	return m
}

func (m *queryMatcher) match(im *image, now int64) bool {
	if !im.listed(now) {
		return false
	}
	for _, k := range m.q.TagKeys {
		if _, ok := im.tags.lookup(k); !ok {
			return false
		}
	}
	for k, values := range m.q.Tags {
		v, ok := im.tags.lookup(k)
		if !ok || (len(values) > 0 && !slices.Contains(values, v)) {
			return false
		}
	}
	if len(m.states) > 0 {
		st, _ := im.stateAt(now)
		if !slices.Contains(m.states, st) {
			return false
		}
	}
	return true
}

// DescribeImages lists the caller's own images (Owners=self) that are
// listed now and match q: not deregistered, or deregistered within
// WithDeregisteredListing (then in state deregistered), and not a copy
// still inside WithListingDelay. Disabled images are listed, as EC2 lists them
// when asked with IncludeDisabled (the adapters always ask); a state filter
// still applies to them. ImageIDs behaves like EC2's image-id filter: ids
// that are not the caller's simply do not match. A tag filter with no
// values matches any value of its key. Block devices carry no KMSKeyID, as
// in EC2: SnapshotKeys tells the keys. Results come in pages of the
// configured size, each page one counted DescribeImages call (at least one
// call even when nothing matches); pages are read one at a time, as with
// NextToken, so images created between pages may appear. A query with no
// filter at all draws on EC2's smaller bucket for unfiltered describes. Each
// page is one call of the connector's: a refused page is retried by itself,
// as the SDK's retryer retries each page request.
func (e *EC2) DescribeImages(ctx context.Context, q cloud.ImageQuery) ([]cloud.Image, error) {
	room := cloud.MaxFilterValues - q.FilterValues()
	if room <= 0 {
		return nil, filterLimitError(cloud.OpDescribeImages, q.FilterValues()+len(q.ImageIDs))
	}
	if len(q.ImageIDs) > room {
		// As the adapter does: the ids, deduplicated, room at a time.
		ids := slices.Clone(q.ImageIDs)
		slices.Sort(ids)
		var out []cloud.Image
		for chunk := range slices.Chunk(slices.Compact(ids), room) {
			part := q
			part.ImageIDs = chunk
			imgs, err := e.describeImages(ctx, part)
			if err != nil {
				return nil, err
			}
			out = append(out, imgs...)
		}
		return out, nil
	}
	return e.describeImages(ctx, q)
}

// filterLimitError is EC2's answer to a call with more than
// cloud.MaxFilterValues filter values ("The request uses too many filters
// or too many filter values", FilterLimitExceeded, Error codes for the
// Amazon EC2 API,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
func filterLimitError(op string, values int) error {
	return cloud.Errorf(op, "FilterLimitExceeded",
		"The request uses too many filters or too many filter values (%d; the maximum is %d)", values, cloud.MaxFilterValues)
}

// describeImages is DescribeImages for at most the ids one call takes.
func (e *EC2) describeImages(ctx context.Context, q cloud.ImageQuery) ([]cloud.Image, error) {
	z := e.zone
	var candidates []int
	if len(q.ImageIDs) > 0 {
		candidates = make([]int, 0, len(q.ImageIDs))
		seen := make(map[int]bool, len(q.ImageIDs))
		for _, id := range q.ImageIDs {
			if zid, idx, ok := parseID(prefixImage, id); ok && zid == z.id && !seen[idx] {
				seen[idx] = true
				candidates = append(candidates, idx)
			}
		}
		slices.Sort(candidates) // creation order, as without ids
	}
	byID := len(q.ImageIDs) > 0
	m := newQueryMatcher(q)
	pageSize := e.cloud.cfg.pageSize
	class := BucketDescribe
	if !byID && len(q.TagKeys) == 0 && len(q.Tags) == 0 && len(q.States) == 0 {
		class = BucketUnfiltered
	}
	var out []cloud.Image
	cursor := 0
	for {
		more := false
		page := func() error {
			return e.cloud.attempt(ctx, e.conn, z.calls, opDescribeImages, class, z.account, z.region, "", func() error {
				now := e.cloud.clock.now()
				z.mu.RLock()
				defer z.mu.RUnlock()
				n := len(z.images)
				if byID {
					n = len(candidates)
				}
				if out == nil {
					// Most results fit one page: size it once.
					out = make([]cloud.Image, 0, min(n, pageSize))
				}
				inPage := 0
				for ; cursor < n; cursor++ {
					idx := cursor
					if byID {
						idx = candidates[cursor]
					}
					im := z.image(idx)
					if im == nil || !m.match(im, now) {
						continue
					}
					if inPage == pageSize {
						more = true
						break
					}
					out = append(out, z.export(idx, im, now))
					inPage++
				}
				return nil
			})
		}
		if err := page(); err != nil {
			return nil, err
		}
		if !more {
			return out, nil
		}
	}
}

// ImageLaunchPermission returns who is granted launch permission on one of
// the caller's images (DescribeImageAttribute launchPermission).
func (e *EC2) ImageLaunchPermission(ctx context.Context, imageID string) (cloud.LaunchPermission, error) {
	const op = cloud.OpDescribeImageAttribute
	var out cloud.LaunchPermission
	err := e.withOwnImage(ctx, opDescribeImageAttribute, op, imageID, false, func(im *image) error {
		if im.extra != nil {
			out = im.extra.launch.export()
		}
		return nil
	})
	return out, err
}

// AddImageLaunchPermission grants launch permission on one of the caller's
// images (ModifyImageAttribute LaunchPermission.Add) to accounts, OUs and
// organisations. Grantees already granted are fine. A disabled image
// cannot be shared; nor can an image backed by a snapshot under the
// AWS-managed aws/ebs key: "You can't share AMIs that are backed by
// snapshots that are encrypted with the default AWS managed key" (Share an
// AMI with specific AWS accounts, EC2 User Guide,
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html),
// refused with InvalidParameter. Past the sharing quota the call is
// refused whole (sharing.go).
func (e *EC2) AddImageLaunchPermission(ctx context.Context, imageID string, add cloud.LaunchPermission) error {
	const op = cloud.OpModifyImageAttribute
	return e.withOwnImage(ctx, opModifyImageAttribute, op, imageID, true, func(im *image) error {
		if err := checkLaunchBatch(op, add); err != nil {
			return err
		}
		if st, _ := im.stateAt(e.cloud.clock.now()); st == stDisabled {
			return cloud.Errorf(op, "InvalidAMIID.Unavailable",
				"The AMI ID '%s' is currently disabled and may not be used for this operation", imageID)
		}
		for _, d := range im.devices {
			if s := e.zone.snapshots[d.snap]; s.encrypted && e.cloud.kms.isAWSManaged(s.keyARN) {
				return cloud.Errorf(op, "InvalidParameter",
					"image %s is backed by snapshot %s, encrypted with the AWS managed key: it can't be shared; re-encrypt it with a customer managed key",
					imageID, formatID(prefixSnapshot, e.zone.id, d.snap))
			}
		}
		p := &im.ensureExtra().launch
		have, adding := p.entities(), p.newGrantees(add)
		if quota := e.cloud.cfg.sharingQuota; have+adding > quota {
			return sharingQuotaError(op, imageID, have, adding, quota)
		}
		p.apply(add, cloud.LaunchPermission{}, e.cloud.clock.now())
		e.cloud.noteShare(p.entities())
		return nil
	})
}

// RemoveImageLaunchPermission takes grantees off the launch permission of
// one of the caller's images (ModifyImageAttribute
// LaunchPermission.Remove). The EC2 reference does not say what removing a
// grantee that holds no permission does; the simulator accepts it (the
// engine removes only what it read). Copies already made are not affected:
// "You can change or deregister the source AMI with no effect on the
// target AMI" (Copy an AMI, EC2 User Guide).
func (e *EC2) RemoveImageLaunchPermission(ctx context.Context, imageID string, remove cloud.LaunchPermission) error {
	const op = cloud.OpModifyImageAttribute
	return e.withOwnImage(ctx, opModifyImageAttribute, op, imageID, true, func(im *image) error {
		if err := checkLaunchBatch(op, remove); err != nil {
			return err
		}
		im.ensureExtra().launch.apply(cloud.LaunchPermission{}, remove, e.cloud.clock.now())
		return nil
	})
}

// SnapshotVolumePermissions returns the accounts granted create-volume
// permission on one of the caller's snapshots (DescribeSnapshotAttribute
// createVolumePermission).
func (e *EC2) SnapshotVolumePermissions(ctx context.Context, snapshotID string) ([]string, error) {
	var out []string
	err := e.withOwnSnapshot(ctx, opDescribeSnapshotAttribute, cloud.OpDescribeSnapshotAttribute, snapshotID, false, func(s *snapshot) error {
		out = s.perms.list()
		return nil
	})
	return out, err
}

// AddSnapshotVolumePermissions grants accountIDs create-volume permission on
// one of the caller's snapshots (ModifySnapshotAttribute
// createVolumePermission add). A snapshot encrypted with the AWS-managed
// default key cannot be shared ("Snapshots encrypted with your default KMS
// key cannot be shared with other accounts", ModifySnapshotAttribute,
// Amazon EC2 API Reference): OperationNotPermitted.
func (e *EC2) AddSnapshotVolumePermissions(ctx context.Context, snapshotID string, accountIDs []string) error {
	const op = cloud.OpModifySnapshotAttribute
	return e.withOwnSnapshot(ctx, opModifySnapshotAttribute, op, snapshotID, true, func(s *snapshot) error {
		if err := checkPermissionBatch(op, accountIDs); err != nil {
			return err
		}
		if s.encrypted && e.cloud.kms.isAWSManaged(s.keyARN) {
			return cloud.Errorf(op, "OperationNotPermitted",
				"snapshot %s: snapshots encrypted with your default KMS key cannot be shared with other accounts", snapshotID)
		}
		if s.perms == nil {
			s.perms = &grants{}
		}
		s.perms.add(accountIDs, e.cloud.clock.now())
		return nil
	})
}

// RemoveSnapshotVolumePermissions takes accountIDs off the create-volume
// permission of one of the caller's snapshots (ModifySnapshotAttribute
// createVolumePermission remove); as for images, removing an account that
// holds none is accepted.
func (e *EC2) RemoveSnapshotVolumePermissions(ctx context.Context, snapshotID string, accountIDs []string) error {
	const op = cloud.OpModifySnapshotAttribute
	return e.withOwnSnapshot(ctx, opModifySnapshotAttribute, op, snapshotID, true, func(s *snapshot) error {
		if err := checkPermissionBatch(op, accountIDs); err != nil {
			return err
		}
		if s.perms != nil {
			s.perms.remove(accountIDs)
		}
		return nil
	})
}

// withOwnImage makes one call of op about one of the caller's registered
// images and runs fn on it under the zone's lock (write says for writing).
func (e *EC2) withOwnImage(ctx context.Context, code opCode, op, imageID string, write bool, fn func(*image) error) error {
	return e.do(ctx, code, imageID, func() error {
		idx, err := e.ownImageIndex(op, imageID)
		if err != nil {
			return err
		}
		unlock := e.lockZone(write)
		defer unlock()
		im, err := e.ownImage(op, imageID, idx)
		if err != nil {
			return err
		}
		return fn(im)
	})
}

// withOwnSnapshot is withOwnImage for one of the caller's snapshots.
func (e *EC2) withOwnSnapshot(ctx context.Context, code opCode, op, snapshotID string, write bool, fn func(*snapshot) error) error {
	return e.do(ctx, code, snapshotID, func() error {
		idx, err := e.ownSnapshotIndex(op, snapshotID)
		if err != nil {
			return err
		}
		unlock := e.lockZone(write)
		defer unlock()
		s, err := e.ownSnapshot(op, snapshotID, idx)
		if err != nil {
			return err
		}
		return fn(s)
	})
}

func (e *EC2) lockZone(write bool) (unlock func()) {
	if write {
		e.zone.mu.Lock()
		return e.zone.mu.Unlock
	}
	e.zone.mu.RLock()
	return e.zone.mu.RUnlock
}

// SnapshotRelease is how long, on the simulator's clock, a snapshot stays
// "in use" after the image it backs is deregistered: deleting it right away
// fails with InvalidSnapshot.InUse. The EC2 documentation does not say how
// long the snapshot stays attached; it does give DeregisterImage a
// DeleteAssociatedSnapshots parameter ("Specifies whether to delete the
// snapshots associated with the AMI during deregistration", DeregisterImage,
// Amazon EC2 API Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeregisterImage.html),
// which deletes them without that race.
const SnapshotRelease = time.Minute

// DeregisterImage deregisters one of the caller's images. Without
// deleteSnapshots its snapshots stay, in use for SnapshotRelease; with it
// EC2 deletes them too, but for a snapshot another registered image still
// uses ("If a snapshot is associated with multiple AMIs, it is not deleted,
// regardless of this setting"; EC2 reports it skipped, which is not a
// failure). The simulator's deletions do not fail, so failed is empty.
func (e *EC2) DeregisterImage(ctx context.Context, imageID string, deleteSnapshots bool) (failed []string, err error) {
	const op = cloud.OpDeregisterImage
	err = e.withOwnImage(ctx, opDeregisterImage, op, imageID, true, func(im *image) error {
		im.state = stDeregistered
		e.zone.noteName(im.name, -1)
		now := e.cloud.clock.now()
		if d := e.cloud.cfg.deregisteredListing; d > 0 {
			im.ensureExtra().listedUntil = now + int64(d)
		}
		for _, d := range im.devices {
			s := e.zone.snapshots[d.snap]
			if s.deleted {
				continue
			}
			if !deleteSnapshots {
				s.releasedAt = now + int64(SnapshotRelease)
				continue
			}
			if e.zone.snapshotUsedByOther(d.snap, im) {
				continue // skipped: another image's
			}
			if s.undeletable {
				failed = append(failed, formatID(prefixSnapshot, e.zone.id, d.snap))
				s.releasedAt = now + int64(SnapshotRelease)
				continue
			}
			s.deleted = true
			s.perms, s.tags = nil, nil
		}
		return nil
	})
	return failed, err
}

// DeleteSnapshot deletes one of the caller's snapshots; a snapshot backing
// a registered image, or whose image was deregistered less than
// SnapshotRelease ago, is in use.
func (e *EC2) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	const op = cloud.OpDeleteSnapshot
	return e.withOwnSnapshot(ctx, opDeleteSnapshot, op, snapshotID, true, func(s *snapshot) error {
		if s.undeletable {
			return cloud.Errorf(op, "InternalError", "An internal error has occurred deleting snapshot %s", snapshotID)
		}
		if s.inUse() || s.releasedAt > e.cloud.clock.now() {
			return cloud.Errorf(op, "InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s",
				snapshotID, formatID(prefixImage, e.zone.id, slices.Index(e.zone.images, s.image)))
		}
		s.deleted = true
		s.perms, s.tags = nil, nil
		return nil
	})
}

// snapshotFilterLimit is the most values one EC2 call takes, so the most
// snapshot ids one DescribeSnapshots call of SnapshotKeys asks about.
const snapshotFilterLimit = cloud.MaxFilterValues

// SnapshotKeys returns the KMS key ARN of each of the caller's encrypted
// snapshots among snapshotIDs (DescribeSnapshots with a snapshot-id filter
// and OwnerIds self). As with EC2's filter, ids of other accounts or
// Regions, deleted snapshots and malformed ids simply do not match, and
// unencrypted snapshots are absent from the result. The ids, deduplicated,
// go 200 to a counted call (200 matches always fit one page of EC2's 1000);
// no ids, no call. A later call the buckets refuse is retried as a
// continuation page is.
func (e *EC2) SnapshotKeys(ctx context.Context, snapshotIDs []string) (map[string]string, error) {
	z := e.zone
	ids := slices.Clone(snapshotIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make(map[string]string)
	for chunk := range slices.Chunk(ids, snapshotFilterLimit) {
		call := func() error {
			return e.do(ctx, opDescribeSnapshots, "", func() error {
				z.mu.RLock()
				defer z.mu.RUnlock()
				for _, id := range chunk {
					zid, idx, ok := parseID(prefixSnapshot, id)
					if !ok || zid != z.id {
						continue
					}
					if s := z.snapshot(idx); s != nil && !s.deleted && s.encrypted {
						out[id] = s.keyARN
					}
				}
				return nil
			})
		}
		if err := call(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// instanceStateValues is how many filter values the instance-state-name
// filter of InstancesUsingImages takes: every state but terminated
// (pending, running, shutting-down, stopping, stopped).
const instanceStateValues = 5

// InstancesUsingImages counts the caller's instances (any state but
// terminated) launched from each of imageIDs; every requested id is in the
// result, with 0 when unused. One DescribeInstances call per
// cloud.MaxFilterValues-instanceStateValues ids, deduplicated, as the
// adapter sends them next to its state filter.
func (e *EC2) InstancesUsingImages(ctx context.Context, imageIDs []string) (map[string]int, error) {
	ids := slices.Clone(imageIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make(map[string]int, len(ids))
	for chunk := range slices.Chunk(ids, cloud.MaxFilterValues-instanceStateValues) {
		counts, err := e.instancesUsing(ctx, chunk)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, counts)
	}
	return out, nil
}

func (e *EC2) instancesUsing(ctx context.Context, imageIDs []string) (map[string]int, error) {
	type ref struct {
		zone  uint32
		index int
	}
	out := make(map[string]int, len(imageIDs))
	wanted := make(map[ref]string, len(imageIDs))
	for _, id := range imageIDs {
		out[id] = 0
		if zid, idx, ok := parseID(prefixImage, id); ok {
			wanted[ref{zid, idx}] = id
		}
	}
	err := e.do(ctx, opDescribeInstances, "", func() error {
		e.zone.mu.RLock()
		defer e.zone.mu.RUnlock()
		for _, in := range e.zone.instances {
			if id, ok := wanted[ref{in.imageZone, in.imageIndex}]; ok && !in.terminated {
				out[id]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
