package sim

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/pause"
)

// opCode indexes the fixed table of operations, so counting a call is one
// atomic add into an array instead of a map update.
type opCode uint8

const (
	opDescribeImages opCode = iota
	opDescribeImageAttribute
	opModifyImageAttribute
	opDescribeSnapshotAttribute
	opModifySnapshotAttribute
	opCopyImage
	opCreateTags
	opDeregisterImage
	opDeleteSnapshot
	opDescribeInstances
	opDescribeSnapshots
	opAssumeRole
	opListAccounts
	opListRoots
	opListOrganizationalUnitsForParent
	opListAccountsForParent
	opDescribeOrganization
	opDescribeAccount
	opDescribeKey
	opGetKeyPolicy
	opListGrants
	opGenerateDataKeyWithoutPlaintext
	// opCopyImageDryRun is CopyImage with DryRun: counted apart, never
	// mutating, metered in CopyImage's bucket.
	opCopyImageDryRun
	opEnableImageDeprecation
	opDisableImageDeprecation
	opDescribeLaunchTemplateVersions
	// Parameter Store and EventBridge (ssm.go, events.go).
	opGetParameters
	opPutParameter
	opListTagsForResource
	opAddTagsToResource
	opPutEvents
	numOps
)

var opNames = [numOps]string{
	opDescribeImages:                   cloud.OpDescribeImages,
	opDescribeImageAttribute:           cloud.OpDescribeImageAttribute,
	opModifyImageAttribute:             cloud.OpModifyImageAttribute,
	opDescribeSnapshotAttribute:        cloud.OpDescribeSnapshotAttribute,
	opModifySnapshotAttribute:          cloud.OpModifySnapshotAttribute,
	opCopyImage:                        cloud.OpCopyImage,
	opCreateTags:                       cloud.OpCreateTags,
	opDeregisterImage:                  cloud.OpDeregisterImage,
	opDeleteSnapshot:                   cloud.OpDeleteSnapshot,
	opDescribeInstances:                cloud.OpDescribeInstances,
	opDescribeSnapshots:                cloud.OpDescribeSnapshots,
	opAssumeRole:                       cloud.OpAssumeRole,
	opListAccounts:                     cloud.OpListAccounts,
	opListRoots:                        cloud.OpListRoots,
	opListOrganizationalUnitsForParent: cloud.OpListOrganizationalUnitsForParent,
	opListAccountsForParent:            cloud.OpListAccountsForParent,
	opDescribeOrganization:             cloud.OpDescribeOrganization,
	opDescribeAccount:                  cloud.OpDescribeAccount,
	opDescribeKey:                      cloud.OpDescribeKey,
	opGetKeyPolicy:                     cloud.OpGetKeyPolicy,
	opListGrants:                       cloud.OpListGrants,
	opGenerateDataKeyWithoutPlaintext:  cloud.OpGenerateDataKeyWithoutPlaintext,
	opCopyImageDryRun:                  cloud.OpCopyImageDryRun,
	opEnableImageDeprecation:           cloud.OpEnableImageDeprecation,
	opDisableImageDeprecation:          cloud.OpDisableImageDeprecation,
	opDescribeLaunchTemplateVersions:   cloud.OpDescribeLaunchTemplateVersions,
	opGetParameters:                    cloud.OpGetParameters,
	opPutParameter:                     cloud.OpPutParameter,
	opListTagsForResource:              cloud.OpListTagsForResource,
	opAddTagsToResource:                cloud.OpAddTagsToResource,
	opPutEvents:                        cloud.OpPutEvents,
}

// isMutating reports whether op is metered in EC2's (much smaller)
// mutating token bucket; the engine's list is the one list.
func isMutating(op opCode) bool { return cloud.IsMutating(opNames[op]) }

// Call describes one simulated API call as it passes the gate; the fault
// hook receives it.
type Call struct {
	// Op is the AWS operation name (one of the Op constants).
	Op string
	// Account is the caller's account: the account whose client made an
	// EC2 call, the account a role is assumed in for AssumeRole, the
	// connector's source account for Organizations calls.
	Account string
	// Region is the caller's Region; empty for the global services (STS,
	// Organizations).
	Region string
	// Mutating is true for the calls EC2 meters as mutating.
	Mutating bool
	// Resource names what the call is about when there is one thing: an
	// image or snapshot id, CopyImage's source image id, an Organizations
	// parent id, the account of AssumeRole. Fault hooks use it to fail one
	// resource only.
	Resource string
}

