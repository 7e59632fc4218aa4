package state

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func openFaultyForTest(t *testing.T, inner Store, plan FaultPlan) *Faulty {
	t.Helper()
	f, err := NewFaulty(inner, plan)
	if err != nil {
		t.Fatalf("NewFaulty: %v", err)
	}
	return f
}

// inertPlan has a rule of every kind, none of which ever fires.
func inertPlan() FaultPlan {
	var plan FaultPlan
	for _, k := range FaultKinds {
		plan.Rules = append(plan.Rules, FaultRule{Kind: k, Rate: 0})
	}
	return plan
}

// always is a plan with one rule that fires on every call of ops, at most
// count times (0: always).
func always(kind FaultKind, count int, ops ...Op) FaultPlan {
	return FaultPlan{Seed: 1, Rules: []FaultRule{{Kind: kind, Ops: ops, Rate: 1, Count: count}}}
}

var (
	faultSource = "999988887777"
	faultKey    = key("ami-1", "111122223333", "eu-west-1")
)

// TestFaultyInjectsEveryKind shows each fault kind, on the operations it
// is given, as the adapter reports it, with the effect on the table the
// real failure has: throttled and timed-out writes are absent, landed
// ones present, lost conditions lost to a real rival write.
func TestFaultyInjectsEveryKind(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		plan FaultPlan
		// check makes the calls and checks what they got; inner is the
		// wrapped store, to see what the table holds.
		check func(t *testing.T, f *Faulty, inner Store)
		want  FaultCounts
	}{
		{
			name: "throughput exceeded on PutPair, twice",
			plan: always(FaultThroughput, 2, OpPutPair),
			check: func(t *testing.T, f *Faulty, inner Store) {
				for range 2 {
					_, err := f.PutPair(ctx, newPair(faultKey, faultSource, PairCopying))
					var pte *types.ProvisionedThroughputExceededException
					if !errors.As(err, &pte) || !strings.Contains(err.Error(), "PutItem, exceeded maximum number of attempts, 4") {
						t.Errorf("throttled PutPair: err = %v", err)
					}
					if _, found, _ := inner.GetPair(ctx, faultKey); found {
						t.Error("a throttled write was stored")
					}
				}
				if _, _, err := f.GetPair(ctx, faultKey); err != nil { // other operations are not hit
					t.Errorf("GetPair: %v", err)
				}
				if p, err := f.PutPair(ctx, newPair(faultKey, faultSource, PairCopying)); err != nil || p.Version != 1 {
					t.Errorf("third PutPair (count 2): %+v, %v", p, err)
				}
			},
			want: FaultCounts{FaultThroughput: 2},
		},
		{
			name: "throttling on GetPair and UnsettledPairs",
			plan: always(FaultThrottling, 0, OpGetPair, OpUnsettledPairs),
			check: func(t *testing.T, f *Faulty, _ Store) {
				var thr *types.ThrottlingException
				if _, _, err := f.GetPair(ctx, faultKey); !errors.As(err, &thr) || !strings.Contains(err.Error(), "GetItem") {
					t.Errorf("GetPair: err = %v, want a ThrottlingException of GetItem", err)
				}
				if _, err := f.UnsettledPairs(ctx, faultSource); !errors.As(err, &thr) || !strings.Contains(err.Error(), "Query") {
					t.Errorf("UnsettledPairs: err = %v, want a ThrottlingException of Query", err)
				}
				if _, err := f.RecentRuns(ctx, faultSource, 5); err != nil {
					t.Errorf("RecentRuns: %v", err)
				}
			},
			want: FaultCounts{FaultThrottling: 2},
		},
		{
			name: "timeout on PutRun: not written",
			plan: always(FaultTimeout, 1, OpPutRun),
			check: func(t *testing.T, f *Faulty, inner Store) {
				run := Run{ID: "r1", Scope: faultSource, Trigger: "schedule", Mode: "apply", Status: "running", Started: time.Now()}
				if err := f.PutRun(ctx, run); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("PutRun: err = %v, want a deadline", err)
				}
				if runs, _ := inner.RecentRuns(ctx, faultSource, 5); len(runs) != 0 {
					t.Errorf("a run whose write timed out before landing is stored: %+v", runs)
				}
			},
			want: FaultCounts{FaultTimeout: 1},
		},
		{
			name: "timeout on PutPair after the write landed",
			plan: always(FaultTimeoutLanded, 1, OpPutPair),
			check: func(t *testing.T, f *Faulty, inner Store) {
				_, err := f.PutPair(ctx, newPair(faultKey, faultSource, PairCopying))
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("PutPair: err = %v, want a deadline", err)
				}
				if p, found, _ := inner.GetPair(ctx, faultKey); !found || p.Version != 1 || p.Status != PairCopying {
					t.Errorf("the landed write is not stored: %+v, %v", p, found)
				}
				// What the caller meets when it writes again as if nothing
				// had been written.
				if _, err := f.PutPair(ctx, newPair(faultKey, faultSource, PairCopying)); !errors.Is(err, ErrConflict) {
					t.Errorf("rewrite after a landed timeout: err = %v, want ErrConflict", err)
				}
			},
			want: FaultCounts{FaultTimeoutLanded: 1},
		},
		{
			name: "timeout on AcquireLease after it landed",
			plan: always(FaultTimeoutLanded, 1, OpAcquireLease),
			check: func(t *testing.T, f *Faulty, _ Store) {
				if _, err := f.AcquireLease(ctx, faultSource, "run-a", time.Minute); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("AcquireLease: err = %v, want a deadline", err)
				}
				var held *LeaseHeldError
				if _, err := f.AcquireLease(ctx, faultSource, "run-b", time.Minute); !errors.As(err, &held) || held.Holder != "run-a" {
					t.Errorf("the landed lease is not held by run-a: %v", err)
				}
				if _, err := f.AcquireLease(ctx, faultSource, "run-a", time.Minute); err != nil {
					t.Errorf("run-a taking its own lease again: %v", err)
				}
			},
			want: FaultCounts{FaultTimeoutLanded: 1},
		},
		{
			name: "conditional failure on PutPair: a rival wrote first",
			plan: FaultPlan{Rules: []FaultRule{{Kind: FaultConditional, Ops: []Op{OpPutPair}, Rate: 1, After: 1, Count: 2}}},
			check: func(t *testing.T, f *Faulty, inner Store) {
				first, err := f.PutPair(ctx, newPair(faultKey, faultSource, PairCopying)) // After: 1
				if err != nil {
					t.Fatal(err)
				}
				next := first
				next.Status = PairSettled
				_, err = f.PutPair(ctx, next)
				if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "stored version 2, writer expected version 1") {
					t.Errorf("update that lost to a rival: err = %v", err)
				}
				if p, _, _ := inner.GetPair(ctx, faultKey); p.Version != 2 || p.Status != PairCopying || p.RunID != RivalHolder {
					t.Errorf("the rival's write: %+v", p)
				}
				newKey := key("ami-2", "111122223333", "eu-west-1")
				if _, err := f.PutPair(ctx, newPair(newKey, faultSource, PairCopying)); !errors.Is(err, ErrConflict) {
					t.Errorf("create that lost to a rival: err = %v", err)
				}
				if _, found, _ := inner.GetPair(ctx, newKey); !found {
					t.Error("the rival did not create the pair")
				}
			},
			want: FaultCounts{FaultConditional: 2},
		},
		{
			name: "conditional failures on the lease",
			plan: always(FaultConditional, 0, OpAcquireLease, OpRenewLease, OpReleaseLease),
			check: func(t *testing.T, f *Faulty, inner Store) {
				var held *LeaseHeldError
				if _, err := f.AcquireLease(ctx, "scope-a", "run-a", time.Minute); !errors.As(err, &held) || held.Holder != RivalHolder {
					t.Errorf("AcquireLease that lost the race: err = %v", err)
				}
				l, err := inner.AcquireLease(ctx, "scope-b", "run-a", time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.RenewLease(ctx, l, time.Minute); !errors.Is(err, ErrLeaseLost) {
					t.Errorf("RenewLease of a lease taken over: err = %v, want ErrLeaseLost", err)
				}
				l, err = inner.AcquireLease(ctx, "scope-c", "run-a", time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.ReleaseLease(ctx, l); err != nil {
					t.Errorf("ReleaseLease of a lease taken over: %v", err)
				}
				if _, err := inner.AcquireLease(ctx, "scope-c", "run-a", time.Minute); !errors.As(err, &held) || held.Holder != RivalHolder {
					t.Errorf("after the release the rival must hold scope-c: %v", err)
				}
			},
			want: FaultCounts{FaultConditional: 3},
		},
		{
			name: "unprocessed keys in a batch read",
			plan: always(FaultUnprocessed, 1),
			check: func(t *testing.T, f *Faulty, _ Store) {
				mustPut(t, f, newPair(faultKey, faultSource, PairSettled))
				keys := []PairKey{faultKey, key("ami-2", "111122223333", "eu-west-1")}
				_, err := GetPairs(ctx, f, keys)
				if !errors.Is(err, ErrBatchUnprocessed) || !regexp.MustCompile(`batch get 2 pairs: [12] keys still unprocessed after 8 retries`).MatchString(err.Error()) {
					t.Errorf("GetPairs: err = %v", err)
				}
				if got, err := GetPairs(ctx, f, keys); err != nil || len(got) != 1 {
					t.Errorf("GetPairs after the fault: %v, %v", got, err)
				}
			},
			want: FaultCounts{FaultUnprocessed: 1},
		},
		{
			name: "the table goes missing after three calls",
			plan: FaultPlan{Rules: []FaultRule{{Kind: FaultTableMissing, Rate: 1, After: 3, Count: 1}}},
			check: func(t *testing.T, f *Faulty, _ Store) {
				stored := mustPut(t, f, newPair(faultKey, faultSource, PairSettled))
				mustGet(t, f, faultKey)
				if _, err := f.UnsettledPairs(ctx, faultSource); err != nil {
					t.Fatal(err)
				}
				for _, call := range []func() error{
					func() error { _, _, err := f.GetPair(ctx, faultKey); return err },
					func() error { _, err := f.PutPair(ctx, stored); return err },
					func() error { _, err := f.AcquireLease(ctx, faultSource, "run-a", time.Minute); return err },
					func() error { _, err := GetPairs(ctx, f, []PairKey{faultKey}); return err },
				} {
					var rnf *types.ResourceNotFoundException
					if err := call(); !errors.Is(err, ErrTableNotFound) || !errors.As(err, &rnf) {
						t.Errorf("call on the missing table: err = %v, want ErrTableNotFound", err)
					}
				}
				if !f.TableMissing() {
					t.Error("TableMissing is false")
				}
				f.RestoreTable()
				if p := mustGet(t, f, faultKey); p.Version != stored.Version {
					t.Errorf("restored table lost the pair: %+v", p)
				}
			},
			want: FaultCounts{FaultTableMissing: 4},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := openMemoryForTest(t, time.Now)
			f := openFaultyForTest(t, inner, tc.plan)
			tc.check(t, f, inner)
			got := f.Injected()
			if !maps64Equal(got, tc.want) || got.Total() != tc.want.Total() {
				t.Errorf("Injected() = %v, want %v", got, tc.want)
			}
		})
	}
}

