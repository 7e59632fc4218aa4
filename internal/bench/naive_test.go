package bench

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestNaivePeerCalls runs the naive peer on small organisations and
// counts its calls by hand: the listings once, then per pair a describe,
// and per missing pair the two shares and the copy.
func TestNaivePeerCalls(t *testing.T) {
	two := []string{"eu-west-1", "us-east-1"}
	tests := []struct {
		name string
		sc   Scenario
		want map[string]int64
	}{
		{
			name: "catch-up: an AMI for * per Region, one with 2 snapshots for an OU",
			sc: Scenario{Name: "naive-catchup", Kind: CatchUp, Accounts: 10, OUs: 2, Regions: two, Concurrency: 4, InFlightCap: 20, Throttle: true,
				Images: []ImageSet{{Region: two[0], Count: 2, Snapshots: 1, OU: -1}, {Region: two[1], Count: 1, Snapshots: 2, OU: 1}}},
			// 25 pairs: 20 in eu-west-1, the OU's 5 accounts in us-east-1.
			want: map[string]int64{
				"ListAccounts": 1, "ListOrganizationalUnitsForParent": 1, "ListAccountsForParent": 1,
				"DescribeImages": 2 + 25, "AssumeRole": 10,
				"ModifyImageAttribute": 25, "ModifySnapshotAttribute": 20 + 5*2, "CopyImage": 25,
			},
		},
		{
			name: "no-op: every copy there",
			sc: Scenario{Name: "naive-noop", Kind: NoOp, Accounts: 30, OUs: 3, Regions: two, Concurrency: 8, InFlightCap: 20, Throttle: true,
				Images: []ImageSet{{Region: two[0], Count: 3, Snapshots: 1, OU: -1, Copied: true}, {Region: two[1], Count: 3, Snapshots: 1, OU: -1, Copied: true}}},
			want: map[string]int64{"ListAccounts": 2, "DescribeImages": 2 + 30*6, "AssumeRole": 30},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := build(context.Background(), tt.sc)
			if err != nil {
				t.Fatal(err)
			}
			exp := w.expect()
			p, err := runNaive(context.Background(), w)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.NaiveErrors) > 0 || p.NaiveThrottled != 0 {
				t.Fatalf("errors %v, %d throttled", p.NaiveErrors, p.NaiveThrottled)
			}
			var total int64
			for op, n := range tt.want {
				total += n
				if p.NaiveByOperation[op] != n {
					t.Errorf("%s: %d calls, want %d", op, p.NaiveByOperation[op], n)
				}
			}
			if p.NaiveCalls != total || p.NaiveWorkers != tt.sc.Concurrency {
				t.Errorf("%d calls (%v), want %d; %d workers", p.NaiveCalls, p.NaiveByOperation, total, p.NaiveWorkers)
			}
			if p.NaiveCopiesStarted != exp.Missing || p.NaivePairsFound != exp.Pairs-exp.Missing {
				t.Errorf("copies %d, found %d; want %d and %d", p.NaiveCopiesStarted, p.NaivePairsFound, exp.Missing, exp.Pairs-exp.Missing)
			}
			if c := w.copyCensus(); c.one != exp.Pairs || c.more+c.none+c.unwanted != 0 {
				t.Errorf("census %+v after the peer, want one copy for each of %d pairs", c, exp.Pairs)
			}
		})
	}
}

// TestNaivePeerBesideAmicopier runs small scenarios with the peer on:
// both pass, and the line carries the peer's fields and ratios.
func TestNaivePeerBesideAmicopier(t *testing.T) {
	for _, name := range []string{"small-noop", "small-catchup"} {
		t.Run(name, func(t *testing.T) {
			scs, err := Select([]string{name})
			if err != nil {
				t.Fatal(err)
			}
			sc := scs[0]
			sc.Latency, sc.Naive = 0, true
			if sc.Kind == CatchUp {
				// Few enough missing pairs that the peer's shares stay
				// within the source account's burst: no waiting.
				sc.Accounts, sc.Images = 20, sc.Images[:2]
			}
			res, err := Run(context.Background(), sc, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Pass || res.NaivePeer == nil {
				t.Fatalf("pass %v %v, peer %+v", res.Pass, res.Reasons, res.NaivePeer)
			}
			if res.NaiveCalls <= res.APICalls.Total || res.NaiveCallsRatio <= 1 {
				t.Errorf("the peer made %d calls, amicopier %d (ratio %v)", res.NaiveCalls, res.APICalls.Total, res.NaiveCallsRatio)
			}
			line, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			for _, field := range []string{`"naive_calls":`, `"naive_wall_seconds":`, `"naive_calls_ratio":`, `"naive_wall_ratio":`} {
				if !strings.Contains(string(line), field) {
					t.Errorf("no %s in %s", field, line)
				}
			}
		})
	}
}
