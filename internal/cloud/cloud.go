// Package cloud is the engine's vocabulary for the AWS resources it reasons
// about: images, their EBS block devices, organisation accounts and OUs, and
// classified API errors. The SDK adapters and the simulator translate to and
// from these types, so no AWS SDK type ever reaches the engine.
package cloud

import (
	"regexp"
	"strings"
	"time"
)

// ImageState is the lifecycle state of an AMI as EC2 reports it.
type ImageState string

// Image states used by the engine. EC2 has a few more (transient,
// invalid, error); the engine treats any other value as "not usable".
const (
	ImagePending      ImageState = "pending"
	ImageAvailable    ImageState = "available"
	ImageFailed       ImageState = "failed"
	ImageDeregistered ImageState = "deregistered"
	// ImageDisabled is an image its owner disabled (DisableImage): it
	// still exists and can be enabled again, but it cannot be launched,
	// shared or copied, and disabling removed all its launch permissions.
	// DescribeImages hides disabled images unless asked with
	// IncludeDisabled, even from the owner; the adapters always ask, so a
	// disabled source or copy is listed in this state instead of looking
	// deregistered.
	ImageDisabled ImageState = "disabled"
)

// Image is an AMI as seen by its owner in one Region.
type Image struct {
	ID          string
	Name        string
	Description string
	OwnerID     string
	Region      string
	State       ImageState
	// DeprecationTime is when the image is (or was) deprecated; zero when
	// it is not scheduled for deprecation.
	DeprecationTime time.Time
	// StateReason carries EC2's explanation of a failed image
	// (for example a KMS key it could not use).
	StateReason  string
	CreationDate time.Time
	Tags         map[string]string
	// BlockDevices lists only EBS-backed mappings; instance-store
	// mappings carry no snapshot and need no permission or encryption.
	BlockDevices []BlockDevice
}

// BlockDevice is one EBS mapping of an image.
type BlockDevice struct {
	DeviceName string
	SnapshotID string
	Encrypted  bool
	// KMSKeyID is the key the snapshot is encrypted with, as EC2 reports it
	// (a key ARN); empty when not encrypted or not known. DescribeImages
	// never fills it: EC2 reports whether an image's volumes are encrypted
	// but not with which key (KmsKeyId of a block device mapping is only
	// an input, of RunInstances and friends). The engine fills it from
	// the snapshots' own description (cloud.SnapshotKeyReader) when it
	// needs the key.
	KMSKeyID   string
	VolumeSize int32
}

// SnapshotIDs returns the ids of the image's EBS snapshots in mapping order.
func (im *Image) SnapshotIDs() []string {
	ids := make([]string, 0, len(im.BlockDevices))
	for _, bd := range im.BlockDevices {
		if bd.SnapshotID != "" {
			ids = append(ids, bd.SnapshotID)
		}
	}
	return ids
}

// ImageQuery selects images owned by the caller in one Region. Every
// non-empty field narrows the result; the describe is always filtered or
// paginated so it draws on the regular Describe* token bucket.
type ImageQuery struct {
	// ImageIDs restricts the result to these ids.
	ImageIDs []string
	// TagKeys keeps images carrying every one of these tag keys
	// (EC2 filter "tag-key").
	TagKeys []string
	// Tags keeps images whose tag K has one of the listed values
	// (EC2 filter "tag:K").
	Tags map[string][]string
	// States keeps images in one of these states.
	States []ImageState
}

// FilterValues is how many EC2 filter values q takes besides its image ids:
// one per state and per wanted tag value, and one for the tag-key filter
// that carries the keys wanted with any value (EC2 gets the first of them;
// whether it ANDs repeated filter names is not documented, so the rest are
// checked on the answer). EC2 counts filter values over a whole call
// (MaxFilterValues), so the ids of one call are what is left.
func (q ImageQuery) FilterValues() int {
	n := len(q.States)
	presence := len(q.TagKeys) > 0
	for _, values := range q.Tags {
		n += len(values)
		presence = presence || len(values) == 0
	}
	if presence {
		n++
	}
	return n
}

