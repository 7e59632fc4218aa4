package sim

import (
	"context"
	"regexp"
	"slices"

	"github.com/amicopier/amicopier/internal/cloud"
)

// MaxPermissionBatch is the most account ids one ModifyImageAttribute or
// ModifySnapshotAttribute call accepts.
const MaxPermissionBatch = 500

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

// checkPermissionBatch applies EC2's rules for the UserIds of one
// ModifyImageAttribute or ModifySnapshotAttribute call.
func checkPermissionBatch(op, badItemCode string, accountIDs []string) error {
	if len(accountIDs) == 0 {
		return cloud.Errorf(op, "MissingParameter", "no account ids to add")
	}
	if len(accountIDs) > MaxPermissionBatch {
		return cloud.Errorf(op, "InvalidParameterValue",
			"%d account ids in one call; at most %d modifications are allowed", len(accountIDs), MaxPermissionBatch)
	}
	for _, id := range accountIDs {
		if !cloud.IsAccountID(id) {
			return cloud.Errorf(op, badItemCode, "Invalid attribute item value %q for userId item type.", id)
		}
	}
	return nil
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
	if im.state == stDeregistered {
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

// DescribeImages lists the caller's own images (Owners=self) that are not
// deregistered and match q. Disabled images are listed, as EC2 lists them
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

// ImageLaunchPermissions returns the accounts granted launch permission on
// one of the caller's images (DescribeImageAttribute launchPermission).
func (e *EC2) ImageLaunchPermissions(ctx context.Context, imageID string) ([]string, error) {
	const op = cloud.OpDescribeImageAttribute
	var out []string
	err := e.do(ctx, opDescribeImageAttribute, imageID, func() error {
		idx, err := e.ownImageIndex(op, imageID)
		if err != nil {
			return err
		}
		e.zone.mu.RLock()
		defer e.zone.mu.RUnlock()
		im, err := e.ownImage(op, imageID, idx)
		if err != nil {
			return err
		}
		if im.extra != nil {
			out = im.extra.launch.list()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AddImageLaunchPermissions grants accountIDs launch permission on one of
// the caller's images (ModifyImageAttribute LaunchPermission.Add). Ids
// already granted are fine; a disabled image cannot be shared.
func (e *EC2) AddImageLaunchPermissions(ctx context.Context, imageID string, accountIDs []string) error {
	const op = cloud.OpModifyImageAttribute
	return e.do(ctx, opModifyImageAttribute, imageID, func() error {
		idx, err := e.ownImageIndex(op, imageID)
		if err != nil {
			return err
		}
		e.zone.mu.Lock()
		defer e.zone.mu.Unlock()
		im, err := e.ownImage(op, imageID, idx)
		if err != nil {
			return err
		}
		if err := checkPermissionBatch(op, "InvalidAMIAttributeItemValue", accountIDs); err != nil {
			return err
		}
		if st, _ := im.stateAt(e.cloud.clock.now()); st == stDisabled {
			return cloud.Errorf(op, "InvalidAMIID.Unavailable",
				"The AMI ID '%s' is currently disabled and may not be used for this operation", imageID)
		}
		im.ensureExtra().launch.add(accountIDs)
		return nil
	})
}

// SnapshotVolumePermissions returns the accounts granted create-volume
// permission on one of the caller's snapshots (DescribeSnapshotAttribute
// createVolumePermission).
func (e *EC2) SnapshotVolumePermissions(ctx context.Context, snapshotID string) ([]string, error) {
	const op = cloud.OpDescribeSnapshotAttribute
	var out []string
	err := e.do(ctx, opDescribeSnapshotAttribute, snapshotID, func() error {
		idx, err := e.ownSnapshotIndex(op, snapshotID)
		if err != nil {
			return err
		}
		e.zone.mu.RLock()
		defer e.zone.mu.RUnlock()
		s, err := e.ownSnapshot(op, snapshotID, idx)
		if err != nil {
			return err
		}
		if s.perms != nil {
			out = s.perms.list()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AddSnapshotVolumePermissions grants accountIDs create-volume permission on
// one of the caller's snapshots (ModifySnapshotAttribute
// createVolumePermission add). A snapshot encrypted with the AWS-managed
// default key cannot be shared: InvalidParameter.
func (e *EC2) AddSnapshotVolumePermissions(ctx context.Context, snapshotID string, accountIDs []string) error {
	const op = cloud.OpModifySnapshotAttribute
	return e.do(ctx, opModifySnapshotAttribute, snapshotID, func() error {
		idx, err := e.ownSnapshotIndex(op, snapshotID)
		if err != nil {
			return err
		}
		e.zone.mu.Lock()
		defer e.zone.mu.Unlock()
		s, err := e.ownSnapshot(op, snapshotID, idx)
		if err != nil {
			return err
		}
		if err := checkPermissionBatch(op, "InvalidParameterValue", accountIDs); err != nil {
			return err
		}
		if s.encrypted && e.cloud.kms.isAWSManaged(s.keyARN) {
			return cloud.Errorf(op, "InvalidParameter",
				"snapshot %s: snapshots encrypted with the AWS managed key can't be shared; re-encrypt it with a customer managed key", snapshotID)
		}
		if s.perms == nil {
			s.perms = &accountSet{}
		}
		s.perms.add(accountIDs)
		return nil
	})
}

// DeregisterImage deregisters one of the caller's images. Its snapshots
// stay (as in AWS) and can then be deleted.
func (e *EC2) DeregisterImage(ctx context.Context, imageID string) error {
	const op = cloud.OpDeregisterImage
	return e.do(ctx, opDeregisterImage, imageID, func() error {
		idx, err := e.ownImageIndex(op, imageID)
		if err != nil {
			return err
		}
		e.zone.mu.Lock()
		defer e.zone.mu.Unlock()
		im, err := e.ownImage(op, imageID, idx)
		if err != nil {
			return err
		}
		im.state = stDeregistered
		e.zone.noteName(im.name, -1)
		return nil
	})
}

// DeleteSnapshot deletes one of the caller's snapshots; a snapshot still
// backing a registered image is in use.
func (e *EC2) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	const op = cloud.OpDeleteSnapshot
	return e.do(ctx, opDeleteSnapshot, snapshotID, func() error {
		idx, err := e.ownSnapshotIndex(op, snapshotID)
		if err != nil {
			return err
		}
		e.zone.mu.Lock()
		defer e.zone.mu.Unlock()
		s, err := e.ownSnapshot(op, snapshotID, idx)
		if err != nil {
			return err
		}
		if s.inUse() {
			return cloud.Errorf(op, "InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s",
				snapshotID, formatID(prefixImage, e.zone.id, slices.Index(e.zone.images, s.image)))
		}
		s.deleted = true
		s.perms, s.tags = nil, nil
		return nil
	})
}

// snapshotFilterLimit is the most values one EC2 filter takes, so the most
// snapshot ids one DescribeSnapshots call of SnapshotKeys asks about.
const snapshotFilterLimit = 200

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

// InstancesUsingImages counts the caller's instances (any state but
// terminated) launched from each of imageIDs; every requested id is in the
// result, with 0 when unused. One DescribeInstances call.
func (e *EC2) InstancesUsingImages(ctx context.Context, imageIDs []string) (map[string]int, error) {
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
