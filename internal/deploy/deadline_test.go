package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/bench"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
	"github.com/amicopier/amicopier/state/dynamotest"
)

// The Lambda deadline, for real: the function binary, under a Runtime API
// that serves invocations one after the other, reconciles an organisation
// served over HTTP (bench.Serve) into a DynamoDB table (dynalite). The
// first invocation's deadline falls inside its copy phase: the run must
// record what it did, stop starting copies limits.deadline_margin before
// the end of its time (the deadline less lambdafn.DeadlineReserve) and
// answer before the deadline; the next invocation finishes the rest, with
// no copy made twice.

// deadlineReserve is lambdafn.DeadlineReserve (this package does not
// import the function's).
const deadlineReserve = 25 * time.Second

// deadlineScenario: 120 missing pairs (30 accounts x 4 AMIs), copied 2
// at a time at 100 ms per call: a copy phase of about six seconds, after
// about four of observation and sharing.
func deadlineScenario() bench.Scenario {
	return bench.Scenario{
		Name: "lambda-deadline", Kind: bench.CatchUp, Accounts: 30, OUs: 1, Regions: []string{"eu-west-1"},
		Images:      []bench.ImageSet{{Region: "eu-west-1", Count: 4, Snapshots: 1, OU: -1}},
		InFlightCap: 20, Concurrency: 2, Latency: 100 * time.Millisecond, Throttle: true,
	}
}

// queueRuntime is a Lambda Runtime API serving the invocations pushed to
// it, one at a time, each with a deadline fixed when the function fetches
// it, as Lambda fixes it when it starts the invocation.
type queueRuntime struct {
	next chan *invocation
	done chan struct{}

	mu      sync.Mutex
	byID    map[string]*invocation
	initErr []byte
}

// invocation is one event and what became of it.
type invocation struct {
	id    string
	event []byte
	// budget is the time the invocation has from when it is fetched.
	budget time.Duration

	fetched, deadline time.Time
	answered          chan struct{}
	answeredAt        time.Time
	result            string // "response" or "error"
	body              []byte
}

func newQueueRuntime() *queueRuntime {
	return &queueRuntime{next: make(chan *invocation), done: make(chan struct{}), byID: map[string]*invocation{}}
}

