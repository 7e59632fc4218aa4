package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
)

// eventsWorld is a world whose runs publish to a bus of the central
// (source) account.
func eventsWorld(t *testing.T, n int, opts ...sim.Option) (*world, string) {
	t.Helper()
	w := newWorld(t, n, opts...)
	bus := w.cloud.AddEventBus(srcAccount, euWest, "amicopier")
	w.cfg.Events.Bus = bus
	must(t, w.cfg.Validate())
	return w, bus
}

// eventsEngine is the world's engine with quick resends.
func (w *world) runQuick(mode reconcile.Mode) *reconcile.Result {
	w.t.Helper()
	s := settingsOf(w.t, w.cfg)
	s.Events.RetryBase = time.Millisecond
	e := w.engineWith(func(o *reconcile.Options) { o.Settings = s })
	res, err := e.Run(context.Background(), reconcile.Request{Mode: mode, Trigger: "test"})
	if err != nil {
		w.t.Fatalf("%s: %v", mode, err)
	}
	return res
}

func byDetailType(evs []sim.BusEvent) map[string]int {
	out := map[string]int{}
	for _, e := range evs {
		out[e.DetailType]++
	}
	return out
}

// TestRunsPublishTheirEvents: every run sends one Run Finished with its
// counts; each copy that became available since the last run sends one
// Copy Available (once); a dry run sends nothing and says what run would.
func TestRunsPublishTheirEvents(t *testing.T) {
	w, bus := eventsWorld(t, 3)
	img := w.image(euWest, "web", 1, w.ou)

	plan := w.runQuick(reconcile.ModePlan)
	if n := len(w.cloud.BusEvents(bus)); n != 0 || plan.Summary.APICalls[cloud.OpPutEvents] != 0 {
		t.Fatalf("a dry run sent %d events", n)
	}
	if e := plan.Report.Events; e == nil || e.WouldPublish[reconcile.EventRunFinished] != 1 {
		t.Fatalf("plan's events: %+v", e)
	}

	res := w.runQuick(reconcile.ModeRun)
	evs := w.cloud.BusEvents(bus)
	if got := byDetailType(evs); got[reconcile.EventRunFinished] != 1 || len(got) != 1 {
		t.Fatalf("run 1 sent %v, want one Run Finished (the copies are pending)", got)
	}
	var fin reconcile.RunFinishedDetail
	must(t, json.Unmarshal([]byte(evs[0].Detail), &fin))
	if fin.RunID != res.Summary.RunID || fin.Counts[report.Missing] != 3 || fin.Actions["copy"] != 3 || fin.Status != report.StatusSucceeded || fin.Pairs != 3 {
		t.Errorf("Run Finished detail %+v", fin)
	}
	if evs[0].Source != reconcile.DefaultEventSource || res.Summary.Events.Published[reconcile.EventRunFinished] != 1 {
		t.Errorf("event %+v, summary %+v", evs[0], res.Summary.Events)
	}

	w.settle()
	plan = w.runQuick(reconcile.ModePlan)
	if e := plan.Report.Events; e.WouldPublish[reconcile.EventCopyAvailable] != 3 {
		t.Errorf("plan after the copies: %+v", e)
	}
	w.runQuick(reconcile.ModeRun)
	evs = w.cloud.BusEvents(bus)[1:]
	if got := byDetailType(evs); got[reconcile.EventCopyAvailable] != 3 || got[reconcile.EventRunFinished] != 1 {
		t.Fatalf("run 2 sent %v", got)
	}
	if evs[len(evs)-1].DetailType != reconcile.EventRunFinished {
		t.Errorf("Run Finished is not last: %v", evs)
	}
	for _, e := range evs[:3] {
		var d reconcile.CopyAvailableDetail
		must(t, json.Unmarshal([]byte(e.Detail), &d))
		if d.SourceImage != img.ID || d.Group != "web" || d.Region != euWest || d.CopyImage == "" || len(w.copies(d.Account, euWest, img.ID)) != 1 ||
			w.copies(d.Account, euWest, img.ID)[0].ID != d.CopyImage || len(e.Resources) != 2 || !strings.HasSuffix(e.Resources[0], ":image/"+d.CopyImage) {
			t.Errorf("Copy Available %+v, resources %v", d, e.Resources)
		}
	}

	// Nothing new: only the run's own event.
	w.runQuick(reconcile.ModeRun)
	if got := byDetailType(w.cloud.BusEvents(bus)[5:]); len(got) != 1 || got[reconcile.EventRunFinished] != 1 {
		t.Fatalf("run 3 sent %v", got)
	}
}

