package lambdafn

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/state"
)

// logLines decodes every JSON log line the handler printed (metric lines
// included), failing on a line that is not JSON.
func logLines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("a stdout line is not JSON: %v: %s", err, sc.Text())
		}
		lines = append(lines, m)
	}
	return lines
}

// duplicateKeys returns the top-level keys a JSON object has more than
// once (encoding/json keeps the last silently).
func duplicateKeys(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var dups []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		key := tok.(string)
		if seen[key] {
			dups = append(dups, key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return dups
}

// TestLogLinesNameEachFieldOnce: no line repeats a key (run_id was
// written twice), and durations are milliseconds in a field named so.
func TestLogLinesNameEachFieldOnce(t *testing.T) {
	w := newWorld(t)
	if _, err := w.h.Handle(context.Background(), fixture(t, "scheduled-event.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.h.Handle(context.Background(), event(t, "sns-amigo.json", w.web.ID)); err != nil {
		t.Fatal(err)
	}
	sawRunID, sawDuration := false, false
	for _, raw := range bytes.Split(bytes.TrimSpace(w.stdout.Bytes()), []byte("\n")) {
		if dups := duplicateKeys(t, raw); len(dups) > 0 {
			t.Errorf("keys %v appear more than once in %s", dups, raw)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["run_id"]; ok {
			sawRunID = true
		}
		if _, ok := m["duration"]; ok {
			t.Errorf("a line has a bare duration (nanoseconds): %s", raw)
		}
		if ms, ok := m["duration_ms"]; ok {
			sawDuration = true
			if v, isNum := ms.(float64); !isNum || v < 0 || v > 60_000 {
				t.Errorf("duration_ms %v is not a plausible number of milliseconds: %s", ms, raw)
			}
		}
	}
	if !sawRunID || !sawDuration {
		t.Errorf("no line with run_id (%v) or duration_ms (%v):\n%s", sawRunID, sawDuration, w.stdout)
	}
}

// TestRejectedTargetsAreNamed: an SNS run's result and log name the
// targets it refused, not only their number.
func TestRejectedTargetsAreNamed(t *testing.T) {
	w := newWorld(t)
	res, err := w.h.Handle(context.Background(), event(t, "sns-amigo.json", w.web.ID))
	if err != nil {
		t.Fatal(err)
	}
	if res.RejectedCount != 2 || len(res.Rejected) != 2 {
		t.Fatalf("rejected %+v (count %d), want the two the message names", res.Rejected, res.RejectedCount)
	}
	var targets []string
	for _, r := range res.Rejected {
		targets = append(targets, r.Target)
		if r.Image != w.web.ID || r.Reason == "" {
			t.Errorf("rejected %+v: want the image and a reason", r)
		}
	}
	if !strings.Contains(strings.Join(targets, " "), "999999999999") || !strings.Contains(strings.Join(targets, " "), "not-an-account") {
		t.Errorf("rejected targets %v, want 999999999999 and the malformed entry", targets)
	}
	found := false
	for _, m := range logLines(t, w.stdout.Bytes()) {
		if m["msg"] != "targets rejected" {
			continue
		}
		found = true
		list, _ := m["rejected"].([]any)
		if m["rejected_count"] != float64(2) || len(list) != 2 || !strings.Contains(w.stdout.String(), `"target":"999999999999"`) {
			t.Errorf("log line %v does not name the rejected targets", m)
		}
	}
	if !found {
		t.Errorf("no log line names the rejected targets:\n%s", w.stdout)
	}
	b, _ := json.Marshal(res)
	if !strings.Contains(string(b), `"rejected":[{"image":"`+w.web.ID) {
		t.Errorf("the result JSON does not name them: %s", b)
	}
}

// TestPayloadsThatAreNotJSONReachTheHandler: the handler takes the raw
// payload, so what the library would have refused with a bare decoder
// error is refused by ParseEvent, naming the field, with a JSON log line;
// an oversized payload is refused before it is decoded.
func TestPayloadsThatAreNotJSONReachTheHandler(t *testing.T) {
	w := newWorld(t)
	lh := lambda.NewHandler(w.h)
	tests := []struct {
		name, payload, want string
	}{
		{"not JSON", "this is not JSON", "event: not a JSON object"},
		{"a JSON string", `"Scheduled Event"`, "event: not a JSON object"},
		{"broken JSON", `{"detail-type": "Scheduled Event",`, "event: not valid JSON"},
		{"too large", `{"detail-type": "Scheduled Event", "pad": "` + strings.Repeat("x", maxEventBytes) + `"}`, "more than the 1048576 this handler reads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.stdout.Reset()
			_, err := lh.Invoke(context.Background(), []byte(tt.payload))
			var me *MalformedEventError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a MalformedEventError saying %q", err, tt.want)
			}
			lines := logLines(t, w.stdout.Bytes())
			if len(lines) != 1 || lines[0]["level"] != "ERROR" || lines[0]["field"] != "event" {
				t.Errorf("log %v, want one JSON error line naming the field", lines)
			}
		})
	}
	if w.runs != 0 || w.cloud.Calls("", "", "") != 0 {
		t.Error("a refused payload reached AWS")
	}
	// A good payload through the same path gets the result as JSON.
	out, err := lh.Invoke(context.Background(), fixture(t, "scheduler-plan.json"))
	if err != nil || !strings.Contains(string(out), `"outcome":"planned"`) {
		t.Errorf("scheduled plan through lambda.Handler: %s, %v", out, err)
	}
}

// TestFailedRunIsRecorded: a run that fails outright leaves a failed run
// record with its error, for `amicopier status`.
func TestFailedRunIsRecorded(t *testing.T) {
	w := newWorld(t)
	// A store on the simulated clock the handler dates runs by, so the
	// record is not taken for expired.
	w.store = state.NewMemory(state.WithClock(w.cloud.Now))
	w.h.store = w.store
	w.h.backend = func(context.Context, string, bool, int) (cloud.Connector, []cloud.TargetSource, error) {
		return nil, nil, errors.New("no AWS credentials found")
	}
	if _, err := w.h.Handle(context.Background(), fixture(t, "scheduled-event.json")); err == nil {
		t.Fatal("the run did not fail")
	}
	runs, err := w.store.RecentRuns(context.Background(), source, 5)
	if err != nil || len(runs) != 1 || runs[0].Status != "failed" || runs[0].Trigger != "schedule" ||
		len(runs[0].Errors) != 1 || !strings.Contains(runs[0].Errors[0], "no AWS credentials found") {
		t.Fatalf("recorded runs %+v, %v: want the failed run with its error\n%s", runs, err, w.stdout)
	}
}

// fakeRuntimeAPI records what the function posts to the Runtime API.
type fakeRuntimeAPI struct {
	mu                sync.Mutex
	path, contentType string
	errorType         string
	body              []byte
}

func (f *fakeRuntimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.path, f.contentType, f.errorType, f.body = r.Method+" "+r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Lambda-Runtime-Function-Error-Type"), body
	f.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// TestColdStartWithABadConfiguration: every problem of the configuration
// in one JSON log line, and the error reported to the Runtime API's init
// error endpoint, so the Lambda console shows it.
func TestColdStartWithABadConfiguration(t *testing.T) {
	fake := &fakeRuntimeAPI{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var stdout bytes.Buffer
	bad := "source:\n  account_id: \"12345\"\n  regions: [eu-west-1]\nlimits:\n  concurrency: 0\n"
	env := map[string]string{EnvConfigYAML: bad, "AWS_LAMBDA_RUNTIME_API": strings.TrimPrefix(srv.URL, "http://")}
	err := Start(context.Background(), Deps{
		Getenv: func(k string) string { return env[k] }, Stdout: &stdout,
		OpenStore: func(context.Context, *config.Config) (state.Store, error) { return state.NewMemory(), nil },
	})
	var cs *ColdStartError
	if !errors.As(err, &cs) || cs.Type != ErrorTypeConfig || len(cs.Problems) != 2 {
		t.Fatalf("Start = %v, want a ColdStartError of type %s with 2 problems", err, ErrorTypeConfig)
	}
	lines := logLines(t, stdout.Bytes())
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", len(lines), stdout.String())
	}
	line := lines[0]
	problems, _ := line["problems"].([]any)
	if line["level"] != "ERROR" || line["error_type"] != ErrorTypeConfig || line["problem_count"] != float64(2) || len(problems) != 2 {
		t.Errorf("log line %v, want an ERROR with both problems", line)
	}
	joined := stdout.String()
	for _, want := range []string{"source.account_id", `\"12345\"`, "limits.concurrency"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the log line does not name %s:\n%s", want, joined)
		}
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.path != "POST /2018-06-01/runtime/init/error" || fake.errorType != ErrorTypeConfig || fake.contentType != "application/vnd.aws.lambda.error+json" {
		t.Fatalf("runtime API got %q (error type %q, content type %q), want the init error", fake.path, fake.errorType, fake.contentType)
	}
	var body struct {
		Message    string   `json:"errorMessage"`
		Type       string   `json:"errorType"`
		StackTrace []string `json:"stackTrace"`
	}
	if err := json.Unmarshal(fake.body, &body); err != nil {
		t.Fatalf("init error body %s: %v", fake.body, err)
	}
	if body.Type != ErrorTypeConfig || !strings.Contains(body.Message, "source.account_id") || !strings.Contains(body.Message, "limits.concurrency") || body.StackTrace == nil {
		t.Errorf("init error body %+v, want both problems in Lambda's error shape", body)
	}
}
