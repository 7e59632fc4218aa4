package deploy

// Role names the IAM roles of the deployment.
type Role string

// The roles the templates create.
const (
	// RoleCentral is the function's role (central.yaml FunctionRole).
	RoleCentral Role = "central"
	// RoleSource is the role in the source account (source-role.yaml
	// SourceRole).
	RoleSource Role = "source"
	// RoleMember is the copier role in each member account
	// (member-stackset.yaml CopierRole).
	RoleMember Role = "member"
	// RoleOrgReader lists the organisation (org-reader-role.yaml
	// OrgReaderRole); the central role holds the same actions itself when
	// no organisation role is configured.
	RoleOrgReader Role = "org-reader"
)

// APICall is one AWS API operation the code calls, and what IAM must allow
// for it.
type APICall struct {
	// Service is the IAM service prefix ("ec2") and Operation the API
	// operation as the SDK names it ("CopyImage").
	Service, Operation string
	// Roles must allow the call.
	Roles []Role
	// Also lists further IAM actions the call needs ("ec2:CreateTags"
	// for a CopyImage with TagSpecifications).
	Also []string
	// Only names the deployment option under which the call is made
	// ("prune", "amigo-table"); "" means always.
	Only string
	// Why the code makes the call, for the documentation.
	Why string
}

// Action returns the IAM action of the call ("ec2:CopyImage").
func (c APICall) Action() string { return c.Service + ":" + c.Operation }

// APICalls is every AWS operation the engine's adapters (internal/awsapi)
// and the DynamoDB state store (state) call at run time, with the role
// that must allow it. The deploy tests read those packages' sources and
// fail when they call an operation missing here, and check that each role
// in the templates allows exactly these actions (plus RoleExtras).
var APICalls = []APICall{
	{Service: "ec2", Operation: "DescribeImages", Roles: []Role{RoleSource, RoleMember},
		Why: "source discovery (and orphan checks); observing the copies in each target account and Region; run --wait"},
	{Service: "ec2", Operation: "DescribeImageAttribute", Roles: []Role{RoleSource},
		Why: "which accounts already have launch permission on a source image"},
	{Service: "ec2", Operation: "ModifyImageAttribute", Roles: []Role{RoleSource},
		Why: "grant launch permission on a source image to its targets (accounts, or the OUs that hold them) and take it back once their copies are made"},
	{Service: "ec2", Operation: "DescribeSnapshotAttribute", Roles: []Role{RoleSource},
		Why: "which accounts already have create-volume permission on a source snapshot"},
	{Service: "ec2", Operation: "ModifySnapshotAttribute", Roles: []Role{RoleSource},
		Why: "grant create-volume permission on a source snapshot to the accounts about to copy it, and take it back after"},
	{Service: "ec2", Operation: "DescribeSnapshots", Roles: []Role{RoleSource, RoleMember},
		Why: "which KMS key encrypts each snapshot of a copy in the target account (EC2 does not report it on the image); check and plan: the keys of the source snapshots (source)"},
	{Service: "ec2", Operation: "CopyImage", Roles: []Role{RoleMember}, Also: []string{"ec2:CreateTags"},
		Why: "start the encrypted copy in the target account; the tags travel in TagSpecifications; check: the same request with DryRun (changes nothing)"},
	{Service: "kms", Operation: "DescribeKey", Roles: []Role{RoleMember},
		Why: "check and plan: the configured key exists in the Region, is Enabled and symmetric; the account may use the source snapshots' key"},
	{Service: "kms", Operation: "GetKeyPolicy", Roles: []Role{RoleMember},
		Why: "check: whether the key policy lets the Auto Scaling service-linked role use the key"},
	{Service: "kms", Operation: "ListGrants", Roles: []Role{RoleMember},
		Why: "check: grants of the key to the Auto Scaling service-linked role"},
	{Service: "kms", Operation: "GenerateDataKeyWithoutPlaintext", Roles: []Role{RoleMember},
		Why: "check and plan: with DryRun, whether the copier role may use the key (changes nothing); CopyImage itself needs the action too"},
	{Service: "ec2", Operation: "DeregisterImage", Roles: []Role{RoleMember},
		Why: "remove a failed copy amicopier made before retrying it; prune orphaned copies"},
	{Service: "ec2", Operation: "DeleteSnapshot", Roles: []Role{RoleMember},
		Why: "delete the snapshots of a copy amicopier deregisters (DeregisterImage DeleteAssociatedSnapshots needs it per snapshot), and any it left behind"},
	{Service: "ec2", Operation: "DescribeInstances", Roles: []Role{RoleMember}, Only: "prune",
		Why: "prune (orphaned and superseded copies): never remove an image instances still use"},
	{Service: "ec2", Operation: "DescribeLaunchTemplateVersions", Roles: []Role{RoleMember}, Only: "prune",
		Why: "prune (orphaned and superseded copies): never remove an image the default or latest version of a launch template of the account names"},
	{Service: "ec2", Operation: "EnableImageDeprecation", Roles: []Role{RoleMember},
		Why: "a copy amicopier made takes its source's deprecation time (or copy.deprecate_after's, the earlier); only images tagged amicopier:managed=true"},
	{Service: "ec2", Operation: "DisableImageDeprecation", Roles: []Role{RoleMember},
		Why: "cancel the deprecation of a copy amicopier made when its source's is cancelled; only images tagged amicopier:managed=true"},
	{Service: "ssm", Operation: "GetParameters", Roles: []Role{RoleMember}, Only: "publish-ssm",
		Why: "publish.ssm: read the groups' parameters in each target account and Region (ten a call), and read back the aws:ec2:image values run wrote"},
	{Service: "ssm", Operation: "ListTagsForResource", Roles: []Role{RoleMember}, Only: "publish-ssm",
		Why: "publish.ssm: whether amicopier created a parameter that would change (its amicopier:managed and amicopier:source-account tags)"},
	{Service: "ssm", Operation: "PutParameter", Roles: []Role{RoleMember}, Only: "publish-ssm", Also: []string{"ssm:AddTagsToResource"},
		Why: "publish.ssm: create or move a parameter to the newest available copy (aws:ec2:image: SSM validates it with ec2:DescribeImages as the caller); a new parameter gets amicopier's tags"},
	{Service: "ssm", Operation: "AddTagsToResource", Roles: []Role{RoleMember}, Only: "publish-ssm",
		Why: "publish.ssm.overwrite_foreign: tag a parameter amicopier takes over as its own"},
	{Service: "events", Operation: "PutEvents", Roles: []Role{RoleCentral}, Only: "events",
		Why: "events.bus: the run's Run Finished, Copy Available and Pair Stuck events"},
	{Service: "organizations", Operation: "ListAccounts", Roles: []Role{RoleOrgReader},
		Why: "the organisation's accounts and their State"},
	{Service: "organizations", Operation: "DescribeAccount", Roles: []Role{RoleOrgReader},
		Why: "one account and its State: a run scoped to images (an event) checks the accounts their metadata names one by one instead of listing the organisation"},
	{Service: "organizations", Operation: "DescribeOrganization", Roles: []Role{RoleOrgReader},
		Why: "the organisation's id and management account, which the ARNs of its OUs are made of (an image is shared with an OU by ARN)"},
	{Service: "organizations", Operation: "ListRoots", Roles: []Role{RoleOrgReader},
		Why: "the roots, to expand \"*\" and root ids"},
	{Service: "organizations", Operation: "ListOrganizationalUnitsForParent", Roles: []Role{RoleOrgReader},
		Why: "expand OUs recursively"},
	{Service: "organizations", Operation: "ListAccountsForParent", Roles: []Role{RoleOrgReader},
		Why: "the accounts directly under an OU"},
	{Service: "sts", Operation: "AssumeRole", Roles: []Role{RoleCentral},
		Why: "the member copier roles, the source role and the organisation role"},
	{Service: "dynamodb", Operation: "GetItem", Roles: []Role{RoleCentral, RoleSource},
		Why: "state store reads (central); the AMIgo recipes table, read with the source role (source, amigo-table)"},
	{Service: "dynamodb", Operation: "BatchGetItem", Roles: []Role{RoleCentral},
		Why: "state store: the settled records of a Region's pairs whose copies were removed, reopened in one batch"},
	{Service: "dynamodb", Operation: "PutItem", Roles: []Role{RoleCentral},
		Why: "state store: conditional writes of pairs, runs and the lease"},
	{Service: "dynamodb", Operation: "DeleteItem", Roles: []Role{RoleCentral},
		Why: "state store: release the run lease; forget the sharing ledger of an image no longer shared"},
	{Service: "dynamodb", Operation: "Query", Roles: []Role{RoleCentral},
		Why: "state store: the unsettled index (pairs and sharing ledgers) and the runs_by_start index"},
	{Service: "dynamodb", Operation: "DescribeTable", Roles: []Role{RoleCentral},
		Why: "state store: check the table's definition when opening it"},
}

