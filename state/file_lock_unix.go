//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package state

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// flockWait takes the file's flock(2) lock, shared or exclusive, trying
// for at most timeout. Another process's transaction lasts milliseconds
// and the lock is free between two of them only briefly, so it tries
// often (every millisecond at most): a reader beside a busy run then waits
// tens of milliseconds, not seconds. bbolt then locks the same descriptor
// again, which changes nothing.
func flockWait(f *os.File, exclusive bool, timeout time.Duration) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	deadline := time.Now().Add(timeout)
	pause := 100 * time.Microsecond
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR):
			return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		case !time.Now().Before(deadline):
			return errLockTimeout
		}
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(2*pause, time.Millisecond)
	}
}
