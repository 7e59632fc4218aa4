package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/engineconfig"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/state"
	"github.com/amicopier/amicopier/state/dynamotest"
)

const statusSource = "111111111111"

// writeStatusConfig writes a configuration whose state section is
// stateYAML (indented under "state:") and returns its path.
func writeStatusConfig(t *testing.T, stateYAML string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	doc := "source:\n  account_id: \"" + statusSource + "\"\n  regions: [eu-west-1]\nstate:\n" + stateYAML
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fillStatusStore records what a few runs would have left behind.
func fillStatusStore(t *testing.T, s state.Store) {
	t.Helper()
	ctx := context.Background()
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	runs := []state.Run{
		{ID: "run-old", Scope: statusSource, Trigger: "schedule", Mode: "run", Status: "succeeded",
			Started: base, Finished: base.Add(90 * time.Second), Counts: map[string]int{"ok": 4, "missing": 0}},
		{ID: "run-new", Scope: statusSource, Trigger: "cli", Mode: "run", Status: "partial",
			Started: base.Add(30 * time.Minute), Finished: base.Add(32 * time.Minute),
			Counts: map[string]int{"ok": 3, "missing": 2, "unreachable": 1}, Actions: map[string]int{"copy": 2},
			Errors: []string{"account 200000000009 unreachable: AccessDenied"}},
		{ID: "run-elsewhere", Scope: "222222222222", Started: base.Add(40 * time.Minute)},
	}
	for _, r := range runs {
		if err := s.PutRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	pairs := []state.Pair{
		{Key: state.PairKey{SourceImage: "ami-copying", Account: "200000000001", Region: "eu-west-1"}, Source: statusSource,
			Status: state.PairCopying, Attempts: 1, CopyImageID: "ami-0c0c0c0c0c0c0c0c0", RunID: "run-new"},
		{Key: state.PairKey{SourceImage: "ami-failing", Account: "200000000002", Region: "eu-west-1"}, Source: statusSource,
			Status: state.PairFailed, Attempts: 2, Failures: 2, LastErrorCode: "KMS.DisabledException",
			LastError: "the key is disabled", NextRetry: base.Add(3 * time.Hour)},
		{Key: state.PairKey{SourceImage: "ami-stuck", Account: "200000000003", Region: "us-east-1"}, Source: statusSource,
			Status: state.PairStuck, Attempts: 3, Failures: 3, LastErrorCode: "InvalidAMIName.Duplicate", LastError: "name taken"},
		{Key: state.PairKey{SourceImage: "ami-rejected", Account: "200000000004", Region: "eu-west-1"}, Source: statusSource,
			Status: state.PairRejected, LastErrorCode: "aws-managed-key", LastError: "snapshots use aws/ebs"},
		{Key: state.PairKey{SourceImage: "ami-settled", Account: "200000000005", Region: "eu-west-1"}, Source: statusSource,
			Status: state.PairSettled, CopyImageID: "ami-0s0s0s0s0s0s0s0s0"},
		{Key: state.PairKey{SourceImage: "ami-other-source", Account: "200000000006", Region: "eu-west-1"}, Source: "222222222222",
			Status: state.PairFailed},
	}
	for _, p := range pairs {
		if _, err := s.PutPair(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
}

type statusJSON struct {
	SchemaVersion int    `json:"schema_version"`
	Store         string `json:"store"`
	SourceAccount string `json:"source_account"`
	Runs          []struct {
		ID              string         `json:"id"`
		Status          string         `json:"status"`
		DurationSeconds float64        `json:"duration_seconds"`
		Counts          map[string]int `json:"counts"`
		Actions         map[string]int `json:"actions"`
		Errors          []string       `json:"errors"`
	} `json:"runs"`
	Pairs map[string][]struct {
		SourceImage   string `json:"source_image"`
		Attempts      int    `json:"attempts"`
		Failures      int    `json:"failures"`
		LastErrorCode string `json:"last_error_code"`
		LastError     string `json:"last_error"`
		NextRetry     string `json:"next_retry"`
	} `json:"pairs"`
}

func decodeStatus(t *testing.T, out string) statusJSON {
	t.Helper()
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --output json is not JSON: %v\n%s", err, out)
	}
	return st
}

// checkStatus runs status in both formats on a filled store.
func checkStatus(t *testing.T, cfgPath, storeWant string) {
	t.Helper()
	code, out, errOut := run(t, "status", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		storeWant, "Source account: " + statusSource,
		"Latest runs (2, newest first)", "run-new", "run-old", "partial", "2m0s", "1m30s",
		"pairs missing=2 ok=3 unreachable=1; actions copy=2", "account 200000000009 unreachable",
		"Copies in progress (1)", "ami-copying", "ami-0c0c0c0c0c0c0c0c0",
		"Failing (retried with backoff) (1)", "KMS.DisabledException: the key is disabled",
		"Stuck (attempts exhausted", "InvalidAMIName.Duplicate: name taken",
		"Rejected targets (1)", "snapshots use aws/ebs",
		"Orphaned copies (source gone): none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"ami-settled", "ami-other-source", "run-elsewhere", "missing=0"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("status output shows %q:\n%s", unwanted, out)
		}
	}

	code, out, errOut = run(t, "status", "--config", cfgPath, "--output", "json", "--runs", "1")
	if code != 0 {
		t.Fatalf("status --output json: exit %d\n%s%s", code, out, errOut)
	}
	st := decodeStatus(t, out)
	if st.SchemaVersion != 1 || st.SourceAccount != statusSource || !strings.Contains(st.Store, storeWant) {
		t.Errorf("status header = %d %s %s", st.SchemaVersion, st.SourceAccount, st.Store)
	}
	if len(st.Runs) != 1 || st.Runs[0].ID != "run-new" || st.Runs[0].DurationSeconds != 120 ||
		st.Runs[0].Counts["missing"] != 2 || st.Runs[0].Actions["copy"] != 2 || len(st.Runs[0].Errors) != 1 {
		t.Errorf("runs = %+v, want run-new only", st.Runs)
	}
	counts := map[string]int{}
	for group, ps := range st.Pairs {
		counts[group] = len(ps)
	}
	want := map[string]int{"in_progress": 1, "failing": 1, "stuck": 1, "rejected": 1, "orphaned": 0}
	for g, n := range want {
		if ps, ok := st.Pairs[g]; !ok || len(ps) != n {
			t.Errorf("pairs %s: %d (present %v), want %d", g, len(ps), ok, n)
		}
	}
	if f := st.Pairs["failing"]; len(f) == 1 && (f[0].Attempts != 2 || f[0].Failures != 2 ||
		f[0].LastErrorCode != "KMS.DisabledException" || f[0].NextRetry == "") {
		t.Errorf("failing pair = %+v", f[0])
	}
}

func TestStatusFileBackend(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "state.db")
	cfgPath := writeStatusConfig(t, "  backend: file\n  path: "+dbPath+"\n")
	s, err := state.OpenFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	fillStatusStore(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkStatus(t, cfgPath, "file "+dbPath)
}

func TestStatusEmptyStore(t *testing.T) {
	cfgPath := writeStatusConfig(t, "  backend: memory\n")
	code, out, errOut := run(t, "status", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "No runs recorded") || !strings.Contains(out, "Copies in progress: none") {
		t.Errorf("status of an empty store: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(t, "status", "--config", cfgPath, "--output", "json")
	st := decodeStatus(t, out)
	if code != 0 || st.Runs == nil || st.Pairs["in_progress"] == nil {
		t.Errorf("empty JSON status must have empty lists, not null:\n%s", out)
	}
}

// TestStatusReadsTheEngineScope pins the assumption status makes: the
// engine records runs under the source account id.
func TestStatusReadsTheEngineScope(t *testing.T) {
	cfg := config.Default()
	cfg.Source.AccountID = statusSource
	cfg.Source.Regions = []string{"eu-west-1"}
	settings, err := engineconfig.Settings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := reconcile.New(reconcile.Options{
		Settings: settings,
		Connect:  func(context.Context, string) (cloud.Connector, error) { return nil, fmt.Errorf("unused") },
		Store:    state.NewMemory(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Scope() != cfg.Source.AccountID {
		t.Errorf("engine scope %q is not the source account %q: status would read the wrong runs", e.Scope(), cfg.Source.AccountID)
	}
}

func TestStatusAndStateFlags(t *testing.T) {
	cfgPath := writeStatusConfig(t, "  backend: memory\n")
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "--help"}, 0, "-runs"},
		{[]string{"status", "--help"}, 0, "-output"},
		{[]string{"status", "--help"}, 0, "-timeout"},
		{[]string{"status", "--help"}, 0, "-config"},
		{[]string{"status", "--config", cfgPath, "--runs", "0"}, 64, "--runs 0"},
		{[]string{"status", "--config", cfgPath, "--output", "xml"}, 64, `--output "xml"`},
		{[]string{"status", "--config", cfgPath, "--timeout", "0s"}, 64, "--timeout 0s"},
		{[]string{"status", "--config", missing}, 1, missing},
		{[]string{"state"}, 64, "init"},
		{[]string{"state", "--help"}, 0, "Subcommands:"},
		{[]string{"state", "bogus"}, 64, `unknown subcommand "bogus"`},
		{[]string{"state", "init", "--help"}, 0, "-timeout"},
		{[]string{"state", "init", "--help"}, 0, state.DynamoDBTTLAttribute},
		{[]string{"state", "init", "--config", cfgPath, "--timeout", "-1s"}, 64, "--timeout -1s"},
		{[]string{"state", "init", "--config", cfgPath}, 0, "nothing to create"},
		{[]string{"--help"}, 0, "status"},
	}
	for _, tc := range tests {
		code, out, errOut := run(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s%s", tc.args, code, tc.code, tc.want, out, errOut)
		}
	}
}

func TestStateInitFile(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "nested", "state.db")
	cfgPath := writeStatusConfig(t, "  backend: file\n  path: "+dbPath+"\n")
	code, out, errOut := run(t, "state", "init", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "Created state file "+dbPath) {
		t.Fatalf("state init: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(dbPath); err != nil {
		t.Fatalf("state file not created: %v", err)
	}
	code, out, errOut = run(t, "state", "init", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "already exists") {
		t.Errorf("second state init: exit %d\n%s%s", code, out, errOut)
	}
}

func TestStateInitAndStatusDynamoDB(t *testing.T) {
	endpoint := dynamotest.Endpoint(t)
	table := dynamotest.TableName(t)
	cfgPath := writeStatusConfig(t, fmt.Sprintf("  backend: dynamodb\n  table: %s\n  region: eu-west-1\n  endpoint: %s\n", table, endpoint))

	// Before the table exists, status says what to do.
	code, out, errOut := run(t, "status", "--config", cfgPath)
	if code != 1 || !strings.Contains(errOut, "amicopier state init") || !strings.Contains(errOut, table) {
		t.Errorf("status without a table: exit %d, want 1 with advice naming %s:\n%s%s", code, table, out, errOut)
	}

	code, out, errOut = run(t, "state", "init", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "Created DynamoDB table "+table) || !strings.Contains(out, "region eu-west-1") ||
		!strings.Contains(out, "endpoint "+endpoint) || !strings.Contains(out, "time to live on "+state.DynamoDBTTLAttribute) {
		t.Fatalf("state init: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(t, "state", "init", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "already exists with amicopier's definition") {
		t.Errorf("second state init: exit %d\n%s%s", code, out, errOut)
	}

	s, err := state.OpenDynamoDB(context.Background(), state.DynamoDBOptions{Table: table, Region: "eu-west-1", Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	fillStatusStore(t, s)
	s.Close()
	checkStatus(t, cfgPath, "dynamodb table "+table+" (region eu-west-1, endpoint "+endpoint+")")
}

// TestStatusUnreachableEndpoint needs no server: nothing listens there.
func TestStatusUnreachableEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()
	cfgPath := writeStatusConfig(t, "  backend: dynamodb\n  table: amicopier-state\n  endpoint: "+endpoint+"\n")
	code, out, errOut := run(t, "status", "--config", cfgPath)
	if code != 1 || !strings.Contains(errOut, "cannot reach endpoint "+endpoint) {
		t.Errorf("status with nothing at %s: exit %d\n%s%s", endpoint, code, out, errOut)
	}
}
