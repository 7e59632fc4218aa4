package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/state"
)

func TestSelect(t *testing.T) {
	tests := []struct {
		args    []string
		want    []string
		wantErr string
	}{
		{args: nil, want: Groups["all"]},
		{args: []string{"small"}, want: []string{"small-noop", "small-catchup", "wire-small-noop", "wire-small-catchup"}},
		{args: []string{"fanout-50x1000", "small", "small-noop"}, want: []string{"fanout-50x1000", "small-noop", "small-catchup", "wire-small-noop", "wire-small-catchup"}},
		{args: []string{"wire-noop-1000x4x200"}, want: []string{"wire-noop-1000x4x200"}},
		{args: []string{"nope"}, wantErr: `unknown scenario "nope"`},
	}
	for _, tt := range tests {
		got, err := Select(tt.args)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Select(%v) error = %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		var names []string
		for _, s := range got {
			names = append(names, s.Name)
		}
		if err != nil || !slices.Equal(names, tt.want) {
			t.Errorf("Select(%v) = %v, %v; want %v", tt.args, names, err, tt.want)
		}
	}
}

// TestExpectations checks the lower bound of two scenarios by hand.
func TestExpectations(t *testing.T) {
	byName := map[string]Scenario{}
	for _, s := range Scenarios() {
		byName[s.Name] = s
	}
	ctx := context.Background()

	w, err := build(ctx, byName["small-catchup"])
	if err != nil {
		t.Fatal(err)
	}
	e := w.expect()
	// 100 accounts x (3 + 3 images) + the 25 accounts of OU 0 x 20 images.
	if e.Missing != 1100 || e.Startable != 1100-25*3 || e.DeferredCap != 75 {
		t.Errorf("missing %d, startable %d, deferred %d", e.Missing, e.Startable, e.DeferredCap)
	}
	want := LowerBound{
		SourceDescribes: 2, // one page per Region
		// ceil(101/20) ListAccounts + OU 0: 1 + ceil(25/20); ListRoots
		// ("*" is copied); DescribeOrganization. Every member is a target:
		// the organisation is granted, no other OU is listed.
		OrganizationList: 6 + 1 + 2 + 1 + 1,
		AssumeRole:       100,
		TargetDescribes:  200, // 100 accounts x 2 Regions
		// Per shared image: the launch read and each snapshot's, one
		// ModifyImageAttribute (the organisation or OU 0) and one
		// ModifySnapshotAttribute per snapshot (at most 500 accounts).
		Sharing:         3*4 + 3*6, // plus the OU images, below
		CopyImage:       1025,
		SharingEntities: 1,
	}
	// Sharing: eu-west-1 "*" images (1 snapshot): 3 x 4 calls; us-east-1
	// "*" images (2 snapshots): 3 x 6 calls; OU images: the 25 accounts
	// have 23 missing pairs in eu-west-1 and 20 slots, so only the first
	// 20 images in id order are copied there, each 4 calls if it is one
	// of the OU's.
	ouShared := 0
	var euImages []image
	for _, im := range w.images {
		if im.region == "eu-west-1" {
			euImages = append(euImages, im)
		}
	}
	for i, im := range euImages {
		if i < 20 && im.set.OU == 0 {
			ouShared++
		}
	}
	want.Sharing += 4 * ouShared
	want.Total = want.SourceDescribes + want.OrganizationList + want.AssumeRole + want.TargetDescribes + want.Sharing + want.CopyImage
	if e.Bound != want {
		t.Errorf("bound = %+v\nwant    %+v", e.Bound, want)
	}

	w, err = build(ctx, byName["small-noop"])
	if err != nil {
		t.Fatal(err)
	}
	e = w.expect()
	if e.Missing != 0 || e.Pairs != 150*50 || e.Bound.Total != 2+8+150+300 {
		t.Errorf("small-noop: %+v", e)
	}
	// 8 pages of ListAccounts one after the other, the 150 AssumeRole
	// over 16 workers meanwhile (9.375 calls each: longer than the
	// listing), then the 302 other calls over 16 workers, at 25 ms each.
	if got, want := e.Floor.LatencySeconds, 0.025*(150.0/16+302.0/16); fmt.Sprintf("%.6f", got) != fmt.Sprintf("%.6f", want) {
		t.Errorf("latency floor %f, want %f", got, want)
	}
}

