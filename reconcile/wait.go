package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/pause"
)

// StartedCopy is a copy a run started: CopyImage answered with its id.
type StartedCopy struct {
	Account, Region, ImageID, SourceImageID string
}

// CopyOutcome is where a started copy stands after WaitForCopies.
type CopyOutcome struct {
	StartedCopy
	// State is the copy's last seen state; empty when EC2 did not list
	// the image (yet); deregistered when it was listed once and then no
	// more.
	State cloud.ImageState
	// Reason is EC2's explanation of a failed copy.
	Reason string
}

// WaitOptions tune WaitForCopies.
type WaitOptions struct {
	// Timeout bounds the whole wait (required, > 0).
	Timeout time.Duration
	// MinDelay and MaxDelay bound the pause between two looks at one
	// account and Region (the pause doubles from MinDelay up to
	// MaxDelay); defaults 15s and 120s, the SDK image waiter's.
	MinDelay, MaxDelay time.Duration
	// Finished, when set, is told of copies as they are seen finished
	// (available, failed, deregistered...), n at a time; it is called
	// from several goroutines at once.
	Finished func(n int)
	// Sleep pauses between looks; default pause.For (the demo passes one
	// that moves the simulator's clock instead).
	Sleep func(ctx context.Context, d time.Duration) error
}

// Default pauses between two looks at one account and Region, as the
// SDK's image-available waiter's.
const (
	defaultWaitMinDelay = 15 * time.Second
	defaultWaitMaxDelay = 120 * time.Second
)

// DistinctCopies is how many distinct copies started lists (the copies
// WaitForCopies waits for).
func DistinctCopies(started []StartedCopy) int {
	seen := map[StartedCopy]bool{}
	for _, sc := range started {
		seen[StartedCopy{Account: sc.Account, Region: sc.Region, ImageID: sc.ImageID}] = true
	}
	return len(seen)
}

// WaitForCopies waits until none of the copies started is pending any
// more, then reports each one's state (every entry of started, in order).
// It looks through conn's target clients (the run's sessions), accounts
// and Regions concurrently, at most concurrency at a time: each look is
// one DescribeImages of the copies' ids (the port splits them by EC2's
// filter limit). A copy listed before that is no longer listed was
// deregistered while waiting: it is finished, with state deregistered. A
// copy never listed yet (not visible yet) is waited for. It returns an
// error when the wait timed out (the outcomes still say where each copy
// stood at the last look) or a look failed.
func WaitForCopies(ctx context.Context, conn cloud.Connector, started []StartedCopy, concurrency int, o WaitOptions) ([]CopyOutcome, error) {
	if o.Timeout <= 0 {
		return nil, errors.New("wait for copies: the timeout must be positive")
	}
	if o.MinDelay <= 0 {
		o.MinDelay = defaultWaitMinDelay
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = defaultWaitMaxDelay
	}
	o.MaxDelay = max(o.MaxDelay, o.MinDelay)
	if o.Sleep == nil {
		o.Sleep = pause.For
	}
	groups := map[[2]string][]int{} // indexes into started
	for i, sc := range started {
		k := [2]string{sc.Account, sc.Region}
		groups[k] = append(groups[k], i)
	}
	keys := make([][2]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })

	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	out := make([]CopyOutcome, len(started))
	for i, sc := range started {
		out[i].StartedCopy = sc
	}
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, concurrency))
	for i, k := range keys {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			w := copyWaiter{account: k[0], region: k[1], o: o, outer: ctx}
			errs[i] = w.wait(wctx, conn, started, groups[k], out)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// copyWaiter waits for the copies of one account and Region.
type copyWaiter struct {
	account, region string
	o               WaitOptions
	outer           context.Context // the caller's: done means stopped, not timed out
}

// copyLook is what the last look showed of one copy.
type copyLook struct {
	state  cloud.ImageState
	reason string
}

func (w *copyWaiter) wait(ctx context.Context, conn cloud.Connector, started []StartedCopy, idx []int, out []CopyOutcome) error {
	var ids []string
	for _, i := range idx {
		ids = append(ids, started[i].ImageID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	what := fmt.Sprintf("wait for %d copies in account %s, %s", len(ids), w.account, w.region)
	client, err := conn.Target(ctx, w.account, w.region)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	looks := map[string]copyLook{}
	defer func() {
		for _, i := range idx {
			l := looks[started[i].ImageID]
			out[i].State, out[i].Reason = l.state, l.reason
		}
	}()
	reported := 0
	look := func(ctx context.Context) error {
		imgs, err := client.DescribeImages(ctx, cloud.ImageQuery{ImageIDs: ids})
		if err != nil {
			return err
		}
		listed := make(map[string]copyLook, len(imgs))
		for _, im := range imgs {
			listed[im.ID] = copyLook{state: im.State, reason: im.StateReason}
		}
		for _, id := range ids {
			if l, ok := listed[id]; ok {
				looks[id] = l
			} else if _, seen := looks[id]; seen {
				// Listed before, gone now: deregistered while we waited.
				looks[id] = copyLook{state: cloud.ImageDeregistered, reason: "the copy is no longer listed: it was deregistered"}
			}
		}
		if done := len(ids) - unfinished(ids, looks); w.o.Finished != nil && done > reported {
			w.o.Finished(done - reported)
			reported = done
		}
		return nil
	}
	timedOut := func(looked bool) error {
		if !looked {
			// The timeout cut the first look short: look once more (on
			// the caller's context), so the outcomes say where every copy
			// stands.
			if err := look(w.outer); err != nil {
				return fmt.Errorf("%s: timed out after %s, then: %w", what, w.o.Timeout, err)
			}
		}
		return fmt.Errorf("%s: timed out after %s with %d still pending or not visible", what, w.o.Timeout, unfinished(ids, looks))
	}
	delay := w.o.MinDelay
	for looked := false; ; looked = true {
		if err := look(ctx); err != nil {
			if w.outer.Err() == nil && (ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) {
				return timedOut(looked)
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		if unfinished(ids, looks) == 0 {
			return nil
		}
		if err := w.o.Sleep(ctx, delay); err != nil {
			if err := w.outer.Err(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return timedOut(true)
		}
		delay = min(2*delay, w.o.MaxDelay)
	}
}

// unfinished counts the copies still pending or never seen.
func unfinished(ids []string, looks map[string]copyLook) int {
	n := 0
	for _, id := range ids {
		if l, ok := looks[id]; !ok || l.state == cloud.ImagePending {
			n++
		}
	}
	return n
}
