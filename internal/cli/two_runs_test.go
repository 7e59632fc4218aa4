package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/state/dynamotest"
)

// TestTwoRunsAgainstOneTable starts two `amicopier run` at once against
// one DynamoDB table (dynalite) and endpoints that speak the AWS protocols:
// one reconciles, the other exits 0 naming the run that holds the lease,
// and no pair is copied twice.
func TestTwoRunsAgainstOneTable(t *testing.T) {
	endpoint := dynamotest.Endpoint(t)
	w := newAWSWorld(t, false, sim.WithLatency(sim.Latency{Describe: 20 * time.Millisecond, Mutating: 20 * time.Millisecond,
		STS: 20 * time.Millisecond, Organizations: 20 * time.Millisecond}))
	doc, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	table := dynamotest.TableName(t)
	cfg := strings.Replace(string(doc), "  backend: file\n  path: "+w.state+"\n",
		fmt.Sprintf("  backend: dynamodb\n  table: %s\n  region: %s\n  endpoint: %s\n", table, awsRegion, endpoint), 1)
	if cfg == string(doc) {
		t.Fatal("could not switch the test config to DynamoDB")
	}
	if err := os.WriteFile(w.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "state", "init", "--config", w.cfgPath); code != cli.ExitOK {
		t.Fatalf("state init: exit %d\n%s%s", code, out, errOut)
	}

	type result struct {
		code        int
		out, errOut string
	}
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out, errOut bytes.Buffer
			env := cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Version: "test"}
			code := cli.Main(context.Background(), []string{"run", "--config", w.cfgPath, "--log-level", "warn"}, env)
			results[i] = result{code, out.String(), errOut.String()}
		}()
	}
	wg.Wait()

	reconciled, refused := 0, 0
	for _, r := range results {
		if r.code != cli.ExitOK {
			t.Fatalf("exit %d\n%s%s", r.code, r.out, r.errOut)
		}
		switch {
		case strings.Contains(r.errOut, "Nothing was changed"):
			refused++
			if !strings.Contains(r.errOut, "run ") || !strings.Contains(r.errOut, awsSource) {
				t.Errorf("the refused run does not name the holder and scope:\n%s", r.errOut)
			}
		case strings.Contains(r.out, "Run ") && strings.Contains(r.out, "copy 2"):
			reconciled++
		default:
			t.Errorf("neither reconciled nor refused:\n%s%s", r.out, r.errOut)
		}
	}
	if reconciled != 1 || refused != 1 {
		t.Fatalf("%d runs reconciled and %d were refused, want 1 and 1", reconciled, refused)
	}
	if n := w.fake.Calls("CopyImage"); n != 2 {
		t.Fatalf("CopyImage calls = %d, want 2 (one per missing pair)", n)
	}
	for _, acct := range []string{awsAcctA, awsAcctB} {
		n := 0
		for _, img := range w.cloud.Images(acct, awsRegion) {
			if img.Tags["CopiedFromAMI"] == w.img1.ID {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s holds %d copies of %s", acct, n, w.img1.ID)
		}
	}
}
