package sim

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// The builder methods below set up and inspect the scene. They are not API
// calls: they are not counted, not subject to the fault hook, and skip the
// checks AWS would make (so tests can build states the API would refuse,
// such as a shared snapshot under an AWS-managed key). They panic on input
// that names nothing (an unknown image, a malformed account id), because a
// scene is built by code and such input is a bug in that code.

// ImageSpec describes an image for AddImage.
type ImageSpec struct {
	// Name defaults to "image-<n>". Names are not checked for uniqueness.
	Name        string
	Description string
	// Tags are interned: images given equal tags share one stored set.
	Tags map[string]string
	// State defaults to available. Any EC2 image state is accepted,
	// disabled included (as DisableImage leaves an image).
	State       cloud.ImageState
	StateReason string
	// CreationDate defaults to the clock's time.
	CreationDate time.Time
	// CompletesAt applies to pending images: when the clock reaches it the
	// image reads as available. Zero keeps the image pending for good.
	// Pending images count against the in-flight copy quota.
	CompletesAt time.Time
	// Devices are the EBS mappings; nil means one unencrypted 8 GiB
	// volume at /dev/xvda.
	Devices []DeviceSpec
	// DeprecationTime, when set, is when the image is (or was) deprecated
	// (EnableImageDeprecation), rounded to the nearest minute as EC2
	// stores it. Its owner still sees it in DescribeImages after that,
	// whatever IncludeDeprecated says.
	DeprecationTime time.Time
}

// DeviceSpec describes one EBS mapping (and its snapshot) of an image.
type DeviceSpec struct {
	// DeviceName defaults to /dev/xvda, /dev/xvdb, ... by position.
	DeviceName string
	// Size in GiB; defaults to 8.
	Size int32
	// Encrypted with KMSKeyARN, or with the owner's AWS-managed default
	// EBS key when KMSKeyARN is empty.
	Encrypted bool
	// KMSKeyARN names a key made by AddKey (any account of the Region);
	// it implies Encrypted.
	KMSKeyARN string
	// AWSManagedKey encrypts with the owner's AWS-managed aws/ebs key; it
	// implies Encrypted.
	AWSManagedKey bool
}

// Snapshot is an EBS snapshot as the inspection method Snapshot reports it.
type Snapshot struct {
	ID        string
	OwnerID   string
	Region    string
	Encrypted bool
	KMSKeyARN string
	Size      int32
	Tags      map[string]string
	// ImageID is the image the snapshot backs, while it is registered.
	ImageID string
}

// Key is a KMS key as the inspection method Key reports it.
type Key struct {
	ID                string
	ARN               string
	Account           string
	Region            string
	Aliases           []string
	AWSManaged        bool
	Enabled           bool
	AllowOrganization bool
	AllowedAccounts   []string
}

func deviceName(i int) string {
	if i == 0 {
		return "/dev/xvda"
	}
	return fmt.Sprintf("/dev/xvd%c", 'a'+rune(i%26))
}

