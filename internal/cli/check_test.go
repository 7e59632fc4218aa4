package cli_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile/report"
)

// checkWorld is the AWS world with alias/amicopier keys Auto Scaling may
// use, and a configuration that names them and the fake's KMS endpoint.
func checkAWSWorld(t *testing.T) *awsWorld {
	t.Helper()
	w := newAWSWorld(t, true)
	for _, a := range []string{awsAcctA, awsAcctB, awsDenied} {
		w.cloud.AllowAutoScaling(w.cloud.AddKey(a, awsRegion, "amicopier"), true)
	}
	doc, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The endpoints are the file's last section.
	doc = append(doc, []byte("    kms: "+w.fake.URL()+"\nencryption:\n  kms_key: alias/amicopier\n")...)
	if err := os.WriteFile(w.cfgPath, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func decodeCheck(t *testing.T, out string) *report.CheckReport {
	t.Helper()
	var r report.CheckReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not a JSON check report: %v\n%s", err, out)
	}
	if r.Schema != report.CheckSchema {
		t.Fatalf("schema %q", r.Schema)
	}
	return &r
}

func findingKinds(r *report.CheckReport) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, string(f.Kind)+"@"+f.Account)
	}
	return out
}

// TestCheckAgainstAWSProtocols drives `amicopier check` through the SDK
// adapters against the fake AWS: KMS over its JSON protocol, CopyImage
// dry runs over EC2's, and no mutating request.
func TestCheckAgainstAWSProtocols(t *testing.T) {
	w := checkAWSWorld(t)
	keyB, _ := w.cloud.ResolveKey(awsAcctB, awsRegion, "alias/amicopier")
	w.cloud.SetKeyEnabled(keyB.ARN, false)
	w.cloud.DenyCopierActions(awsAcctA, "ec2:CreateTags")

	code, out, errOut := run(t, "check", "--config", w.cfgPath, "--output", "json", "--detailed-exitcode")
	if code != cli.ExitDrift {
		t.Fatalf("check with problems: exit %d, want %d\n%s\n%s", code, cli.ExitDrift, out, errOut)
	}
	rep := decodeCheck(t, out)
	want := []string{"copy_not_authorized@" + awsAcctA, "key_disabled@" + awsAcctB, "role_not_assumable@" + awsDenied}
	if got := findingKinds(rep); !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v\nnotes %v", got, want, rep.Notes)
	}
	if rep.Status != report.StatusSucceeded || rep.MutatingCalls != 0 {
		t.Errorf("status %s, %d mutating calls, notes %v", rep.Status, rep.MutatingCalls, rep.Notes)
	}
	if n := w.fake.MutatingCalls(); n != 0 {
		t.Fatalf("check sent %d mutating requests", n)
	}
	if w.fake.DryRuns("CopyImage") != 2 || rep.DryRuns != 2 || w.fake.Calls("DescribeKey") < 2 || w.fake.Calls("GetKeyPolicy") != 2 {
		t.Errorf("requests: %d CopyImage dry runs (report %d), %d DescribeKey, %d GetKeyPolicy",
			w.fake.DryRuns("CopyImage"), rep.DryRuns, w.fake.Calls("DescribeKey"), w.fake.Calls("GetKeyPolicy"))
	}
	if imgs := w.cloud.Images(awsAcctB, awsRegion); len(imgs) != 0 {
		t.Fatalf("the check left images: %v", imgs)
	}

	// Every format renders; without --detailed-exitcode findings exit 0.
	for _, format := range report.Formats {
		code, out, errOut := run(t, "check", "--config", w.cfgPath, "--output", format)
		if code != cli.ExitOK || !strings.Contains(out, "key_disabled") {
			t.Errorf("--output %s: exit %d\n%s\n%s", format, code, out, errOut)
		}
	}
	code, out, _ = run(t, "check", "--config", w.cfgPath, "--output", "html")
	if code != cli.ExitOK || !strings.Contains(out, `data-check="key_disabled"`) || strings.Contains(out, "<script src") {
		t.Errorf("html: exit %d\n%s", code, out)
	}

	// Fixed, the check is clean.
	w.cloud.SetKeyEnabled(keyB.ARN, true)
	w.cloud.AllowCopierActions(awsAcctA, "ec2:CreateTags")
	w.cloud.AllowAssumeRole(awsDenied)
	code, out, errOut = run(t, "check", "--config", w.cfgPath, "--detailed-exitcode")
	if code != cli.ExitOK || !strings.Contains(out, "no problem found") {
		t.Fatalf("clean check: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := w.fake.MutatingCalls(); n != 0 {
		t.Fatalf("checks sent %d mutating requests", n)
	}
}

// TestPlanMarksKMSProblems: plan against the fake AWS starts the reason of
// a pair its key would fail with kms_problem.
func TestPlanMarksKMSProblems(t *testing.T) {
	w := checkAWSWorld(t)
	keyB, _ := w.cloud.ResolveKey(awsAcctB, awsRegion, "alias/amicopier")
	w.cloud.SetKeyState(keyB.ARN, "PendingDeletion")
	code, out, errOut := run(t, "plan", "--config", w.cfgPath, "--output", "json")
	if code != cli.ExitPartial { // the denied account is unreachable
		t.Fatalf("plan: exit %d\n%s", code, errOut)
	}
	rep := decodeReport(t, out)
	marked := 0
	for _, it := range rep.Items {
		if strings.HasPrefix(it.Reason, "kms_problem: ") {
			marked++
			if it.Account != awsAcctB || !strings.Contains(it.KMSProblem, "scheduled for deletion") {
				t.Errorf("marked %s/%s: %s", it.Account, it.Region, it.Reason)
			}
		}
	}
	if marked != 1 || w.fake.MutatingCalls() != 0 {
		t.Fatalf("%d pairs marked, %d mutating requests\n%s", marked, w.fake.MutatingCalls(), out)
	}
}

