package sim

import (
	"slices"
	"sync"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// stateCode is an image state in one byte.
type stateCode uint8

const (
	stPending stateCode = iota
	stAvailable
	stFailed
	stDeregistered
	stInvalid
	stTransient
	stError
	stDisabled
	numStates
)

var stateNames = [numStates]cloud.ImageState{
	stPending:      cloud.ImagePending,
	stAvailable:    cloud.ImageAvailable,
	stFailed:       cloud.ImageFailed,
	stDeregistered: cloud.ImageDeregistered,
	stInvalid:      "invalid",
	stTransient:    "transient",
	stError:        "error",
	stDisabled:     cloud.ImageDisabled,
}

func stateCodeOf(s cloud.ImageState) (stateCode, bool) {
	for i, name := range stateNames {
		if name == s {
			return stateCode(i), true
		}
	}
	return 0, false
}

// accountSet is a sorted set of account ids (a launch or create-volume
// permission). A slice, not a map: most sets are empty or small, and the
// engine reads them whole.
type accountSet struct {
	ids []string
}

func (s *accountSet) has(id string) bool {
	_, found := slices.BinarySearch(s.ids, id)
	return found
}

func (s *accountSet) add(ids []string) {
	for _, id := range ids {
		if i, found := slices.BinarySearch(s.ids, id); !found {
			s.ids = slices.Insert(s.ids, i, id)
		}
	}
}

func (s *accountSet) list() []string { return slices.Clone(s.ids) }

// image is one AMI. Its id is its position in zone.images; its owner and
// Region are the zone's. Kept small: a benchmark holds a million.
type image struct {
	name        string
	description string
	created     int64 // Unix nanoseconds
	tags        *tagSet
	devices     []device
	state       stateCode
	extra       *imageExtra
}

// imageExtra holds what most images do not need.
type imageExtra struct {
	launch launchPermission
	reason string
	// completeAt is when a pending image settles into outcome (Unix
	// nanoseconds); math.MaxInt64 for an image that stays pending.
	completeAt    int64
	outcome       stateCode
	outcomeReason string
	// listedFrom is when DescribeImages starts listing the image
	// (WithListingDelay); listedUntil, for a deregistered image, when it
	// stops (WithDeregisteredListing). Unix nanoseconds; 0 means no bound.
	listedFrom, listedUntil int64
	// deprecateAt is the image's DeprecationTime (Unix nanoseconds); 0
	// for none.
	deprecateAt int64
}

func (im *image) ensureExtra() *imageExtra {
	if im.extra == nil {
		im.extra = &imageExtra{}
	}
	return im.extra
}

// listed reports whether DescribeImages shows the image at now.
func (im *image) listed(now int64) bool {
	x := im.extra
	if im.state == stDeregistered {
		return x != nil && x.listedUntil > now
	}
	return x == nil || x.listedFrom <= now
}

// stateAt evaluates the image's state at now: a pending copy settles once
// the clock reaches its completion time. Evaluation is lazy, so no
// goroutine moves copies along.
func (im *image) stateAt(now int64) (stateCode, string) {
	x := im.extra
	if x == nil {
		return im.state, ""
	}
	if im.state == stPending && x.completeAt <= now {
		return x.outcome, x.outcomeReason
	}
	return im.state, x.reason
}

// device is one EBS mapping; snap is the snapshot's position in the same
// zone.
type device struct {
	name string
	snap int
}

// snapshot is one EBS snapshot; its id is its position in zone.snapshots.
type snapshot struct {
	image     *image // the image registered with it, if any
	keyARN    string
	tags      *tagSet
	perms     *grants
	size      int32
	encrypted bool
	deleted   bool
	// releasedAt is when the snapshot stops being in use after its image
	// was deregistered (Unix nanoseconds of the simulator's clock).
	releasedAt int64
	// undeletable makes EC2 fail to delete it (BreakSnapshotDeletion).
	undeletable bool
}

func (s *snapshot) inUse() bool { return s.image != nil && s.image.state != stDeregistered }

// snapshotUsedByOther reports whether a registered image other than im is
// backed by snapshot index idx. Caller holds z.mu.
func (z *zone) snapshotUsedByOther(idx int, im *image) bool {
	for _, other := range z.images {
		if other == im || other.state == stDeregistered {
			continue
		}
		for _, d := range other.devices {
			if d.snap == idx {
				return true
			}
		}
	}
	return false
}

type instance struct {
	imageZone  uint32
	imageIndex int
	terminated bool
}

type zoneKey struct{ account, region string }

// copyParams are the parameters a ClientToken is bound to; tags are
// interned, so == compares them.
type copyParams struct {
	source, sourceRegion, name, description, kmsKeyID string
	encrypted                                         bool
	tags                                              *tagSet
}

type copyToken struct {
	params copyParams
	image  int
}

// zone is everything one account holds in one Region. Its lock guards all
// of its fields but the immutable id, account, region and calls.
type zone struct {
	id      uint32
	account string
	region  string
	calls   *cell

	mu        sync.RWMutex
	images    []*image
	snapshots []*snapshot
	instances []instance
	// names counts the registered images by name; built on first need,
	// since bulk-built zones may never be asked.
	names  map[string]int32
	tokens map[string]copyToken
	// pending holds the images that may still be pending, for the
	// in-flight quota; pruned on each CopyImage.
	pending []*image
	// templates are the zone's launch templates (lifecycle.go); a
	// template's id is its position.
	templates []*launchTemplate
}

func (z *zone) image(index int) *image {
	if index < 0 || index >= len(z.images) {
		return nil
	}
	return z.images[index]
}

func (z *zone) snapshot(index int) *snapshot {
	if index < 0 || index >= len(z.snapshots) {
		return nil
	}
	return z.snapshots[index]
}

// nameInUse reports whether a registered image is called name. Caller holds
// z.mu for writing.
func (z *zone) nameInUse(name string) bool {
	if z.names == nil {
		z.names = make(map[string]int32)
		for _, im := range z.images {
			if im.state != stDeregistered {
				z.names[im.name]++
			}
		}
	}
	return z.names[name] > 0
}

func (z *zone) noteName(name string, delta int32) {
	if z.names == nil {
		return
	}
	if n := z.names[name] + delta; n > 0 {
		z.names[name] = n
	} else {
		delete(z.names, name)
	}
}

// appendImage adds im with its snapshots already in place. Caller holds
// z.mu for writing.
func (z *zone) appendImage(im *image, now int64) int {
	idx := len(z.images)
	if idx >= maxPerZone {
		panic("sim: too many images in one account and Region")
	}
	z.images = append(z.images, im)
	if im.state != stDeregistered {
		z.noteName(im.name, 1)
	}
	if st, _ := im.stateAt(now); st == stPending {
		z.pending = append(z.pending, im)
	}
	return idx
}

func (z *zone) appendSnapshot(s *snapshot) int {
	idx := len(z.snapshots)
	if idx >= maxPerZone {
		panic("sim: too many snapshots in one account and Region")
	}
	z.snapshots = append(z.snapshots, s)
	return idx
}

// inFlight drops settled and deregistered images from the pending list and
// returns how many copies are still pending. Caller holds z.mu for writing.
func (z *zone) inFlight(now int64) int {
	kept := z.pending[:0]
	for _, im := range z.pending {
		if st, _ := im.stateAt(now); st == stPending {
			kept = append(kept, im)
		}
	}
	clear(z.pending[len(kept):])
	z.pending = kept
	return len(kept)
}

// export renders an image as DescribeImages shows it to its owner; tags
// and slices are fresh copies. Like EC2, it says whether each volume is
// encrypted but not with which key: the key is only told by
// DescribeSnapshots (EC2.SnapshotKeys), and an engine reading it here would
// pass against the simulator and fail against AWS. Caller holds z.mu.
func (z *zone) export(index int, im *image, now int64) cloud.Image {
	return z.exportTags(index, im, now, im.tags.toMap(), false)
}

// inspect is export with the snapshot keys filled in, for the builder's
// inspection methods: tests tell keys apart without making API calls.
func (z *zone) inspect(index int, im *image, now int64) cloud.Image {
	return z.exportTags(index, im, now, im.tags.toMap(), true)
}

// exportTags renders an image with the Tags map supplied by the caller,
// with the snapshot keys when keys is set.
func (z *zone) exportTags(index int, im *image, now int64, tags map[string]string, keys bool) cloud.Image {
	st, reason := im.stateAt(now)
	out := cloud.Image{
		ID:           formatID(prefixImage, z.id, index),
		Name:         im.name,
		Description:  im.description,
		OwnerID:      z.account,
		Region:       z.region,
		State:        stateNames[st],
		StateReason:  reason,
		CreationDate: time.Unix(0, im.created).UTC(),
		Tags:         tags,
	}
	if im.extra != nil && im.extra.deprecateAt != 0 {
		out.DeprecationTime = time.Unix(0, im.extra.deprecateAt).UTC()
	}
	if len(im.devices) > 0 {
		out.BlockDevices = make([]cloud.BlockDevice, len(im.devices))
		for i, d := range im.devices {
			s := z.snapshots[d.snap]
			out.BlockDevices[i] = cloud.BlockDevice{
				DeviceName: d.name,
				SnapshotID: formatID(prefixSnapshot, z.id, d.snap),
				Encrypted:  s.encrypted,
				VolumeSize: s.size,
			}
			if keys {
				out.BlockDevices[i].KMSKeyID = s.keyARN
			}
		}
	}
	return out
}
