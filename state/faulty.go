package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Op names a Store operation in a fault plan.
type Op string

// The operations of Store (and PairBatchReader) a fault can hit.
const (
	OpUnsettledPairs Op = "UnsettledPairs"
	OpGetPair        Op = "GetPair"
	OpGetPairs       Op = "GetPairs"
	OpPutPair        Op = "PutPair"
	OpPutRun         Op = "PutRun"
	OpRecentRuns     Op = "RecentRuns"
	OpAcquireLease   Op = "AcquireLease"
	OpRenewLease     Op = "RenewLease"
	OpReleaseLease   Op = "ReleaseLease"
	OpGrantsOf       Op = "GrantsOf"
	OpPutGrants      Op = "PutGrants"
)

// dynamoOperations is the DynamoDB API operation each store operation
// makes, as the adapter's errors name it.
var dynamoOperations = map[Op]string{
	OpUnsettledPairs: "Query",
	OpGetPair:        "GetItem",
	OpGetPairs:       "BatchGetItem",
	OpPutPair:        "PutItem",
	OpPutRun:         "PutItem",
	OpRecentRuns:     "Query",
	OpAcquireLease:   "PutItem",
	OpRenewLease:     "PutItem",
	OpReleaseLease:   "DeleteItem",
	OpGrantsOf:       "Query",
	OpPutGrants:      "PutItem",
}

var (
	allOps   = []Op{OpUnsettledPairs, OpGetPair, OpGetPairs, OpPutPair, OpPutRun, OpRecentRuns, OpAcquireLease, OpRenewLease, OpReleaseLease, OpGrantsOf, OpPutGrants}
	writeOps = []Op{OpPutPair, OpPutRun, OpAcquireLease, OpRenewLease, OpReleaseLease, OpPutGrants}
)

// FaultKind is a failure Faulty injects.
type FaultKind string

// The fault kinds. Each comes back as the DynamoDB adapter reports that
// failure, so the engine meets the same errors as against DynamoDB.
const (
	// FaultThroughput: every attempt was answered
	// ProvisionedThroughputExceededException until the SDK's retryer gave
	// up. Nothing is written.
	FaultThroughput FaultKind = "throughput"
	// FaultThrottling: the same with ThrottlingException.
	FaultThrottling FaultKind = "throttling"
	// FaultTimeout: the caller's deadline passed before an answer, and the
	// request never reached the table: nothing is written.
	FaultTimeout FaultKind = "timeout"
	// FaultTimeoutLanded: the write was applied, then the caller's
	// deadline passed before the answer: the caller sees the timeout of
	// FaultTimeout, the table has the write. Writes only.
	FaultTimeoutLanded FaultKind = "timeout_landed"
	// FaultConditional: another writer got there first, for real: a rival
	// rewrites the pair (same content, next version) or takes the lease
	// before the call goes through, so the call fails its condition as it
	// would against DynamoDB (ErrConflict, *LeaseHeldError, ErrLeaseLost;
	// a release finds the lease taken over and leaves it). Conditional
	// writes only: PutPair and the lease operations.
	FaultConditional FaultKind = "conditional"
	// FaultUnprocessed: BatchGetItem kept returning some keys as
	// unprocessed after every retry (ErrBatchUnprocessed). GetPairs only.
	FaultUnprocessed FaultKind = "unprocessed"
	// FaultTableMissing: the table is deleted. From the first injection
	// on, every call fails with ResourceNotFoundException
	// (ErrTableNotFound) until RestoreTable.
	FaultTableMissing FaultKind = "table_missing"
)

// faultOps are the operations each kind can hit.
var faultOps = map[FaultKind][]Op{
	FaultThroughput:    allOps,
	FaultThrottling:    allOps,
	FaultTimeout:       allOps,
	FaultTimeoutLanded: writeOps,
	FaultConditional:   {OpPutPair, OpAcquireLease, OpRenewLease, OpReleaseLease, OpPutGrants},
	FaultUnprocessed:   {OpGetPairs},
	FaultTableMissing:  allOps,
}

// FaultKinds lists every kind, in a stable order.
var FaultKinds = []FaultKind{FaultThroughput, FaultThrottling, FaultTimeout, FaultTimeoutLanded,
	FaultConditional, FaultUnprocessed, FaultTableMissing}

