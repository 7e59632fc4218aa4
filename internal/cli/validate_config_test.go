package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cli"
)

// writeConfig writes doc to a file of its own and returns its path.
func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkValidateOutput runs validate on doc and checks the exit code and
// that stderr holds every line of want.
func checkValidateOutput(t *testing.T, doc string, code int, want ...string) {
	t.Helper()
	path := writeConfig(t, doc)
	got, out, errOut := run(t, "validate", "--config", path)
	if got != code {
		t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", got, code, out, errOut)
	}
	for _, w := range want {
		if !strings.Contains(out+errOut, strings.ReplaceAll(w, "FILE", path)) {
			t.Errorf("output lacks %q:\nstdout: %s\nstderr: %s", w, out, errOut)
		}
	}
}

// TestValidateListsEveryProblemAtOnce: an unknown key does not hide the
// invalid values until the next run of validate.
func TestValidateListsEveryProblemAtOnce(t *testing.T) {
	checkValidateOutput(t, `source:
  account_id: "12345"
  regionz: [eu-west-1]
limits:
  concurrency: 0
state:
  backend: sqlite
`, cli.ExitError,
		"FILE is not valid (5 problem(s)):",
		`source.regions (FILE:1): required`,
		`source.account_id (FILE:2): "12345" is not a 12-digit AWS account id`,
		`source.regionz (FILE:3): unknown key; did you mean "regions"?`,
		`limits.concurrency (FILE:5): must be between 1 and 1000 (got 0)`,
		`state.backend (FILE:7): "sqlite" is not a state backend`)
}

// TestValidateStrictBooleans: "enabled: yes" must not turn pruning on.
func TestValidateStrictBooleans(t *testing.T) {
	const base = "source:\n  account_id: \"111111111111\"\n  regions: [eu-west-1]\nprune:\n"
	for _, value := range []string{"y", "on", "yes"} {
		checkValidateOutput(t, base+"  enabled: "+value+"\n", cli.ExitError,
			`prune.enabled (FILE:5): expected true or false, got "`+value+`" (YAML 1.1 words such as yes, on and y are not booleans here)`)
	}
	checkValidateOutput(t, base+"  enabled: \"true\"\n", cli.ExitError,
		`prune.enabled (FILE:5): expected true or false, got the quoted string "true": write true without quotes`)
	checkValidateOutput(t, base+"  enabled: true\n", cli.ExitOK, "is valid")
}

// TestValidateRegionsAndSyntaxLines: Region names are checked against the
// AWS SDK's metadata; syntax errors and bytes that are not UTF-8 carry
// the line that is wrong.
func TestValidateRegionsAndSyntaxLines(t *testing.T) {
	const account = "source:\n  account_id: \"111111111111\"\n"
	checkValidateOutput(t, account+"  regions: [eu-wset-1, us-east-3]\n", cli.ExitError,
		`source.regions[0] (FILE:3): "eu-wset-1" is not an AWS Region; did you mean "eu-west-1"?`,
		`source.regions[1] (FILE:3): "us-east-3" is not an AWS Region; did you mean "us-east-1" or "us-east-2"?`)
	checkValidateOutput(t, account+"   regions: [eu-west-1]\n", cli.ExitError,
		`FILE:3: invalid YAML: did not find expected key`)
	checkValidateOutput(t, account+"  regions: [eu-west-1]\ntargets:\n  tag_key: caf\xe9\n", cli.ExitError,
		`FILE:5: invalid YAML: byte 0xE9 at column 15 is not UTF-8`)
}

