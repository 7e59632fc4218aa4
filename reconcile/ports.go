package reconcile

import "time"

// Clock tells the time. The simulator's clock is manual, so tests and the
// demo can move copies from pending to available.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }
