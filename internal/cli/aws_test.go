package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// The plan and run commands against endpoints that speak the AWS
// protocols: awsfake over a small simulated organisation.

const (
	awsSource  = "111111111111"
	awsAcctA   = "222222222222"
	awsAcctB   = "333333333333"
	awsDenied  = "555555555555"
	awsForeign = "999999999999"
	awsRegion  = "eu-west-1"
)

// awsWorld is the organisation, the fake endpoint over it and a config
// file pointing at it.
type awsWorld struct {
	cloud    *sim.Cloud
	fake     *awsfake.Server
	cfgPath  string
	state    string
	img1     cloud.Image // targets A and B (and a foreign account)
	img2     cloud.Image // targets A, which already has a good copy
	denyImg  cloud.Image // targets an account whose role cannot be assumed
	withDeny bool
}

func newAWSWorld(t *testing.T, withDeny bool, opts ...sim.Option) *awsWorld {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": awsfake.BaseAccessKeyID, "AWS_SECRET_ACCESS_KEY": awsfake.BaseSecretAccessKey,
		"AWS_SESSION_TOKEN": awsfake.BaseSessionToken, "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_PROFILE": "", "AWS_REGION": "",
		"AWS_DEFAULT_REGION": "", "AWS_ENDPOINT_URL": "",
	} {
		t.Setenv(k, v)
	}
	c := sim.New(opts...)
	for _, a := range []string{awsSource, awsAcctA, awsAcctB, awsDenied} {
		if err := c.AddAccount(a, "acct-"+a[:3], "", ""); err != nil {
			t.Fatal(err)
		}
	}
	w := &awsWorld{cloud: c, withDeny: withDeny}
	tags := func(targets string) map[string]string {
		return map[string]string{"BuiltBy": "amigo", "amicopier:targets": targets}
	}
	w.img1 = c.AddImage(awsSource, awsRegion, sim.ImageSpec{Name: "web", Tags: tags(awsAcctA + "," + awsAcctB + " " + awsForeign)})
	w.img2 = c.AddImage(awsSource, awsRegion, sim.ImageSpec{Name: "base", Tags: tags(awsAcctA)})
	c.AddImage(awsAcctA, awsRegion, sim.ImageSpec{
		Name: "base-copy", Tags: map[string]string{"CopiedFromAMI": w.img2.ID, "Encrypted": "true"},
		Devices: []sim.DeviceSpec{{Encrypted: true}},
	})
	if withDeny {
		w.denyImg = c.AddImage(awsSource, awsRegion, sim.ImageSpec{Name: "denied", Tags: tags(awsDenied)})
		c.DenyAssumeRole(awsDenied)
	}
	w.fake = awsfake.New(c, awsfake.Options{BaseAccount: awsSource, ExternalID: "cli-test-ext", PageSize: 1})
	t.Cleanup(w.fake.Close)
	dir := t.TempDir()
	w.state = filepath.Join(dir, "state.db")
	doc := fmt.Sprintf(`source:
  account_id: "%s"
  regions: [%s]
  filters:
    BuiltBy: [amigo]
targets:
  external_id: cli-test-ext
state:
  backend: file
  path: %s
  lease_ttl: 1m
aws:
  region: %s
  endpoints:
    ec2: %s
    organizations: %s
    sts: %s
`, awsSource, awsRegion, w.state, awsRegion, w.fake.URL(), w.fake.URL(), w.fake.URL())
	w.cfgPath = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(w.cfgPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func decodeReport(t *testing.T, out string) *report.Report {
	t.Helper()
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not a JSON report: %v\n%s", err, out)
	}
	return &r
}

// pairs lists "image/account/region" of the items in category c.
func pairs(r *report.Report, c report.Category) []string {
	var out []string
	for _, it := range r.Items {
		if it.Category == c {
			out = append(out, it.SourceImage+"/"+it.Account+"/"+it.Region)
		}
	}
	slices.Sort(out)
	return out
}

