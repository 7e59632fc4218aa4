package lambdafn

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

const (
	source   = "111111111111"
	acctA    = "222222222222"
	acctB    = "333333333333"
	region   = "eu-west-1"
	otherReg = "us-east-1"
	// fixtureAMI is the image id the fixtures name; tests replace it
	// with a simulated image's id.
	fixtureAMI = "ami-0123456789abcdef0"
)

const testConfig = `source:
  account_id: "111111111111"
  regions: [eu-west-1]
targets:
  tag_key: "amicopier:targets"
state:
  backend: memory
`

// world is a simulated organisation: web targets A and B by tag, base
// targets A; nothing is copied yet.
type world struct {
	cloud     *sim.Cloud
	web, base cloud.Image
	store     state.Store
	stdout    *bytes.Buffer
	h         *Handler
	runs      int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	c := sim.New()
	for _, a := range []string{source, acctA, acctB} {
		if err := c.AddAccount(a, "acct-"+a[:3], "", ""); err != nil {
			t.Fatal(err)
		}
	}
	w := &world{cloud: c, store: state.NewMemory(), stdout: &bytes.Buffer{}}
	w.web = c.AddImage(source, region, sim.ImageSpec{Name: "web", Tags: map[string]string{"amicopier:targets": acctA + " " + acctB}})
	w.base = c.AddImage(source, region, sim.ImageSpec{Name: "base", Tags: map[string]string{"amicopier:targets": acctA}})
	h, err := New(context.Background(), Deps{
		Getenv: func(k string) string {
			if k == EnvConfigYAML {
				return testConfig
			}
			return ""
		},
		Stdout:    w.stdout,
		OpenStore: func(context.Context, *config.Config) (state.Store, error) { return w.store, nil },
		Backend: func(_ context.Context, runID string, _ bool, _ int) (cloud.Connector, []cloud.TargetSource, error) {
			w.runs++
			return c.Connector(source), nil, nil
		},
		Clock: c,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.h = h
	return w
}

// event reads a fixture with its image id replaced by id.
func event(t *testing.T, name, id string) json.RawMessage {
	t.Helper()
	return json.RawMessage(strings.ReplaceAll(string(fixture(t, name)), fixtureAMI, id))
}

// copies lists "source/account" of every copy in the organisation.
func (w *world) copies() []string {
	var out []string
	for _, a := range []string{source, acctA, acctB} {
		for _, im := range w.cloud.Images(a, region) {
			if from := im.Tags[reconcile.TagCopiedFrom]; from != "" {
				out = append(out, from+"/"+a)
			}
		}
	}
	slices.Sort(out)
	return out
}

// metrics decodes the EMF lines printed so far.
func (w *world) metrics(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(w.stdout.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line is not JSON: %v: %s", err, sc.Text())
		}
		if _, ok := m["_aws"]; ok {
			out = append(out, m)
		}
	}
	return out
}

func TestScheduledEventReconcilesEverything(t *testing.T) {
	w := newWorld(t)
	res, err := w.h.Handle(context.Background(), fixture(t, "scheduled-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeReconciled || res.Event != KindSchedule || res.Summary == nil || res.Summary.Trigger != "schedule" {
		t.Fatalf("result %+v", res)
	}
	want := []string{w.base.ID + "/" + acctA, w.web.ID + "/" + acctA, w.web.ID + "/" + acctB}
	slices.Sort(want)
	if got := w.copies(); !slices.Equal(got, want) {
		t.Errorf("copies %v, want %v", got, want)
	}
	ms := w.metrics(t)
	if len(ms) != 1 {
		t.Fatalf("%d metric lines, want 1\n%s", len(ms), w.stdout)
	}
	m := ms[0]
	meta := m["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if meta["Namespace"] != MetricsNamespace || m["CopiesStarted"] != float64(3) || m["Drift.missing"] != float64(3) || m["Trigger"] != "schedule" {
		t.Errorf("metric line %v", m)
	}
	var names []string
	for _, x := range meta["Metrics"].([]any) {
		names = append(names, x.(map[string]any)["Name"].(string))
		if _, ok := m[names[len(names)-1]]; !ok {
			t.Errorf("metric %s declared but has no value", names[len(names)-1])
		}
	}
	for _, n := range []string{"CopiesStarted", "CopiesFailed", "DurationSeconds", "ApiCalls", "Drift.missing", "Drift.unreachable"} {
		if !slices.Contains(names, n) {
			t.Errorf("metric %s missing from %v", n, names)
		}
	}
	// The handler result is JSON the caller can read.
	if b, err := json.Marshal(res); err != nil || !strings.Contains(string(b), `"summary"`) {
		t.Errorf("result JSON %s, %v", b, err)
	}
}

func TestSchedulerPlanChangesNothing(t *testing.T) {
	w := newWorld(t)
	res, err := w.h.Handle(context.Background(), fixture(t, "scheduler-plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomePlanned || res.Summary.Counts[report.Missing] != 3 || res.Summary.MutatingCalls != 0 {
		t.Errorf("result %+v", res.Summary)
	}
	if len(w.copies()) != 0 {
		t.Errorf("a dry run copied %v", w.copies())
	}
}

func TestShardEventReconcilesItsShard(t *testing.T) {
	w := newWorld(t)
	var copied []string
	for i := 1; i <= 2; i++ {
		res, err := w.h.Handle(context.Background(), json.RawMessage(fmt.Sprintf(`{"shard": "%d/2"}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != OutcomeReconciled || res.Summary.Trigger != "schedule" {
			t.Fatalf("shard %d: %+v", i, res)
		}
		copied = append(copied, fmt.Sprint(res.Summary.Actions["copy"]))
	}
	// The two shards together cover the organisation once.
	if got := w.copies(); len(got) != 3 {
		t.Errorf("copies %v after both shards (per shard %v)", got, copied)
	}
}

func TestSNSEventReconcilesThatAMIForItsTargets(t *testing.T) {
	w := newWorld(t)
	res, err := w.h.Handle(context.Background(), event(t, "sns-amigo.json", w.web.ID))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeReconciled || res.Summary.Trigger != "sns" {
		t.Fatalf("result %+v", res)
	}
	// The message names A (a member), 999999999999 (not one) and a
	// malformed entry: only web is copied, only into A. B is a target of
	// web too, but not of this message.
	if got := w.copies(); !slices.Equal(got, []string{w.web.ID + "/" + acctA}) {
		t.Errorf("copies %v, want only web in A", got)
	}
	if n := res.Summary.Counts[report.RejectedTarget]; n != 2 {
		t.Errorf("%d rejected targets, want 2 (the foreign account and the malformed entry): %v", n, res.Summary.Counts)
	}
	if !strings.Contains(w.stdout.String(), "not-an-account") {
		t.Error("the malformed target is not logged")
	}
	// A and 999999999999 looked up (the latter is no member: rejected),
	// B too (the image's own metadata names it), never the organisation.
	if l, d := w.cloud.Calls(cloud.OpListAccounts, "", ""), w.cloud.Calls(cloud.OpDescribeAccount, "", ""); l != 0 || d != 3 {
		t.Errorf("%d ListAccounts and %d DescribeAccount calls, want 0 and 3", l, d)
	}
}

func TestAMIStateChangeReconcilesThatImage(t *testing.T) {
	w := newWorld(t)
	res, err := w.h.Handle(context.Background(), event(t, "ami-state-change-available.json", w.base.ID))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeReconciled || res.Summary.Trigger != "ami-state-change" {
		t.Fatalf("result %+v", res)
	}
	if got := w.copies(); !slices.Equal(got, []string{w.base.ID + "/" + acctA}) {
		t.Errorf("copies %v, want only base in A", got)
	}
	// The event costs what it names: A looked up, the organisation
	// never listed.
	if l, d := w.cloud.Calls(cloud.OpListAccounts, "", ""), w.cloud.Calls(cloud.OpDescribeAccount, "", ""); l != 0 || d != 1 {
		t.Errorf("%d ListAccounts and %d DescribeAccount calls, want 0 and 1", l, d)
	}
}

func TestEventsThatAskForNothing(t *testing.T) {
	w := newWorld(t)
	otherAccount := strings.Replace(string(event(t, "ami-state-change-available.json", w.base.ID)), `"account": "111111111111"`, `"account": "`+acctA+`"`, 1)
	otherRegion := strings.Replace(string(event(t, "ami-state-change-available.json", w.base.ID)), `"region": "eu-west-1"`, `"region": "`+otherReg+`"`, 1)
	for _, tc := range []struct {
		name string
		raw  json.RawMessage
		want string
	}{
		{"pending", event(t, "ami-state-change-pending.json", w.base.ID), `"pending", not available`},
		{"failed", event(t, "ami-state-change-failed.json", w.base.ID), `"failed", not available`},
		{"other account", json.RawMessage(otherAccount), "not the source account"},
		{"other region", json.RawMessage(otherRegion), "not one of source.regions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := w.h.Handle(context.Background(), tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != OutcomeIgnored || !strings.Contains(res.Reason, tc.want) {
				t.Errorf("result %+v: want ignored because %s", res, tc.want)
			}
		})
	}
	if w.runs != 0 || len(w.copies()) != 0 || w.cloud.Calls("", "", "") != 0 {
		t.Errorf("%d runs, copies %v, %d calls: ignored events must do nothing", w.runs, w.copies(), w.cloud.Calls("", "", ""))
	}
	if !strings.Contains(w.stdout.String(), "event ignored") {
		t.Error("the reason is not logged")
	}
}

func TestMalformedEventIsRefusedBeforeAnyWork(t *testing.T) {
	w := newWorld(t)
	raw := strings.Replace(string(fixture(t, "sns-amigo.json")), fixtureAMI, "ami-x", 1)
	_, err := w.h.Handle(context.Background(), json.RawMessage(raw))
	want := `sns.Records[0].Sns.Message.sourceAmi: "ami-x" is not an AMI id`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %s", err, want)
	}
	if w.runs != 0 || w.cloud.Calls("", "", "") != 0 {
		t.Error("a malformed event reached AWS")
	}
	if !strings.Contains(w.stdout.String(), `"level":"ERROR"`) {
		t.Errorf("the refusal is not logged as JSON:\n%s", w.stdout)
	}
}

func TestDeadlineStopsNewWork(t *testing.T) {
	w := newWorld(t)
	// Less time left than limits.deadline_margin (60s): observe, report,
	// start nothing.
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(30*time.Second))
	defer cancel()
	res, err := w.h.Handle(ctx, fixture(t, "scheduled-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Actions["copy"] != 0 || len(w.copies()) != 0 {
		t.Errorf("copies started past the deadline: %v", res.Summary.Actions)
	}
	// The next invocation, with time, finishes the work.
	res, err = w.h.Handle(context.Background(), fixture(t, "scheduled-event.json"))
	if err != nil || res.Summary.Actions["copy"] != 3 {
		t.Errorf("next run: %+v, %v", res.Summary, err)
	}
}

func TestLeaseHeldIsNotAnError(t *testing.T) {
	w := newWorld(t)
	if _, err := w.store.AcquireLease(context.Background(), source, "nightly-run", time.Hour); err != nil {
		t.Fatal(err)
	}
	res, err := w.h.Handle(context.Background(), fixture(t, "scheduled-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeLeaseHeld || !strings.Contains(res.Reason, "nightly-run") {
		t.Errorf("result %+v", res)
	}
	if len(w.copies()) != 0 {
		t.Error("copied while another run held the lease")
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // source account, or a substring of the error
		ok   bool
	}{
		{"inline", map[string]string{EnvConfigYAML: testConfig, EnvConfigPath: "/nonexistent"}, source, true},
		{"path", map[string]string{EnvConfigPath: path}, source, true},
		{"task root", map[string]string{"LAMBDA_TASK_ROOT": dir}, source, true},
		{"override", map[string]string{EnvConfigPath: path, "AMICOPIER_SOURCE_ACCOUNT_ID": acctB}, acctB, true},
		{"bad inline", map[string]string{EnvConfigYAML: "source:\n  account_id: \"1\"\n"}, "source.account_id", false},
		{"missing file", map[string]string{EnvConfigPath: filepath.Join(dir, "nope.yaml")}, "nope.yaml", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig(env(tc.env))
			switch {
			case tc.ok && err != nil:
				t.Fatal(err)
			case tc.ok && cfg.Source.AccountID != tc.want:
				t.Errorf("source %s, want %s", cfg.Source.AccountID, tc.want)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestInLambda(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}, true},
		{map[string]string{"_LAMBDA_SERVER_PORT": "8001"}, true},
	} {
		if got := InLambda(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("InLambda(%v) = %v", tc.env, got)
		}
	}
}

// stallingConnector is the simulator's connector whose target describes
// hang until their context ends: an AWS call still in flight when the
// invocation runs out of time.
type stallingConnector struct{ cloud.Connector }

func (c stallingConnector) Target(ctx context.Context, account, region string) (cloud.EC2, error) {
	e, err := c.Connector.Target(ctx, account, region)
	if err != nil {
		return nil, err
	}
	return stallingEC2{e}, nil
}

type stallingEC2 struct{ cloud.EC2 }

func (e stallingEC2) DescribeImages(ctx context.Context, _ cloud.ImageQuery) ([]cloud.Image, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("stallingEC2: the run's context never ended")
	}
}

func TestRunEndsBeforeTheDeadlineWithTimeToRecordIt(t *testing.T) {
	w := newWorld(t)
	rec := &recordingStore{Store: w.store}
	w.h.store = rec
	w.h.backend = func(_ context.Context, _ string, _ bool, _ int) (cloud.Connector, []cloud.TargetSource, error) {
		w.runs++
		return stallingConnector{w.cloud.Connector(source)}, nil, nil
	}
	// One second more than the reserve: calls in flight are cut after
	// about a second, and the run is recorded well before the deadline.
	start := time.Now()
	deadline := start.Add(DeadlineReserve + time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	res, err := w.h.Handle(ctx, fixture(t, "scheduled-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if done := time.Now(); done.After(deadline.Add(-DeadlineReserve / 2)) {
		t.Errorf("the invocation returned %s after it started, %s before its deadline: in-flight calls were not cut at deadline - %s",
			done.Sub(start).Round(time.Millisecond), deadline.Sub(done).Round(time.Millisecond), DeadlineReserve)
	}
	if res.Summary == nil || len(res.Summary.Errors) == 0 {
		t.Fatalf("result %+v: the cut observations must be reported", res)
	}
	if res.Summary.Actions["copy"] != 0 || len(w.copies()) != 0 {
		t.Errorf("copies started past the deadline: %v", res.Summary.Actions)
	}
	if len(rec.runs) != 1 || rec.runs[0].ID != res.Summary.RunID || rec.runs[0].Status != res.Summary.Status {
		t.Fatalf("recorded runs %+v: want this run's record", rec.runs)
	}
}

// recordingStore keeps the run records written through it.
type recordingStore struct {
	state.Store
	runs []state.Run
}

func (s *recordingStore) PutRun(ctx context.Context, r state.Run) error {
	if err := s.Store.PutRun(ctx, r); err != nil {
		return err
	}
	s.runs = append(s.runs, r)
	return nil
}

func TestInvocationWithoutTimeToRecordIsRefused(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(DeadlineReserve-time.Second))
	defer cancel()
	_, err := w.h.Handle(ctx, fixture(t, "scheduled-event.json"))
	if err == nil || !strings.Contains(err.Error(), "nothing done") {
		t.Fatalf("error %v, want a refusal", err)
	}
	if w.runs != 0 || w.cloud.Calls("", "", "") != 0 {
		t.Error("a refused invocation reached AWS")
	}
}

// staleStore has another run change the state while this one observes:
// the second read of the unsettled records (under the lease) finds a pair
// run-42 wrote.
type staleStore struct {
	state.Store
	reads atomic.Int32
}

func (s *staleStore) UnsettledPairs(ctx context.Context, source string) ([]state.Pair, error) {
	recs, err := s.Store.UnsettledPairs(ctx, source)
	if err != nil || s.reads.Add(1) == 1 {
		return recs, err
	}
	key := state.PairKey{SourceImage: "ami-00000000000000042", Account: "222222222222", Region: "eu-west-1"}
	return append(recs, state.Pair{Key: key, Source: source, Status: state.PairCopying, RunID: "run-42", Version: 1}), nil
}

func TestStaleObservationReasonHasNoZeroTime(t *testing.T) {
	w := newWorld(t)
	w.h.store = &staleStore{Store: w.store}
	res, err := w.h.Handle(context.Background(), fixture(t, "scheduled-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeLeaseHeld || strings.Contains(res.Reason, "0001-01-01") ||
		!strings.Contains(res.Reason, "run run-42 changed pair ami-00000000000000042/222222222222/eu-west-1 of scope "+source+" while this run was observing") {
		t.Errorf("result %+v", res)
	}
	if strings.Contains(w.stdout.String(), "0001-01-01") {
		t.Errorf("the log shows a zero time:\n%s", w.stdout)
	}
}

// TestMetricNamesAreDocumented: README's Lambda section lists the metric
// names WriteMetrics emits.
func TestMetricNamesAreDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	if _, err := w.h.Handle(context.Background(), fixture(t, "scheduler-plan.json")); err != nil {
		t.Fatal(err)
	}
	ms := w.metrics(t)
	if len(ms) != 1 {
		t.Fatalf("%d metric lines", len(ms))
	}
	for _, x := range ms[0]["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Metrics"].([]any) {
		name := x.(map[string]any)["Name"].(string)
		if cat, ok := strings.CutPrefix(name, "Drift."); ok {
			if cat == string(report.OK) {
				t.Errorf("metric %s: ok pairs are no drift", name)
			}
			name = "Drift.<category>"
		}
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("README.md does not list the metric %s", name)
		}
	}
}
