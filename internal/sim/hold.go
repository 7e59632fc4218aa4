package sim

import (
	"context"
	"sync/atomic"
	"time"
)

// A hold is a measuring aid, not AWS behaviour: it stops every API call at
// the next of three points of the gate it reaches (entering the gate,
// taking effect, leaving with its answer), until released. A benchmark
// holds the calls to read the heap of a quiet process at an ordinary
// moment: a call that had not yet taken effect makes no answer, one that
// had keeps its answer in hand, a worker between calls stops at its next
// one, and nothing allocates while the collector runs, so the live heap
// it finds is exact (no garbage made while it marks is counted as live).

// holder is the Cloud's hold: the calls in the gate that are not waiting
// at one of its points, and the channel the waiting ones wait on while a
// hold lasts.
type holder struct {
	moving atomic.Int64
	wait   atomic.Pointer[chan struct{}]
}

// point is one of the gate's three points: the call stops there while a
// hold lasts. Between enter and leave the call counts as moving except
// while it waits.
func (h *holder) point() {
	if ch := h.wait.Load(); ch != nil {
		h.moving.Add(-1)
		<-*ch
		h.moving.Add(1)
	}
}

func (h *holder) enter() {
	h.moving.Add(1)
	h.point()
}

func (h *holder) leave() {
	h.point()
	h.moving.Add(-1)
}

// Hold stops every call at its next point until release is called, and
// returns once no call is moving between points (settled twice in a row,
// settle apart), or when ctx ends or limit passes, whichever is first
// (quiet says whether it settled). Calls made while the hold lasts stop
// on entering. One hold at a time.
func (c *Cloud) Hold(ctx context.Context, settle, limit time.Duration) (release func(), quiet bool) {
	ch := make(chan struct{})
	c.hold.wait.Store(&ch)
	release = func() {
		c.hold.wait.Store(nil)
		close(ch)
	}
	deadline := time.Now().Add(limit)
	calm := 0
	for calm < 2 {
		if ctx.Err() != nil || time.Now().After(deadline) {
			return release, false
		}
		time.Sleep(settle)
		if c.hold.moving.Load() == 0 {
			calm++
		} else {
			calm = 0
		}
	}
	return release, true
}