// FaultFunc is the fault hook. It sees every call after it is counted and
// before it takes effect; a non-nil error fails the call with that error and
// the call has no effect. Return *cloud.APIError values with real AWS codes
// (for example RequestLimitExceeded) to exercise the engine's
// classification. It runs concurrently and must be safe for that.
type FaultFunc func(ctx context.Context, c Call) error

// cell counts the calls of one (account, Region) by operation. Zones keep a
// pointer to their cell so that counting never looks anything up.
type cell struct {
	n [numOps]atomic.Int64
}

type cellKey struct{ account, region string }

// callCounters holds the cells of a Cloud. The map is only touched when a
// zone is created or when counts are read, never on the hot path of an EC2
// call.
type callCounters struct {
	mu    sync.RWMutex
	cells map[cellKey]*cell
}

func (cc *callCounters) cell(account, region string) *cell {
	k := cellKey{account, region}
	cc.mu.RLock()
	c := cc.cells[k]
	cc.mu.RUnlock()
	if c != nil {
		return c
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if c = cc.cells[k]; c == nil {
		if cc.cells == nil {
			cc.cells = make(map[cellKey]*cell)
		}
		c = &cell{}
		cc.cells[k] = c
	}
	return c
}

func (cc *callCounters) byOp() map[string]int64 {
	out := make(map[string]int64)
	cc.mu.RLock()
	defer cc.mu.RUnlock()
	for _, c := range cc.cells {
		for op := range numOps {
			if n := c.n[op].Load(); n != 0 {
				out[opNames[op]] += n
			}
		}
	}
	return out
}

func (cc *callCounters) mutating() int64 {
	var total int64
	cc.mu.RLock()
	defer cc.mu.RUnlock()
	for _, c := range cc.cells {
		for op := range numOps {
			if isMutating(op) {
				total += c.n[op].Load()
			}
		}
	}
	return total
}

func (cc *callCounters) count(op, account, region string) int64 {
	var total int64
	cc.mu.RLock()
	defer cc.mu.RUnlock()
	for k, c := range cc.cells {
		if (account != "" && k.account != account) || (region != "" && k.region != region) {
			continue
		}
		for code := range numOps {
			if op == "" || opNames[code] == op {
				total += c.n[code].Load()
			}
		}
	}
	return total
}

func (cc *callCounters) reset() {
	cc.mu.RLock()
	defer cc.mu.RUnlock()
	for _, c := range cc.cells {
		for op := range numOps {
			c.n[op].Store(0)
		}
	}
}

// opCounts counts calls by operation only; a Connector has one.
type opCounts [numOps]atomic.Int64

func (o *opCounts) byOp() map[string]int64 {
	out := make(map[string]int64)
	for op := range numOps {
		if n := o[op].Load(); n != 0 {
			out[opNames[op]] = n
		}
	}
	return out
}

func (o *opCounts) mutating() int64 {
	var total int64
	for op := range numOps {
		if isMutating(op) {
			total += o[op].Load()
		}
	}
	return total
}

func (o *opCounts) reset() {
	for op := range numOps {
		o[op].Store(0)
	}
}

// do is the gate every simulated API call passes, in this order:
//
//  1. A cancelled context fails the call before anything else: the SDK
//     would not send the request.
//  2. The call is counted in the Cloud's cell for (account, Region) and,
//     when the call came through a Connector, in the connector's counts.
//  3. Realism (realism.go, off unless configured): half the class's
//     latency passes (the request crossing the network), then the call
//     draws a token from its bucket (EC2 per account and Region, STS and
//     Organizations per calling account); an empty bucket answers with
//     AWS's throttling error after the other half of the latency. A
//     throttled call is still a counted call. No lock is held while
//     sleeping.
//  4. The fault hook (SetFault) may fail the call; it then has no effect.
//     Issue "Reliability" extends fault injection here.
//  5. fn performs the operation (nil for a page that only needs counting).
//  6. The other half of the latency passes (the response coming back).
//  7. While a measurement holds the calls (Hold, hold.go), a call waits
//     at its next point: entering the gate, before fn, or leaving it.
//
// Keep every API call on this path: counts, latency, throttling and faults
// are only trustworthy if nothing bypasses it.
func (c *Cloud) do(ctx context.Context, conn *Connector, counts *cell, op opCode, account, region, resource string, fn func() error) error {
	return c.attempt(ctx, conn, counts, op, classOf(op), account, region, resource, fn)
}

// attempt passes a call through the gate, and again, as the SDK's retryer
// would, while the connector has attempts left and the answer is one the
// classification table calls throttled or transient. Before each attempt
// the connector's pacer (if any) lets the call go. Calls made without a
// connector (Cloud.Client: test setup) are tried once.
func (c *Cloud) attempt(ctx context.Context, conn *Connector, counts *cell, op opCode, class BucketClass, account, region, resource string, fn func() error) error {
	attempts := 1
	if conn != nil {
		attempts = max(1, conn.attempts)
	}
	for attempt := 1; ; attempt++ {
		if conn != nil && conn.pace != nil {
			if err := conn.pace.Wait(ctx, account, region, opNames[op]); err != nil {
				return err
			}
		}
		err := c.gate(ctx, conn, counts, op, class, account, region, resource, fn)
		throttled := cloud.ClassOf(err) == cloud.ClassThrottled
		if conn != nil && throttled {
			conn.throttled.Add(1)
		}
		if err == nil || attempt >= attempts || !cloud.IsTransient(err) {
			if conn != nil && throttled {
				conn.surfaced.Add(1)
			}
			return err
		}
		if err := pause.For(ctx, c.backoff(class, attempt, err)); err != nil {
			return err
		}
	}
}

// backoff is the wait before attempt+1, as the SDK's retryer would wait:
// exponential, scaled to the simulated latency (none when latency is off),
// and, after a refusal by one of the Cloud's own buckets, at least until
// the bucket refills a token, with jitter (the SDK's standard retryer waits
// a random part of 2^attempt seconds; retrying into an empty bucket at
// once would only be refused again). A fault injected by the hook has no
// bucket behind it to wait for.
func (c *Cloud) backoff(class BucketClass, attempt int, err error) time.Duration {
	d := c.cfg.latency.of(class) << attempt
	var refused *bucketRefusal
	if errors.As(err, &refused) && refused.refill > 0 {
		tok := time.Duration(float64(time.Second) / refused.refill)
		d = max(d, tok<<(attempt-1)+rand.N(tok))
	}
	return d
}

// gate is do with the bucket class given, for the calls whose class
// depends on their arguments (an unfiltered DescribeImages).
func (c *Cloud) gate(ctx context.Context, conn *Connector, counts *cell, op opCode, class BucketClass, account, region, resource string, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.hold.enter()
	defer c.hold.leave()
	counts.n[op].Add(1)
	if conn != nil {
		conn.counts[op].Add(1)
	}
	lat := c.cfg.latency.of(class)
	if err := pause.For(ctx, lat/2); err != nil {
		return err
	}
	caller := account
	if class == BucketSTS && conn != nil {
		caller = conn.source // STS meters the account that assumes roles
	}
	if err := c.take(class, op, caller, region); err != nil {
		c.throttled.Add(1)
		if perr := pause.For(ctx, lat-lat/2); perr != nil {
			return perr
		}
		return err
	}
	if hook := c.fault.Load(); hook != nil {
		call := Call{Op: opNames[op], Account: account, Region: region, Mutating: isMutating(op), Resource: resource}
		if err := (*hook)(ctx, call); err != nil {
			return err
		}
	}
	c.hold.point()
	var err error
	if fn != nil {
		err = fn()
	}
	// A context cancelled while the answer travels back loses the answer,
	// not the effect: the engine must cope with both (ClientToken).
	if perr := pause.For(ctx, lat-lat/2); perr != nil && err == nil {
		return perr
	}
	return err
}