func maps64Equal(a, b FaultCounts) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// failingKeys makes one GetPair per key through a fresh Faulty and
// returns the keys that got a fault.
func failingKeys(t *testing.T, plan FaultPlan, keys []PairKey) []string {
	t.Helper()
	f := openFaultyForTest(t, NewMemory(), plan)
	var out []string
	for _, k := range keys {
		if _, _, err := f.GetPair(context.Background(), k); err != nil {
			out = append(out, k.String())
		}
	}
	if int64(len(out)) != f.Injected().Total() {
		t.Errorf("%d calls failed, Injected counts %d", len(out), f.Injected().Total())
	}
	slices.Sort(out)
	return out
}

// TestFaultyRateIsDeterministic: a rate picks about that share of calls,
// the same ones for the same seed whatever the order of the calls, other
// ones for another seed.
func TestFaultyRateIsDeterministic(t *testing.T) {
	var keys []PairKey
	for i := range 2000 {
		keys = append(keys, key(fmt.Sprintf("ami-%04d", i), "111122223333", "eu-west-1"))
	}
	plan := FaultPlan{Seed: 42, Rules: []FaultRule{{Kind: FaultThroughput, Ops: []Op{OpGetPair}, Rate: 0.25}}}
	a := failingKeys(t, plan, keys)
	if n := float64(len(a)); math.Abs(n-500) > 80 {
		t.Errorf("rate 0.25 of 2000 calls injected %v faults", n)
	}
	reversed := slices.Clone(keys)
	slices.Reverse(reversed)
	if b := failingKeys(t, plan, reversed); !slices.Equal(a, b) {
		t.Error("the same seed picked other calls when they came in another order")
	}
	plan.Seed = 43
	if c := failingKeys(t, plan, keys); slices.Equal(a, c) {
		t.Error("another seed picked the same calls")
	}
	// Count caps the rate; repeated calls about one pair draw anew.
	plan.Rules[0].Count = 10
	if d := failingKeys(t, plan, keys); len(d) != 10 {
		t.Errorf("count 10 injected %d faults", len(d))
	}
	f := openFaultyForTest(t, NewMemory(), FaultPlan{Seed: 7, Rules: []FaultRule{{Kind: FaultTimeout, Rate: 0.5}}})
	failed := 0
	for range 200 {
		if _, _, err := f.GetPair(context.Background(), faultKey); err != nil {
			failed++
		}
	}
	if failed < 70 || failed > 130 {
		t.Errorf("200 calls about one pair at rate 0.5: %d faults", failed)
	}
}