func TestCheckUsage(t *testing.T) {
	for _, args := range [][]string{
		{"check", "--output", "yaml"},
		{"check", "--only-account", "12"},
		{"check", "stray"},
	} {
		if code, _, _ := run(t, args...); code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, cli.ExitUsage)
		}
	}
	code, out, _ := run(t, "check", "--help")
	if code != cli.ExitOK || !strings.Contains(out, "--detailed-exitcode") || !strings.Contains(out, "Auto Scaling") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
}

// TestCheckFindsEachKindOverTheWire: `amicopier check`, through the SDK
// adapters against the fake AWS (KMS, EC2, STS and Organizations over
// their protocols), finds each kind of problem, one case per kind, with
// its fix, and sends no mutating request.
func TestCheckFindsEachKindOverTheWire(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(w *awsWorld) (configAppend string)
		want   string // kind@account
	}{
		{"role cannot be assumed", func(w *awsWorld) string { w.cloud.DenyAssumeRole(awsAcctB); return "" }, "role_not_assumable@" + awsAcctB},
		{"key does not exist", func(w *awsWorld) string {
			return "  overrides:\n    - account: \"" + awsAcctB + "\"\n      kms_key: alias/amicopier-typo\n"
		}, "key_not_found@" + awsAcctB},
		{"key disabled", func(w *awsWorld) string { w.cloud.SetKeyEnabled(w.key(t, awsAcctB), false); return "" }, "key_disabled@" + awsAcctB},
		{"key pending deletion", func(w *awsWorld) string {
			w.cloud.SetKeyState(w.key(t, awsAcctB), cloud.KeyPendingDeletion)
			return ""
		}, "key_pending_deletion@" + awsAcctB},
		{"key in another state", func(w *awsWorld) string {
			w.cloud.SetKeyState(w.key(t, awsAcctB), cloud.KeyPendingImport)
			return ""
		}, "key_unavailable@" + awsAcctB},
		{"key not symmetric", func(w *awsWorld) string {
			w.cloud.SetKeySpec(w.key(t, awsAcctB), "RSA_2048", "SIGN_VERIFY")
			return ""
		}, "key_not_symmetric@" + awsAcctB},
		{"role may not use the key", func(w *awsWorld) string {
			w.cloud.DenyCopierActions(awsAcctB, "kms:GenerateDataKeyWithoutPlaintext")
			return ""
		}, "key_use_denied@" + awsAcctB},
		{"source snapshot key not usable by the account", func(w *awsWorld) string {
			k := w.cloud.AddKey(awsSource, awsRegion, "golden")
			w.cloud.AddImage(awsSource, awsRegion, sim.ImageSpec{
				Name: "db", Tags: map[string]string{"BuiltBy": "amigo", "amicopier:targets": awsAcctB},
				Devices: []sim.DeviceSpec{{Size: 8, KMSKeyARN: k}},
			})
			return ""
		}, "source_key_unusable@" + awsAcctB},
		{"Auto Scaling may not use the key", func(w *awsWorld) string {
			w.cloud.AllowAutoScaling(w.key(t, awsAcctB), false)
			return ""
		}, "auto_scaling_grant_missing@" + awsAcctB},
		{"CopyImage not allowed", func(w *awsWorld) string { w.cloud.DenyCopierActions(awsAcctB, "ec2:CopyImage"); return "" },
			"copy_not_authorized@" + awsAcctB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := checkAWSWorld(t)
			w.cloud.AllowAssumeRole(awsDenied) // only the case's problem
			if extra := tc.break_(w); extra != "" {
				f, err := os.OpenFile(w.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				_, err = f.WriteString(extra) // the file ends in its encryption: section
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			code, out, errOut := run(t, "check", "--config", w.cfgPath, "--output", "json", "--detailed-exitcode")
			if code != cli.ExitDrift {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, cli.ExitDrift, out, errOut)
			}
			rep := decodeCheck(t, out)
			if got := findingKinds(rep); !slices.Equal(got, []string{tc.want}) {
				t.Fatalf("findings %v, want [%s]\nnotes %v", got, tc.want, rep.Notes)
			}
			if f := rep.Findings[0]; f.Problem == "" || f.Fix == "" {
				t.Errorf("finding %+v lacks its problem or fix", f)
			}
			if n := w.fake.MutatingCalls(); n != 0 || rep.MutatingCalls != 0 {
				t.Fatalf("check sent %d mutating requests (report %d)", n, rep.MutatingCalls)
			}
		})
	}
}

// key is the ARN of account's alias/amicopier in the test Region.
func (w *awsWorld) key(t *testing.T, account string) string {
	t.Helper()
	k, ok := w.cloud.ResolveKey(account, awsRegion, "alias/amicopier")
	if !ok {
		t.Fatalf("no alias/amicopier in %s", account)
	}
	return k.ARN
}
