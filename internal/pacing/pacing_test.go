package pacing

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// tiny is a bucket of one token that never refills within a test.
var tiny = Bucket{PerSecond: 1e-6, Burst: 1}

// tryWait reports whether a call may go now: Wait with a deadline far
// shorter than a refill fails at once when the bucket is empty.
func tryWait(t *testing.T, p *Pacer, account, region, op string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := p.Wait(ctx, account, region, op)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v", err)
	}
	return err == nil
}

// TestOneBucketPerAPI: EC2 throttles each API separately, per account and
// Region, so an empty bucket of one API holds back no other API, account
// or Region.
func TestOneBucketPerAPI(t *testing.T) {
	p, err := New(Rates{Describe: tiny, Mutating: tiny, AssumeRole: tiny, Organizations: tiny}, "111111111111", 1)
	if err != nil {
		t.Fatal(err)
	}
	const a, b, r1, r2 = "222222222222", "333333333333", "eu-west-1", "us-east-1"
	if !tryWait(t, p, a, r1, cloud.OpModifyImageAttribute) {
		t.Fatal("first call refused")
	}
	if tryWait(t, p, a, r1, cloud.OpModifyImageAttribute) {
		t.Fatal("the API's bucket is empty, yet a second call went")
	}
	for _, c := range []struct{ account, region, op string }{
		{a, r1, cloud.OpModifySnapshotAttribute},
		{a, r1, cloud.OpCopyImage},
		{a, r1, cloud.OpDescribeImages},
		{b, r1, cloud.OpModifyImageAttribute},
		{a, r2, cloud.OpModifyImageAttribute},
	} {
		if !tryWait(t, p, c.account, c.region, c.op) {
			t.Errorf("%s by %s in %s was held back by another API's bucket", c.op, c.account, c.region)
		}
	}
}

// TestShardsShareTheSourceAccount: each of N shards gets 1/N of the source
// account's buckets (so N in parallel stay inside one AWS bucket), and of
// the caller's STS bucket, but the whole bucket of every target account.
func TestShardsShareTheSourceAccount(t *testing.T) {
	rates := Rates{Describe: Bucket{PerSecond: 1e-6, Burst: 8}, Mutating: Bucket{PerSecond: 1e-6, Burst: 8}, AssumeRole: Bucket{PerSecond: 1e-6, Burst: 8}, Organizations: Bucket{PerSecond: 1e-6, Burst: 8}}
	p, err := New(rates, "111111111111", 4)
	if err != nil {
		t.Fatal(err)
	}
	count := func(account, region, op string) int {
		n := 0
		for tryWait(t, p, account, region, op) {
			n++
		}
		return n
	}
	if got := count("111111111111", "eu-west-1", cloud.OpModifySnapshotAttribute); got != 2 {
		t.Errorf("source account burst for one of 4 shards = %d, want 2", got)
	}
	if got := count("", "", cloud.OpAssumeRole); got != 2 {
		t.Errorf("AssumeRole burst for one of 4 shards = %d, want 2", got)
	}
	// Organizations: 1/4 of the identity's bucket, once, whether the
	// caller names the source account or none.
	if got := count("111111111111", "", cloud.OpListAccounts); got != 2 {
		t.Errorf("Organizations burst for one of 4 shards = %d, want 2", got)
	}
	if got := count("222222222222", "eu-west-1", cloud.OpCopyImage); got != 8 {
		t.Errorf("target account burst = %d, want the whole 8", got)
	}
}

