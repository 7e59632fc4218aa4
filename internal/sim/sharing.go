package sim

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// Sharing: an image's launch permission and its snapshots' create-volume
// permissions, as EC2 keeps them.
//
// Launch permission names accounts, organisational units and organisations
// (by ARN): "When you share an AMI with an organization or an OU, all of the
// children accounts gain access to the AMI" (Share an AMI with
// organizations and organizational units, EC2 User Guide,
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/share-amis-with-organizations-and-OUs.html).
// Create-volume permission names accounts only (CreateVolumePermission has
// UserId and Group, Amazon EC2 API Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolumePermission.html),
// and copying an AMI shared from another account needs it: "the owner of
// the source AMI must grant you read permissions for the storage that backs
// the AMI ... the associated EBS snapshot" (Copy an AMI, EC2 User Guide,
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html).
//
// One AMI may be shared with at most DefaultSharingQuota entities per
// Region: "The maximum number of entities (organizations, organizational
// units (OUs), and accounts) that an AMI can be shared with in a Region.
// Note that if you share an AMI with an organization or OU, the number of
// accounts in the organization or OU does not count towards the quota"
// (AMI quotas, EC2 User Guide,
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-quotas.html). The
// page does not give the error; EC2 answers the other AMI quotas checked by
// ModifyImageAttribute (public AMIs) with ResourceLimitExceeded ("You have
// reached your quota of N ..."), so the simulator does the same. The EBS
// documentation names no quota on create-volume permissions, and none is
// modelled.

// DefaultSharingQuota is how many entities one AMI may be shared with.
const DefaultSharingQuota = 1000

// MaxLaunchPermissionBatch is the most entities one ModifyImageAttribute
// call takes: "Up to 10 000 account IDs can be specified in a single
// request" (LaunchPermission, Amazon EC2 API Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchPermission.html).
const MaxLaunchPermissionBatch = 10000

// The organisation's identity: its id and the account that manages it
// name the ARNs launch permission takes; the id is also what the
// aws:PrincipalOrgID condition of a key policy names.
const (
	OrganizationID    = "o-sim0000001"
	ManagementAccount = "000000000000"
)

// OrganizationARN is the simulated organisation's ARN.
func OrganizationARN() string {
	return "arn:aws:organizations::" + ManagementAccount + ":organization/" + OrganizationID
}

// OUARN is the ARN of one of the simulated organisation's OUs.
func OUARN(ouID string) string {
	return "arn:aws:organizations::" + ManagementAccount + ":ou/" + OrganizationID + "/" + ouID
}