// FaultRule injects one kind of fault into some operations.
type FaultRule struct {
	Kind FaultKind
	// Ops are the operations it hits; empty means every operation the
	// kind can hit.
	Ops []Op
	// Rate is the probability, from 0 to 1, that an eligible call gets
	// the fault.
	Rate float64
	// Count caps the faults the rule injects; 0 means no cap.
	Count int
	// After lets the first After eligible calls through untouched (a
	// table that disappears mid-run).
	After int
}

// FaultPlan says what Faulty injects. Decisions are deterministic for a
// Seed: whether a call gets a fault depends on the seed, the rule, the
// operation, what it is about (the pair, run or lease) and how many
// calls about the same thing came before, not on how calls about
// different things interleave. Count and After are taken in call order.
type FaultPlan struct {
	Seed uint64
	// Rules are tried in order; the first that fires decides.
	Rules []FaultRule
	// Table, Region and Endpoint name the table in the errors when the
	// wrapped store is not the DynamoDB adapter (which names its own);
	// empty: "amicopier-state" in DefaultDynamoDBRegion.
	Table, Region, Endpoint string
	// RivalTTL is how long a rival holds a lease it takes over from a
	// ReleaseLease (FaultConditional); 0 means one minute. Acquire and
	// renew races give the rival the caller's ttl.
	RivalTTL time.Duration
}

// RivalHolder is the lease holder of the rival FaultConditional invents.
const RivalHolder = "faulty-rival"

// FaultCounts is the number of faults injected, by kind.
type FaultCounts map[FaultKind]int64

// Total is the number of faults of every kind.
func (c FaultCounts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// Faulty wraps a Store and injects the failures a DynamoDB table shows
// (throttling, timeouts with or without the write applied, lost
// conditions, unprocessed batch keys, a deleted table) by operation, rate
// and count, as the DynamoDB adapter would report them. With no rules it
// is the wrapped store. Safe for concurrent use; closing it closes the
// wrapped store.
type Faulty struct {
	inner Store
	plan  FaultPlan
	names tableRef
	// attempts and batchRetries are the adapter's, for its messages.
	attempts, batchRetries int

	mu       sync.Mutex
	seen     map[string]int // calls so far per operation and subject
	eligible []int          // eligible calls so far per rule
	fired    []int          // faults injected per rule
	counts   FaultCounts
	gone     bool // the table is missing
	requests int  // numbers the fake request ids
}

var (
	_ Store           = (*Faulty)(nil)
	_ PairBatchReader = (*Faulty)(nil)
)

// NewFaulty wraps inner with plan. A plan naming an unknown kind or
// operation, an operation its kind cannot hit, or a rate, count or after
// out of range is refused with an error naming it.
func NewFaulty(inner Store, plan FaultPlan) (*Faulty, error) {
	if inner == nil {
		return nil, fmt.Errorf("%w: faulty store: no store to wrap", ErrInvalid)
	}
	for i, r := range plan.Rules {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("%w: faulty store: rule %d: %v", ErrInvalid, i+1, err)
		}
	}
	if plan.RivalTTL < 0 {
		return nil, fmt.Errorf("%w: faulty store: RivalTTL %s is negative", ErrInvalid, plan.RivalTTL)
	}
	plan.Rules = slices.Clone(plan.Rules)
	f := &Faulty{
		inner: inner, plan: plan,
		names:    tableRef{table: plan.Table, region: plan.Region, endpoint: plan.Endpoint},
		attempts: DefaultDynamoDBMaxAttempts, batchRetries: 8,
		seen:     map[string]int{},
		eligible: make([]int, len(plan.Rules)),
		fired:    make([]int, len(plan.Rules)),
		counts:   FaultCounts{},
	}
	if f.names.table == "" {
		f.names.table = "amicopier-state"
	}
	if f.names.region == "" {
		f.names.region = DefaultDynamoDBRegion
	}
	if d, ok := inner.(*DynamoDB); ok {
		f.names, f.attempts, f.batchRetries = d.tableRef, d.maxAttempts, d.batchRetries
	}
	return f, nil
}