// TestPairStuckIsSentOnce: a pair whose copies keep failing sends Pair
// Stuck in the run that finds it stuck, and never again.
func TestPairStuckIsSentOnce(t *testing.T) {
	w, bus := eventsWorld(t, 1)
	w.cfg.Limits.MaxAttempts = 2
	w.cfg.Limits.RetryBackoff = 1
	img := w.image(euWest, "web", 1, w.ou)
	key, _ := w.cloud.ResolveKey(accountID(1), euWest, "alias/amicopier")
	w.cloud.SetKeyEnabled(key.ARN, false)
	stuck := 0
	for i := range 6 {
		w.runQuick(reconcile.ModeRun)
		w.settle()
		stuck = byDetailType(w.cloud.BusEvents(bus))[reconcile.EventPairStuck]
		if i == 5 && stuck != 1 {
			t.Fatalf("after %d runs: %d Pair Stuck events, want 1\n%v", i+1, stuck, w.cloud.BusEvents(bus))
		}
	}
	for _, e := range w.cloud.BusEvents(bus) {
		if e.DetailType != reconcile.EventPairStuck {
			continue
		}
		var d reconcile.PairStuckDetail
		must(t, json.Unmarshal([]byte(e.Detail), &d))
		if d.SourceImage != img.ID || d.Account != accountID(1) || d.Failures != 2 || d.LastErrorCode == "" {
			t.Errorf("Pair Stuck %+v", d)
		}
	}
}

// TestRefusedEntriesAreSentAgain: entries EventBridge refuses with a
// retryable code (ThrottlingException, InternalFailure) are sent again,
// alone; entries refused for good make the run partial, naming them.
func TestRefusedEntriesAreSentAgain(t *testing.T) {
	for _, tc := range []struct {
		code              string
		published, failed int
	}{
		{"ThrottlingException", 12, 0},
		{"InternalFailure", 12, 0},
		{"MalformedDetail", 10, 2},
	} {
		t.Run(tc.code, func(t *testing.T) {
			w, bus := eventsWorld(t, 11)
			w.image(euWest, "web", 1, w.ou)
			w.runQuick(reconcile.ModeRun)
			w.settle()
			before := len(w.cloud.BusEvents(bus))
			// Two entries of the first call fail.
			w.cloud.FailEventEntries(bus, 2, tc.code)
			res := w.runQuick(reconcile.ModeRun)
			sent := len(w.cloud.BusEvents(bus)) - before
			if sent != tc.published || res.Summary.Events.Failed != tc.failed {
				t.Fatalf("published %d (summary %+v), want %d published and %d failed", sent, res.Summary.Events, tc.published, tc.failed)
			}
			// 11 Copy Available in two calls, the resend, Run Finished.
			wantCalls := int64(4)
			if tc.failed > 0 {
				wantCalls = 3
			}
			if n := res.Summary.APICalls[cloud.OpPutEvents]; n != wantCalls {
				t.Errorf("%d PutEvents calls, want %d", n, wantCalls)
			}
			partial := res.Summary.Status == report.StatusPartial
			if partial != (tc.failed > 0) || (tc.failed > 0 && !strings.Contains(strings.Join(res.Summary.Errors, "\n"), tc.code)) {
				t.Errorf("status %s, errors %v", res.Summary.Status, res.Summary.Errors)
			}
		})
	}
}

// TestEventsDeniedMakeTheRunPartial: a central role without
// events:PutEvents sends nothing; the run says so and is partial, and its
// work is done all the same.
func TestEventsDeniedMakeTheRunPartial(t *testing.T) {
	w, bus := eventsWorld(t, 1)
	w.image(euWest, "web", 1, w.ou)
	w.cloud.DenyCentralActions("events:PutEvents")
	res := w.runQuick(reconcile.ModeRun)
	if res.Summary.Status != report.StatusPartial || res.Summary.Actions["copy"] != 1 || len(w.cloud.BusEvents(bus)) != 0 {
		t.Fatalf("status %s, actions %v, errors %v", res.Summary.Status, res.Summary.Actions, res.Summary.Errors)
	}
	if !strings.Contains(fmt.Sprint(res.Summary.Errors), "AccessDeniedException") || res.Summary.Events.Failed != 1 {
		t.Errorf("errors %v, events %+v", res.Summary.Errors, res.Summary.Events)
	}
	runs, err := w.store.RecentRuns(context.Background(), srcAccount, 1)
	must(t, err)
	if len(runs) != 1 || runs[0].Status != report.StatusPartial || !strings.Contains(fmt.Sprint(runs[0].Errors), "events") {
		t.Errorf("recorded run %+v", runs)
	}
}