func (q *queueRuntime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/2018-06-01/runtime/")
	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body)
	switch {
	case r.Method == http.MethodGet && path == "invocation/next":
		var inv *invocation
		select {
		case inv = <-q.next:
		case <-q.done:
			w.WriteHeader(http.StatusGone)
			return
		}
		q.mu.Lock()
		inv.fetched = time.Now()
		inv.deadline = inv.fetched.Add(inv.budget)
		q.byID[inv.id] = inv
		q.mu.Unlock()
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:amicopier")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(inv.event)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		id, result, _ := strings.Cut(strings.TrimPrefix(path, "invocation/"), "/")
		q.mu.Lock()
		inv := q.byID[id]
		if inv != nil && inv.result == "" {
			inv.result, inv.body, inv.answeredAt = result, body.Bytes(), time.Now()
			close(inv.answered)
		}
		q.mu.Unlock()
		if inv == nil {
			http.Error(w, "no invocation "+id, http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && path == "init/error":
		q.mu.Lock()
		q.initErr = body.Bytes()
		q.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}

// invoke hands the function an event with budget to run it, and waits
// for the answer.
func (q *queueRuntime) invoke(t *testing.T, n int, event string, budget time.Duration, exited <-chan error) *invocation {
	t.Helper()
	inv := &invocation{id: fmt.Sprintf("deadline-test-%d", n), event: []byte(event), budget: budget, answered: make(chan struct{})}
	select {
	case q.next <- inv:
	case err := <-exited:
		t.Fatalf("the function exited (%v) before invocation %d", err, n)
	case <-time.After(time.Minute):
		q.mu.Lock()
		defer q.mu.Unlock()
		t.Fatalf("the function never asked for invocation %d (init error: %s)", n, q.initErr)
	}
	select {
	case <-inv.answered:
	case err := <-exited:
		t.Fatalf("the function exited (%v) during invocation %d", err, n)
	case <-time.After(3 * time.Minute):
		t.Fatalf("invocation %d was not answered within 3 minutes", n)
	}
	return inv
}

// lambdaRun is what an invocation's answer says of the run.
type lambdaRun struct {
	Outcome string          `json:"outcome"`
	Summary *report.Summary `json:"summary"`
}

// copyRecorder stands between the function and the served organisation's
// EC2 endpoint and notes, for each CopyImage request, its ClientToken and
// when it arrived: what the function started, and when, as EC2 sees it.
type copyRecorder struct {
	next http.Handler

	mu    sync.Mutex
	calls []copyCall
}

// copyCall is one CopyImage request.
type copyCall struct {
	token string
	at    time.Time
}

func (c *copyRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The EC2 Query protocol: the action and its parameters are the
	// form-encoded body.
	if q, err := url.ParseQuery(string(body)); err == nil && q.Get("Action") == "CopyImage" {
		c.mu.Lock()
		c.calls = append(c.calls, copyCall{token: q.Get("ClientToken"), at: time.Now()})
		c.mu.Unlock()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	c.next.ServeHTTP(w, r)
}

// between returns, per ClientToken, the first CopyImage request with it
// that arrived in [from, to).
func (c *copyRecorder) between(from, to time.Time) map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := map[string]time.Time{}
	for _, call := range c.calls {
		if call.at.Before(from) || !call.at.Before(to) {
			continue
		}
		if at, ok := first[call.token]; !ok || call.at.Before(at) {
			first[call.token] = call.at
		}
	}
	return first
}

// runPastTheDeadline runs the deadline test with the built function. The
// moment of the deadline inside the copy phase depends on the machine's
// speed: an attempt whose deadline fell before the first copy or after
// the last is tried again, with a fresh organisation and table, the
// deadline moved. An engine that does not stop in time starts every copy
// at each attempt, and fails.
func runPastTheDeadline(t *testing.T, exe string) {
	endpoint := dynamotest.Endpoint(t)
	into := 5 * time.Second // from the invocation's start to the engine's stop
	for attempt := 1; ; attempt++ {
		started, total := deadlineAttempt(t, exe, endpoint, into)
		switch {
		case started > 0 && started < total:
			return
		case attempt == 4:
			t.Fatalf("after %d attempts the deadline never fell inside the copy phase (last: %d of %d copies started, %s in)", attempt, started, total, into)
		case started == 0:
			into += 2 * time.Second
		default:
			into = into * 2 / 3
		}
		t.Logf("attempt %d: the deadline fell outside the copy phase (%d of %d copies started); again, the engine stopping %s in", attempt, started, total, into)
	}
}

// deadlineMargin is limits.deadline_margin's default, which the test's
// configuration keeps.
const deadlineMargin = 60 * time.Second

// startGrace is how long after the engine's stop a copy it decided on
// before the stop may reach EC2: its write-ahead record is written
// between the decision and the call.
const startGrace = time.Second

// deadlineAttempt serves a fresh organisation and table, runs the two
// invocations, checks them, and returns how many copies the first one
// started, of how many. Checks only apply when the deadline fell inside
// the copy phase.
func deadlineAttempt(t *testing.T, exe, endpoint string, into time.Duration) (started, total int) {
	w := newDeadlineWorld(t, exe, endpoint)
	defer w.close()
	rt := newQueueRuntime()
	api := httptest.NewServer(rt)
	defer api.Close()
	defer close(rt.done)
	cmd := exec.Command(exe)
	cmd.Dir = w.dir
	// Lambda's environment, with this organisation's configuration and
	// credentials (later entries win).
	cmd.Env = append(lambdaEnv(t, strings.TrimPrefix(api.URL, "http://"), w.dir), w.env...)
	cmd.Env = append(cmd.Env, "AMICOPIER_CONFIG_YAML="+w.cfg)
	logs, exited, stop := startFunction(t, cmd)
	defer func() {
		stop()
		if t.Failed() {
			t.Logf("the function's output:\n%s", logs.String())
		}
	}()

	// The first invocation: the engine stops starting work `into` after
	// it starts (limits.deadline_margin before the run's end, which is
	// DeadlineReserve before the deadline).
	first := rt.invoke(t, 1, `{"detail-type": "Scheduled Event"}`, into+deadlineMargin+deadlineReserve, exited)
	res1 := decodeRun(t, first)
	total = w.sc.Accounts * w.sc.AMIs()
	started = res1.Summary.Actions["copy"]
	w.checkStopped(t, first, started)
	if started == 0 || started >= total {
		return started, total
	}
	t.Logf("invocation 1: %d of %d copies started, %d deferred, answered %s before its deadline (%s of it in the run); status %s",
		started, total, res1.Summary.Actions["deferred"], first.deadline.Sub(first.answeredAt).Round(time.Millisecond),
		first.answeredAt.Sub(first.fetched).Round(time.Millisecond), res1.Summary.Status)
	w.checkFirst(t, first, res1.Summary, total)

	// The next invocation, with time enough, finishes the rest.
	second := rt.invoke(t, 2, `{"detail-type": "Scheduled Event"}`, 10*time.Minute, exited)
	res2 := decodeRun(t, second)
	w.checkSecond(t, first, second, res2.Summary, started, total)
	return started, total
}

// deadlineWorld is one attempt's organisation (served by bench.Serve,
// its EC2 endpoint behind a copyRecorder), table and configuration.
type deadlineWorld struct {
	sc     bench.Scenario
	dir    string
	insp   *bench.InspectClient
	store  *state.DynamoDB
	copies *copyRecorder
	cfg    string
	env    []string // the credentials and files the function's process needs
	close  func()
}

// newDeadlineWorld serves the organisation and creates the table with
// the function binary's `state init`, as a user would.
func newDeadlineWorld(t *testing.T, exe, endpoint string) *deadlineWorld {
	t.Helper()
	ctx := context.Background()
	w := &deadlineWorld{sc: deadlineScenario(), dir: t.TempDir()}
	srvCtx, stopServer := context.WithCancel(ctx)
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() {
		served <- bench.Serve(srvCtx, w.sc, bench.ServeOptions{PortFile: filepath.Join(w.dir, "port"), CopiesComplete: true, Ready: func(u string) { ready <- u }})
	}()
	var closers []func()
	w.close = func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}
	closers = append(closers, func() {
		stopServer()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	var orgURL string
	select {
	case orgURL = <-ready:
	case err := <-served:
		t.Fatalf("serve: %v", err)
	}
	w.insp = bench.NewInspectClient(orgURL)
	target, err := url.Parse(orgURL)
	if err != nil {
		w.close()
		t.Fatal(err)
	}
	w.copies = &copyRecorder{next: httputil.NewSingleHostReverseProxy(target)}
	ec2 := httptest.NewServer(w.copies)
	closers = append(closers, ec2.Close)

	table := state.DynamoDBOptions{Table: dynamotest.TableName(t), Region: "us-east-1", Endpoint: endpoint}
	w.cfg = fmt.Sprintf(`source:
  account_id: %q
  regions: [eu-west-1]
encryption:
  kms_key: ""
state:
  backend: dynamodb
  table: %s
  region: %s
  endpoint: %q
limits:
  concurrency: %d
  in_flight_copies: %d
  deadline_margin: %s
aws:
  region: eu-west-1
  endpoints: {ec2: %q, organizations: %q, sts: %q}
`, bench.SourceAccount, table.Table, table.Region, table.Endpoint, w.sc.Concurrency, w.sc.InFlightCap, deadlineMargin, ec2.URL, orgURL, orgURL)
	w.env = []string{"HOME=" + w.dir, "TZ=:UTC", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ACCESS_KEY_ID=" + awsfake.BaseAccessKeyID, "AWS_SECRET_ACCESS_KEY=" + awsfake.BaseSecretAccessKey,
		"AWS_SESSION_TOKEN=" + awsfake.BaseSessionToken,
		"AWS_CONFIG_FILE=" + filepath.Join(w.dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(w.dir, "none")}
	cfgPath := filepath.Join(w.dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(w.cfg), 0o600); err != nil {
		w.close()
		t.Fatal(err)
	}
	initCmd := exec.Command(exe, "state", "init", "--config", cfgPath)
	initCmd.Env = w.env
	if out, err := initCmd.CombinedOutput(); err != nil {
		w.close()
		t.Fatalf("bootstrap state init: %v\n%s", err, out)
	}
	w.store, err = state.OpenDynamoDB(ctx, table)
	if err != nil {
		w.close()
		t.Fatal(err)
	}
	closers = append(closers, func() { _ = w.store.Close() })
	return w
}

// checkStopped checks that the first invocation stopped starting copies
// at the engine's stop: no copy reached EC2 later than the grace a
// write-ahead record takes. It holds wherever the deadline fell.
func (w *deadlineWorld) checkStopped(t *testing.T, first *invocation, started int) {
	t.Helper()
	stop := first.deadline.Add(-deadlineReserve - deadlineMargin)
	asked := w.copies.between(first.fetched, first.answeredAt)
	last := time.Duration(math.MinInt64)
	for token, at := range asked {
		late := at.Sub(stop)
		last = max(last, late)
		if late > startGrace {
			t.Errorf("invocation 1 started the copy with ClientToken %s %s after the engine's stop (limits.deadline_margin %s before the run's end): it did not stop starting work in time",
				token, late.Round(time.Millisecond), deadlineMargin)
		}
	}
	if len(asked) < started {
		t.Errorf("invocation 1 says it started %d copies, EC2 had CopyImage requests with %d ClientTokens", started, len(asked))
	}
	if len(asked) > 0 {
		t.Logf("invocation 1: the last of its %d CopyImage requests reached EC2 %s after the engine's stop", len(asked), last.Round(time.Millisecond))
	}
}

// checkFirst checks the invocation whose deadline fell inside the copy
// phase: it answered before its run's time ended, and recorded what it
// did.
func (w *deadlineWorld) checkFirst(t *testing.T, first *invocation, sum *report.Summary, total int) {
	t.Helper()
	ctx := context.Background()
	started := sum.Actions["copy"]
	if end := first.deadline.Add(-deadlineReserve); first.answeredAt.After(end) {
		t.Errorf("invocation 1 answered at %s, after its run's time ended (%s): the reserve for the records was used",
			first.answeredAt.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
	}
	if got := sum.Actions["deferred"]; started+got != total {
		t.Errorf("invocation 1: %d copies started and %d deferred, want the %d pairs between them", started, got, total)
	}
	// It recorded what it did: a record of each copy it started, naming
	// the copy EC2 has; the run; no lease left.
	census, err := w.insp.Copies(ctx, bench.ItemsAll)
	if err != nil {
		t.Fatal(err)
	}
	copies := map[state.PairKey]string{}
	for _, p := range census.Items {
		for _, c := range p.Copies {
			copies[state.PairKey{SourceImage: p.SourceImage, Account: p.Account, Region: p.Region}] = c.ImageID
		}
	}
	if census.MadeByCopyImage != started || len(copies) != started {
		t.Errorf("after invocation 1, EC2 has %d copies (%d pairs with one), the run says it started %d", census.MadeByCopyImage, len(copies), started)
	}
	recs, err := w.store.UnsettledPairs(ctx, bench.SourceAccount)
	if err != nil {
		t.Fatal(err)
	}
	recorded := 0
	for _, p := range recs {
		if p.Status == state.PairCopying && p.CopyImageID != "" {
			recorded++
			if copies[p.Key] != p.CopyImageID {
				t.Errorf("record %s says copy %s, EC2 has %q", p.Key, p.CopyImageID, copies[p.Key])
			}
		}
	}
	if recorded != started {
		t.Errorf("%d records of copies started, the run started %d", recorded, started)
	}
	checkRecorded(t, w.store, sum)
}

// checkSecond checks the next invocation: it copied what the first left
// (the first started started of them), asked EC2 for no copy the first
// made, and every pair has one copy.
func (w *deadlineWorld) checkSecond(t *testing.T, first, second *invocation, sum *report.Summary, started, total int) {
	t.Helper()
	if got := sum.Actions["copy"]; got != total-started || sum.Status != report.StatusSucceeded {
		t.Errorf("invocation 2 started %d copies (status %s), want the %d left", got, sum.Status, total-started)
	}
	before := w.copies.between(first.fetched, first.answeredAt.Add(time.Nanosecond))
	for token := range w.copies.between(second.fetched, second.answeredAt.Add(time.Nanosecond)) {
		if _, ok := before[token]; ok {
			t.Errorf("invocation 2 asked CopyImage again with ClientToken %s, which invocation 1 used: a pair copied twice", token)
		}
	}
	checkRecorded(t, w.store, sum)
	census, err := w.insp.Copies(context.Background(), bench.ItemsAnomalies)
	if err != nil {
		t.Fatal(err)
	}
	if census.PairsWithOneCopy != total || census.PairsWithMore != 0 || census.MadeByCopyImage != total || census.UnwantedCopies != 0 {
		t.Errorf("after invocation 2: %d pairs with one copy, %d with more, %d copies made, %d unwanted; want every one of %d pairs copied once: %+v",
			census.PairsWithOneCopy, census.PairsWithMore, census.MadeByCopyImage, census.UnwantedCopies, total, census.Items)
	}
	t.Logf("invocation 2: %d copies started; %d pairs with one copy, %d with more, %d copies made in all", sum.Actions["copy"], census.PairsWithOneCopy, census.PairsWithMore, census.MadeByCopyImage)
}

func decodeRun(t *testing.T, inv *invocation) lambdaRun {
	t.Helper()
	var res lambdaRun
	if inv.result != "response" || json.Unmarshal(inv.body, &res) != nil || res.Summary == nil || res.Outcome != "reconciled" {
		t.Fatalf("invocation %s answered %s: %s", inv.id, inv.result, inv.body)
	}
	return res
}

// checkRecorded: the run is in the table, as its summary says, and it
// left no lease behind.
func checkRecorded(t *testing.T, store *state.DynamoDB, sum *report.Summary) {
	t.Helper()
	ctx := context.Background()
	runs, err := store.RecentRuns(ctx, bench.SourceAccount, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].ID != sum.RunID || runs[0].Status != sum.Status || runs[0].Actions["copy"] != sum.Actions["copy"] {
		t.Errorf("the latest run recorded is %+v, the invocation's %s (%s, %d copies)", runs, sum.RunID, sum.Status, sum.Actions["copy"])
	}
	if l, held, err := store.Lease(ctx, bench.SourceAccount); err != nil || held {
		t.Errorf("after run %s the lease is %+v (held %v, %v), want it released", sum.RunID, l, held, err)
	}
}
