package cloud

// Operation names, exactly as AWS spells them. Counters, fault hooks, the
// read-only guard of a dry run and the pacing of the connectors all key on
// them.
const (
	OpDescribeImages                   = "DescribeImages"
	OpDescribeImageAttribute           = "DescribeImageAttribute"
	OpModifyImageAttribute             = "ModifyImageAttribute"
	OpDescribeSnapshotAttribute        = "DescribeSnapshotAttribute"
	OpModifySnapshotAttribute          = "ModifySnapshotAttribute"
	OpCopyImage                        = "CopyImage"
	OpCreateTags                       = "CreateTags"
	OpDeregisterImage                  = "DeregisterImage"
	OpDeleteSnapshot                   = "DeleteSnapshot"
	OpDescribeInstances                = "DescribeInstances"
	OpDescribeSnapshots                = "DescribeSnapshots"
	OpEnableImageDeprecation           = "EnableImageDeprecation"
	OpDisableImageDeprecation          = "DisableImageDeprecation"
	OpDescribeLaunchTemplateVersions   = "DescribeLaunchTemplateVersions"
	OpAssumeRole                       = "AssumeRole"
	OpListAccounts                     = "ListAccounts"
	OpListRoots                        = "ListRoots"
	OpListOrganizationalUnitsForParent = "ListOrganizationalUnitsForParent"
	OpListAccountsForParent            = "ListAccountsForParent"
	OpDescribeOrganization             = "DescribeOrganization"
	OpDescribeAccount                  = "DescribeAccount"
)

// IsMutating reports whether an AWS operation changes something. A dry run
// makes none of them; the simulator and the adapters count them apart.
func IsMutating(op string) bool {
	switch op {
	case OpCopyImage, OpModifyImageAttribute, OpModifySnapshotAttribute,
		OpCreateTags, OpDeregisterImage, OpDeleteSnapshot,
		OpEnableImageDeprecation, OpDisableImageDeprecation,
		OpPutParameter, OpAddTagsToResource, OpPutEvents:
		return true
	}
	return false
}

// AWS limits the engine, the adapters and the simulator all respect. Each
// is defined here once.
const (
	// MaxFilterValues is the most filter values one EC2 describe call may
	// carry, counted over all its filters together; more are refused with
	// FilterLimitExceeded ("The request uses too many filters or too many
	// filter values", Error codes for the Amazon EC2 API,
	// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
	MaxFilterValues = 200

	// MaxShareBatch is the largest number of account ids the engine puts in
	// one ModifyImageAttribute or ModifySnapshotAttribute call: "You can
	// make up to 500 modifications to a snapshot in a single operation"
	// (ModifySnapshotAttribute, Amazon EC2 API Reference,
	// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifySnapshotAttribute.html).
	MaxShareBatch = 500

	// MaxLaunchPermissionBatch is the most entities the engine puts in one
	// ModifyImageAttribute call. EC2 takes up to 10,000 ("Up to 10 000
	// account IDs can be specified in a single request", LaunchPermission,
	// Amazon EC2 API Reference,
	// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchPermission.html);
	// the sharing quota keeps an image far below that anyway.
	MaxLaunchPermissionBatch = 1000

	// SharingQuota is the most entities (accounts, OUs, organisations) one
	// AMI may be shared with in a Region (AMI quotas, EC2 User Guide,
	// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-quotas.html);
	// an OU or an organisation counts once, whatever it holds.
	SharingQuota = 1000
)