// CopyImageInput is a CopyImage call made in the destination account and
// Region.
type CopyImageInput struct {
	SourceImageID string
	SourceRegion  string
	Name          string
	Description   string
	Encrypted     bool
	// KMSKeyID may be a key id, alias name, key ARN or alias ARN; empty
	// means the destination account's default EBS key.
	KMSKeyID string
	// ClientToken makes the call idempotent (at most 64 ASCII characters).
	ClientToken string
	// Tags are applied to the new image and to its snapshots.
	Tags map[string]string
}

// LaunchPermission names who, besides its owner, may launch (and so copy)
// an image: accounts, and organisational units and organisations by ARN
// (every account under them), or everyone (Public).
type LaunchPermission struct {
	Accounts      []string
	OUs           []string
	Organizations []string
	Public        bool
}

// Len is the number of entities EC2 counts against the AMI sharing quota:
// accounts, OUs and organisations (an OU counts once, whatever it holds).
func (p LaunchPermission) Len() int { return len(p.Accounts) + len(p.OUs) + len(p.Organizations) }

// Entities lists every account id and ARN of p.
func (p LaunchPermission) Entities() []string {
	out := make([]string, 0, p.Len())
	out = append(out, p.Accounts...)
	out = append(out, p.OUs...)
	return append(out, p.Organizations...)
}

// OrgInfo identifies the organisation: its id (o-...), ARN and management
// account, which name the ARNs of its OUs.
type OrgInfo struct {
	ID                string
	ARN               string
	ManagementAccount string
}

// OUARN returns the ARN of the organisation's OU ouID: "arn:PARTITION:
// organizations::MANAGEMENT-ACCOUNT:ou/ORG-ID/OU-ID" (AWS Organizations
// resource types, Service Authorization Reference). The partition is the
// organisation ARN's.
func (o OrgInfo) OUARN(ouID string) string {
	partition := "aws"
	if parts := strings.SplitN(o.ARN, ":", 3); len(parts) == 3 && parts[0] == "arn" {
		partition = parts[1]
	}
	return "arn:" + partition + ":organizations::" + o.ManagementAccount + ":ou/" + o.ID + "/" + ouID
}

// AccountState is an AWS Organizations account state.
type AccountState string

// Account states reported by Organizations ListAccounts.
const (
	AccountActive            AccountState = "ACTIVE"
	AccountSuspended         AccountState = "SUSPENDED"
	AccountPendingActivation AccountState = "PENDING_ACTIVATION"
	AccountPendingClosure    AccountState = "PENDING_CLOSURE"
	AccountClosed            AccountState = "CLOSED"
)

// Account is a member account of the organisation.
type Account struct {
	ID    string
	Name  string
	State AccountState
}

// OU is an organisational unit.
type OU struct {
	ID   string
	Name string
}

// OrgChildren is what sits directly under a root or OU: its OUs, and its
// accounts with their name and State (ListAccountsForParent reports them
// as ListAccounts does).
type OrgChildren struct {
	OUs      []OU
	Accounts []Account
}

// AccountIDs returns the ids of c's accounts, in order.
func (c OrgChildren) AccountIDs() []string {
	ids := make([]string, len(c.Accounts))
	for i, a := range c.Accounts {
		ids[i] = a.ID
	}
	return ids
}

var (
	accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)
	ouIDPattern      = regexp.MustCompile(`^ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}$`)
	rootIDPattern    = regexp.MustCompile(`^r-[0-9a-z]{4,32}$`)
	imageIDPattern   = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)
	regionPattern    = regexp.MustCompile(`^([a-z]{2}(-gov|-iso[a-z]*)?|eusc-[a-z]{2})-[a-z]+-[0-9]{1,2}$`)
)

// IsAccountID reports whether s is a 12-digit AWS account id.
func IsAccountID(s string) bool { return accountIDPattern.MatchString(s) }

// IsOUID reports whether s has the shape of an organisational unit id.
func IsOUID(s string) bool { return ouIDPattern.MatchString(s) }

// IsRootID reports whether s has the shape of an organisation root id.
func IsRootID(s string) bool { return rootIDPattern.MatchString(s) }

// IsImageID reports whether s has the shape of an AMI id.
func IsImageID(s string) bool { return imageIDPattern.MatchString(s) }

// IsRegion reports whether s has the shape of an AWS Region name.
func IsRegion(s string) bool { return regionPattern.MatchString(s) }