func TestNewFaultyRefusesBadPlans(t *testing.T) {
	for _, tc := range []struct {
		rule FaultRule
		want string
	}{
		{FaultRule{Kind: "flood", Rate: 1}, `unknown fault kind "flood"`},
		{FaultRule{Kind: FaultThroughput, Rate: 1.5}, "throughput: rate 1.5 is not between 0 and 1"},
		{FaultRule{Kind: FaultThroughput, Rate: math.NaN()}, "throughput: rate NaN"},
		{FaultRule{Kind: FaultThroughput, Rate: 1, Count: -1}, "throughput: count -1 is negative"},
		{FaultRule{Kind: FaultThroughput, Rate: 1, After: -2}, "throughput: after -2 is negative"},
		{FaultRule{Kind: FaultThroughput, Rate: 1, Ops: []Op{"Scan"}}, `throughput: unknown operation "Scan"`},
		{FaultRule{Kind: FaultConditional, Rate: 1, Ops: []Op{OpPutRun}}, "conditional cannot hit PutRun"},
		{FaultRule{Kind: FaultUnprocessed, Rate: 1, Ops: []Op{OpGetPair}}, "unprocessed cannot hit GetPair"},
		{FaultRule{Kind: FaultTimeoutLanded, Rate: 1, Ops: []Op{OpGetPair}}, "timeout_landed cannot hit GetPair"},
	} {
		_, err := NewFaulty(NewMemory(), FaultPlan{Rules: []FaultRule{{Kind: FaultTimeout}, tc.rule}})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "rule 2: "+tc.want) {
			t.Errorf("rule %+v: err = %v, want ErrInvalid naming %q", tc.rule, err, tc.want)
		}
	}
	if _, err := NewFaulty(nil, FaultPlan{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewFaulty(nil): err = %v", err)
	}
}