// AddImage adds an image owned by account in region, with one new snapshot
// per device, and returns it as the inspection method Image would (with the
// snapshot keys, which DescribeImages leaves out). The returned Tags map is
// spec.Tags itself (the Cloud keeps its own copy), so bulk construction
// copies nothing it does not need to.
func (c *Cloud) AddImage(account, region string, spec ImageSpec) cloud.Image {
	z := c.mustZone("AddImage", account, region)
	state := stAvailable
	if spec.State != "" {
		var ok bool
		if state, ok = stateCodeOf(spec.State); !ok {
			panic(fmt.Sprintf("sim: AddImage %q: unknown image state %q", spec.Name, spec.State))
		}
	}
	now := c.clock.now()
	created := now
	if !spec.CreationDate.IsZero() {
		created = spec.CreationDate.UnixNano()
	}
	im := &image{name: spec.Name, description: spec.Description, created: created, tags: c.tags.intern(spec.Tags), state: state}
	if spec.StateReason != "" {
		im.ensureExtra().reason = spec.StateReason
	}
	if !spec.DeprecationTime.IsZero() {
		im.ensureExtra().deprecateAt = cloud.DeprecationMinute(spec.DeprecationTime).UnixNano()
	}
	if state == stPending {
		x := im.ensureExtra()
		x.completeAt, x.outcome = math.MaxInt64, stAvailable
		if !spec.CompletesAt.IsZero() {
			x.completeAt = spec.CompletesAt.UnixNano()
		}
	}
	devs := spec.Devices
	if devs == nil {
		devs = []DeviceSpec{{}}
	}
	snaps := make([]*snapshot, len(devs))
	im.devices = make([]device, len(devs))
	for i, d := range devs {
		s := &snapshot{image: im, size: d.Size, encrypted: d.Encrypted || d.AWSManagedKey || d.KMSKeyARN != ""}
		if s.size == 0 {
			s.size = 8
		}
		switch {
		case d.KMSKeyARN != "":
			if c.kms.get(d.KMSKeyARN) == nil {
				panic(fmt.Sprintf("sim: AddImage %q: no KMS key %q (make it with AddKey)", spec.Name, d.KMSKeyARN))
			}
			s.keyARN = d.KMSKeyARN
		case s.encrypted:
			s.keyARN = c.kms.defaultKey(account, region).arn
		}
		snaps[i] = s
		im.devices[i].name = d.DeviceName
		if d.DeviceName == "" {
			im.devices[i].name = deviceName(i)
		}
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	for i, s := range snaps {
		im.devices[i].snap = z.appendSnapshot(s)
	}
	if im.name == "" {
		im.name = fmt.Sprintf("image-%d", len(z.images))
	}
	idx := z.appendImage(im, now)
	return z.exportTags(idx, im, now, spec.Tags, true)
}

// lookupImage finds an image of account in region by id.
func (c *Cloud) lookupImage(account, region, id string) (*zone, int, *image) {
	z := c.existingZone(account, region)
	zid, idx, ok := parseID(prefixImage, id)
	if z == nil || !ok || zid != z.id {
		return nil, 0, nil
	}
	z.mu.RLock()
	defer z.mu.RUnlock()
	if im := z.image(idx); im != nil {
		return z, idx, im
	}
	return nil, 0, nil
}

func (c *Cloud) mustImage(method, account, region, id string) (*zone, int, *image) {
	z, idx, im := c.lookupImage(account, region, id)
	if im == nil {
		panic(fmt.Sprintf("sim: %s: no image %q in account %s Region %s", method, id, account, region))
	}
	return z, idx, im
}

// ShareImage grants accounts launch permission on the image and
// create-volume permission on all its snapshots, as the engine's sharing
// step would (but without its checks).
func (c *Cloud) ShareImage(account, region, imageID string, accounts ...string) {
	z, _, im := c.mustImage("ShareImage", account, region, imageID)
	z.mu.Lock()
	defer z.mu.Unlock()
	im.ensureExtra().launch.accounts.add(accounts, c.clock.now())
	c.noteShare(im.extra.launch.entities())
	for _, d := range im.devices {
		s := z.snapshots[d.snap]
		if s.perms == nil {
			s.perms = &grants{}
		}
		s.perms.add(accounts, c.clock.now())
	}
}

// GrantLaunchPermission grants accounts launch permission on the image only.
func (c *Cloud) GrantLaunchPermission(account, region, imageID string, accounts ...string) {
	z, _, im := c.mustImage("GrantLaunchPermission", account, region, imageID)
	z.mu.Lock()
	defer z.mu.Unlock()
	im.ensureExtra().launch.accounts.add(accounts, c.clock.now())
	c.noteShare(im.extra.launch.entities())
}

// GrantLaunchToOUs grants launch permission on the image to OUs (their
// ARNs, see OUARN) or the organisation (OrganizationARN), as another tool
// would.
func (c *Cloud) GrantLaunchToOUs(account, region, imageID string, arns ...string) {
	z, _, im := c.mustImage("GrantLaunchToOUs", account, region, imageID)
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, arn := range arns {
		if strings.Contains(arn, ":organization/") {
			im.ensureExtra().launch.orgs.add([]string{arn}, c.clock.now())
		} else {
			im.ensureExtra().launch.ous.add([]string{arn}, c.clock.now())
		}
	}
	c.noteShare(im.extra.launch.entities())
}

// GrantVolumePermission grants accounts create-volume permission on one
// snapshot.
func (c *Cloud) GrantVolumePermission(account, region, snapshotID string, accounts ...string) {
	c.editSnapshot("GrantVolumePermission", account, region, snapshotID, func(s *snapshot) {
		if s.perms == nil {
			s.perms = &grants{}
		}
		s.perms.add(accounts, c.clock.now())
	})
}

// BreakSnapshotDeletion makes EC2 fail (broken) or succeed again to delete
// one snapshot: DeregisterImage with DeleteAssociatedSnapshots reports it
// failed (DeleteSnapshotResults carries a return code per snapshot:
// "success", "skipped", "missing-permissions", "internal-error",
// "client-error", DeregisterImage, Amazon EC2 API Reference) and
// DeleteSnapshot answers InternalError.
func (c *Cloud) BreakSnapshotDeletion(account, region, snapshotID string, broken bool) {
	c.editSnapshot("BreakSnapshotDeletion", account, region, snapshotID, func(s *snapshot) { s.undeletable = broken })
}

// editSnapshot runs fn on a snapshot under its zone's lock; it panics when
// there is no such snapshot (scenes are built by code).
func (c *Cloud) editSnapshot(op, account, region, snapshotID string, fn func(*snapshot)) {
	z := c.existingZone(account, region)
	zid, idx, ok := parseID(prefixSnapshot, snapshotID)
	var s *snapshot
	if z != nil && ok && zid == z.id {
		z.mu.Lock()
		defer z.mu.Unlock()
		s = z.snapshot(idx)
	}
	if s == nil {
		panic(fmt.Sprintf("sim: %s: no snapshot %q in account %s Region %s", op, snapshotID, account, region))
	}
	fn(s)
}

// DisableImage disables an image as its owner's DisableImage call would:
// the image turns disabled, loses every launch permission (accounts it was
// shared with lose access; its snapshots keep their create-volume
// permissions) and can be neither launched, shared nor copied until
// EnableImage. It panics unless the image is available.
func (c *Cloud) DisableImage(account, region, imageID string) {
	z, _, im := c.mustImage("DisableImage", account, region, imageID)
	z.mu.Lock()
	defer z.mu.Unlock()
	if st, _ := im.stateAt(c.clock.now()); st != stAvailable {
		panic(fmt.Sprintf("sim: DisableImage: image %s is %s, not available", imageID, stateNames[st]))
	}
	im.state = stDisabled
	if x := im.extra; x != nil {
		// A settled copy's outcome no longer applies; the permissions
		// go, as in EC2, and re-enabling does not bring them back.
		x.launch.clear()
		x.reason, x.outcomeReason = "", ""
	}
}

// DeprecateImage sets the image's DeprecationTime, as its owner's
// EnableImageDeprecation does (rounded to the nearest minute; none of the
// API's checks, so a time in the past is taken); a zero at clears it
// (DisableImageDeprecation). Deprecation hides an image from accounts that
// do not own it unless they ask for it ("you can still describe a
// deprecated AMI by specifying its ID"), but not from its owner: "If you
// are the AMI owner, all deprecated AMIs appear in the response regardless
// of what you specify for this parameter" (IncludeDeprecated,
// DescribeImages, Amazon EC2 API Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html).
// The engine only describes images it owns, so the simulator lists
// deprecated images to every caller. A deprecated AMI can still be
// launched and copied by those it is shared with.
func (c *Cloud) DeprecateImage(account, region, imageID string, at time.Time) {
	z, _, im := c.mustImage("DeprecateImage", account, region, imageID)
	z.mu.Lock()
	defer z.mu.Unlock()
	if at.IsZero() {
		if im.extra != nil {
			im.extra.deprecateAt = 0
		}
		return
	}
	im.ensureExtra().deprecateAt = cloud.DeprecationMinute(at).UnixNano()
}

// EnableImage makes a disabled image available again, as EnableImage does;
// the launch permissions DisableImage removed stay removed. It panics
// unless the image is disabled.
func (c *Cloud) EnableImage(account, region, imageID string) {
	z, _, im := c.mustImage("EnableImage", account, region, imageID)
	z.mu.Lock()
	defer z.mu.Unlock()
	if st, _ := im.stateAt(c.clock.now()); st != stDisabled {
		panic(fmt.Sprintf("sim: EnableImage: image %s is %s, not disabled", imageID, stateNames[st]))
	}
	im.state = stAvailable
}

// LaunchInstance starts an instance in account and region from imageID
// (owned by any account of the Region) and returns the instance id.
func (c *Cloud) LaunchInstance(account, region, imageID string) string {
	z := c.mustZone("LaunchInstance", account, region)
	zid, idx, ok := parseID(prefixImage, imageID)
	if src := c.zoneByID(zid); !ok || src == nil || src.region != region {
		panic(fmt.Sprintf("sim: LaunchInstance: no image %q in Region %s", imageID, region))
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	z.instances = append(z.instances, instance{imageZone: zid, imageIndex: idx})
	return formatID(prefixInstance, z.id, len(z.instances)-1)
}

// TerminateInstance terminates an instance made by LaunchInstance.
func (c *Cloud) TerminateInstance(account, region, instanceID string) {
	z := c.existingZone(account, region)
	zid, idx, ok := parseID(prefixInstance, instanceID)
	if z == nil || !ok || zid != z.id {
		panic(fmt.Sprintf("sim: TerminateInstance: no instance %q in account %s Region %s", instanceID, account, region))
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if idx >= len(z.instances) {
		panic(fmt.Sprintf("sim: TerminateInstance: no instance %q in account %s Region %s", instanceID, account, region))
	}
	z.instances[idx].terminated = true
}

// Image returns an image of account in region as its owner would see it,
// state evaluated at the current time, with the key of each encrypted
// snapshot (which DescribeImages does not report); deregistered images are
// reported too (with state deregistered).
func (c *Cloud) Image(account, region, id string) (cloud.Image, bool) {
	z, idx, im := c.lookupImage(account, region, id)
	if im == nil {
		return cloud.Image{}, false
	}
	z.mu.RLock()
	defer z.mu.RUnlock()
	return z.inspect(idx, im, c.clock.now()), true
}

// Images returns every image account owns in region that is not
// deregistered (pending, failed and disabled included), in creation order,
// with the snapshot keys as Image reports them.
func (c *Cloud) Images(account, region string) []cloud.Image {
	z := c.existingZone(account, region)
	if z == nil {
		return nil
	}
	now := c.clock.now()
	z.mu.RLock()
	defer z.mu.RUnlock()
	var out []cloud.Image
	for i, im := range z.images {
		if im.state != stDeregistered {
			out = append(out, z.inspect(i, im, now))
		}
	}
	return out
}

// PendingCopies returns how many images of account in region are pending
// now (what the in-flight quota counts).
func (c *Cloud) PendingCopies(account, region string) int {
	z := c.existingZone(account, region)
	if z == nil {
		return 0
	}
	now := c.clock.now()
	z.mu.RLock()
	defer z.mu.RUnlock()
	n := 0
	for _, im := range z.pending {
		if st, _ := im.stateAt(now); st == stPending {
			n++
		}
	}
	return n
}

// Snapshot returns a snapshot of account in region; deleted snapshots are
// not found.
func (c *Cloud) Snapshot(account, region, id string) (Snapshot, bool) {
	z := c.existingZone(account, region)
	zid, idx, ok := parseID(prefixSnapshot, id)
	if z == nil || !ok || zid != z.id {
		return Snapshot{}, false
	}
	z.mu.RLock()
	defer z.mu.RUnlock()
	s := z.snapshot(idx)
	if s == nil || s.deleted {
		return Snapshot{}, false
	}
	out := Snapshot{ID: id, OwnerID: account, Region: region, Encrypted: s.encrypted, KMSKeyARN: s.keyARN, Size: s.size, Tags: s.tags.toMap()}
	if s.inUse() {
		out.ImageID = formatID(prefixImage, z.id, slices.Index(z.images, s.image))
	}
	return out, true
}

// LaunchPermissions returns the accounts granted launch permission on an
// image (sorted), or nil.
func (c *Cloud) LaunchPermissions(account, region, imageID string) []string {
	return c.LaunchPermission(account, region, imageID).Accounts
}

// LaunchPermission returns who is granted launch permission on an image:
// accounts, OUs and organisations.
func (c *Cloud) LaunchPermission(account, region, imageID string) cloud.LaunchPermission {
	z, _, im := c.lookupImage(account, region, imageID)
	if im == nil {
		return cloud.LaunchPermission{}
	}
	z.mu.RLock()
	defer z.mu.RUnlock()
	if im.extra == nil {
		return cloud.LaunchPermission{}
	}
	return im.extra.launch.export()
}

// AccountCanLaunch reports whether caller may launch the image now, by
// its own grant, an OU's or the organisation's (the check CopyImage
// makes).
func (c *Cloud) AccountCanLaunch(account, region, imageID, caller string) bool {
	z, _, im := c.lookupImage(account, region, imageID)
	if im == nil {
		return false
	}
	z.mu.RLock()
	defer z.mu.RUnlock()
	return im.state != stDeregistered && c.launchAllowed(im, account, caller)
}

// SnapshotPermissions returns the accounts granted create-volume permission
// on a snapshot (sorted), or nil.
func (c *Cloud) SnapshotPermissions(account, region, snapshotID string) []string {
	z := c.existingZone(account, region)
	zid, idx, ok := parseID(prefixSnapshot, snapshotID)
	if z == nil || !ok || zid != z.id {
		return nil
	}
	z.mu.RLock()
	defer z.mu.RUnlock()
	s := z.snapshot(idx)
	if s == nil || s.perms == nil {
		return nil
	}
	return s.perms.list()
}

// AddKey makes a customer-managed KMS key in account and region, with an
// optional alias ("name" or "alias/name"), and returns its ARN. Only its own
// account may use it until AllowKeyUse or AllowKeyUseByOrganization says
// otherwise. It panics on a malformed account, Region or alias, or an alias
// already taken.
func (c *Cloud) AddKey(account, region, alias string) string {
	c.mustZone("AddKey", account, region)
	k, err := c.kms.add(account, region, alias)
	if err != nil {
		panic(fmt.Sprintf("sim: AddKey: %v", err))
	}
	return k.arn
}

func (c *Cloud) mustKey(method, arn string) *kmsKey {
	k := c.kms.get(arn)
	if k == nil {
		panic(fmt.Sprintf("sim: %s: no KMS key %q", method, arn))
	}
	return k
}

// AllowKeyUse lets accounts use a customer key (its key policy grants them
// kms:Decrypt, kms:CreateGrant and friends).
func (c *Cloud) AllowKeyUse(keyARN string, accounts ...string) {
	k := c.mustKey("AllowKeyUse", keyARN)
	c.kms.mu.Lock()
	defer c.kms.mu.Unlock()
	k.allow.add(accounts)
}

// AllowKeyUseByOrganization lets every account of the organisation use a
// customer key (a key policy conditioned on aws:PrincipalOrgID).
func (c *Cloud) AllowKeyUseByOrganization(keyARN string) {
	k := c.mustKey("AllowKeyUseByOrganization", keyARN)
	c.kms.mu.Lock()
	defer c.kms.mu.Unlock()
	k.allowOrg = true
}

// SetKeyEnabled enables or disables a key. Copies started while a key they
// need is disabled turn failed when they complete.
func (c *Cloud) SetKeyEnabled(keyARN string, enabled bool) {
	k := c.mustKey("SetKeyEnabled", keyARN)
	c.kms.mu.Lock()
	defer c.kms.mu.Unlock()
	k.state = cloud.KeyDisabled
	if enabled {
		k.state = cloud.KeyEnabled
	}
}

// DefaultEBSKey returns the ARN of the AWS-managed aws/ebs key of account
// in region, making it if needed (as AWS does on first use).
func (c *Cloud) DefaultEBSKey(account, region string) string {
	c.mustZone("DefaultEBSKey", account, region)
	return c.kms.defaultKey(account, region).arn
}

// ResolveKey returns the key ref names for account in region, ref being
// what CopyImage accepts as KmsKeyId: a key id, alias name, key ARN or alias
// ARN. It does not say whether account may use the key.
func (c *Cloud) ResolveKey(account, region, ref string) (Key, bool) {
	k := c.kms.resolve(account, region, ref)
	if k == nil {
		return Key{}, false
	}
	return c.Key(k.arn)
}

// Key returns a key by ARN.
func (c *Cloud) Key(arn string) (Key, bool) {
	k := c.kms.get(arn)
	if k == nil {
		return Key{}, false
	}
	c.kms.mu.RLock()
	defer c.kms.mu.RUnlock()
	return Key{
		ID: k.id, ARN: k.arn, Account: k.account, Region: k.region,
		Aliases: slices.Clone(k.aliases), AWSManaged: k.awsManaged, Enabled: k.keyState() == cloud.KeyEnabled,
		AllowOrganization: k.allowOrg, AllowedAccounts: k.allow.list(),
	}, true
}
