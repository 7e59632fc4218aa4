package sim

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/pacing"
)

// Connector hands out clients for one run, as the engine's Connector port
// asks: Source acts as the source account, Target assumes the copier role in
// a member account once per run and reuses that session in every Region.
// A new Connector is a new run: it assumes roles again. It counts the calls
// made through it (CallCounts), separately from the Cloud's totals.
//
// Like the SDK adapters' connector, it owns retries and pacing: each call
// is tried up to its attempts (WithAttempts; by default DefaultAttempts,
// as many as the adapters make), retrying the answers the one
// classification table calls throttled or transient, with backoff; and
// with WithPacing it waits for its client-side bucket before each attempt
// (package pacing, the same buckets the adapters use). The engine neither
// retries nor paces on top.
type Connector struct {
	cloud  *Cloud
	source string
	counts opCounts
	// throttled counts the throttled answers the connector's calls got,
	// every attempt, retried or not (bucket refusals and injected ones);
	// surfaced the calls that failed throttled after the last attempt.
	throttled, surfaced atomic.Int64
	attempts            int
	pace                *pacing.Pacer

	mu       sync.Mutex
	sessions map[string]*session
}

// DefaultAttempts is how often a connector tries one call by default: as
// often as the SDK adapters (internal/awsapi) do by default.
const DefaultAttempts = 5

// ConnectorOption configures a Connector.
type ConnectorOption func(*Connector)

// WithAttempts makes each call tried at most n times (at least once).
// Unit tests that inject one fault per call and count its effect set 1.
func WithAttempts(n int) ConnectorOption {
	return func(k *Connector) { k.attempts = max(1, n) }
}

// WithPacing makes the connector wait for p's bucket of each call before
// every attempt, as the adapters' middleware does; nil paces nothing.
func WithPacing(p *pacing.Pacer) ConnectorOption {
	return func(k *Connector) { k.pace = p }
}

// session is one account's assumed role. Its lock serialises concurrent
// first calls for the account, so the role is assumed once.
type session struct {
	mu  sync.Mutex
	ok  bool
	ctr *cell
}

// Connector returns a new connector (a new run) acting from sourceAccountID.
// It panics on a malformed account id.
func (c *Cloud) Connector(sourceAccountID string, opts ...ConnectorOption) *Connector {
	if !cloud.IsAccountID(sourceAccountID) {
		panic(fmt.Sprintf("sim: Connector(%q): account id is not 12 digits", sourceAccountID))
	}
	k := &Connector{cloud: c, source: sourceAccountID, attempts: DefaultAttempts, sessions: make(map[string]*session)}
	for _, o := range opts {
		o(k)
	}
	return k
}

// SourceAccount returns the account the connector acts from.
func (k *Connector) SourceAccount() string { return k.source }

// Source returns the source account's client in region (the run's own
// credentials: no AssumeRole).
func (k *Connector) Source(_ context.Context, region string) (cloud.EC2, error) {
	z, err := k.cloud.zone(k.source, region)
	if err != nil {
		return nil, fmt.Errorf("source client in account %s: %w", k.source, err)
	}
	return &EC2{cloud: k.cloud, conn: k, zone: z}, nil
}

// Target returns a client acting as accountID in region. The first call for
// an account makes one AssumeRole call; once it succeeds, later calls for any
// Region reuse the session without a call. Unknown, suspended or closed
// accounts and those given to DenyAssumeRole fail with AccessDenied (a
// *cloud.APIError of op AssumeRole) every time they are asked, each time a
// counted call.
func (k *Connector) Target(ctx context.Context, accountID, region string) (cloud.EC2, error) {
	if !cloud.IsRegion(region) {
		return nil, fmt.Errorf("target client in account %s: region %q is not an AWS Region name", accountID, region)
	}
	if err := k.assume(ctx, accountID); err != nil {
		return nil, err
	}
	z, err := k.cloud.zone(accountID, region)
	if err != nil {
		return nil, fmt.Errorf("target client in account %s: %w", accountID, err)
	}
	return &EC2{cloud: k.cloud, conn: k, zone: z, assumed: true}, nil
}

// TargetKeys returns a KMS client acting as the copier role of accountID
// in region, through the account's session as Target (the connector is a
// cloud.KeyConnector).
func (k *Connector) TargetKeys(ctx context.Context, accountID, region string) (cloud.KeyInspector, error) {
	if !cloud.IsRegion(region) {
		return nil, fmt.Errorf("key client in account %s: region %q is not an AWS Region name", accountID, region)
	}
	if err := k.assume(ctx, accountID); err != nil {
		return nil, err
	}
	if _, err := k.cloud.zone(accountID, region); err != nil {
		return nil, fmt.Errorf("key client in account %s: %w", accountID, err)
	}
	return &KMS{cloud: k.cloud, conn: k, account: accountID, region: region, calls: k.cloud.calls.cell(accountID, region), assumed: true}, nil
}

// assume makes sure the run holds a session in accountID: one AssumeRole
// call the first time, none once it succeeded.
func (k *Connector) assume(ctx context.Context, accountID string) error {
	k.mu.Lock()
	s := k.sessions[accountID]
	if s == nil {
		s = &session{ctr: k.cloud.calls.cell(accountID, "")}
		k.sessions[accountID] = s
	}
	k.mu.Unlock()

	s.mu.Lock()
	if !s.ok {
		err := k.cloud.do(ctx, k, s.ctr, opAssumeRole, accountID, "", accountID, func() error {
			return k.cloud.assumeRoleError(k.source, accountID)
		})
		if err != nil {
			s.mu.Unlock()
			return err
		}
		s.ok = true
	}
	s.mu.Unlock()
	return nil
}

// Organization returns the Organizations client; it makes no call.
func (k *Connector) Organization(_ context.Context) (cloud.Organization, error) {
	return &Organization{cloud: k.cloud, conn: k, caller: k.source, counts: k.cloud.calls.cell(k.source, "")}, nil
}

// CallCounts returns the calls made through this connector by operation
// (the connector is a CallCounter).
func (k *Connector) CallCounts() map[string]int64 { return k.counts.byOp() }

// MutatingCalls returns how many mutating calls were made through this
// connector.
func (k *Connector) MutatingCalls() int64 { return k.counts.mutating() }

// Throttles returns how many attempts made through this connector were
// throttled (by a bucket or by the fault hook), retried or not, and how
// many calls failed throttled after their last attempt (the connector is a
// CallCounter).
func (k *Connector) Throttles() (attempts, surfaced int64) {
	return k.throttled.Load(), k.surfaced.Load()
}

// ResetCounters sets the connector's counts, and its count of throttled
// calls, to zero.
func (k *Connector) ResetCounters() {
	k.counts.reset()
	k.throttled.Store(0)
	k.surfaced.Store(0)
}
