package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/internal/sim"
)

// TestLogLevelFromTheEnvironment: AMICOPIER_LOG_LEVEL sets the level of
// the CLI's logs, as it does the Lambda function's; --log-level wins, and
// a bad value is refused naming the variable.
func TestLogLevelFromTheEnvironment(t *testing.T) {
	w := newAWSWorld(t, false)
	for _, tc := range []struct {
		env       string
		args      []string
		code      int
		want, not string
	}{
		{"AMICOPIER_LOG_LEVEL=info", nil, cli.ExitOK, `"msg":"run started"`, ""},
		{"AMICOPIER_LOG_LEVEL=info", []string{"--log-level", "warn"}, cli.ExitOK, "", `"level":"INFO"`},
		{"AMICOPIER_LOG_LEVEL=error", nil, cli.ExitOK, "", `"level":"`},
		{"AMICOPIER_LOG_LEVEL=loud", nil, cli.ExitUsage, `AMICOPIER_LOG_LEVEL="loud": want one of debug, info, warn, error`, ""},
	} {
		args := append([]string{"plan", "--config", w.cfgPath}, tc.args...)
		res := runBinary(t, awsEnv(t, tc.env), time.Minute, args...)
		if res.code != tc.code || !strings.Contains(res.stderr, tc.want) || (tc.not != "" && strings.Contains(res.stderr, tc.not)) {
			t.Errorf("%s amicopier %v: exit %d, stderr:\n%s\nwant exit %d, %q and not %q", tc.env, args, res.code, res.stderr, tc.code, tc.want, tc.not)
		}
	}
}

// TestQuiet: --quiet leaves the report on stdout and nothing on stderr
// for a run that went well, whatever AMICOPIER_LOG_LEVEL says.
func TestQuiet(t *testing.T) {
	w := newAWSWorld(t, false, sim.WithCopyDuration(0))
	res := runBinary(t, awsEnv(t, "AMICOPIER_LOG_LEVEL=info"), time.Minute, "run", "--config", w.cfgPath, "--quiet", "--wait", "--wait-timeout", "1m")
	if res.code != cli.ExitOK || res.stderr != "" {
		t.Fatalf("run --quiet: exit %d, stderr:\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "Drift report") || !strings.Contains(res.stdout, "Copies started by this run") {
		t.Errorf("run --quiet printed no report:\n%s", res.stdout)
	}
	// Errors still show.
	res = runBinary(t, awsEnv(t), time.Minute, "plan", "--config", w.cfgPath+".missing", "--quiet")
	if res.code != cli.ExitError || !strings.Contains(res.stderr, ".missing") {
		t.Errorf("plan --quiet with a missing config: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestDebugLogsEveryAWSCall: --log-level debug logs each AWS call with
// its operation, account, Region, duration and outcome, and never a
// credential.
func TestDebugLogsEveryAWSCall(t *testing.T) {
	w := newAWSWorld(t, true)
	res := runBinary(t, awsEnv(t), time.Minute, "plan", "--config", w.cfgPath, "--log-level", "debug", "--log-format", "json")
	if res.code != cli.ExitPartial {
		t.Fatalf("plan: exit %d\n%s", res.code, res.stderr)
	}
	for _, want := range []string{
		`"msg":"aws call","service":"EC2","operation":"DescribeImages","account":"` + awsSource + `","region":"` + awsRegion + `","duration_ms":`,
		`"msg":"aws call","service":"EC2","operation":"DescribeImages","account":"` + awsAcctA + `","region":"` + awsRegion + `"`,
		`"msg":"aws call","service":"STS","operation":"AssumeRole","account":"` + awsAcctB + `"`,
		`"msg":"aws call","service":"STS","operation":"AssumeRole","account":"` + awsDenied + `","region":"` + awsRegion + `"`,
		`"msg":"aws call","service":"Organizations","operation":"ListAccounts"`,
		`"outcome":"ok"`, `"outcome":"error","error_code":"AccessDenied"`,
	} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("no %s in the debug log:\n%s", want, res.stderr)
		}
	}
	for _, s := range append(w.fake.Secrets(), awsfake.BaseSecretAccessKey, awsfake.BaseSessionToken) {
		if strings.Contains(res.stdout+res.stderr, s) {
			t.Errorf("a credential reached the output: %q", s)
		}
	}
}
