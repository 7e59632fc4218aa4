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
	OpAssumeRole                       = "AssumeRole"
	OpListAccounts                     = "ListAccounts"
	OpListRoots                        = "ListRoots"
	OpListOrganizationalUnitsForParent = "ListOrganizationalUnitsForParent"
	OpListAccountsForParent            = "ListAccountsForParent"
)

// IsMutating reports whether an AWS operation changes something. A dry run
// makes none of them; the simulator and the adapters count them apart.
func IsMutating(op string) bool {
	switch op {
	case OpCopyImage, OpModifyImageAttribute, OpModifySnapshotAttribute,
		OpCreateTags, OpDeregisterImage, OpDeleteSnapshot:
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
)
