package reconcile_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
	"github.com/amicopier/amicopier/state/dynamotest"
)

// These tests run the engine against a real DynamoDB-compatible server
// (dynalite under scripts/test.sh): the state table is what production
// uses, only EC2 and the organisation are simulated.

// ddbTable creates a fresh state table and returns how to reach it.
func ddbTable(t *testing.T) state.DynamoDBOptions {
	t.Helper()
	o := state.DynamoDBOptions{Table: dynamotest.TableName(t), Endpoint: dynamotest.Endpoint(t), Region: "eu-west-1",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := state.CreateDynamoDBTable(ctx, o); err != nil {
		t.Fatalf("create state table %s: %v", o.Table, err)
	}
	return o
}

// ddbStore opens one more client of the table, as a separate process
// would, on the simulator's clock.
func ddbStore(t *testing.T, w *world, o state.DynamoDBOptions) *state.DynamoDB {
	t.Helper()
	s, err := state.OpenDynamoDB(context.Background(), o, state.WithClock(w.cloud.Now))
	if err != nil {
		t.Fatalf("open state table %s: %v", o.Table, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// ddbWorld is the simulated organisation with its state in DynamoDB.
func ddbWorld(t *testing.T, n int) (*world, state.DynamoDBOptions) {
	t.Helper()
	o := ddbTable(t)
	w := newWorld(t, n)
	w.cfg.State.Backend = config.BackendDynamoDB
	w.cfg.State.Table = o.Table
	w.cfg.State.Endpoint = o.Endpoint
	must(t, w.cfg.Validate())
	w.store = state.NewCounting(ddbStore(t, w, o))
	return w, o
}

func TestDynamoDBEngineNoOpRunWritesOnlyRunAndLease(t *testing.T) {
	const n = 3
	w, o := ddbWorld(t, n)
	web := w.image(euWest, "web", 1, "*")
	api := w.image(euWest, "api", 2, accountID(1)+","+accountID(2))
	const pairs = n + 2

	first := w.run(reconcile.ModeRun)
	if got := first.Summary.APICalls["CopyImage"]; got != pairs {
		t.Fatalf("first run: CopyImage calls = %d, want %d", got, pairs)
	}

	w.settle()
	w.store.Reset()
	second := w.run(reconcile.ModeRun)
	wantCounts(t, second.Report, map[report.Category]int{report.OK: pairs})
	if got := w.store.Writes().PairWrites; got != pairs {
		t.Errorf("settling run wrote %d pair records, want %d (one audit record per pair)", got, pairs)
	}
	ctx := context.Background()
	if left, err := w.store.UnsettledPairs(ctx, srcAccount); err != nil || len(left) != 0 {
		t.Fatalf("after settling, the unsettled index holds %v (err %v)", left, err)
	}

	// Nothing changes any more: the run writes its record, at most takes
	// and gives back the lease (the engine takes it only when its plan
	// changes something), and writes nothing per pair. (A minute later,
	// so the runs sort by start time rather than by id.)
	w.cloud.Advance(time.Minute)
	w.store.Reset()
	third := w.run(reconcile.ModeRun)
	wantCounts(t, third.Report, map[report.Category]int{report.OK: pairs})
	writes := w.store.Writes()
	if writes.PairWrites != 0 || writes.RunWrites != 1 || writes.LeaseWrites > 2 {
		t.Fatalf("no-op run writes = %+v, want 0 pair writes, 1 run record, at most 2 lease operations (acquire, release)", writes)
	}
	reads := w.store.Reads()
	t.Logf("no-op run against DynamoDB: writes %+v, reads %+v", writes, reads)
	if reads.UnsettledReads != 1 || reads.UnsettledItems != 0 || reads.PairReads != 0 {
		t.Errorf("no-op run reads = %+v, want one query of an empty unsettled index", reads)
	}
	if third.Summary.StateWrites != int(writes.Total()) {
		t.Errorf("summary says %d state writes, the store saw %d", third.Summary.StateWrites, writes.Total())
	}
	if n := w.last.MutatingCalls(); n != 0 {
		t.Errorf("no-op run made %d mutating calls", n)
	}

	// What another process finds in the table: the three runs, newest
	// first, and the audit trail of every pair.
	other := ddbStore(t, w, o)
	runs, err := other.RecentRuns(ctx, srcAccount, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[0].ID != third.Summary.RunID || runs[2].ID != first.Summary.RunID {
		t.Fatalf("runs in the table = %v, want the three runs newest first", runIDsOf(runs))
	}
	if runs[0].Counts[string(report.OK)] != pairs || runs[0].Status != report.StatusSucceeded || runs[0].ExpiresAt.IsZero() {
		t.Errorf("no-op run record = %+v", runs[0])
	}
	var keys []state.PairKey
	for _, a := range accounts(n) {
		keys = append(keys, state.PairKey{SourceImage: web.ID, Account: a, Region: euWest})
	}
	keys = append(keys, state.PairKey{SourceImage: api.ID, Account: accountID(1), Region: euWest},
		state.PairKey{SourceImage: api.ID, Account: accountID(2), Region: euWest})
	trail, err := other.GetPairs(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		p, ok := trail[k]
		copies := w.copies(k.Account, k.Region, k.SourceImage)
		if !ok || p.Status != state.PairSettled || len(copies) != 1 || p.CopyImageID != copies[0].ID {
			t.Errorf("audit record of %s = %+v (found %v), want settled on its copy %v", k, p, ok, copies)
		}
	}
}

func runIDsOf(runs []state.Run) []string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	return ids
}

// ddbGate holds the run that won the lease until the other run has
// returned, so the two really overlap whatever the scheduler does.
type ddbGate struct {
	state.Store
	other <-chan struct{}
}

func (g *ddbGate) AcquireLease(ctx context.Context, scope, holder string, ttl time.Duration) (state.Lease, error) {
	l, err := g.Store.AcquireLease(ctx, scope, holder, ttl)
	if err == nil {
		select {
		case <-g.other:
		case <-time.After(30 * time.Second):
		}
	}
	return l, err
}

func TestDynamoDBTwoRunsAtOnceOneReconciles(t *testing.T) {
	const n = 4
	w, o := ddbWorld(t, n)
	w.image(euWest, "web", 1, "*")
	w.image(euWest, "api", 1, "*")
	const pairs = 2 * n

	// Two processes: two clients of the same table, two engines.
	ids := []string{"run-a", "run-b"}
	done := []chan struct{}{make(chan struct{}), make(chan struct{})}
	results := make([]*reconcile.Result, 2)
	errs := make([]error, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 {
		store := &ddbGate{Store: ddbStore(t, w, o), other: done[1-i]}
		e, err := reconcile.New(reconcile.Options{
			Settings: settingsOf(t, w.cfg),
			Connect: func(context.Context, string) (cloud.Connector, error) {
				return w.cloud.Connector(srcAccount), nil
			},
			Store:  store,
			Clock:  w.cloud,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		must(t, err)
		wg.Go(func() {
			defer close(done[i])
			<-start
			results[i], errs[i] = e.Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, Trigger: "test", RunID: ids[i]})
		})
	}
	close(start)
	wg.Wait()

	winner, loser := -1, -1
	for i, err := range errs {
		held, ok := reconcile.LeaseHeld(err)
		switch {
		case err == nil:
			winner = i
		case ok:
			loser = i
			if held.Run != ids[1-i] || held.Scope != srcAccount || !held.Expires.After(w.cloud.Now()) {
				t.Errorf("%s was told %+v, want the lease of %s held by %s", ids[i], held, srcAccount, ids[1-i])
			}
			if !strings.Contains(err.Error(), ids[1-i]) {
				t.Errorf("the refusal %q does not name the holder %s", err, ids[1-i])
			}
		default:
			t.Fatalf("%s failed: %v", ids[i], err)
		}
	}
	if winner < 0 || loser < 0 {
		t.Fatalf("want one run to reconcile and one to find the lease held; errors %v", errs)
	}
	if got := results[winner].Summary.Actions["copy"]; got != pairs {
		t.Errorf("the winner started %d copies, want %d", got, pairs)
	}
	if got := w.cloud.Calls("CopyImage", "", ""); got != pairs {
		t.Fatalf("CopyImage calls = %d, want %d: a pair was copied twice", got, pairs)
	}
	for pair, c := range w.copyCounts(accounts(n)) {
		if c != 1 {
			t.Errorf("pair %s has %d copies", pair, c)
		}
	}

	// The lease was released: the refused run, started again, finds the
	// copies pending (recorded by the winner) and starts none.
	again, err := reconcile.New(reconcile.Options{
		Settings: settingsOf(t, w.cfg),
		Connect:  func(context.Context, string) (cloud.Connector, error) { return w.cloud.Connector(srcAccount), nil },
		Store:    ddbStore(t, w, o), Clock: w.cloud,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	must(t, err)
	res, err := again.Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, Trigger: "test", RunID: ids[loser] + "-again"})
	if err != nil {
		var held *state.LeaseHeldError
		if errors.As(err, &held) {
			t.Fatalf("the lease was not released: %v", err)
		}
		t.Fatal(err)
	}
	wantCounts(t, res.Report, map[report.Category]int{report.InProgress: pairs})
	if got := w.cloud.Calls("CopyImage", "", ""); got != pairs {
		t.Errorf("CopyImage calls after the second attempt = %d, want still %d", got, pairs)
	}
}
