package bench

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// smallSharded is sharded-10000 scaled down for CI: the same shape, few
// enough calls that no bucket runs dry, no latency.
func smallSharded(shards, accounts int) Scenario {
	sc := ShardedScenario()
	sc.Name = "sharded-small"
	sc.Shards, sc.Accounts, sc.OUs = shards, accounts, 5
	sc.Latency = 0
	return sc
}

// TestShardedScenario runs small sharded scenarios end to end: one copy
// per pair, the shards' reports equal to the unsharded plan, the calls
// within the sharded bound and its allowance.
func TestShardedScenario(t *testing.T) {
	tests := []struct {
		name             string
		shards, accounts int
		images           []ImageSet
	}{
		{name: "3 shards, one AMI per Region for *", shards: 3, accounts: 120},
		{name: "4 shards, an OU's AMI with 2 snapshots too", shards: 4, accounts: 100, images: []ImageSet{
			{Region: "eu-west-1", Count: 1, Snapshots: 1, OU: -1},
			{Region: "us-east-1", Count: 2, Snapshots: 2, OU: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := smallSharded(tt.shards, tt.accounts)
			if tt.images != nil {
				sc.Images = tt.images
			}
			res, err := RunSharded(context.Background(), sc)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Pass {
				t.Fatalf("%v\n%+v", res.Reasons, res)
			}
			if res.PairsWithOneCopy != res.Pairs || res.Pairs == 0 || !res.ReportsEqualPlan || len(res.ShardCalls) != tt.shards {
				t.Errorf("pairs %d, with one copy %d, reports equal plan %v, shard calls %v", res.Pairs, res.PairsWithOneCopy, res.ReportsEqualPlan, res.ShardCalls)
			}
			// Every shard lists the organisation and the source.
			if got, want := res.APICalls.ByOperation["ListAccounts"], int64(tt.shards*pages(tt.accounts+1, 20)); got != want {
				t.Errorf("ListAccounts %d, want %d", got, want)
			}
			if _, err := json.Marshal(res); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestShardedBound checks the sharded bound and the source floor of
// sharded-10000 by hand, without running it.
func TestShardedBound(t *testing.T) {
	sc := ShardedScenario()
	w, err := build(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	exp := w.expect()
	r := &ShardedResult{}
	r.shardedBound(w, exp)
	b := r.ShardedBound
	// ceil(10,001/20) ListAccounts, ListRoots, DescribeOrganization.
	if b.SourceDescribes != 2 || b.OrganizationList != 501+2 || b.AssumeRole != 10000 || b.TargetDescribes != 20000 || b.CopyImage != 20000 {
		t.Errorf("sharded bound %+v", b)
	}
	// Per shard and image: 2 reads, 1 ModifyImageAttribute (the
	// organisation), ceil(shard accounts / 500) ModifySnapshotAttribute.
	sharing := 0
	for _, n := range r.ShardAccounts {
		sharing += 2 * (3 + ceilDiv(n, 500))
	}
	if b.Sharing != sharing {
		t.Errorf("sharing %d, want %d", b.Sharing, sharing)
	}
	if r.ShardingAllowance != 9*(2+503) {
		t.Errorf("allowance %d", r.ShardingAllowance)
	}
	// The busiest source bucket: 10 x 503 Organizations calls at 20 per
	// second after a burst of 50.
	want := (10*503.0 - 50) / 20
	if r.FloorSeconds != want || r.SourceBucket != "organizations (5030 calls)" {
		t.Errorf("floor %v %q, want %v", r.FloorSeconds, r.SourceBucket, want)
	}
	if time.Duration(r.FloorSeconds*float64(time.Second)) < 4*time.Minute {
		t.Errorf("floor %v", r.FloorSeconds)
	}
}
