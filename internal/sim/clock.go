package sim

import (
	"fmt"
	"sync/atomic"
	"time"
)

// DefaultStart returns the time a Cloud's clock shows when no start time is
// given: 2026-01-01T00:00:00Z.
func DefaultStart() time.Time { return time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC) }

// Clock is a manual clock, safe for concurrent use. It only moves when told
// to, so tests decide when a pending copy completes. The time is kept as Unix
// nanoseconds in an atomic so that reading it on every API call costs no
// lock.
type Clock struct {
	nanos atomic.Int64
}

// NewClock returns a clock showing start.
func NewClock(start time.Time) *Clock {
	c := &Clock{}
	c.nanos.Store(start.UnixNano())
	return c
}

// Now returns the clock's time, in UTC.
func (c *Clock) Now() time.Time { return time.Unix(0, c.nanos.Load()).UTC() }

// Advance moves the clock forward by d. Time never runs backwards in the
// simulator (copy completion depends on it), so a negative d panics.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		panic(fmt.Sprintf("sim: Clock.Advance(%s): the clock cannot go backwards", d))
	}
	c.nanos.Add(int64(d))
}

func (c *Clock) now() int64 { return c.nanos.Load() }
