package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/state"
	"github.com/amicopier/amicopier/state/dynamotest"
)

// killTestVar turns TestKill9 on.
const killTestVar = "AMICOPIER_KILL_TEST"

// ciKills is how many SIGKILLs the CI-sized kill test sends.
const ciKills = 20

// TestKill9 is the CI-sized kill test: the amicopier binary built from
// the tree, killed with SIGKILL at random moments (at least 20 times)
// while it runs against the organisation served by amicopier-bench serve
// from a process of its own and against dynalite, restarted until a run
// finishes; then the organisation, the table and `amicopier status` are
// checked (soak.go). It logs its seed first; AMICOPIER_KILL_SEED replays
// it. It builds two binaries and takes one to two minutes, so it runs
// only when AMICOPIER_KILL_TEST=1, as scripts/test.sh sets it in a step
// of its own (under a 3-minute timeout).
func TestKill9(t *testing.T) {
	if testing.Short() || os.Getenv(killTestVar) != "1" {
		t.Skipf("builds and kills the amicopier binary (a minute or two): set %s=1 (scripts/test.sh does)", killTestVar)
	}
	endpoint := dynamotest.Endpoint(t)
	bin := t.TempDir()
	amicopier, server := filepath.Join(bin, "amicopier"), filepath.Join(bin, "amicopier-bench")
	for pkg, out := range map[string]string{"../../cmd/amicopier": amicopier, "./cmd/amicopier-bench": server} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	o := SoakOptions{
		Amicopier: amicopier, Server: []string{server, "serve"}, DynamoDBEndpoint: endpoint,
		Kills: ciKills, Log: testLog{t},
		// Every round's table is deleted when the test ends.
		Table: func(int) string { return dynamotest.TableName(t) },
		// One real wait for a dead run's lease (the first), the others
		// released for the dead runs: 30 s each would not fit CI.
		RealLeaseWaitEvery: 1 << 20,
	}
	if v := os.Getenv(KillSeedEnv); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", KillSeedEnv, v, err)
		}
		o.Seed = seed
	}
	if dir := os.Getenv("AMICOPIER_KILL_DIR"); dir != "" {
		o.Dir = dir // keep every round's files
	}
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()
	res, err := RunSoak(ctx, SoakScenario(), o)
	if err != nil {
		t.Fatalf("kill test (seed %d): %v", o.Seed, err)
	}
	t.Logf("kills %d (by phase %v, %d holding the lease: %d released for the dead run, %d waited out, at most %.1fs), "+
		"rounds %d, runs %d, pairs %d, copies made %d, duplicate_copies %d, pairs_unreconciled_after_recovery %d, leases_stuck %d, "+
		"copying_without_copy %d, status_mismatches %d, %.0fs",
		res.Kills, res.KillsByPhase, res.KillsHoldingLease, res.LeasesReleasedForDead, res.RealLeaseWaits, res.LeaseWaitSeconds,
		res.Rounds, res.Runs, res.Pairs, res.CopiesMade, res.DuplicateCopies, res.PairsUnreconciledAfterRecovery, res.LeasesStuck,
		res.CopyingWithoutCopy, res.StatusMismatches, res.WallSeconds)
	if !res.Pass {
		t.Fatalf("kill test failed (replay: %s=%d):\n%s", KillSeedEnv, res.Seed, strings.Join(res.Failures, "\n"))
	}
}

// testLog writes the kill tests' lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestSoakConfig: the rounds' configuration is the scenario's, with the
// served endpoints, the DynamoDB table and the shortest lease validation
// accepts.
func TestSoakConfig(t *testing.T) {
	sc := SoakScenario()
	path := filepath.Join(t.TempDir(), "config.yaml")
	table := state.DynamoDBOptions{Table: "amicopier-soak-1-2", Region: "us-east-1", Endpoint: "http://127.0.0.1:4567"}
	if err := writeSoakConfig(path, sc, "http://127.0.0.1:4321", table); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.State
	if s.Backend != config.BackendDynamoDB || s.Table != table.Table || s.Endpoint != table.Endpoint || s.LeaseTTL.D() != soakLeaseTTL {
		t.Errorf("state %+v", s)
	}
	if e := cfg.AWS.Endpoints; e.EC2 != "http://127.0.0.1:4321" || e.STS != e.EC2 || e.Organizations != e.EC2 {
		t.Errorf("endpoints %+v", e)
	}
	if cfg.Limits.Concurrency != sc.Concurrency || cfg.Limits.InFlightCopies != sc.InFlightCap {
		t.Errorf("limits %+v", cfg.Limits)
	}
	// Shorter than validation allows is refused: the harness cannot
	// shorten the lease beyond what a user can.
	short := *cfg
	short.State.LeaseTTL = config.Duration(soakLeaseTTL - time.Second)
	if err := short.Validate(); err == nil {
		t.Errorf("a lease of %s was accepted", short.State.LeaseTTL)
	}
}

// TestRunSoakRefusesBadOptions: what the kill tests need is named.
func TestRunSoakRefusesBadOptions(t *testing.T) {
	sc := SoakScenario()
	for _, tc := range []struct {
		name string
		sc   Scenario
		o    SoakOptions
		want string
	}{
		{"not a kill scenario", ChaosScenario(), SoakOptions{Amicopier: "a", Server: []string{"s"}, DynamoDBEndpoint: "http://127.0.0.1:1"}, "not a kill scenario"},
		{"no binary", sc, SoakOptions{DynamoDBEndpoint: "http://127.0.0.1:1"}, "need the amicopier binary"},
		{"no endpoint", sc, SoakOptions{Amicopier: "a", Server: []string{"s"}}, "want a loopback URL"},
		{"a remote endpoint", sc, SoakOptions{Amicopier: "a", Server: []string{"s"}, DynamoDBEndpoint: "https://dynamodb.us-east-1.amazonaws.com"}, "want a loopback URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RunSoak(context.Background(), tc.sc, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RunSoak: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
