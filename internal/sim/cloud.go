package sim

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// RootID is the id of the simulated organisation's root.
const RootID = "r-sim0"

// Cloud is one simulated AWS organisation with its accounts' EC2 and KMS
// resources in every Region. It is safe for concurrent use. Build the scene
// with the builder methods, then hand the engine a Connector.
//
// Locking: each zone (account and Region) has its own lock and no code holds
// two zone locks at once; c.mu (organisation and zone table), the KMS
// registry's lock, the tag interner's lock and the counters' lock are
// leaves, taken alone or under a zone lock, never the other way round.
type Cloud struct {
	cfg   settings
	clock *Clock
	calls callCounters
	fault atomic.Pointer[FaultFunc]
	tags  tagInterner
	kms   kmsRegistry
	// params and buses are Parameter Store and EventBridge (ssm.go,
	// events.go); their locks are leaves too.
	params paramRegistry
	buses  busRegistry
	// buckets are the token buckets (realism.go); throttled counts the
	// calls they refused.
	buckets   buckets
	throttled atomic.Int64
	// maxShare is the most entities any image's launch permission held.
	maxShare atomic.Int64
	// hold stops calls for a measurement (hold.go).
	hold holder

	mu           sync.RWMutex
	zones        map[zoneKey]*zone
	zoneList     []*zone // zone id n is zoneList[n-1]
	nodes        map[string]*orgNode
	accounts     map[string]*orgAccount
	accountOrder []*orgAccount
	denied       map[string]bool
	// copierDenied holds, per account, the IAM actions its copier role
	// lacks (iam.go).
	copierDenied map[string]map[string]bool
	// centralDenied holds the IAM actions the central identity (the
	// connector's own credentials) lacks (iam.go).
	centralDenied map[string]bool
	nextOU        uint64
}

// orgNode is the root or an OU.
type orgNode struct {
	id, name, parent string
	ous              []string
	accounts         []string
}

type orgAccount struct {
	id, name, parent string
	state            cloud.AccountState
}

// New returns an empty organisation (a root and nothing else).
func New(opts ...Option) *Cloud {
	cfg := defaultSettings()
	for _, o := range opts {
		o(&cfg)
	}
	c := &Cloud{
		cfg:      cfg,
		clock:    NewClock(cfg.start),
		zones:    make(map[zoneKey]*zone),
		nodes:    map[string]*orgNode{RootID: {id: RootID, name: "Root"}},
		accounts: make(map[string]*orgAccount),
		denied:   make(map[string]bool),
	}
	return c
}

// Clock returns the Cloud's manual clock.
func (c *Cloud) Clock() *Clock { return c.clock }

// Now returns the simulated time (the Cloud is the engine's clock).
func (c *Cloud) Now() time.Time { return c.clock.Now() }

// Advance moves the simulated time forward by d; pending copies whose
// duration has elapsed read as available (or failed) from then on.
func (c *Cloud) Advance(d time.Duration) { c.clock.Advance(d) }

// CopyDuration is how long a copy stays pending.
func (c *Cloud) CopyDuration() time.Duration { return c.cfg.copyDuration }

// SetFault installs the fault hook consulted by every API call (nil removes
// it). It may be changed while calls are in flight.
func (c *Cloud) SetFault(f FaultFunc) {
	if f == nil {
		c.fault.Store(nil)
		return
	}
	c.fault.Store(&f)
}

// CallCounts returns how many calls of each operation were made, through
// any connector or client (the Cloud is a CallCounter).
func (c *Cloud) CallCounts() map[string]int64 { return c.calls.byOp() }

// MutatingCalls returns how many mutating calls were made (see IsMutating).
func (c *Cloud) MutatingCalls() int64 { return c.calls.mutating() }

// Calls returns how many calls of op were made by account in region; an
// empty argument matches anything. Organizations and STS calls have an empty
// Region, so Calls(cloud.OpAssumeRole, acct, "") counts the role assumptions into
// acct.
func (c *Cloud) Calls(op, account, region string) int64 { return c.calls.count(op, account, region) }

// ResetCounters sets every call count of the Cloud, and its count of
// throttled calls, to zero (connectors keep their own counts).
func (c *Cloud) ResetCounters() {
	c.calls.reset()
	c.throttled.Store(0)
	c.maxShare.Store(0)
}

// zone returns the zone of account and region, making it on first use.
func (c *Cloud) zone(account, region string) (*zone, error) {
	// Only valid pairs are ever stored, so look first and validate on a
	// miss: bulk construction calls this once per image.
	k := zoneKey{account, region}
	c.mu.RLock()
	z := c.zones[k]
	c.mu.RUnlock()
	if z != nil {
		return z, nil
	}
	if !cloud.IsAccountID(account) {
		return nil, fmt.Errorf("account id %q is not 12 digits", account)
	}
	if !cloud.IsRegion(region) {
		return nil, fmt.Errorf("region %q is not an AWS Region name", region)
	}
	counts := c.calls.cell(account, region)
	c.mu.Lock()
	defer c.mu.Unlock()
	if z = c.zones[k]; z != nil {
		return z, nil
	}
	if len(c.zoneList) >= maxZones {
		return nil, fmt.Errorf("too many account and Region pairs for the simulator (%d)", maxZones)
	}
	z = &zone{id: uint32(len(c.zoneList) + 1), account: account, region: region, calls: counts}
	c.zones[k] = z
	c.zoneList = append(c.zoneList, z)
	return z, nil
}

