package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrCrashed is what a Crashing store answers once its process is taken
// for dead.
var ErrCrashed = errors.New("state store: the process crashed (simulated): nothing more reaches the store")

// Crashing wraps a Store and plays the death of the process that uses it
// at one moment, its CrashPoint: right after its K-th write has landed,
// or while the K-th write is on its way, so that it never lands. At that
// moment crash runs (typically the cancel of the run's context, so that
// no AWS call starts any more) and the caller gets ErrCrashed instead of
// the answer: a process killed while the answer was on its way never
// learns it either. From then on every call, read or write, fails with
// ErrCrashed without reaching the wrapped store, so nothing the dead
// process would still have written (the answer of a call in flight, the
// run record, the lease's release) lands.
//
// The two ways differ where an AWS call comes between two writes: dying
// after write K-1 has landed is dying before that call, dying with write
// K lost is dying after it (a CopyImage that started a copy whose answer
// was never recorded). Between them they cover every point a kill -9 can
// hit, as far as the store can tell.
//
// Writes are PutPair, PutGrants, PutRun, AcquireLease, RenewLease and
// ReleaseLease, counted from 1 in the order they reach the wrapper,
// whether or not the wrapped store takes them. With the zero CrashPoint
// nothing crashes: the wrapper only counts, and records the writes it saw
// (Log), so a test can run a scenario once to learn its crash points.
// Safe for concurrent use; closing it closes the wrapped store.
type Crashing struct {
	inner Store
	at    CrashPoint
	crash func()

	mu      sync.Mutex
	writes  int
	log     []Write
	crashed bool
	fatal   Write
}

// CrashPoint says when a Crashing store's process dies: at its Write-th
// write (0: never), after that write landed or, with Lost, before it
// could.
type CrashPoint struct {
	Write int  `json:"write"`
	Lost  bool `json:"lost,omitempty"`
}

func (p CrashPoint) String() string {
	switch {
	case p.Write == 0:
		return "never"
	case p.Lost:
		return fmt.Sprintf("write %d lost", p.Write)
	}
	return fmt.Sprintf("after write %d", p.Write)
}

// Write is one write a Crashing store saw: its operation, what it was
// about (a pair key, a grants key, a run id, a lease scope) and, for
// pairs and grants, what it wrote (the pair's status and copy, the
// grants' entities), so that a test can tell which step of a run a
// crash point is.
type Write struct {
	N       int    `json:"n"`
	Op      Op     `json:"op"`
	Subject string `json:"subject"`
	What    string `json:"what,omitempty"`
}

func (w Write) String() string {
	s := fmt.Sprintf("write %d: %s %s", w.N, w.Op, w.Subject)
	if w.What != "" {
		s += " (" + w.What + ")"
	}
	return s
}

var (
	_ Store           = (*Crashing)(nil)
	_ PairBatchReader = (*Crashing)(nil)
)

// NewCrashing wraps inner so that the process dies at point; crash, when
// set, runs at that moment, once. A negative write number, or Lost with
// no write, is refused.
func NewCrashing(inner Store, point CrashPoint, crash func()) (*Crashing, error) {
	if inner == nil {
		return nil, fmt.Errorf("%w: crashing store: no store to wrap", ErrInvalid)
	}
	if point.Write < 0 || (point.Lost && point.Write == 0) {
		return nil, fmt.Errorf("%w: crashing store: crash point %+v: want write 0 (never) or a write number from 1", ErrInvalid, point)
	}
	return &Crashing{inner: inner, at: point, crash: crash}, nil
}

// Writes returns how many writes reached the wrapper (the fatal one
// included, later ones not).
func (c *Crashing) Writes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// Log returns the writes that reached the wrapper, in order.
func (c *Crashing) Log() []Write {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Write(nil), c.log...)
}

// Crashed reports whether the process died, and at which write.
func (c *Crashing) Crashed() (Write, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatal, c.crashed
}

// Kill makes the process die now, whatever its crash point, for a crash
// decided elsewhere (before an AWS call, say): from now on nothing
// reaches the wrapped store. Crashed then names the last write that
// reached it (N 0: none). crash does not run.
func (c *Crashing) Kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return
	}
	c.crashed = true
	if n := len(c.log); n > 0 {
		c.fatal = c.log[n-1]
	}
}

// Inner returns the wrapped store: what survives the crash.
func (c *Crashing) Inner() Store { return c.inner }

func (c *Crashing) dead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.crashed
}

// crashingWrite runs one write unless the process is dead, and kills it
// at the fatal write, after (or, Lost, instead of) the write.
func crashingWrite[T any](c *Crashing, op Op, subject, what string, write func() (T, error)) (T, error) {
	var zero T
	c.mu.Lock()
	if c.crashed {
		c.mu.Unlock()
		return zero, fmt.Errorf("%s %s: %w", op, subject, ErrCrashed)
	}
	c.writes++
	w := Write{N: c.writes, Op: op, Subject: subject, What: what}
	c.log = append(c.log, w)
	fatal := c.at.Write > 0 && c.writes == c.at.Write
	if fatal {
		// Dead from now on: writes racing this one never land.
		c.crashed, c.fatal = true, w
	}
	c.mu.Unlock()
	if !fatal {
		return write()
	}
	landed := false
	if !c.at.Lost {
		_, err := write()
		landed = err == nil
	}
	if c.crash != nil {
		c.crash()
	}
	return zero, fmt.Errorf("%s (landed: %v): %w", w, landed, ErrCrashed)
}

func crashingRead[T any](c *Crashing, op Op, read func() (T, error)) (T, error) {
	if c.dead() {
		var zero T
		return zero, fmt.Errorf("%s: %w", op, ErrCrashed)
	}
	return read()
}

// UnsettledPairs implements Store.
func (c *Crashing) UnsettledPairs(ctx context.Context, source string) ([]Pair, error) {
	return crashingRead(c, OpUnsettledPairs, func() ([]Pair, error) { return c.inner.UnsettledPairs(ctx, source) })
}

// GetPair implements Store.
func (c *Crashing) GetPair(ctx context.Context, key PairKey) (Pair, bool, error) {
	type found struct {
		p  Pair
		ok bool
	}
	r, err := crashingRead(c, OpGetPair, func() (found, error) {
		p, ok, err := c.inner.GetPair(ctx, key)
		return found{p, ok}, err
	})
	return r.p, r.ok, err
}

// GetPairs implements PairBatchReader, reading as the wrapped store does.
func (c *Crashing) GetPairs(ctx context.Context, keys []PairKey) (map[PairKey]Pair, error) {
	return crashingRead(c, OpGetPairs, func() (map[PairKey]Pair, error) { return GetPairs(ctx, c.inner, keys) })
}

// PutPair implements Store.
func (c *Crashing) PutPair(ctx context.Context, p Pair) (Pair, error) {
	return crashingWrite(c, OpPutPair, p.Key.String(), pairWhat(p), func() (Pair, error) { return c.inner.PutPair(ctx, p) })
}

// GrantsOf implements Store.
func (c *Crashing) GrantsOf(ctx context.Context, source string) ([]Grants, error) {
	return crashingRead(c, OpGrantsOf, func() ([]Grants, error) { return c.inner.GrantsOf(ctx, source) })
}

// PutGrants implements Store.
func (c *Crashing) PutGrants(ctx context.Context, g Grants) (Grants, error) {
	return crashingWrite(c, OpPutGrants, g.Key.String(), grantsWhat(g), func() (Grants, error) { return c.inner.PutGrants(ctx, g) })
}

// PutRun implements Store.
func (c *Crashing) PutRun(ctx context.Context, r Run) error {
	_, err := crashingWrite(c, OpPutRun, r.ID, r.Status, func() (struct{}, error) { return struct{}{}, c.inner.PutRun(ctx, r) })
	return err
}

// RecentRuns implements Store.
func (c *Crashing) RecentRuns(ctx context.Context, scope string, limit int) ([]Run, error) {
	return crashingRead(c, OpRecentRuns, func() ([]Run, error) { return c.inner.RecentRuns(ctx, scope, limit) })
}

// AcquireLease implements Store.
func (c *Crashing) AcquireLease(ctx context.Context, scope, holder string, ttl time.Duration) (Lease, error) {
	return crashingWrite(c, OpAcquireLease, scope, holder, func() (Lease, error) { return c.inner.AcquireLease(ctx, scope, holder, ttl) })
}

// RenewLease implements Store.
func (c *Crashing) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	return crashingWrite(c, OpRenewLease, l.Scope, l.Holder, func() (Lease, error) { return c.inner.RenewLease(ctx, l, ttl) })
}

// ReleaseLease implements Store.
func (c *Crashing) ReleaseLease(ctx context.Context, l Lease) error {
	_, err := crashingWrite(c, OpReleaseLease, l.Scope, l.Holder, func() (struct{}, error) { return struct{}{}, c.inner.ReleaseLease(ctx, l) })
	return err
}

// Close implements Store by closing the wrapped store.
func (c *Crashing) Close() error { return c.inner.Close() }

// pairWhat describes a pair write: its status, attempt and copy.
func pairWhat(p Pair) string {
	s := fmt.Sprintf("%s, attempt %d", p.Status, p.Attempts)
	if p.CopyImageID != "" {
		s += ", copy " + p.CopyImageID
	}
	return s
}

// grantsWhat describes a grants write: how many entities it lists.
func grantsWhat(g Grants) string {
	return fmt.Sprintf("launch %d, volume %d", len(g.Launch), len(g.Volume))
}