func TestPlanListsExactlyTheMissingPairsAndChangesNothing(t *testing.T) {
	w := newAWSWorld(t, false)
	code, out, errOut := run(t, "plan", "--config", w.cfgPath, "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("plan: exit %d\n%s", code, errOut)
	}
	rep := decodeReport(t, out)
	want := []string{w.img1.ID + "/" + awsAcctA + "/" + awsRegion, w.img1.ID + "/" + awsAcctB + "/" + awsRegion}
	slices.Sort(want)
	if got := pairs(rep, report.Missing); !slices.Equal(got, want) {
		t.Errorf("missing pairs %v, want %v", got, want)
	}
	if rep.Counts[report.OK] != 1 || rep.Counts[report.Missing] != 2 || rep.Counts[report.RejectedTarget] != 1 {
		t.Errorf("counts %v: want 2 missing, 1 ok (the existing copy), 1 rejected (the foreign account)", rep.Counts)
	}
	if n := w.fake.MutatingCalls(); n != 0 {
		t.Fatalf("plan made %d mutating calls", n)
	}
	if w.fake.Calls("DescribeImages") < 3 || w.fake.Calls("AssumeRole") != 2 || w.fake.Calls("ListAccounts") == 0 {
		t.Errorf("plan did not go through the AWS protocols: %d describes, %d AssumeRole, %d ListAccounts",
			w.fake.Calls("DescribeImages"), w.fake.Calls("AssumeRole"), w.fake.Calls("ListAccounts"))
	}
	if _, err := os.Stat(w.state); err == nil {
		st, err := state.OpenFile(w.state)
		if err != nil {
			t.Fatal(err)
		}
		runs, _ := st.RecentRuns(context.Background(), awsSource, 10)
		_ = st.Close()
		if len(runs) != 0 {
			t.Errorf("plan recorded %d runs", len(runs))
		}
	}

	code, out, _ = run(t, "plan", "--config", w.cfgPath, "--detailed-exitcode")
	if code != cli.ExitDrift || !strings.Contains(out, "missing") {
		t.Errorf("--detailed-exitcode with drift: exit %d, want %d\n%s", code, cli.ExitDrift, out)
	}
	code, out, _ = run(t, "plan", "--config", w.cfgPath, "--output", "json", "--only-account", awsAcctB, "--only-ami", w.img1.ID)
	if code != cli.ExitOK {
		t.Fatalf("scoped plan: exit %d", code)
	}
	if got := pairs(decodeReport(t, out), report.Missing); !slices.Equal(got, []string{w.img1.ID + "/" + awsAcctB + "/" + awsRegion}) {
		t.Errorf("scoped plan missing %v", got)
	}
	if n := w.fake.MutatingCalls(); n != 0 {
		t.Fatalf("plans made %d mutating calls", n)
	}
}

