package cli_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cli"
)

// silentEndpoint starts an endpoint that accepts connections and never
// answers, for a test that runs in parallel with others: it waits out
// the SDK's whole retry bound.
func silentEndpoint(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("takes the SDK's full retry bound (over a minute)")
	}
	t.Parallel()
	silent, err := awsfake.NewSilent()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(silent.Close)
	return silent.URL()
}

// The SDK's bounds: 5 attempts (4 for the state store's client) of at
// most 15 s each before an answer's headers, plus the backoff. The limit
// below only stops a hanging binary; it is not what is tested.
const hangLimit = 4 * time.Minute

// TestPlanAgainstAnEndpointThatNeverAnswers: plan fails, naming the
// endpoint and the operation, instead of hanging; every attempt that
// times out is logged as it happens.
func TestPlanAgainstAnEndpointThatNeverAnswers(t *testing.T) {
	hole := silentEndpoint(t)
	cfg := silentConfig(t, hole, "  backend: file\n  path: "+filepath.Join(t.TempDir(), "state.db")+"\n")
	res := runBinary(t, awsEnv(t), hangLimit, "plan", "--config", cfg)
	if res.code != cli.ExitError {
		t.Fatalf("exit %d, want %d\n%s", res.code, cli.ExitError, res.stderr)
	}
	last := lastLine(res.stderr)
	if !strings.Contains(last, "no answer from") || !strings.Contains(last, hole) ||
		!(strings.Contains(last, "DescribeImages") || strings.Contains(last, "ListAccounts")) {
		t.Errorf("the error does not name the endpoint and the operation: %q", last)
	}
	if !strings.Contains(res.stderr, `"msg":"no answer from AWS in time; the call is retried until its attempts run out"`) ||
		!strings.Contains(res.stderr, `"endpoint":"`+hole+`"`) {
		t.Errorf("no warning for the attempts that timed out:\n%s", res.stderr)
	}
	t.Logf("plan gave up after %s", res.elapsed.Round(time.Second))
}

// TestRunWithAStateTableThatNeverAnswers: the state store's DynamoDB
// client is bounded like the others.
func TestRunWithAStateTableThatNeverAnswers(t *testing.T) {
	hole := silentEndpoint(t)
	cfg := silentConfig(t, hole, "  backend: dynamodb\n  table: amicopier-state\n  endpoint: "+hole+"\n")
	res := runBinary(t, awsEnv(t), hangLimit, "run", "--config", cfg)
	if res.code != cli.ExitError {
		t.Fatalf("exit %d, want %d\n%s", res.code, cli.ExitError, res.stderr)
	}
	last := lastLine(res.stderr)
	if !strings.Contains(last, "DescribeTable") || !strings.Contains(last, "no answer from endpoint "+hole) || !strings.Contains(last, "amicopier-state") {
		t.Errorf("the error does not say the table's endpoint gave no answer, naming the table, the endpoint and the operation: %q", last)
	}
	t.Logf("%s", last)
	if !strings.Contains(res.stderr, `"service":"DynamoDB","operation":"DescribeTable"`) {
		t.Errorf("no warning for the attempts that timed out:\n%s", res.stderr)
	}
	t.Logf("run gave up after %s", res.elapsed.Round(time.Second))
}

// silentConfig is a configuration whose AWS endpoints are hole, with
// state the state section's body.
func silentConfig(t *testing.T, hole, state string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`source:
  account_id: "111111111111"
  regions: [eu-west-1]
state:
%saws:
  region: eu-west-1
  endpoints: {ec2: %s, organizations: %s, sts: %s}
`, state, hole, hole, hole))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