func (r FaultRule) validate() error {
	ops, known := faultOps[r.Kind]
	switch {
	case !known:
		return fmt.Errorf("unknown fault kind %q (known: %v)", r.Kind, FaultKinds)
	case math.IsNaN(r.Rate) || r.Rate < 0 || r.Rate > 1:
		return fmt.Errorf("%s: rate %v is not between 0 and 1", r.Kind, r.Rate)
	case r.Count < 0:
		return fmt.Errorf("%s: count %d is negative", r.Kind, r.Count)
	case r.After < 0:
		return fmt.Errorf("%s: after %d is negative", r.Kind, r.After)
	}
	for _, op := range r.Ops {
		if !slices.Contains(allOps, op) {
			return fmt.Errorf("%s: unknown operation %q (known: %v)", r.Kind, op, allOps)
		}
		if !slices.Contains(ops, op) {
			return fmt.Errorf("%s cannot hit %s (only %v)", r.Kind, op, ops)
		}
	}
	return nil
}

// Injected returns the faults injected so far, by kind.
func (f *Faulty) Injected() FaultCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(FaultCounts, len(f.counts))
	for k, v := range f.counts {
		out[k] = v
	}
	return out
}

// TableMissing reports whether a FaultTableMissing fault deleted the
// table.
func (f *Faulty) TableMissing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gone
}

// RestoreTable brings a missing table back with what it held (as a
// point-in-time restore would), so a test can recover.
func (f *Faulty) RestoreTable() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone = false
}

// Inner returns the wrapped store.
func (f *Faulty) Inner() Store { return f.inner }

// call is one store call about to be made.
type call struct {
	op Op
	// subject is what the call is about (a pair key, a run, a lease).
	subject string
	// what describes the call as the adapter's errors do.
	what string
}

// decide returns the fault the call gets, "" for none, and an id for the
// request. A missing table fails every call.
func (f *Faulty) decide(c call) (FaultKind, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	id := fmt.Sprintf("FAULTY%08d", f.requests)
	if f.gone {
		f.counts[FaultTableMissing]++
		return FaultTableMissing, id
	}
	n := f.seen[string(c.op)+"\x00"+c.subject]
	f.seen[string(c.op)+"\x00"+c.subject] = n + 1
	for i, r := range f.plan.Rules {
		if !r.hits(c.op) {
			continue
		}
		f.eligible[i]++
		if f.eligible[i] <= r.After || (r.Count > 0 && f.fired[i] >= r.Count) {
			continue
		}
		if f.draw(i, c, n) >= r.Rate {
			continue
		}
		f.fired[i]++
		f.counts[r.Kind]++
		if r.Kind == FaultTableMissing {
			f.gone = true
		}
		return r.Kind, id
	}
	return "", id
}

// undo takes back a fault decide counted that did not happen (a landed
// timeout whose write failed anyway, a conflict the call did not meet).
func (f *Faulty) undo(kind FaultKind, c call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[kind]--
	if f.counts[kind] == 0 {
		delete(f.counts, kind)
	}
	for i, r := range f.plan.Rules {
		if r.Kind == kind && r.hits(c.op) && f.fired[i] > 0 {
			f.fired[i]--
			return
		}
	}
}

func (r FaultRule) hits(op Op) bool {
	if len(r.Ops) == 0 {
		return slices.Contains(faultOps[r.Kind], op)
	}
	return slices.Contains(r.Ops, op)
}

// draw is a number in [0, 1) fixed by the seed, the rule, the call's
// operation and subject, and how many calls about the subject came first.
func (f *Faulty) draw(rule int, c call, n int) float64 {
	h := fnv.New64a()
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], f.plan.Seed)
	h.Write(buf[:])
	binary.LittleEndian.PutUint64(buf[:], uint64(rule)<<32|uint64(n))
	h.Write(buf[:])
	h.Write([]byte(c.op))
	h.Write([]byte{0})
	h.Write([]byte(c.subject))
	// FNV's low bits mix poorly for short inputs: finish with a
	// SplitMix64 step before taking 53 bits.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// failure is the error a fault that leaves the table alone returns.
func (f *Faulty) failure(kind FaultKind, c call, id string) error {
	switch kind {
	case FaultThroughput, FaultThrottling:
		return f.names.apiError(c.what, throttledError(dynamoOperations[c.op], kind, f.attempts, id))
	case FaultTimeout, FaultTimeoutLanded:
		return f.names.apiError(c.what, timeoutError(dynamoOperations[c.op]))
	case FaultTableMissing:
		return f.names.apiError(c.what, tableMissingError(dynamoOperations[c.op], id))
	}
	return fmt.Errorf("faulty store: %s: fault %s has no error of its own", c.what, kind)
}

