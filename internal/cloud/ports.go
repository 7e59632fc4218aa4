package cloud

import (
	"context"
	"time"
)

// The interfaces below are the engine's only view of AWS. The SDK adapters
// (internal/awsapi) and the simulator (internal/sim) both implement them, so
// every test and benchmark runs the real engine. They are deliberately
// narrow: one method per EC2 action the engine needs, engine types in and
// out. Retries and pacing belong to the implementations (the connector owns
// them), never to the engine.

// ImageDescriber lists images owned by the caller in one account and Region.
// Implementations paginate; the engine never sees page tokens. EC2 lists
// a recently deregistered image for a while, in state deregistered: the
// SDK adapter leaves those out unless q.States asks for them, the
// simulator (WithDeregisteredListing) does not, and the engine takes them
// for gone either way.
type ImageDescriber interface {
	DescribeImages(ctx context.Context, q ImageQuery) ([]Image, error)
}

// ImageSharer reads and changes the launch permission of an image and the
// create-volume permission of its snapshots. Only the owner (the source
// account) calls these. EC2 takes additions and removals in calls of their
// own.
type ImageSharer interface {
	ImageLaunchPermission(ctx context.Context, imageID string) (LaunchPermission, error)
	// AddImageLaunchPermission grants the entities of add (at most
	// MaxLaunchPermissionBatch per call) launch permission.
	AddImageLaunchPermission(ctx context.Context, imageID string, add LaunchPermission) error
	// RemoveImageLaunchPermission takes the entities of remove off it.
	RemoveImageLaunchPermission(ctx context.Context, imageID string, remove LaunchPermission) error
	SnapshotVolumePermissions(ctx context.Context, snapshotID string) ([]string, error)
	// AddSnapshotVolumePermissions grants accountIDs create-volume
	// permission; at most MaxShareBatch ids per call.
	AddSnapshotVolumePermissions(ctx context.Context, snapshotID string, accountIDs []string) error
	// RemoveSnapshotVolumePermissions takes accountIDs off it; at most
	// MaxShareBatch ids per call.
	RemoveSnapshotVolumePermissions(ctx context.Context, snapshotID string, accountIDs []string) error
}

// ImageCopier starts an encrypted copy in the caller's account and Region.
type ImageCopier interface {
	CopyImage(ctx context.Context, in CopyImageInput) (imageID string, err error)
}

// ImageRemover removes images and snapshots the engine made, and tells
// whether instances still use an image (prune must never remove those).
type ImageRemover interface {
	// DeregisterImage deregisters an image; with deleteSnapshots EC2
	// deletes its snapshots in the same call (DeleteAssociatedSnapshots),
	// which avoids the moment a snapshot of a just deregistered image is
	// still "in use". failed lists the snapshots EC2 tried to delete and
	// could not (one another image uses is skipped, not failed).
	DeregisterImage(ctx context.Context, imageID string, deleteSnapshots bool) (failed []string, err error)
	DeleteSnapshot(ctx context.Context, snapshotID string) error
	// InstancesUsingImages counts the instances (in any state but
	// terminated) launched from each of imageIDs.
	InstancesUsingImages(ctx context.Context, imageIDs []string) (map[string]int, error)
}

// ImageDeprecator schedules and cancels the deprecation of the caller's
// own images (EnableImageDeprecation, DisableImageDeprecation); only an
// image's owner may change it. EC2 rounds the seconds of a time to the
// nearest minute, refuses a time in the past and one more than
// MaxDeprecationAhead ahead (DeprecationRules): the engine sends whole
// minutes within those bounds.
type ImageDeprecator interface {
	EnableImageDeprecation(ctx context.Context, imageID string, at time.Time) error
	// DisableImageDeprecation cancels the image's deprecation time.
	DisableImageDeprecation(ctx context.Context, imageID string) error
}

// LaunchTemplateReader reads which images the launch templates of the
// caller's account and Region would launch: a launch from a template uses
// its default version unless it names another, and $Latest is the other
// version people name. Removing an image such a version names breaks the
// launches (and Auto Scaling groups) that use it.
type LaunchTemplateReader interface {
	// LaunchTemplateImages returns the default and the latest version of
	// every launch template of the caller's account and Region (one
	// entry for a version that is both), with the image each names.
	LaunchTemplateImages(ctx context.Context) ([]LaunchTemplateVersion, error)
}

// SnapshotKeyReader tells which KMS key encrypts each of the caller's
// snapshots. DescribeImages cannot: EC2 reports whether an image's volumes
// are encrypted, never the key (BlockDevice.KMSKeyID stays empty), while
// DescribeSnapshots reports KmsKeyId per snapshot.
type SnapshotKeyReader interface {
	// SnapshotKeys returns the KMS key ARN, as EC2 reports it, of each of
	// the caller's snapshots among snapshotIDs, keyed by snapshot id.
	// Unencrypted snapshots, snapshots of other accounts and ids that do
	// not exist are absent (not an error), as with EC2's snapshot-id
	// filter. Implementations split the ids so that no call carries more
	// than MaxFilterValues filter values; no ids, no call.
	SnapshotKeys(ctx context.Context, snapshotIDs []string) (map[string]string, error)
}

// EC2 is everything the engine does in one account and Region.
type EC2 interface {
	ImageDescriber
	SnapshotKeyReader
	ImageSharer
	ImageCopier
	ImageRemover
	ImageDeprecator
	LaunchTemplateReader
}

// Organization reads the AWS Organization. Implementations paginate.
type Organization interface {
	ListAccounts(ctx context.Context) ([]Account, error)
	ListRoots(ctx context.Context) ([]string, error)
	// ListChildren returns the OUs and accounts directly under a root or OU.
	ListChildren(ctx context.Context, parentID string) (OrgChildren, error)
	// DescribeOrganization identifies the organisation (the ARNs of its
	// OUs are built from it).
	DescribeOrganization(ctx context.Context) (OrgInfo, error)
	// DescribeAccount returns one member account with its State, in one
	// call: what a run that names a few accounts reads instead of the
	// whole organisation. An account that is not a member fails with
	// AccountNotFoundException (ClassNotFound).
	DescribeAccount(ctx context.Context, accountID string) (Account, error)
}

// Connector hands out clients. Target assumes the copier role in an
// account at most once per run and reuses the session across Regions; a
// ClassAccessDenied error from it makes the account unreachable.
type Connector interface {
	Source(ctx context.Context, region string) (EC2, error)
	Target(ctx context.Context, accountID, region string) (EC2, error)
	Organization(ctx context.Context) (Organization, error)
}

// CallCounter is implemented by connectors that count the API calls they
// make: every attempt, retries and pages included, by operation name (for
// example "CopyImage", "AssumeRole"); the attempts AWS throttled, whether
// the connector retried them or not; and the calls that still failed
// throttled after the connector's last attempt (surfaced to the engine).
type CallCounter interface {
	CallCounts() map[string]int64
	Throttles() (attempts, surfaced int64)
}
