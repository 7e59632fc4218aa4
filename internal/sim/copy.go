package sim

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/amicopier/amicopier/internal/cloud"
)

// Limits CopyImage enforces.
const (
	MaxClientTokenLength = 64
	MaxTags              = 50
	MaxTagKeyLength      = 128
	MaxTagValueLength    = 256
	MaxDescriptionLength = 255
)

var amiNamePattern = regexp.MustCompile(`^[a-zA-Z0-9 ()\[\]./\-'@_]{3,128}$`)

// srcDevice is what a copy needs to know of one source mapping.
type srcDevice struct {
	name      string
	snapID    string
	keyARN    string
	size      int32
	encrypted bool
}

// CopyImage starts a copy of in.SourceImageID (looked up in in.SourceRegion
// among all owners) into the caller's account and Region and returns the new
// image id; the copy is pending for the Cloud's copy duration, then available
// or failed. See the package tests for the rules it enforces; in short:
// a ClientToken seen before replays its first answer; the name, description
// and tags are validated; the source must be available and visible to the
// caller, with create-volume permission on every snapshot; the in-flight
// quota must have room. KMS problems are not errors: as in AWS, the copy is
// accepted and turns failed, with a Client.InvalidKMSKey.InvalidState
// reason.
func (e *EC2) CopyImage(ctx context.Context, in cloud.CopyImageInput) (string, error) {
	var id string
	err := e.do(ctx, opCopyImage, in.SourceImageID, func() error {
		var err error
		id, err = e.copyImage(in)
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

func (e *EC2) copyImage(in cloud.CopyImageInput) (string, error) {
	const op = cloud.OpCopyImage
	c, z := e.cloud, e.zone
	if err := e.authorizeCopy(op, in); err != nil {
		return "", err
	}
	if err := checkClientToken(in.ClientToken); err != nil {
		return "", err
	}
	params := copyParams{
		source: in.SourceImageID, sourceRegion: in.SourceRegion, name: in.Name, description: in.Description,
		kmsKeyID: in.KMSKeyID, encrypted: in.Encrypted, tags: c.tags.intern(in.Tags),
	}
	if in.ClientToken != "" {
		z.mu.RLock()
		t, seen := z.tokens[in.ClientToken]
		z.mu.RUnlock()
		if seen {
			return e.replay(in.ClientToken, t, params)
		}
	}
	if err := checkCopyInput(in); err != nil {
		return "", err
	}
	now := c.clock.now()
	src, err := c.copySource(in, z.account, now)
	if err != nil {
		return "", err
	}
	devs, failure := c.copyEncryption(in, z.account, z.region, src)
	if failure == "" && e.assumed && customerKey(c, devs) && !c.copierMayUseKey(z.account) {
		failure = fmt.Sprintf("Client.InvalidKMSKey.InvalidState: the copier role of account %s is not allowed to use the KMS key (%s)",
			z.account, strings.Join(copyKeyActions, ", "))
	}

	z.mu.Lock()
	defer z.mu.Unlock()
	if in.ClientToken != "" {
		// A concurrent call with the same token may have won the race.
		if t, seen := z.tokens[in.ClientToken]; seen {
			return e.replay(in.ClientToken, t, params)
		}
	}
	if z.nameInUse(in.Name) {
		return "", cloud.Errorf(op, "InvalidAMIName.Duplicate",
			"AMI name %q is already in use by an image in account %s Region %s", in.Name, z.account, z.region)
	}
	if n := z.inFlight(now); n >= c.cfg.inFlightQuota {
		return "", cloud.Errorf(op, "ResourceLimitExceeded",
			"account %s Region %s already has %d image copies in progress (quota %d)", z.account, z.region, n, c.cfg.inFlightQuota)
	}
	im := &image{
		name: in.Name, description: in.Description, created: now, tags: params.tags, state: stPending,
		extra: &imageExtra{completeAt: now + int64(c.cfg.copyDuration), outcome: stAvailable, listedFrom: now + int64(c.cfg.listingDelay)},
	}
	if failure != "" {
		im.extra.outcome, im.extra.outcomeReason = stFailed, failure
	}
	im.devices = make([]device, len(devs))
	for i, d := range devs {
		snap := z.appendSnapshot(&snapshot{image: im, keyARN: d.keyARN, tags: params.tags, size: d.size, encrypted: d.encrypted})
		im.devices[i] = device{name: d.name, snap: snap}
	}
	idx := z.appendImage(im, now)
	if in.ClientToken != "" {
		if z.tokens == nil {
			z.tokens = make(map[string]copyToken)
		}
		z.tokens[in.ClientToken] = copyToken{params: params, image: idx}
	}
	return formatID(prefixImage, z.id, idx), nil
}

// customerKey reports whether a copy's snapshots are encrypted with a
// customer managed key, whose use the copier role's IAM policy must allow;
// an AWS managed key serves every principal of its account authorised to
// use the service that made it ("AWS managed keys", AWS KMS Developer
// Guide, https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-cmk).
func customerKey(c *Cloud, devs []srcDevice) bool {
	for _, d := range devs {
		if d.encrypted && d.keyARN != "" && c.kms.get(d.keyARN) != nil && !c.kms.isAWSManaged(d.keyARN) {
			return true
		}
	}
	return false
}

// authorizeCopy is IAM's verdict on a CopyImage of the copier role: it
// needs ec2:CopyImage, and ec2:CreateTags when the request tags the new
// image and snapshots ("Grant permissions to copy Amazon EC2 AMIs", Amazon
// EC2 User Guide,
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/copy-ami-permissions.html).
func (e *EC2) authorizeCopy(op string, in cloud.CopyImageInput) error {
	if !e.assumed {
		return nil
	}
	if !e.cloud.copierAllows(e.zone.account, "ec2:CopyImage") {
		return unauthorizedEC2(op, e.zone.account, "ec2:CopyImage")
	}
	if len(in.Tags) > 0 && !e.cloud.copierAllows(e.zone.account, "ec2:CreateTags") {
		return unauthorizedEC2(op, e.zone.account, "ec2:CreateTags")
	}
	return nil
}

// DryRunCopyImage answers CopyImage with DryRun set: "Checks whether you
// have the required permissions for the action, without actually making
// the request ... If you have the required permissions, the error response
// is DryRunOperation. Otherwise, it is UnauthorizedOperation" (CopyImage,
// Amazon EC2 API Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyImage.html).
// It returns nil for DryRunOperation. It validates the request as a real
// call would, then asks IAM (ec2:CopyImage, and ec2:CreateTags for the
// tags); it does not look at the source image, its snapshots or the key:
// whether EC2 does in a dry run is not documented, and the engine takes
// any answer but these two as inconclusive. Nothing changes, and the call
// is counted apart (cloud.OpCopyImageDryRun), never as mutating.
func (e *EC2) DryRunCopyImage(ctx context.Context, in cloud.CopyImageInput) error {
	return e.do(ctx, opCopyImageDryRun, in.SourceImageID, func() error {
		if err := checkClientToken(in.ClientToken); err != nil {
			return err
		}
		if err := checkCopyInput(in); err != nil {
			return err
		}
		return e.authorizeCopy(cloud.OpCopyImage, in)
	})
}

var _ cloud.CopyDryRunner = (*EC2)(nil)

// replay answers a CopyImage whose ClientToken was seen before: the same
// image id for the same parameters (even if that image is gone since),
// IdempotentParameterMismatch otherwise.
func (e *EC2) replay(token string, t copyToken, params copyParams) (string, error) {
	if t.params != params {
		return "", cloud.Errorf(cloud.OpCopyImage, "IdempotentParameterMismatch",
			"client token %q was already used with different parameters (source %s)", token, t.params.source)
	}
	return formatID(prefixImage, e.zone.id, t.image), nil
}

func checkClientToken(token string) error {
	if len(token) > MaxClientTokenLength {
		return cloud.Errorf(cloud.OpCopyImage, "InvalidParameterValue",
			"client token %q is longer than %d characters", token, MaxClientTokenLength)
	}
	for i := 0; i < len(token); i++ {
		if token[i] < 0x20 || token[i] > 0x7e {
			return cloud.Errorf(cloud.OpCopyImage, "InvalidParameterValue", "client token %q is not printable ASCII", token)
		}
	}
	return nil
}

// checkCopyInput applies the request validation AWS does before looking at
// any resource.
func checkCopyInput(in cloud.CopyImageInput) error {
	const op = cloud.OpCopyImage
	if in.KMSKeyID != "" && !in.Encrypted {
		return cloud.Errorf(op, "InvalidParameterCombination",
			"KmsKeyId %q requires Encrypted to be true", in.KMSKeyID)
	}
	if !cloud.IsRegion(in.SourceRegion) {
		return cloud.Errorf(op, "InvalidParameterValue", "SourceRegion %q is not a Region", in.SourceRegion)
	}
	if !amiNamePattern.MatchString(in.Name) {
		return cloud.Errorf(op, "InvalidAMIName.Malformed",
			"AMI name %q must be 3 to 128 letters, digits, spaces and ( ) [ ] . / - ' @ _", in.Name)
	}
	if n := utf8.RuneCountInString(in.Description); n > MaxDescriptionLength {
		return cloud.Errorf(op, "InvalidParameterValue",
			"description of AMI %q is %d characters long; at most %d are allowed", in.Name, n, MaxDescriptionLength)
	}
	if len(in.Tags) > MaxTags {
		return cloud.Errorf(op, "TagLimitExceeded", "%d tags given; at most %d are allowed", len(in.Tags), MaxTags)
	}
	for _, k := range slices.Sorted(maps.Keys(in.Tags)) {
		v := in.Tags[k]
		switch n := utf8.RuneCountInString(k); {
		case n == 0 || n > MaxTagKeyLength:
			return cloud.Errorf(op, "InvalidParameterValue",
				"tag key %q must be 1 to %d characters long", k, MaxTagKeyLength)
		case strings.HasPrefix(k, "aws:"):
			return cloud.Errorf(op, "InvalidParameterValue", "tag key %q: keys starting with aws: are reserved", k)
		case utf8.RuneCountInString(v) > MaxTagValueLength:
			return cloud.Errorf(op, "InvalidParameterValue",
				"value of tag %q is longer than %d characters", k, MaxTagValueLength)
		}
	}
	return nil
}

// copySource finds the source image and checks the caller may copy it.
func (c *Cloud) copySource(in cloud.CopyImageInput, caller string, now int64) ([]srcDevice, error) {
	const op = cloud.OpCopyImage
	id := in.SourceImageID
	if !cloud.IsImageID(id) {
		return nil, cloud.Errorf(op, "InvalidAMIID.Malformed", "Invalid id: %q", id)
	}
	notFound := cloud.Errorf(op, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist in Region %s", id, in.SourceRegion)
	zid, idx, ok := parseID(prefixImage, id)
	if !ok {
		return nil, notFound
	}
	sz := c.zoneByID(zid)
	if sz == nil || sz.region != in.SourceRegion {
		return nil, notFound
	}
	sz.mu.RLock()
	defer sz.mu.RUnlock()
	im := sz.image(idx)
	// AWS does not tell a caller about images it may not launch.
	if im == nil || im.state == stDeregistered || !c.launchAllowed(im, sz.account, caller) {
		return nil, notFound
	}
	if st, _ := im.stateAt(now); st != stAvailable {
		return nil, cloud.Errorf(op, "InvalidAMIID.Unavailable", "The image id '[%s]' is %s, not available", id, stateNames[st])
	}
	devs := make([]srcDevice, len(im.devices))
	for i, d := range im.devices {
		s := sz.snapshots[d.snap]
		snapID := formatID(prefixSnapshot, sz.id, d.snap)
		if s.deleted || !c.volumeAllowed(s, sz.account, caller) {
			return nil, cloud.Errorf(op, "AuthFailure",
				"account %s is not authorized to use snapshot %s of image %s: no create-volume permission", caller, snapID, id)
		}
		devs[i] = srcDevice{name: d.name, snapID: snapID, keyARN: s.keyARN, size: s.size, encrypted: s.encrypted}
	}
	return devs, nil
}

// copyEncryption decides how the copy's snapshots are encrypted and whether
// the copy will fail for a KMS reason (an empty failure means it will
// succeed). AWS checks keys asynchronously, so a bad key is never an error
// of the call itself.
func (c *Cloud) copyEncryption(in cloud.CopyImageInput, caller, region string, src []srcDevice) ([]srcDevice, string) {
	encrypt := in.Encrypted
	for _, d := range src {
		encrypt = encrypt || d.encrypted
	}
	if !encrypt {
		return src, ""
	}
	inOrg := c.inOrg(caller)
	var destARN, failure string
	if in.KMSKeyID == "" {
		destARN = c.kms.defaultKey(caller, region).arn
	} else {
		k := c.kms.resolve(caller, region, in.KMSKeyID)
		switch {
		case k == nil:
			destARN = in.KMSKeyID
			failure = fmt.Sprintf("Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state: no key %q in account %s Region %s",
				in.KMSKeyID, caller, region)
		case k.region != region || !c.kms.usable(k, caller, inOrg):
			destARN = k.arn
			failure = fmt.Sprintf("Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state: account %s Region %s cannot use key %s",
				caller, region, k.arn)
		default:
			destARN = k.arn
		}
	}
	out := make([]srcDevice, len(src))
	for i, d := range src {
		if failure == "" && d.encrypted && !c.kms.usable(c.kms.get(d.keyARN), caller, inOrg) {
			failure = fmt.Sprintf("Client.InvalidKMSKey.InvalidState: account %s cannot use key %s of source snapshot %s",
				caller, d.keyARN, d.snapID)
		}
		out[i] = d
		out[i].encrypted, out[i].keyARN = true, destARN
	}
	return out, failure
}