func TestRunCopiesAndWaits(t *testing.T) {
	w := newAWSWorld(t, false, sim.WithCopyDuration(0))
	code, out, errOut := run(t, "run", "--config", w.cfgPath, "--output", "json", "--wait", "--wait-timeout", "1m")
	if code != cli.ExitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	var res struct {
		Report  report.Report  `json:"report"`
		Summary report.Summary `json:"summary"`
		Copies  []struct {
			Account, Region, ImageID, SourceImageID string
			State                                   string
		} `json:"copies"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("run output: %v\n%s", err, out)
	}
	if res.Summary.Actions["copy"] != 2 || res.Summary.Status != report.StatusSucceeded {
		t.Errorf("summary %+v", res.Summary)
	}
	if w.fake.Calls("CopyImage") != 2 || w.fake.Calls("ModifyImageAttribute") != 1 {
		t.Errorf("%d CopyImage, %d ModifyImageAttribute: want 2 copies and one share for both targets",
			w.fake.Calls("CopyImage"), w.fake.Calls("ModifyImageAttribute"))
	}
	if len(res.Copies) != 2 {
		t.Fatalf("copies %+v", res.Copies)
	}
	for _, c := range res.Copies {
		if c.State != "available" || c.SourceImageID != w.img1.ID {
			t.Errorf("copy %+v", c)
		}
	}
	code, out, _ = run(t, "plan", "--config", w.cfgPath, "--output", "json")
	if rep := decodeReport(t, out); code != cli.ExitOK || rep.Counts[report.Missing] != 0 || rep.Counts[report.OK] != 3 {
		t.Errorf("plan after the run: exit %d counts %v", code, rep.Counts)
	}
}

// TestRunOnlyAMIReadsOnlyItsTargets: run --only-ami over the wire looks
// up the accounts the AMI's tag names (DescribeAccount) and never lists
// the organisation; the account outside it is rejected, never shared
// with.
func TestRunOnlyAMIReadsOnlyItsTargets(t *testing.T) {
	w := newAWSWorld(t, false)
	code, out, errOut := run(t, "run", "--config", w.cfgPath, "--output", "json", "--only-ami", w.img1.ID)
	if code != cli.ExitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	if l, d := w.fake.Calls("ListAccounts"), w.fake.Calls("DescribeAccount"); l != 0 || d != 3 {
		t.Errorf("%d ListAccounts and %d DescribeAccount requests, want none and one per account the tag names (3)", l, d)
	}
	if w.fake.Calls("CopyImage") != 2 {
		t.Errorf("%d CopyImage, want 2 (A and B)", w.fake.Calls("CopyImage"))
	}
	var res struct {
		Report report.Report `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("run output: %v\n%s", err, out)
	}
	if got := pairs(&res.Report, report.RejectedTarget); len(got) != 1 || !strings.Contains(got[0], awsForeign) {
		t.Errorf("rejected %v, want the foreign account", got)
	}
	if slices.Contains(w.cloud.LaunchPermissions(awsSource, awsRegion, w.img1.ID), awsForeign) {
		t.Error("the foreign account was granted launch permission")
	}
}

func TestRunRefusesATimeBudgetWithinTheMargin(t *testing.T) {
	w := newAWSWorld(t, false)
	for _, tc := range []struct{ budget, want string }{
		{"30s", "--time-budget 30s: must exceed limits.deadline_margin (1m0s)"},
		{"1m", "--time-budget 1m0s: must exceed limits.deadline_margin (1m0s)"},
	} {
		code, out, errOut := run(t, "run", "--config", w.cfgPath, "--time-budget", tc.budget)
		if code != cli.ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("--time-budget %s: exit %d, stderr %q: want %d and %q\n%s", tc.budget, code, errOut, cli.ExitUsage, tc.want, out)
		}
	}
	if n := w.fake.Calls(""); n != 0 {
		t.Errorf("%d AWS calls for a refused command line", n)
	}
}

