package cli_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cli"
)

// TestEmptyScopeIsAUsageError: an empty or blank scope value (an unset
// shell variable, a stray comma) must never widen a run to everything.
func TestEmptyScopeIsAUsageError(t *testing.T) {
	w := newAWSWorld(t, false)
	env := awsEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--only-ami", ""}, `--only-ami "": empty value`},
		{[]string{"plan", "--only-ami", ""}, `--only-ami "": empty value`},
		{[]string{"run", "--only-ami", "   "}, `--only-ami "   ": empty value`},
		{[]string{"run", "--only-account", ","}, `--only-account ",": empty value`},
		{[]string{"plan", "--only-account", " , "}, `--only-account " , ": empty value`},
		{[]string{"run", "--only-ami", w.img1.ID + ","}, `--only-ami "` + w.img1.ID + `,": empty value`},
		{[]string{"run", "--only-account", awsAcctA + ",," + awsAcctB}, `empty value`},
		{[]string{"plan", "--shard", ""}, `--shard ""`},
		{[]string{"run", "--shard", " "}, `--shard " "`},
	} {
		args := append(tc.args, "--config", w.cfgPath)
		res := runBinary(t, env, time.Minute, args...)
		if res.code != cli.ExitUsage || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("amicopier %q: exit %d, stderr %q: want exit %d and %q", args, res.code, res.stderr, cli.ExitUsage, tc.want)
		}
	}
	if n := w.fake.Calls(""); n != 0 {
		t.Errorf("%d AWS calls for refused command lines", n)
	}
	if n := w.fake.Calls("CopyImage"); n != 0 {
		t.Fatalf("an empty scope copied %d images", n)
	}
}

// TestScopeThatMatchesNothing: --only-ami naming no source AMI and
// --only-account naming no member account are errors that name the
// values (exit 1, nothing observed or changed); source filters matching
// nothing are a loud warning, and the JSON report says it too.
func TestScopeThatMatchesNothing(t *testing.T) {
	w := newAWSWorld(t, false)
	env := awsEnv(t)
	const typo, stranger = "ami-0123456789abcdef0", "123456789012"
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"plan", "--only-ami", typo}, []string{"--only-ami " + typo + " matches no source AMI", "source.filters BuiltBy=amigo"}},
		{[]string{"run", "--only-account", stranger}, []string{"--only-account " + stranger + " matches no target account: not an account of the organisation"}},
		{[]string{"run", "--only-ami", w.img1.ID + "," + typo, "--only-account", awsAcctA + "," + stranger},
			[]string{"--only-ami " + typo, "--only-account " + stranger, "nothing was observed or changed"}},
	} {
		args := append(tc.args, "--config", w.cfgPath)
		res := runBinary(t, env, time.Minute, args...)
		if res.code != cli.ExitError {
			t.Errorf("%v: exit %d, want %d\n%s%s", args, res.code, cli.ExitError, res.stdout, res.stderr)
		}
		for _, want := range tc.want {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("%v: no %q in\n%s", args, want, res.stderr)
			}
		}
		if strings.Contains(res.stdout, "no drift") {
			t.Errorf("%v: reads as success:\n%s", args, res.stdout)
		}
	}
	if n := w.fake.Calls("AssumeRole") + w.fake.MutatingCalls(); n != 0 {
		t.Errorf("%d target-account or mutating calls for scopes that match nothing", n)
	}

	doc, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.cfgPath, []byte(strings.Replace(string(doc), "BuiltBy: [amigo]", "BuiltBy: [amgio]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	res := runBinary(t, env, time.Minute, "plan", "--config", w.cfgPath, "--output", "json")
	if res.code != cli.ExitOK || !strings.Contains(res.stderr, "warning: no source AMI at all") || !strings.Contains(res.stderr, "BuiltBy=amgio") {
		t.Errorf("filters matching nothing: exit %d, stderr %q", res.code, res.stderr)
	}
	if rep := decodeReport(t, res.stdout); rep.Unmatched == nil || !strings.Contains(rep.Unmatched.Filters, "BuiltBy=amgio") {
		t.Errorf("the JSON report does not say the filters matched nothing: %+v", rep.Unmatched)
	}
}
