package state

import (
	"context"
	"sync/atomic"
	"time"
)

// Counting wraps a Store and counts the requests made to it, so tests and
// benchmarks can prove that a run in which nothing changed writes O(1)
// items. Every call counts, whether or not it succeeds: a lost conditional
// write still costs DynamoDB a request.
type Counting struct {
	inner Store

	pairWrites   atomic.Int64
	runWrites    atomic.Int64
	leaseWrites  atomic.Int64
	grantsWrites atomic.Int64

	pairReads      atomic.Int64
	pairBatchReads atomic.Int64
	unsettledReads atomic.Int64
	unsettledItems atomic.Int64
	runReads       atomic.Int64
	grantsReads    atomic.Int64
}

var (
	_ Store           = (*Counting)(nil)
	_ PairBatchReader = (*Counting)(nil)
)

// WriteCounts is the number of write requests by kind.
type WriteCounts struct {
	// PairWrites counts PutPair calls.
	PairWrites int64
	// RunWrites counts PutRun calls.
	RunWrites int64
	// LeaseWrites counts AcquireLease, RenewLease and ReleaseLease calls.
	LeaseWrites int64
	// GrantsWrites counts PutGrants calls.
	GrantsWrites int64
}

// Total is the number of write requests of every kind.
func (w WriteCounts) Total() int64 {
	return w.PairWrites + w.RunWrites + w.LeaseWrites + w.GrantsWrites
}

// ReadCounts is the number of read requests by kind.
type ReadCounts struct {
	// PairReads counts GetPair calls, PairBatchReads GetPairs calls.
	PairReads      int64
	PairBatchReads int64
	// UnsettledReads counts UnsettledPairs calls.
	UnsettledReads int64
	// UnsettledItems counts the pairs UnsettledPairs returned, the measure
	// of how sparse the index stays.
	UnsettledItems int64
	// RunReads counts RecentRuns calls.
	RunReads int64
	// GrantsReads counts GrantsOf calls.
	GrantsReads int64
}

// Total is the number of read requests (not items) of every kind.
func (r ReadCounts) Total() int64 {
	return r.PairReads + r.PairBatchReads + r.UnsettledReads + r.RunReads + r.GrantsReads
}

// NewCounting wraps s. Closing the wrapper closes s.
func NewCounting(s Store) *Counting { return &Counting{inner: s} }

// Writes returns the write requests counted since creation or Reset.
func (c *Counting) Writes() WriteCounts {
	return WriteCounts{
		PairWrites:   c.pairWrites.Load(),
		RunWrites:    c.runWrites.Load(),
		LeaseWrites:  c.leaseWrites.Load(),
		GrantsWrites: c.grantsWrites.Load(),
	}
}

// Reads returns the read requests counted since creation or Reset.
func (c *Counting) Reads() ReadCounts {
	return ReadCounts{
		PairReads:      c.pairReads.Load(),
		PairBatchReads: c.pairBatchReads.Load(),
		UnsettledReads: c.unsettledReads.Load(),
		UnsettledItems: c.unsettledItems.Load(),
		RunReads:       c.runReads.Load(),
		GrantsReads:    c.grantsReads.Load(),
	}
}

// Reset zeroes every count, so a benchmark can measure a second run
// without the first.
func (c *Counting) Reset() {
	for _, n := range []*atomic.Int64{
		&c.pairWrites, &c.runWrites, &c.leaseWrites, &c.grantsWrites,
		&c.pairReads, &c.pairBatchReads, &c.unsettledReads, &c.unsettledItems, &c.runReads, &c.grantsReads,
	} {
		n.Store(0)
	}
}

// UnsettledPairs implements Store.
func (c *Counting) UnsettledPairs(ctx context.Context, source string) ([]Pair, error) {
	c.unsettledReads.Add(1)
	ps, err := c.inner.UnsettledPairs(ctx, source)
	c.unsettledItems.Add(int64(len(ps)))
	return ps, err
}

// GetPair implements Store.
func (c *Counting) GetPair(ctx context.Context, key PairKey) (Pair, bool, error) {
	c.pairReads.Add(1)
	return c.inner.GetPair(ctx, key)
}

// GetPairs implements PairBatchReader: one call, in batches when the
// wrapped store reads in batches.
func (c *Counting) GetPairs(ctx context.Context, keys []PairKey) (map[PairKey]Pair, error) {
	c.pairBatchReads.Add(1)
	return GetPairs(ctx, c.inner, keys)
}

// PutPair implements Store.
func (c *Counting) PutPair(ctx context.Context, p Pair) (Pair, error) {
	c.pairWrites.Add(1)
	return c.inner.PutPair(ctx, p)
}

// GrantsOf implements Store.
func (c *Counting) GrantsOf(ctx context.Context, source string) ([]Grants, error) {
	c.grantsReads.Add(1)
	return c.inner.GrantsOf(ctx, source)
}

// PutGrants implements Store.
func (c *Counting) PutGrants(ctx context.Context, g Grants) (Grants, error) {
	c.grantsWrites.Add(1)
	return c.inner.PutGrants(ctx, g)
}

// PutRun implements Store.
func (c *Counting) PutRun(ctx context.Context, r Run) error {
	c.runWrites.Add(1)
	return c.inner.PutRun(ctx, r)
}

// RecentRuns implements Store.
func (c *Counting) RecentRuns(ctx context.Context, scope string, limit int) ([]Run, error) {
	c.runReads.Add(1)
	return c.inner.RecentRuns(ctx, scope, limit)
}

// AcquireLease implements Store.
func (c *Counting) AcquireLease(ctx context.Context, scope, holder string, ttl time.Duration) (Lease, error) {
	c.leaseWrites.Add(1)
	return c.inner.AcquireLease(ctx, scope, holder, ttl)
}

// RenewLease implements Store.
func (c *Counting) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	c.leaseWrites.Add(1)
	return c.inner.RenewLease(ctx, l, ttl)
}

// ReleaseLease implements Store.
func (c *Counting) ReleaseLease(ctx context.Context, l Lease) error {
	c.leaseWrites.Add(1)
	return c.inner.ReleaseLease(ctx, l)
}

// Close implements Store by closing the wrapped store.
func (c *Counting) Close() error { return c.inner.Close() }
