package state

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a Store kept in process memory, for tests and the simulator.
// It forgets everything when the process ends.
type Memory struct {
	opts options

	mu     sync.Mutex
	closed bool
	pairs  map[PairKey]Pair
	// unsettled is the sparse index: source account -> its unsettled
	// pairs, so UnsettledPairs never walks settled ones.
	unsettled map[string]map[PairKey]struct{}
	runs      map[string]map[string]Run       // scope -> id -> run
	leases    map[string]Lease                // scope -> lease
	grants    map[string]map[GrantsKey]Grants // source -> key -> record
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory(opts ...Option) *Memory {
	return &Memory{
		opts:      buildOptions(opts),
		pairs:     make(map[PairKey]Pair),
		unsettled: make(map[string]map[PairKey]struct{}),
		runs:      make(map[string]map[string]Run),
		leases:    make(map[string]Lease),
		grants:    make(map[string]map[GrantsKey]Grants),
	}
}

// GrantsOf implements Store.
func (m *Memory) GrantsOf(ctx context.Context, source string) ([]Grants, error) {
	if err := validateSource(source); err != nil {
		return nil, err
	}
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []Grants
	for _, g := range m.grants[source] {
		out = append(out, g)
	}
	sortGrants(out)
	return out, nil
}

// PutGrants implements Store.
func (m *Memory) PutGrants(ctx context.Context, g Grants) (Grants, error) {
	if err := validateGrants(g); err != nil {
		return Grants{}, err
	}
	if err := m.lock(ctx); err != nil {
		return Grants{}, err
	}
	defer m.mu.Unlock()
	stored, found := m.grants[g.Source][g.Key]
	next, err := nextGrants(stored, found, g, m.opts.now())
	if err != nil {
		return Grants{}, err
	}
	if next.Key == (GrantsKey{}) {
		delete(m.grants[g.Source], g.Key)
		return next, nil
	}
	if m.grants[g.Source] == nil {
		m.grants[g.Source] = make(map[GrantsKey]Grants)
	}
	m.grants[g.Source][g.Key] = next
	return next, nil
}

// lock takes the store's lock unless the context is done or the store is
// closed; on success the caller must unlock.
func (m *Memory) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// UnsettledPairs implements Store. Pairs come ordered by key.
func (m *Memory) UnsettledPairs(ctx context.Context, source string) ([]Pair, error) {
	if err := validateSource(source); err != nil {
		return nil, err
	}
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	idx := m.unsettled[source]
	if len(idx) == 0 {
		return nil, nil
	}
	out := make([]Pair, 0, len(idx))
	for k := range idx {
		out = append(out, m.pairs[k])
	}
	slices.SortFunc(out, func(a, b Pair) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return out, nil
}

// GetPair implements Store.
func (m *Memory) GetPair(ctx context.Context, key PairKey) (Pair, bool, error) {
	if err := validatePairKey(key); err != nil {
		return Pair{}, false, err
	}
	if err := m.lock(ctx); err != nil {
		return Pair{}, false, err
	}
	defer m.mu.Unlock()
	p, ok := m.pairs[key]
	return p, ok, nil
}

// PutPair implements Store.
func (m *Memory) PutPair(ctx context.Context, p Pair) (Pair, error) {
	if err := validatePair(p); err != nil {
		return Pair{}, err
	}
	if err := m.lock(ctx); err != nil {
		return Pair{}, err
	}
	defer m.mu.Unlock()
	stored, found := m.pairs[p.Key]
	next, err := nextPair(stored, found, p, m.opts.now())
	if err != nil {
		return Pair{}, err
	}
	m.pairs[next.Key] = next
	if found && stored.Source != next.Source {
		m.unindex(stored.Source, stored.Key)
	}
	if next.Status.Settled() {
		m.unindex(next.Source, next.Key)
	} else {
		idx := m.unsettled[next.Source]
		if idx == nil {
			idx = make(map[PairKey]struct{})
			m.unsettled[next.Source] = idx
		}
		idx[next.Key] = struct{}{}
	}
	return next, nil
}

func (m *Memory) unindex(source string, k PairKey) {
	idx := m.unsettled[source]
	delete(idx, k)
	if len(idx) == 0 {
		delete(m.unsettled, source)
	}
}

// PutRun implements Store. It also forgets the scope's expired runs, as
// the file store does, so a long-lived test process does not grow.
func (m *Memory) PutRun(ctx context.Context, r Run) error {
	if err := validateRun(r); err != nil {
		return err
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	now := m.opts.now()
	byID := m.runs[r.Scope]
	if byID == nil {
		byID = make(map[string]Run)
		m.runs[r.Scope] = byID
	}
	for id, old := range byID {
		if runExpired(old, now) {
			delete(byID, id)
		}
	}
	byID[r.ID] = cloneRun(r)
	return nil
}

// RecentRuns implements Store.
func (m *Memory) RecentRuns(ctx context.Context, scope string, limit int) ([]Run, error) {
	if err := validateRecent(scope, limit); err != nil {
		return nil, err
	}
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	now := m.opts.now()
	var live []Run
	for _, r := range m.runs[scope] {
		if !runExpired(r, now) {
			live = append(live, r)
		}
	}
	slices.SortFunc(live, compareRunsNewestFirst)
	if len(live) > limit {
		live = live[:limit]
	}
	out := make([]Run, len(live))
	for i, r := range live {
		out[i] = cloneRun(r)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// AcquireLease implements Store.
func (m *Memory) AcquireLease(ctx context.Context, scope, holder string, ttl time.Duration) (Lease, error) {
	if err := validateLease(scope, holder, ttl); err != nil {
		return Lease{}, err
	}
	if err := m.lock(ctx); err != nil {
		return Lease{}, err
	}
	defer m.mu.Unlock()
	cur, found := m.leases[scope]
	l, err := acquireLease(cur, found, scope, holder, ttl, m.opts.now())
	if err != nil {
		return Lease{}, err
	}
	m.leases[scope] = l
	return l, nil
}

// RenewLease implements Store.
func (m *Memory) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if err := validateLease(l.Scope, l.Holder, ttl); err != nil {
		return Lease{}, err
	}
	if err := m.lock(ctx); err != nil {
		return Lease{}, err
	}
	defer m.mu.Unlock()
	cur, found := m.leases[l.Scope]
	next, err := renewLease(cur, found, l, ttl, m.opts.now())
	if err != nil {
		return Lease{}, err
	}
	m.leases[l.Scope] = next
	return next, nil
}

// ReleaseLease implements Store.
func (m *Memory) ReleaseLease(ctx context.Context, l Lease) error {
	if err := validateRelease(l); err != nil {
		return err
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	cur, found := m.leases[l.Scope]
	if releaseLease(cur, found, l) {
		delete(m.leases, l.Scope)
	}
	return nil
}

// Close implements Store. Closing twice is not an error.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