// read runs a read: a fault returns its error instead.
func faultyRead[T any](f *Faulty, c call, read func() (T, error)) (T, error) {
	if kind, id := f.decide(c); kind != "" {
		var zero T
		return zero, f.failure(kind, c, id)
	}
	return read()
}

// write runs a write under the fault the call gets. rival makes the
// conflict happen for real before the write (FaultConditional); lost
// reports whether the write's outcome (nil included) is the lost
// condition, or the fault is taken back.
func faultyWrite[T any](f *Faulty, c call, rival func() error, lost func(error) bool, write func() (T, error)) (T, error) {
	kind, id := f.decide(c)
	var zero T
	switch kind {
	case "":
		return write()
	case FaultTimeoutLanded:
		if _, err := write(); err != nil {
			f.undo(kind, c)
			return zero, err
		}
		return zero, f.failure(kind, c, id)
	case FaultConditional:
		if err := rival(); err != nil {
			// No rival could write (bad input, the store failing): no
			// race, the call goes through as it is.
			f.undo(kind, c)
			return write()
		}
		v, err := write()
		if !lost(err) {
			f.undo(kind, c)
		}
		return v, err
	}
	return zero, f.failure(kind, c, id)
}

// UnsettledPairs implements Store.
func (f *Faulty) UnsettledPairs(ctx context.Context, source string) ([]Pair, error) {
	c := call{op: OpUnsettledPairs, subject: source, what: opUnsettledPairs(source)}
	return faultyRead(f, c, func() ([]Pair, error) { return f.inner.UnsettledPairs(ctx, source) })
}

// GetPair implements Store.
func (f *Faulty) GetPair(ctx context.Context, key PairKey) (Pair, bool, error) {
	type found struct {
		p  Pair
		ok bool
	}
	c := call{op: OpGetPair, subject: key.String(), what: opGetPair(key)}
	r, err := faultyRead(f, c, func() (found, error) {
		p, ok, err := f.inner.GetPair(ctx, key)
		return found{p, ok}, err
	})
	return r.p, r.ok, err
}

// GetPairs implements PairBatchReader: one batch call, however the
// wrapped store reads (GetPairs). FaultUnprocessed fails it as the
// adapter does when BatchGetItem kept keys unprocessed.
func (f *Faulty) GetPairs(ctx context.Context, keys []PairKey) (map[PairKey]Pair, error) {
	unique, err := uniqueKeys(keys)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(unique))
	for i, k := range unique {
		names[i] = k.String()
	}
	slices.Sort(names)
	c := call{op: OpGetPairs, subject: strings.Join(names, ","), what: opGetPairs(len(unique))}
	kind, id := f.decide(c)
	switch kind {
	case "":
		return GetPairs(ctx, f.inner, unique)
	case FaultUnprocessed:
		// At least one key, at most the last request's 100.
		left := 1 + int(f.draw(-1, c, 0)*float64(min(len(unique), batchGetLimit)))
		return nil, f.names.unprocessedError(c.what, min(left, len(unique)), f.batchRetries)
	}
	return nil, f.failure(kind, c, id)
}

// PutPair implements Store. FaultConditional has a rival write the pair
// first: the record as stored (or p itself, for a new pair), one version
// on.
func (f *Faulty) PutPair(ctx context.Context, p Pair) (Pair, error) {
	c := call{op: OpPutPair, subject: p.Key.String(), what: opPutPair(p.Key)}
	rival := func() error {
		cur, found, err := f.inner.GetPair(ctx, p.Key)
		if err != nil {
			return err
		}
		next := p
		if found {
			next = cur
		}
		next.RunID = RivalHolder
		_, err = f.inner.PutPair(ctx, next)
		return err
	}
	lost := func(err error) bool { return errors.Is(err, ErrConflict) }
	return faultyWrite(f, c, rival, lost, func() (Pair, error) { return f.inner.PutPair(ctx, p) })
}

// GrantsOf implements Store.
func (f *Faulty) GrantsOf(ctx context.Context, source string) ([]Grants, error) {
	c := call{op: OpGrantsOf, subject: source, what: "read grants of source " + source}
	return faultyRead(f, c, func() ([]Grants, error) { return f.inner.GrantsOf(ctx, source) })
}

