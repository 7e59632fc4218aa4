package sim

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/amicopier/amicopier/internal/cloud"
)

// Connector hands out clients for one run, as the engine's Connector port
// asks: Source acts as the source account, Target assumes the copier role in
// a member account once per run and reuses that session in every Region.
// A new Connector is a new run: it assumes roles again. It counts the calls
// made through it (CallCounts), separately from the Cloud's totals.
type Connector struct {
	cloud  *Cloud
	source string
	counts opCounts
	// throttled counts the calls made through the connector that a token
	// bucket refused.
	throttled atomic.Int64
	// attempts > 1 makes every call retry transient answers like the
	// SDK's retryer (see RetryingConnector).
	attempts int
	absorbed atomic.Int64

	mu       sync.Mutex
	sessions map[string]*session
}

// RetryingConnector is a Connector whose calls retry throttled and 5xx
// answers themselves, each page and each attempt a counted call, the way
// the SDK adapters' clients do: a cloud.RetryingConnector, so the
// engine does not retry on top. Benchmarks and chaos scenarios use it to
// model a real deployment; the plain Connector leaves retries to the
// engine.
type RetryingConnector struct {
	*Connector
}

// AbsorbedThrottles returns how many throttled answers the connector's
// calls got, retried or not (the engine does not count them again).
func (r RetryingConnector) AbsorbedThrottles() int64 { return r.absorbed.Load() }

// RetryingConnector returns a new connector (a new run) whose calls are
// tried up to attempts times (the SDK's standard retryer makes 3; the
// adapters 5).
func (c *Cloud) RetryingConnector(sourceAccountID string, attempts int) RetryingConnector {
	k := c.Connector(sourceAccountID)
	k.attempts = max(1, attempts)
	return RetryingConnector{k}
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
func (c *Cloud) Connector(sourceAccountID string) *Connector {
	if !cloud.IsAccountID(sourceAccountID) {
		panic(fmt.Sprintf("sim: Connector(%q): account id is not 12 digits", sourceAccountID))
	}
	return &Connector{cloud: c, source: sourceAccountID, sessions: make(map[string]*session)}
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
			return nil, err
		}
		s.ok = true
	}
	s.mu.Unlock()

	z, err := k.cloud.zone(accountID, region)
	if err != nil {
		return nil, fmt.Errorf("target client in account %s: %w", accountID, err)
	}
	return &EC2{cloud: k.cloud, conn: k, zone: z}, nil
}

// Organization returns the Organizations client; it makes no call.
func (k *Connector) Organization(_ context.Context) (cloud.Organization, error) {
	return &Organization{cloud: k.cloud, conn: k, caller: k.source, counts: k.cloud.calls.cell(k.source, "")}, nil
}

// CallCounts returns the calls made through this connector by operation
// (the connector is a cloud.CallCounter).
func (k *Connector) CallCounts() map[string]int64 { return k.counts.byOp() }

// MutatingCalls returns how many mutating calls were made through this
// connector.
func (k *Connector) MutatingCalls() int64 { return k.counts.mutating() }

// ThrottledCalls returns how many calls made through this connector a
// token bucket refused.
func (k *Connector) ThrottledCalls() int64 { return k.throttled.Load() }

// ResetCounters sets the connector's counts, and its count of throttled
// calls, to zero.
func (k *Connector) ResetCounters() {
	k.counts.reset()
	k.throttled.Store(0)
}