// OperatorOnlyCalls are operations only `amicopier state init` makes, run
// by an operator: no template grants them (the central stack creates the
// table itself).
var OperatorOnlyCalls = []string{
	"dynamodb:CreateTable",
	"dynamodb:DescribeTimeToLive",
	"dynamodb:UpdateTimeToLive",
}

// RoleExtras are the actions a role needs for the platform rather than
// for an API call of the code.
var RoleExtras = map[Role][]string{
	RoleCentral: {
		"logs:CreateLogStream", "logs:PutLogEvents", // its own log group
		"sqs:SendMessage", // failed asynchronous invocations to the dead-letter queue
	},
	// The copies' key (CopyImageKeyActions), and reading the source's
	// snapshots when a customer managed key of the source account
	// encrypts them (SourceKmsKeyArns: a subset of the same actions).
	RoleMember: CopyImageKeyActions,
}

// CopyImageKeyActions are the KMS actions CopyImage needs on the
// destination key (docs/design.md, safety rules); the member key policy and the copier role's
// own policy grant them to the copier role, kms:CreateGrant only for AWS
// resources.
var CopyImageKeyActions = []string{
	"kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey",
	"kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*",
}

// CheckKeyActions are the KMS actions only the preflight check needs on
// the copies' key, beyond CopyImageKeyActions: reading who else may use
// it. The member key policy and the copier role's policy grant them.
var CheckKeyActions = []string{"kms:GetKeyPolicy", "kms:ListGrants"}

// RoleNeeds returns every action role must allow: its API calls, their
// Also actions and its extras.
func RoleNeeds(role Role) []string {
	var out []string
	for _, c := range APICalls {
		for _, r := range c.Roles {
			if r == role {
				out = append(out, c.Action())
				out = append(out, c.Also...)
			}
		}
	}
	return append(out, RoleExtras[role]...)
}
