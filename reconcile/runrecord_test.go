package reconcile_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// TestPartialRunNamesUnreachableAccounts: a run that is partial because
// an account could not be reached (no error recorded for it) says which
// account, in which Regions and why, in its summary and in its record.
func TestPartialRunNamesUnreachableAccounts(t *testing.T) {
	w := newWorld(t, 3)
	w.image(euWest, "web", 1, "*")
	w.image(usEast, "base", 1, "*")
	w.cloud.DenyAssumeRole(accountID(2))
	res := w.run(reconcile.ModeRun)
	if res.Summary.Status != report.StatusPartial {
		t.Fatalf("status %s, want partial", res.Summary.Status)
	}
	want := []report.UnreachableAccount{{Account: accountID(2), Regions: []string{euWest, usEast}}}
	if res.Summary.UnreachableCount != 1 || len(res.Summary.Unreachable) != 1 ||
		res.Summary.Unreachable[0].Account != want[0].Account || !slices.Equal(res.Summary.Unreachable[0].Regions, want[0].Regions) ||
		!strings.Contains(res.Summary.Unreachable[0].Reason, accountID(2)) {
		t.Fatalf("summary unreachable %+v (count %d), want %v with a reason", res.Summary.Unreachable, res.Summary.UnreachableCount, want)
	}
	runs, err := w.store.RecentRuns(context.Background(), srcAccount, 1)
	if err != nil || len(runs) != 1 {
		t.Fatalf("RecentRuns = %v, %v", runs, err)
	}
	rec := runs[0]
	if rec.UnreachableCount != 1 || len(rec.Unreachable) != 1 || rec.Unreachable[0].Account != accountID(2) ||
		!slices.Equal(rec.Unreachable[0].Regions, want[0].Regions) || rec.Unreachable[0].Reason == "" {
		t.Fatalf("run record unreachable %+v (count %d), want account %s in both Regions with a reason", rec.Unreachable, rec.UnreachableCount, accountID(2))
	}
}

// TestRecordFailure: a run that fails outright (here the AWS connection
// itself) leaves a record, failed, with its error; a dry run and a run
// that found the lease held leave none.
func TestRecordFailure(t *testing.T) {
	w := newWorld(t, 1)
	w.image(euWest, "web", 1, accountID(1))
	dead := errors.New(`operation error Organizations: ListAccounts, https response error: dial tcp 127.0.0.1:1: connect: connection refused`)
	eng := w.engineWith(func(o *reconcile.Options) {
		o.Connect = func(context.Context, string) (cloud.Connector, error) { return nil, dead }
	})
	ctx := context.Background()
	started := w.cloud.Now()
	for _, req := range []reconcile.Request{
		{Mode: reconcile.ModeRun, Trigger: "cli", RunID: "run-failed"},
		{Mode: reconcile.ModePlan, Trigger: "cli", RunID: "plan-failed"},
	} {
		_, err := eng.Run(ctx, req)
		if err == nil {
			t.Fatalf("%s: the run did not fail", req.RunID)
		}
		if err := reconcile.RecordFailure(ctx, w.store, settingsOf(t, w.cfg), reconcile.Failure{Request: req, Started: started, Finished: started.Add(time.Second), Err: err}); err != nil {
			t.Fatal(err)
		}
	}
	held := &state.LeaseHeldError{Scope: srcAccount, Holder: "other-run", Expires: started.Add(time.Minute)}
	if err := reconcile.RecordFailure(ctx, w.store, settingsOf(t, w.cfg), reconcile.Failure{Request: reconcile.Request{Mode: reconcile.ModeRun, RunID: "held"}, Started: started, Err: held}); err != nil {
		t.Fatal(err)
	}
	runs, err := w.store.RecentRuns(ctx, srcAccount, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("recorded runs %+v, want only the failed reconcile", runs)
	}
	r := runs[0]
	if r.ID != "run-failed" || r.Status != report.StatusFailed || r.Trigger != "cli" || r.Mode != string(reconcile.ModeRun) ||
		len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "connection refused") || !r.Finished.Equal(started.Add(time.Second)) {
		t.Fatalf("failed run recorded as %+v", r)
	}
}
