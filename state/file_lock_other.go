//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package state

import (
	"os"
	"time"
)

// flockWait does nothing where flock(2) is missing: bbolt's own lock then
// guards the file, taken only after the checks, which another process
// writing at that moment could mislead.
func flockWait(*os.File, bool, time.Duration) error { return nil }