// mustZone is zone for the builder methods, which panic on bad input.
func (c *Cloud) mustZone(method, account, region string) *zone {
	z, err := c.zone(account, region)
	if err != nil {
		panic(fmt.Sprintf("sim: %s: %v", method, err))
	}
	return z
}

// existingZone returns the zone of account and region, or nil.
func (c *Cloud) existingZone(account, region string) *zone {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.zones[zoneKey{account, region}]
}

func (c *Cloud) zoneByID(id uint32) *zone {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if id == 0 || int(id) > len(c.zoneList) {
		return nil
	}
	return c.zoneList[id-1]
}

// Client returns an EC2 client acting as account in region directly, with
// no connector and no AssumeRole: for test setup and assertions. Its calls
// are counted by the Cloud. It panics on a malformed account id or Region.
func (c *Cloud) Client(account, region string) *EC2 {
	return &EC2{cloud: c, zone: c.mustZone("Client", account, region)}
}

// Root returns the id of the organisation's root.
func (c *Cloud) Root() string { return RootID }

// AddOU adds an organisational unit under parentID (the root or an OU; ""
// means the root) and returns its id, shaped like "ou-sim0-00000001". It
// panics when the parent does not exist: scenes are built by code, and a
// typo there is a bug in the test.
func (c *Cloud) AddOU(parentID, name string) string {
	if parentID == "" {
		parentID = RootID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	parent := c.nodes[parentID]
	if parent == nil {
		panic(fmt.Sprintf("sim: AddOU(%q, %q): no such root or OU %q", parentID, name, parentID))
	}
	c.nextOU++
	id := fmt.Sprintf("ou-%s-%08x", RootID[2:], c.nextOU)
	c.nodes[id] = &orgNode{id: id, name: name, parent: parentID}
	parent.ous = append(parent.ous, id)
	return id
}

// AddAccount adds a member account under parentID (the root or an OU; ""
// means the root). An empty state means ACTIVE. It fails on a malformed or
// duplicate id or an unknown parent.
func (c *Cloud) AddAccount(id, name, parentID string, state cloud.AccountState) error {
	if !cloud.IsAccountID(id) {
		return fmt.Errorf("add account %q: account id is not 12 digits", id)
	}
	if parentID == "" {
		parentID = RootID
	}
	if state == "" {
		state = cloud.AccountActive
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.accounts[id] != nil {
		return fmt.Errorf("add account %q: account already exists", id)
	}
	parent := c.nodes[parentID]
	if parent == nil {
		return fmt.Errorf("add account %q: no such root or OU %q", id, parentID)
	}
	a := &orgAccount{id: id, name: name, parent: parentID, state: state}
	c.accounts[id] = a
	c.accountOrder = append(c.accountOrder, a)
	parent.accounts = append(parent.accounts, id)
	return nil
}

// SetAccountState changes an account's state (an account being suspended
// or closed between runs).
func (c *Cloud) SetAccountState(id string, state cloud.AccountState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.accounts[id]
	if a == nil {
		return fmt.Errorf("set state of account %q: no such account", id)
	}
	a.state = state
	return nil
}

// MoveAccount moves an account under another parent (root or OU).
func (c *Cloud) MoveAccount(id, parentID string) error {
	if parentID == "" {
		parentID = RootID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.accounts[id]
	if a == nil {
		return fmt.Errorf("move account %q: no such account", id)
	}
	to := c.nodes[parentID]
	if to == nil {
		return fmt.Errorf("move account %q: no such root or OU %q", id, parentID)
	}
	from := c.nodes[a.parent]
	from.accounts = slices.DeleteFunc(from.accounts, func(s string) bool { return s == id })
	to.accounts = append(to.accounts, id)
	a.parent = parentID
	return nil
}

// Account returns a member account as ListAccounts reports it.
func (c *Cloud) Account(id string) (cloud.Account, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a := c.accounts[id]
	if a == nil {
		return cloud.Account{}, false
	}
	return cloud.Account{ID: a.id, Name: a.name, State: a.state}, true
}

// DenyAssumeRole makes AssumeRole into the accounts fail with AccessDenied
// (a missing or broken copier role). Sessions a connector already holds stay
// valid.
func (c *Cloud) DenyAssumeRole(accounts ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range accounts {
		c.denied[a] = true
	}
}

// AllowAssumeRole undoes DenyAssumeRole.
func (c *Cloud) AllowAssumeRole(accounts ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range accounts {
		delete(c.denied, a)
	}
}

func (c *Cloud) inOrg(account string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.accounts[account] != nil
}

// assumeRoleError says why a role cannot be assumed in account, or nil. A
// role exists only in member accounts that are not suspended or closed.
func (c *Cloud) assumeRoleError(source, account string) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a := c.accounts[account]
	switch {
	case a == nil:
		return cloud.Errorf(cloud.OpAssumeRole, "AccessDenied",
			"account %s is not authorized to perform sts:AssumeRole on a role in account %q: no such account in the organisation", source, account)
	case c.denied[account]:
		return cloud.Errorf(cloud.OpAssumeRole, "AccessDenied",
			"account %s is not authorized to perform sts:AssumeRole on the copier role in account %s", source, account)
	case a.state == cloud.AccountSuspended || a.state == cloud.AccountClosed || a.state == cloud.AccountPendingClosure:
		return cloud.Errorf(cloud.OpAssumeRole, "AccessDenied",
			"account %s is not authorized to perform sts:AssumeRole in account %s: the account is %s", source, account, a.state)
	}
	return nil
}