var (
	ouARNPattern  = regexp.MustCompile(`^arn:aws[a-z-]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}$`)
	orgARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$`)
)

// grants is a sorted set of grantees, each remembering when it was added
// (for the propagation delay), on the simulator's clock (Unix
// nanoseconds).
type grants struct {
	ids   []string
	added []int64
}

func (g *grants) index(id string) (int, bool) { return slices.BinarySearch(g.ids, id) }

func (g *grants) has(id string, propagation time.Duration, now int64) bool {
	i, ok := g.index(id)
	return ok && (propagation <= 0 || now-g.added[i] >= int64(propagation))
}

func (g *grants) add(ids []string, now int64) {
	for _, id := range ids {
		if i, ok := g.index(id); !ok {
			g.ids = slices.Insert(g.ids, i, id)
			g.added = slices.Insert(g.added, i, now)
		}
	}
}

func (g *grants) remove(ids []string) {
	for _, id := range ids {
		if i, ok := g.index(id); ok {
			g.ids = slices.Delete(g.ids, i, i+1)
			g.added = slices.Delete(g.added, i, i+1)
		}
	}
}

func (g *grants) list() []string {
	if g == nil {
		return nil
	}
	return slices.Clone(g.ids)
}

// launchPermission is an image's launch permission.
type launchPermission struct {
	accounts, ous, orgs grants
}

func (p *launchPermission) entities() int {
	return len(p.accounts.ids) + len(p.ous.ids) + len(p.orgs.ids)
}

func (p *launchPermission) export() cloud.LaunchPermission {
	return cloud.LaunchPermission{Accounts: p.accounts.list(), OUs: p.ous.list(), Organizations: p.orgs.list()}
}

func (p *launchPermission) clear() { *p = launchPermission{} }

// launchAllowed reports whether caller may launch (and so copy) an image of
// owner: the owner, a granted account, or an account of a granted OU (at
// any depth) or of a granted organisation, once the grant has propagated.
// Caller holds the image's zone lock; it takes c.mu, a leaf.
func (c *Cloud) launchAllowed(im *image, owner, caller string) bool {
	if caller == owner {
		return true
	}
	if im.extra == nil {
		return false
	}
	p, d, now := &im.extra.launch, c.cfg.propagation, c.clock.now()
	if p.accounts.has(caller, d, now) {
		return true
	}
	if len(p.ous.ids) == 0 && len(p.orgs.ids) == 0 {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	a := c.accounts[caller]
	if a == nil {
		return false
	}
	if p.orgs.has(OrganizationARN(), d, now) {
		return true
	}
	for node := a.parent; node != "" && node != RootID; node = c.nodes[node].parent {
		if p.ous.has(OUARN(node), d, now) {
			return true
		}
	}
	return false
}

// volumeAllowed reports whether caller may create volumes from (and so
// copy) a snapshot of owner, once the grant has propagated.
func (c *Cloud) volumeAllowed(s *snapshot, owner, caller string) bool {
	return caller == owner || (s.perms != nil && s.perms.has(caller, c.cfg.propagation, c.clock.now()))
}

// checkLaunchBatch applies EC2's rules to the grantees of one
// ModifyImageAttribute call.
func checkLaunchBatch(op string, p cloud.LaunchPermission) error {
	n := p.Len()
	if n == 0 {
		return cloud.Errorf(op, "MissingParameter", "no launch permission to add or remove")
	}
	if n > MaxLaunchPermissionBatch {
		return cloud.Errorf(op, "InvalidParameterValue", "%d launch permissions in one request; at most %d", n, MaxLaunchPermissionBatch)
	}
	for _, id := range p.Accounts {
		if !cloud.IsAccountID(id) {
			return cloud.Errorf(op, "InvalidAMIAttributeItemValue", "Invalid attribute item value %q for userId item type.", id)
		}
	}
	for _, arn := range p.OUs {
		if !ouARNPattern.MatchString(arn) {
			return cloud.Errorf(op, "InvalidParameterValue", "Invalid organizational unit ARN %q", arn)
		}
	}
	for _, arn := range p.Organizations {
		if !orgARNPattern.MatchString(arn) {
			return cloud.Errorf(op, "InvalidParameterValue", "Invalid organization ARN %q", arn)
		}
	}
	return nil
}

// checkPermissionBatch applies EC2's rules for the UserIds of one
// ModifySnapshotAttribute call: "You can make up to 500 modifications to a
// snapshot in a single operation" (ModifySnapshotAttribute, Amazon EC2 API
// Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifySnapshotAttribute.html).
func checkPermissionBatch(op string, accountIDs []string) error {
	if len(accountIDs) == 0 {
		return cloud.Errorf(op, "MissingParameter", "no account ids to add or remove")
	}
	if len(accountIDs) > cloud.MaxShareBatch {
		return cloud.Errorf(op, "InvalidParameterValue",
			"%d account ids in one call; at most %d modifications are allowed", len(accountIDs), cloud.MaxShareBatch)
	}
	for _, id := range accountIDs {
		if !cloud.IsAccountID(id) {
			return cloud.Errorf(op, "InvalidParameterValue", "Invalid attribute item value %q for userId item type.", id)
		}
	}
	return nil
}

// noteShare records how many entities an image is shared with, for the
// largest the Cloud has seen (MaxShareEntities).
func (c *Cloud) noteShare(n int) {
	for {
		cur := c.maxShare.Load()
		if int64(n) <= cur || c.maxShare.CompareAndSwap(cur, int64(n)) {
			return
		}
	}
}

// MaxShareEntities returns the most entities (accounts, OUs,
// organisations) any image's launch permission held at once, since
// construction or ResetCounters.
func (c *Cloud) MaxShareEntities() int { return int(c.maxShare.Load()) }

func sharingQuotaError(op, imageID string, have, adding, quota int) error {
	return cloud.Errorf(op, "ResourceLimitExceeded",
		"You have reached your quota of %d for the number of entities image %s can be shared with in this Region (it is shared with %d, the request adds %d)",
		quota, imageID, have, adding)
}

// withoutDuplicates drops from add the grantees p already has.
func (p *launchPermission) newGrantees(add cloud.LaunchPermission) int {
	n := 0
	for _, id := range add.Accounts {
		if _, ok := p.accounts.index(id); !ok {
			n++
		}
	}
	for _, id := range add.OUs {
		if _, ok := p.ous.index(id); !ok {
			n++
		}
	}
	for _, id := range add.Organizations {
		if _, ok := p.orgs.index(id); !ok {
			n++
		}
	}
	return n
}

func (p *launchPermission) apply(add, remove cloud.LaunchPermission, now int64) {
	p.accounts.add(add.Accounts, now)
	p.ous.add(add.OUs, now)
	p.orgs.add(add.Organizations, now)
	p.accounts.remove(remove.Accounts)
	p.ous.remove(remove.OUs)
	p.orgs.remove(remove.Organizations)
}

var _ = fmt.Sprintf
