// Package pause holds the one way amicopier waits: for a while, or until
// the context is done, whichever comes first. Every retry backoff and
// polling loop waits through it, so a cancelled run (a signal, a deadline,
// a lost lease) never sits out a pause.
package pause

import (
	"context"
	"time"
)

// For waits d, or until ctx is done; it returns ctx's error in the second
// case. A d of zero or less returns nil at once: no wait, nothing to cut
// short.
func For(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
