package state

import (
	"errors"
	"time"
)

// ErrClosed is returned by every method of a store after Close.
var ErrClosed = errors.New("state store is closed")

// ErrInvalid is wrapped by every error about bad input (empty key fields,
// unknown status, non-positive TTL or limit), so callers can tell a bug in
// what they passed from a failing backend.
var ErrInvalid = errors.New("invalid state store input")

// DefaultLockTimeout is how long the file store waits for another process
// to release the state file's lock before giving up. amicopier holds the
// lock only for one transaction (milliseconds; the check of the whole file
// when a store opens it, longer for a large file), so a wait this long
// means that something else holds it.
const DefaultLockTimeout = 10 * time.Second

// Option configures a store. Backends ignore options that do not concern
// them (the memory store has no lock to wait for).
type Option func(*options)

type options struct {
	clock       func() time.Time
	lockTimeout time.Duration
}

// WithClock makes the store read the time from clock: lease expiry and
// UpdatedAt come from it. Tests pass a clock they advance by hand; nil
// keeps time.Now.
func WithClock(clock func() time.Time) Option {
	return func(o *options) {
		if clock != nil {
			o.clock = clock
		}
	}
}

// WithLockTimeout sets how long the file store waits for the file lock
// held by another process, each time it opens the file (default
// DefaultLockTimeout). It must be positive: an unbounded wait would hang a
// run behind a stuck process.
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockTimeout = d }
}

func buildOptions(opts []Option) options {
	o := options{clock: time.Now, lockTimeout: DefaultLockTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// now reads the clock in the form every backend stores: UTC without the
// monotonic reading, so a value read back from a file or a table compares
// exactly like one kept in memory.
func (o options) now() time.Time { return normTime(o.clock()) }

func normTime(t time.Time) time.Time { return t.Round(0).UTC() }