// PutGrants implements Store. FaultConditional has a rival rewrite the
// record (same content, next version) first.
func (f *Faulty) PutGrants(ctx context.Context, g Grants) (Grants, error) {
	c := call{op: OpPutGrants, subject: g.Key.String(), what: "put grants " + g.Key.String()}
	rival := func() error {
		all, err := f.inner.GrantsOf(ctx, g.Source)
		if err != nil {
			return err
		}
		next := g
		next.Version = 0
		for _, cur := range all {
			if cur.Key == g.Key {
				next = cur
			}
		}
		if next.Empty() {
			next.Launch = []string{RivalHolder}
		}
		next.RunID = RivalHolder
		_, err = f.inner.PutGrants(ctx, next)
		return err
	}
	lost := func(err error) bool { return errors.Is(err, ErrConflict) }
	return faultyWrite(f, c, rival, lost, func() (Grants, error) { return f.inner.PutGrants(ctx, g) })
}

// PutRun implements Store.
func (f *Faulty) PutRun(ctx context.Context, r Run) error {
	c := call{op: OpPutRun, subject: r.Scope + "/" + r.ID, what: opPutRun(r)}
	_, err := faultyWrite(f, c, nil, nil, func() (struct{}, error) { return struct{}{}, f.inner.PutRun(ctx, r) })
	return err
}

// RecentRuns implements Store.
func (f *Faulty) RecentRuns(ctx context.Context, scope string, limit int) ([]Run, error) {
	c := call{op: OpRecentRuns, subject: scope, what: opRecentRuns(scope)}
	return faultyRead(f, c, func() ([]Run, error) { return f.inner.RecentRuns(ctx, scope, limit) })
}

// AcquireLease implements Store. FaultConditional has a rival take the
// lease first, which it can only if the lease is free or expired.
func (f *Faulty) AcquireLease(ctx context.Context, scope, holder string, ttl time.Duration) (Lease, error) {
	c := call{op: OpAcquireLease, subject: scope + "/" + holder, what: opAcquireLease(scope)}
	rival := func() error {
		_, err := f.inner.AcquireLease(ctx, scope, RivalHolder, ttl)
		var held *LeaseHeldError
		if errors.As(err, &held) {
			return nil // someone holds it already: no race to lose
		}
		return err
	}
	lost := func(err error) bool {
		var held *LeaseHeldError
		return errors.As(err, &held)
	}
	return faultyWrite(f, c, rival, lost, func() (Lease, error) { return f.inner.AcquireLease(ctx, scope, holder, ttl) })
}

// RenewLease implements Store. FaultConditional has a rival take the
// lease over (as after the caller's lease expired), so the renewal finds
// it lost.
func (f *Faulty) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	c := call{op: OpRenewLease, subject: l.Scope + "/" + l.Holder, what: opRenewLease(l.Scope)}
	rival := func() error { return f.takeOver(ctx, l, ttl) }
	lost := func(err error) bool { return errors.Is(err, ErrLeaseLost) }
	return faultyWrite(f, c, rival, lost, func() (Lease, error) { return f.inner.RenewLease(ctx, l, ttl) })
}

// ReleaseLease implements Store. FaultConditional has a rival take the
// lease over for RivalTTL first; the release then leaves it alone, as the
// adapter's conditional delete does.
func (f *Faulty) ReleaseLease(ctx context.Context, l Lease) error {
	c := call{op: OpReleaseLease, subject: l.Scope + "/" + l.Holder, what: opReleaseLease(l.Scope)}
	ttl := f.plan.RivalTTL
	if ttl == 0 {
		ttl = time.Minute
	}
	rival := func() error { return f.takeOver(ctx, l, ttl) }
	// A release that lost its condition succeeds: count the fault when
	// the rival holds the lease.
	lost := func(error) bool { return true }
	_, err := faultyWrite(f, c, rival, lost, func() (struct{}, error) { return struct{}{}, f.inner.ReleaseLease(ctx, l) })
	return err
}

// takeOver gives l's lease to the rival, as another run would once l
// expired.
func (f *Faulty) takeOver(ctx context.Context, l Lease, ttl time.Duration) error {
	if err := f.inner.ReleaseLease(ctx, l); err != nil {
		return err
	}
	_, err := f.inner.AcquireLease(ctx, l.Scope, RivalHolder, ttl)
	return err
}

// Close implements Store by closing the wrapped store; it never fails by
// plan.
func (f *Faulty) Close() error { return f.inner.Close() }