// TestScenariosPassWithoutLatency runs the small scenarios with no
// latency (instantly): every assertion but the wall time still applies.
func TestScenariosPassWithoutLatency(t *testing.T) {
	scs, err := Select([]string{"small"})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scs {
		if sc.Wire {
			continue // wire_test.go
		}
		sc.Latency = 0
		res, err := Run(context.Background(), sc, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Pass {
			t.Errorf("%s: %v", sc.Name, res.Reasons)
		}
		if _, err := json.Marshal(res); err != nil {
			t.Fatal(err)
		}
	}
}

// A scaled-down org-5000: OUs holding an excluded account cannot be
// granted whole, so their other accounts are granted one by one, the rest
// by OU. The bound says so, and the engine makes exactly its calls.
func TestExcludedAccountsSplitTheOrganisation(t *testing.T) {
	sc := Scenario{
		Name: "org-small", Kind: CatchUp, Accounts: 100, OUs: 10, ExcludedOUs: 2, ExcludedPerOU: 1, Regions: []string{"eu-west-1"},
		Images:      []ImageSet{{Region: "eu-west-1", Count: 3, Snapshots: 1, OU: -1}},
		InFlightCap: 20, Concurrency: 8, Throttle: true,
	}
	w, err := build(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	e := w.expect()
	// 8 whole OUs, and the 9 other accounts of each of the 2 others.
	if e.Bound.SharingEntities != 8+2*9 {
		t.Errorf("sharing entities %d, want %d", e.Bound.SharingEntities, 8+2*9)
	}
	// ceil(101/20) ListAccounts; ListRoots; the root (its OUs, the
	// source account); each OU (no child OU, 10 accounts);
	// DescribeOrganization.
	if want := 6 + 1 + 2 + 10*2 + 1; e.Bound.OrganizationList != want {
		t.Errorf("organisation calls %d, want %d", e.Bound.OrganizationList, want)
	}
	res, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass || res.CallsRatio != 1 || res.MaxShareEntities != 26 || res.StaleGrantsAfter != 0 {
		t.Errorf("pass %v %v, calls %v against %+v, max share %d, stale %d", res.Pass, res.Reasons, res.APICalls.ByOperation, res.LowerBound,
			res.MaxShareEntities, res.StaleGrantsAfter)
	}
}

// TestShardedRunStateMachine checks the Step Functions definition the
// deployment templates include: valid JSON, and a Distributed Map that
// sends each shard's number in a payload the engine parses.
func TestShardedRunStateMachine(t *testing.T) {
	data, err := os.ReadFile("../../scripts/sharded-run.asl.json")
	if err != nil {
		t.Fatal(err)
	}
	var sm struct {
		StartAt string
		States  map[string]struct {
			Type          string
			Next          string
			ItemsPath     string
			ItemSelector  map[string]string
			ItemProcessor struct {
				ProcessorConfig struct{ Mode string }
				StartAt         string
				States          map[string]struct {
					Type       string
					Resource   string
					Parameters struct {
						FunctionName string
						Payload      map[string]string
					}
				}
			}
		}
	}
	if err := json.Unmarshal(data, &sm); err != nil {
		t.Fatalf("scripts/sharded-run.asl.json is not valid JSON: %v", err)
	}
	first, ok := sm.States[sm.StartAt]
	if !ok {
		t.Fatalf("StartAt %q is not a state", sm.StartAt)
	}
	m, ok := sm.States[first.Next]
	if !ok || m.Type != "Map" || m.ItemProcessor.ProcessorConfig.Mode != "DISTRIBUTED" {
		t.Fatalf("no Distributed Map after %q: %+v", sm.StartAt, m)
	}
	if m.ItemSelector["shard.$"] != "States.Format('{}/{}', $$.Map.Item.Value, $.count)" {
		t.Errorf("the shard payload is %q", m.ItemSelector["shard.$"])
	}
	task, ok := m.ItemProcessor.States[m.ItemProcessor.StartAt]
	if !ok || task.Resource != "arn:${AWS::Partition}:states:::lambda:invoke" || task.Parameters.FunctionName != "${FunctionArn}" ||
		task.Parameters.Payload["shard.$"] != "$.shard" {
		t.Fatalf("the item processor does not invoke the function with the shard: %+v", task)
	}
	// What States.Format produces for each item is what --shard and the
	// Lambda payload accept.
	const n = 5
	for i := 1; i <= n; i++ {
		if _, err := reconcile.ParseShard(fmt.Sprintf("%d/%d", i, n)); err != nil {
			t.Error(err)
		}
	}
}

// TestChaosScenario runs the chaos scenario: faults were injected, and
// nothing was lost, duplicated or left unreconciled.
func TestChaosScenario(t *testing.T) {
	scs, err := Select([]string{"chaos"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunChaos(context.Background(), scs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass || res.FaultsInjected == 0 || res.UnreachableReported == 0 || res.RecoveryRuns > 2 {
		t.Fatalf("chaos: %+v", res)
	}
	// The state store failed beside AWS, and the sweep crashed the small
	// organisation at every call and every state write of its runs.
	p := res.CrashPoints
	if res.StateFaultsInjected == 0 || p.Calls == 0 || p.WritesLanded == 0 || p.WritesLost != p.WritesLanded ||
		p.ByWrite[state.OpPutGrants] == 0 || p.ByWrite[state.OpPutPair] == 0 || res.CrashPointsCovered != p.Total() {
		t.Fatalf("chaos: state faults %v, crash points %+v (covered %d)", res.StateFaults, p, res.CrashPointsCovered)
	}
	if _, err := Run(context.Background(), scs[0], Options{}); err == nil {
		t.Fatal("Run accepted a chaos scenario")
	}
}