func TestRunTimeBudgetDefersWork(t *testing.T) {
	w := newAWSWorld(t, false)
	// A budget a millisecond over the margin leaves no time to start work.
	doc, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.cfgPath, append(doc, "limits:\n  deadline_margin: 1s\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "run", "--config", w.cfgPath, "--output", "json", "--time-budget", "1001ms")
	// The engine reports work cut short by the budget as partial.
	if code != cli.ExitOK && code != cli.ExitPartial {
		t.Fatalf("run: exit %d\n%s", code, errOut)
	}
	var res struct {
		Summary report.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Summary.Actions["copy"] != 0 || res.Summary.Actions["deferred"] == 0 || w.fake.Calls("CopyImage") != 0 {
		t.Errorf("actions %v: want every copy deferred", res.Summary.Actions)
	}
}

func TestRunExitsCleanlyWhenTheLeaseIsHeld(t *testing.T) {
	w := newAWSWorld(t, false)
	hold := func(ttl time.Duration) {
		t.Helper()
		st, err := state.OpenFile(w.state)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, err := st.AcquireLease(context.Background(), awsSource, "other-run-42", ttl); err != nil {
			t.Fatal(err)
		}
	}
	hold(time.Hour)
	code, out, errOut := run(t, "run", "--config", w.cfgPath)
	if code != cli.ExitOK {
		t.Fatalf("lease held: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"other-run-42", "holds the lease", "--wait-lease", awsSource, "Nothing was changed"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("message %q lacks %q", errOut, want)
		}
	}
	if n := w.fake.MutatingCalls(); n != 0 {
		t.Errorf("%d mutating AWS calls while another run holds the lease", n)
	}

	// A lease that expires while we wait is taken over.
	if err := os.Remove(w.state); err != nil {
		t.Fatal(err)
	}
	hold(300 * time.Millisecond)
	code, _, errOut = run(t, "run", "--config", w.cfgPath, "--wait-lease", "20s", "--log-level", "warn")
	if code != cli.ExitOK || w.fake.Calls("CopyImage") != 2 {
		t.Fatalf("--wait-lease: exit %d, %d copies\n%s", code, w.fake.Calls("CopyImage"), errOut)
	}
}

func TestRunReportsPartialAndNeverLogsCredentials(t *testing.T) {
	w := newAWSWorld(t, true)
	var out, errOut bytes.Buffer
	env := cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Version: "test"}
	code := cli.Main(context.Background(), []string{"run", "--config", w.cfgPath, "--log-level", "debug", "--log-format", "json"}, env)
	if code != cli.ExitPartial {
		t.Fatalf("run with an unreachable account: exit %d, want %d\n%s\n%s", code, cli.ExitPartial, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "unreachable") || !strings.Contains(errOut.String(), awsDenied) {
		t.Errorf("the unreachable account is not reported:\n%s\n%s", out.String(), errOut.String())
	}
	code = cli.Main(context.Background(), []string{"plan", "--config", w.cfgPath, "--log-level", "debug", "--log-format", "text"}, env)
	if code != cli.ExitPartial {
		t.Errorf("plan with an unreachable account: exit %d", code)
	}
	all := out.String() + errOut.String()
	if !strings.Contains(errOut.String(), `"level":"DEBUG"`) && !strings.Contains(errOut.String(), `"level":"INFO"`) {
		t.Fatalf("no log captured:\n%s", errOut.String())
	}
	secrets := w.fake.Secrets()
	if len(secrets) < 4 {
		t.Fatalf("only %d secrets issued: the run assumed no role", len(secrets))
	}
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("a secret or session token reached the output: %q", s)
		}
	}
}

func TestPlanAndRunHelpAndFlagErrors(t *testing.T) {
	common := []string{"-config", "-output", "-only-ami", "-only-account", "-log-level", "-log-format", "AWS_PROFILE", "Exit codes"}
	for cmd, flags := range map[string][]string{
		"plan": append([]string{"-detailed-exitcode"}, common...),
		"run":  append([]string{"-wait", "-wait-timeout", "-wait-lease", "-time-budget"}, common...),
	} {
		code, out, _ := run(t, cmd, "--help")
		if code != cli.ExitOK {
			t.Errorf("%s --help: exit %d", cmd, code)
		}
		for _, f := range flags {
			if !strings.Contains(out, f) {
				t.Errorf("%s --help does not document %s:\n%s", cmd, f, out)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "--only-ami", "ami-xyz"}, `"ami-xyz"`},
		{[]string{"plan", "--only-account", "1234"}, `"1234"`},
		{[]string{"run", "--only-ami", "ami-0123456789abcdef0,bogus"}, `"bogus"`},
		{[]string{"run", "--output", "xml"}, `"xml"`},
		{[]string{"run", "--wait-timeout", "0s"}, "--wait-timeout"},
		{[]string{"plan", "extra"}, `"extra"`},
	} {
		code, _, errOut := run(t, tc.args...)
		if code != cli.ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q: want %d naming %s", tc.args, code, errOut, cli.ExitUsage, tc.want)
		}
	}
	code, _, errOut := run(t, "plan", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != cli.ExitError || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("missing config: exit %d, %s", code, errOut)
	}
}