// requestIDs are the request ids in an error message, which differ
// between two answers to the same request.
var requestIDs = regexp.MustCompile(`RequestID: [A-Za-z0-9]*`)

// errorChain lists the types an error wraps, outermost first.
func errorChain(err error) []string {
	var out []string
	for e := err; e != nil; e = errors.Unwrap(e) {
		out = append(out, fmt.Sprintf("%T", e))
	}
	return out
}

// TestFaultyErrorsMatchTheAdapter makes each failure happen for real on
// the DynamoDB adapter (against dynalite, behind a proxy that answers
// DynamoDB's errors) and compares what the adapter returns with what
// Faulty injects on the same store: the same message, request ids aside,
// and the same chain of error types.
func TestFaultyErrorsMatchTheAdapter(t *testing.T) {
	ctx := context.Background()
	s, proxy := openThroughProxy(t, 2)
	pair := newPair(faultKey, faultSource, PairCopying)
	same := func(t *testing.T, real, injected error) {
		t.Helper()
		if real == nil || injected == nil {
			t.Fatalf("real %v, injected %v: want two errors", real, injected)
		}
		if r, i := requestIDs.ReplaceAllString(real.Error(), "RequestID: X"), requestIDs.ReplaceAllString(injected.Error(), "RequestID: X"); r != i {
			t.Errorf("messages differ:\n real:     %s\n injected: %s", r, i)
		}
		if r, i := errorChain(real), errorChain(injected); !slices.Equal(r, i) {
			t.Errorf("error chains differ:\n real:     %v\n injected: %v", r, i)
		}
	}
	for _, tc := range []struct {
		kind   FaultKind
		answer proxyAnswer
	}{
		{FaultThroughput, answerThroughput},
		{FaultThrottling, answerThrottling},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			proxy.setRule(firstN("PutItem", 1000, tc.answer))
			_, real := s.PutPair(ctx, pair)
			proxy.setRule(nil)
			_, injected := openFaultyForTest(t, s, always(tc.kind, 0)).PutPair(ctx, pair)
			same(t, real, injected)
		})
	}
	t.Run("timeout", func(t *testing.T) {
		proxy.setRule(func(op string, _ int) (proxyAnswer, bool) {
			if op == "PutItem" {
				time.Sleep(200 * time.Millisecond)
			}
			return proxyAnswer{}, false
		})
		tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, real := s.PutPair(tctx, pair)
		cancel()
		proxy.setRule(nil)
		_, injected := openFaultyForTest(t, s, always(FaultTimeout, 0)).PutPair(ctx, pair)
		same(t, real, injected)
	})
	t.Run("table_missing", func(t *testing.T) {
		o := DynamoDBOptions{Table: "amicopier-no-such-table", Endpoint: proxy.URL, Region: "us-east-1"}
		gone := newDynamoDB(s.api, o, nil)
		_, real := gone.PutPair(ctx, pair)
		_, injected := openFaultyForTest(t, gone, always(FaultTableMissing, 0)).PutPair(ctx, pair)
		same(t, real, injected)
	})
	t.Run("unprocessed", func(t *testing.T) {
		h := hook(t, s)
		h.batchGet = func(_ context.Context, in *dynamodb.BatchGetItemInput, _ int64) (*dynamodb.BatchGetItemOutput, error) {
			return &dynamodb.BatchGetItemOutput{UnprocessedKeys: in.RequestItems}, nil
		}
		s.batchBackoff = time.Millisecond
		_, real := s.GetPairs(ctx, []PairKey{faultKey})
		h.batchGet = nil
		_, injected := openFaultyForTest(t, s, always(FaultUnprocessed, 0)).GetPairs(ctx, []PairKey{faultKey})
		same(t, real, injected)
	})
}

// ExampleNewFaulty wraps a store so that its first PutPair is throttled,
// as DynamoDB throttles a table, and reports what it injected.
func ExampleNewFaulty() {
	store, err := NewFaulty(NewMemory(), FaultPlan{Seed: 1, Rules: []FaultRule{
		{Kind: FaultThroughput, Ops: []Op{OpPutPair}, Rate: 1, Count: 1},
	}})
	if err != nil {
		panic(err)
	}
	p := Pair{Key: PairKey{SourceImage: "ami-1", Account: "111122223333", Region: "eu-west-1"}, Source: "999988887777", Status: PairCopying}
	_, err = store.PutPair(context.Background(), p)
	var throttled *types.ProvisionedThroughputExceededException
	fmt.Println("throttled:", errors.As(err, &throttled))
	stored, err := store.PutPair(context.Background(), p)
	fmt.Println("then stored:", err == nil, stored.Version)
	fmt.Println("injected:", store.Injected()[FaultThroughput], "of", store.Injected().Total())
	// Output:
	// throttled: true
	// then stored: true 1
	// injected: 1 of 1
}
