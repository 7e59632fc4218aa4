package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
)

// errSignal stands for the CLI's cause of a stop (a SIGINT).
var errSignal = errors.New("interrupted by SIGINT")

// TestStoppedRunIsRecordedAsInterrupted: a run whose caller stops it
// (its context is cancelled) while it discovers, observes or copies
// stops starting work, records the run as interrupted, and reports what
// the stop cut short neither as unreachable accounts nor as failures of
// AWS or of the state store.
func TestStoppedRunIsRecordedAsInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   string
		nth  int64
		ou   bool // the image targets the world's OU, not "*"
		// named: the image names its accounts one by one, and the run is
		// scoped to it (an event): they are looked up, not listed.
		named bool
	}{
		{"while discovering", "ListAccounts", 1, false, false},
		{"while listing an OU", "ListAccountsForParent", 1, true, false},
		{"while looking up a named account", "DescribeAccount", 3, false, true},
		{"while observing", "AssumeRole", 4, false, false},
		{"while copying", "CopyImage", 3, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 12
			w := newWorld(t, n)
			w.cfg.Limits.Concurrency = 2
			target := "*"
			if tc.ou {
				target = w.ou
			}
			if tc.named {
				var ids []string
				for i := 1; i <= n; i++ {
					ids = append(ids, accountID(i))
				}
				target = strings.Join(ids, " ")
			}
			img := w.image(euWest, "web", 1, target)
			req := reconcile.Request{Mode: reconcile.ModeRun, Trigger: "test"}
			if tc.named {
				req.OnlyImages = []string{img.ID}
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			var calls atomic.Int64
			w.cloud.SetFault(func(_ context.Context, c sim.Call) error {
				if c.Op == tc.op && calls.Add(1) == tc.nth {
					// The signal arrives while the call is in flight: the
					// SDK gives up on it with the context's error.
					cancel(errSignal)
					return context.Canceled
				}
				return nil
			})
			res, err := w.engine().Run(ctx, req)
			if err != nil {
				t.Fatalf("a stopped run returned an error instead of its result: %v", err)
			}
			if res.Summary.Status != report.StatusInterrupted {
				t.Errorf("status %s, want %s", res.Summary.Status, report.StatusInterrupted)
			}
			if got := res.Report.Counts[report.Unreachable]; got != 0 {
				t.Errorf("%d pairs reported unreachable: %v", got, itemsOf(res.Report, report.Unreachable))
			}
			if got := res.Report.Counts[report.RejectedTarget]; got != 0 {
				t.Errorf("%d targets rejected: %v", got, itemsOf(res.Report, report.RejectedTarget))
			}
			if res.Summary.Actions["copy_failed"] != 0 {
				t.Errorf("cut-off copies counted as failed: %v", res.Summary.Actions)
			}
			if len(res.Summary.Errors) != 1 || !strings.Contains(res.Summary.Errors[0], "run interrupted (interrupted by SIGINT)") {
				t.Errorf("errors %q: want one line saying the run was interrupted", res.Summary.Errors)
			} else if strings.Contains(res.Summary.Errors[0], "; 0 observation(s)") {
				t.Errorf("errors %q: the work the stop cut short is not counted", res.Summary.Errors)
			}
			if len(res.Summary.Unreachable) != 0 {
				t.Errorf("unreachable %+v: the stop is blamed on the accounts", res.Summary.Unreachable)
			}
			for _, e := range res.Summary.Errors {
				if strings.Contains(e, "state store") || strings.Contains(e, "unreachable") {
					t.Errorf("the stop is blamed on something else: %q", e)
				}
			}
			for _, it := range res.Report.Items {
				if it.Action == "copy" && len(it.CopyImages) == 0 {
					t.Errorf("pair %s/%s is listed as copied but was never reached", it.SourceImage, it.Account)
				}
			}
			runs, err := w.store.RecentRuns(context.Background(), srcAccount, 1)
			if err != nil || len(runs) != 1 || runs[0].Status != report.StatusInterrupted || runs[0].ID != res.Summary.RunID {
				t.Fatalf("recorded runs %+v (%v): want run %s, interrupted", runs, err, res.Summary.RunID)
			}
			if res.Record == nil || res.Record.Status != report.StatusInterrupted {
				t.Errorf("the result's record %+v", res.Record)
			}

			// The next run finishes the work.
			w.cloud.SetFault(nil)
			w.cloud.Advance(w.cfg.State.LeaseTTL.D())
			next := w.run(reconcile.ModeRun)
			if next.Summary.Status != report.StatusSucceeded {
				t.Errorf("the next run: %s %v", next.Summary.Status, next.Summary.Errors)
			}
		})
	}
}
