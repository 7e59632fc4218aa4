package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile/report"
)

type statusRunJSON struct {
	ID          string   `json:"id"`
	Status      string   `json:"status"`
	Errors      []string `json:"errors"`
	Unreachable []struct {
		Account string   `json:"account"`
		Regions []string `json:"regions"`
		Reason  string   `json:"reason"`
	} `json:"unreachable"`
	UnreachableCount int `json:"unreachable_count"`
}

func statusRuns(t *testing.T, cfgPath string) []statusRunJSON {
	t.Helper()
	code, out, errOut := run(t, "status", "--config", cfgPath, "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	var st struct {
		Runs     []statusRunJSON `json:"runs"`
		Recorded map[string]struct {
			Runs        int    `json:"runs"`
			LatestRunID string `json:"latest_run_id"`
		} `json:"recorded"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	return st.Runs
}

// TestStatusSaysAsOfWhichRun: after `run --wait` saw every copy finish,
// the state still holds them as copying (runs record; waiting does
// not), so status must say whose record it shows, and when.
func TestStatusSaysAsOfWhichRun(t *testing.T) {
	w := newAWSWorld(t, false, sim.WithCopyDuration(0))
	code, out, errOut := run(t, "run", "--config", w.cfgPath, "--output", "json", "--wait", "--wait-timeout", "1m")
	if code != cli.ExitOK {
		t.Fatalf("run --wait: exit %d\n%s%s", code, out, errOut)
	}
	var res struct {
		Summary report.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run(t, "status", "--config", w.cfgPath)
	if code != cli.ExitOK {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"Copies in progress (2), as recorded by run " + res.Summary.RunID + " at ",
		"from the state store only", "`run --wait` saw finish", "`amicopier plan` shows what EC2 says now",
	} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// TestStatusShowsWhyARunIsPartial: a run partial because an account's
// role cannot be assumed names that account in status.
func TestStatusShowsWhyARunIsPartial(t *testing.T) {
	w := newAWSWorld(t, true)
	if code, out, errOut := run(t, "run", "--config", w.cfgPath); code != cli.ExitPartial {
		t.Fatalf("run: exit %d, want partial\n%s%s", code, out, errOut)
	}
	runs := statusRuns(t, w.cfgPath)
	if len(runs) != 1 || runs[0].Status != report.StatusPartial {
		t.Fatalf("runs %+v, want the partial run", runs)
	}
	r := runs[0]
	if r.UnreachableCount != 1 || len(r.Unreachable) != 1 || r.Unreachable[0].Account != awsDenied ||
		len(r.Unreachable[0].Regions) != 1 || !strings.Contains(r.Unreachable[0].Reason, awsDenied) {
		t.Errorf("status names unreachable %+v (count %d), want %s in %s with its reason", r.Unreachable, r.UnreachableCount, awsDenied, awsRegion)
	}
	_, out, _ := run(t, "status", "--config", w.cfgPath)
	if !strings.Contains(out, "run "+r.ID+": unreachable "+awsDenied+" ("+awsRegion+")") {
		t.Errorf("the status table does not name the unreachable account:\n%s", out)
	}
}

// TestStatusListsRunsThatFailedOutright: a run against an endpoint that
// is gone fails, and status lists it, failed, with the error.
func TestStatusListsRunsThatFailedOutright(t *testing.T) {
	w := newAWSWorld(t, false)
	url := w.fake.URL()
	w.fake.Close()
	code, out, errOut := run(t, "run", "--config", w.cfgPath)
	if code != cli.ExitError {
		t.Fatalf("run against a closed endpoint: exit %d, want %d\n%s%s", code, cli.ExitError, out, errOut)
	}
	runs := statusRuns(t, w.cfgPath)
	if len(runs) != 1 || runs[0].Status != report.StatusFailed || len(runs[0].Errors) != 1 {
		t.Fatalf("runs %+v, want the failed run with its error", runs)
	}
	host := strings.TrimPrefix(url, "http://")
	if e := runs[0].Errors[0]; !strings.Contains(e, host) && !strings.Contains(e, "connection refused") {
		t.Errorf("the recorded error %q does not say what failed", e)
	}
	if !strings.Contains(errOut, runs[0].Errors[0][:40]) {
		t.Errorf("the run's stderr %q does not carry the recorded error", errOut)
	}
}