// TestValidateLimits: a lease too short to be renewed, and plain http to
// another machine, are refused.
func TestValidateLimits(t *testing.T) {
	const base = "source:\n  account_id: \"111111111111\"\n  regions: [eu-west-1]\n"
	checkValidateOutput(t, base+"state:\n  lease_ttl: 1ns\n", cli.ExitError,
		`state.lease_ttl (FILE:5): must be at least 30s (got 1ns)`)
	checkValidateOutput(t, base+"state:\n  endpoint: http://dynamodb.example.com\naws:\n  endpoints:\n    ec2: http://10.0.0.1:8080\n    sts: http://127.0.0.1:4566\n", cli.ExitError,
		"FILE is not valid (2 problem(s))",
		`state.endpoint (FILE:5): "http://dynamodb.example.com" is plain http to a host that is not this machine`,
		`aws.endpoints.ec2 (FILE:8): "http://10.0.0.1:8080" is plain http to a host that is not this machine`)
}

// runWithEnv calls the CLI with the environment vars (and nothing else).
func runWithEnv(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Main(context.Background(), args, cli.Env{
		Stdout: &out, Stderr: &errOut, Version: "test",
		Getenv: func(k string) string { return vars[k] },
		Environ: func() []string {
			var kv []string
			for k, v := range vars {
				kv = append(kv, k+"="+v)
			}
			return kv
		},
	})
	return code, out.String(), errOut.String()
}

// TestValidateMarksTheEnvironment: values set from the environment are
// shown as such (secrets by length only), in the output and in errors.
func TestValidateMarksTheEnvironment(t *testing.T) {
	path := writeConfig(t, "source:\n  account_id: \"111111111111\"\n  regions: [eu-west-1]\n")
	vars := map[string]string{
		"AMICOPIER_STATE_BACKEND": "dynamodb",
		"AMICOPIER_STATE_TABLE":   "amicopier-prod\n",
		"AMICOPIER_EXTERNAL_ID":   "s3cret-external-id",
		"HOME":                    "/root",
	}
	code, out, errOut := runWithEnv(t, vars, "validate", "--config", path)
	for _, want := range []string{
		"state backend: dynamodb table amicopier-prod",
		"  from the environment (overriding the file):\n" +
			"    state.backend = \"dynamodb\"  (AMICOPIER_STATE_BACKEND)\n" +
			"    state.table = \"amicopier-prod\"  (AMICOPIER_STATE_TABLE)\n" +
			"    targets.external_id = (18 characters, not shown)  (AMICOPIER_EXTERNAL_ID)\n",
	} {
		if code != cli.ExitOK || !strings.Contains(out, want) {
			t.Errorf("exit %d, output lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
	if strings.Contains(out+errOut, "s3cret") {
		t.Errorf("the external id is printed:\n%s%s", out, errOut)
	}

	vars["AMICOPIER_STATE_TABLE"] = "x"
	vars["AMICOPIER"+"_STATE_PATHS"] = "y.db"
	code, out, errOut = runWithEnv(t, vars, "validate", "--config", path)
	for _, want := range []string{
		path + " is not valid (2 problem(s)):",
		`state.table (from AMICOPIER_STATE_TABLE): "x" is not a DynamoDB table name`,
		"AMICOPIER" + "_STATE_PATHS (environment): not a variable amicopier reads, so it changes nothing; did you mean AMICOPIER_STATE_PATH (state.path)?",
	} {
		if code != cli.ExitError || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, stderr lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
}

// TestValidateHelpSaysWhatItKnows: --help lists every variable validate
// does not report, since its message for an unknown one points there.
func TestValidateHelpSaysWhatItKnows(t *testing.T) {
	code, out, _ := run(t, "validate", "--help")
	for _, want := range []string{"[--no-env]", "AMICOPIER_* variables that nothing reads", "AMICOPIER_STATE_TABLE", "AMICOPIER_CONFIG_YAML", "AMICOPIER_LOG_LEVEL", "AMICOPIER_DYNAMODB_ENDPOINT", "Regions the AWS SDK in this build knows"} {
		if code != cli.ExitOK || !strings.Contains(out, want) {
			t.Errorf("validate --help: exit %d, lacks %q:\n%s", code, want, out)
		}
	}
}