// Every Organizations call of the identity draws on one bucket, whatever
// the operation or the account it names.
func TestOrganizationsShareOneBucket(t *testing.T) {
	p, err := New(Rates{Describe: tiny, Mutating: tiny, AssumeRole: tiny, Organizations: tiny}, "111111111111", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !tryWait(t, p, "111111111111", "", cloud.OpListAccounts) {
		t.Fatal("the first Organizations call must go")
	}
	for _, op := range []string{cloud.OpListAccounts, cloud.OpListRoots, cloud.OpDescribeOrganization} {
		if tryWait(t, p, "222222222222", "", op) {
			t.Errorf("%s went with the Organizations bucket empty", op)
		}
	}
	if !tryWait(t, p, "111111111111", "", cloud.OpAssumeRole) {
		t.Error("AssumeRole draws on the STS bucket, not the Organizations one")
	}
	var none *Pacer
	if err := none.Wait(context.Background(), "a", "r", cloud.OpCopyImage); err != nil {
		t.Fatalf("nil pacer: %v", err)
	}
}

func TestRatesCheck(t *testing.T) {
	if _, err := New(Rates{Describe: Bucket{PerSecond: 0, Burst: 1}, Mutating: tiny, AssumeRole: tiny, Organizations: tiny}, "111111111111", 1); err == nil {
		t.Fatal("a bucket that never refills was accepted")
	}
	if err := DefaultRates.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestServiceBuckets: Parameter Store and EventBridge APIs are paced in
// buckets of their own size, one per account, Region and API, and left
// zero they get the defaults.
func TestServiceBuckets(t *testing.T) {
	p, err := New(Rates{Describe: tiny, Mutating: tiny, AssumeRole: tiny, Organizations: tiny, ParameterRead: Bucket{PerSecond: 1e-6, Burst: 2}, ParameterWrite: tiny}, "111111111111", 1)
	if err != nil {
		t.Fatal(err)
	}
	const a, r = "222222222222", "eu-west-1"
	for i := range 2 {
		if !tryWait(t, p, a, r, cloud.OpGetParameters) {
			t.Fatalf("read %d refused within the burst", i+1)
		}
	}
	if tryWait(t, p, a, r, cloud.OpGetParameters) {
		t.Fatal("a third read went past a burst of two")
	}
	for _, op := range []string{cloud.OpListTagsForResource, cloud.OpPutParameter, cloud.OpDescribeImages} {
		if !tryWait(t, p, a, r, op) {
			t.Errorf("%s was held back by GetParameters' bucket", op)
		}
	}
	if tryWait(t, p, a, r, cloud.OpPutParameter) {
		t.Error("PutParameter's bucket of one let a second call go")
	}
	// Events were left zero: DefaultEvents, far more than one.
	for i := range DefaultEvents.Burst {
		if !tryWait(t, p, "", r, cloud.OpPutEvents) {
			t.Fatalf("PutEvents %d refused within the default burst", i+1)
		}
	}
	if err := (Rates{Describe: tiny, Mutating: tiny, AssumeRole: tiny, Organizations: tiny, Events: Bucket{PerSecond: 1}}).Check(); err == nil {
		t.Error("a service bucket with no burst passed the check")
	}
}

// TestSweepDropsOnlyFullBuckets: a pacer over thousands of accounts drops
// the buckets that have refilled (they pace exactly as new ones would) and
// keeps every bucket still short of tokens, so sweeping changes no wait.
func TestSweepDropsOnlyFullBuckets(t *testing.T) {
	fast := Bucket{PerSecond: 1e9, Burst: 2} // full again at once
	p, err := New(Rates{Describe: fast, Mutating: tiny, AssumeRole: tiny, Organizations: tiny}, "111111111111", 1)
	if err != nil {
		t.Fatal(err)
	}
	var offset time.Duration
	p.now = func() time.Time { return time.Now().Add(offset) }
	const drained = "299999999999"
	if !tryWait(t, p, drained, "eu-west-1", cloud.OpCopyImage) {
		t.Fatal("first CopyImage refused")
	}
	for i := range minSweep - 1 {
		account := fmt.Sprintf("2%011d", i)
		if !tryWait(t, p, account, "eu-west-1", cloud.OpDescribeImages) {
			t.Fatalf("describe of %s refused", account)
		}
	}
	if got := len(p.m); got != minSweep {
		t.Fatalf("%d buckets before the sweep, want %d", got, minSweep)
	}
	offset = 2 * time.Second // every bucket unused for over a second
	if !tryWait(t, p, "288888888888", "eu-west-1", cloud.OpDescribeImages) {
		t.Fatal("describe refused")
	}
	// Left: the drained CopyImage bucket and the new one.
	if got := len(p.m); got != 2 {
		t.Errorf("%d buckets after the sweep, want 2 (the drained one and the new one)", got)
	}
	if tryWait(t, p, drained, "eu-west-1", cloud.OpCopyImage) {
		t.Error("the drained bucket was swept: a second CopyImage went at once")
	}
	if p.sweepAt != 2 { // twice what the sweep left (min. minSweep applies)
		t.Errorf("next sweep at %d buckets, want 2", p.sweepAt)
	}
}
