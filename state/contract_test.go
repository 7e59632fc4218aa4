package state

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// newStoreFunc opens an empty store whose clock is clock. It registers its
// own cleanup with t; the store may already be closed by then.
type newStoreFunc func(t *testing.T, clock func() time.Time) Store

// TestStoreContract runs one suite against every backend. A new backend
// adds one line to the table.
func TestStoreContract(t *testing.T) {
	backends := []struct {
		name string
		open newStoreFunc
	}{
		{"memory", openMemoryForTest},
		{"file", openFileForTest},
		{"dynamodb", openDynamoDBForTest},
		{"counting", func(t *testing.T, clock func() time.Time) Store {
			return NewCounting(openMemoryForTest(t, clock))
		}},
		{"faulty, no rules", func(t *testing.T, clock func() time.Time) Store {
			return openFaultyForTest(t, openMemoryForTest(t, clock), FaultPlan{})
		}},
		{"faulty, every kind at rate 0", func(t *testing.T, clock func() time.Time) Store {
			return openFaultyForTest(t, openMemoryForTest(t, clock), inertPlan())
		}},
		{"faulty over dynamodb", func(t *testing.T, clock func() time.Time) Store {
			return openFaultyForTest(t, openDynamoDBForTest(t, clock), inertPlan())
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { runContract(t, b.open) })
	}
}

func openMemoryForTest(t *testing.T, clock func() time.Time) Store {
	s := NewMemory(WithClock(clock))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openFileForTest(t *testing.T, clock func() time.Time) Store {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenFile(path, WithClock(clock))
	if err != nil {
		t.Fatalf("OpenFile(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// runContract is the behaviour every Store must have.
func runContract(t *testing.T, newStore newStoreFunc) {
	open := func(t *testing.T) (Store, *testClock) {
		t.Helper()
		clock := newTestClock()
		return newStore(t, clock.Now), clock
	}
	t.Run("pair_round_trip", func(t *testing.T) { testPairRoundTrip(t, open) })
	t.Run("pair_versions", func(t *testing.T) { testPairVersions(t, open) })
	t.Run("pair_concurrent_writers", func(t *testing.T) { testPairConcurrentWriters(t, open) })
	t.Run("unsettled_index_transitions", func(t *testing.T) { testUnsettledTransitions(t, open) })
	t.Run("unsettled_index_isolates_sources", func(t *testing.T) { testUnsettledSources(t, open) })
	t.Run("runs", func(t *testing.T) { testRuns(t, open) })
	t.Run("run_expiry", func(t *testing.T) { testRunExpiry(t, open) })
	t.Run("lease", func(t *testing.T) { testLease(t, open) })
	t.Run("lease_scopes", func(t *testing.T) { testLeaseScopes(t, open) })
	t.Run("lease_concurrent", func(t *testing.T) { testLeaseConcurrent(t, open) })
	t.Run("validation", func(t *testing.T) { testValidation(t, open) })
	t.Run("copies", func(t *testing.T) { testCopies(t, open) })
	t.Run("closed", func(t *testing.T) { testClosed(t, open) })
	t.Run("close_while_busy", func(t *testing.T) { testCloseWhileBusy(t, open) })
	t.Run("context_cancelled", func(t *testing.T) { testCancelled(t, open) })
	t.Run("grants", func(t *testing.T) { testGrants(t, open) })
}

type openFunc func(t *testing.T) (Store, *testClock)

func key(image, account, region string) PairKey {
	return PairKey{SourceImage: image, Account: account, Region: region}
}

func newPair(k PairKey, source string, status PairStatus) Pair {
	return Pair{Key: k, Source: source, Status: status}
}

// mustPut writes p and fails the test on error.
func mustPut(t *testing.T, s Store, p Pair) Pair {
	t.Helper()
	got, err := s.PutPair(context.Background(), p)
	if err != nil {
		t.Fatalf("PutPair(%s v%d): %v", p.Key, p.Version, err)
	}
	return got
}

func mustGet(t *testing.T, s Store, k PairKey) Pair {
	t.Helper()
	p, ok, err := s.GetPair(context.Background(), k)
	if err != nil || !ok {
		t.Fatalf("GetPair(%s) = ok %v, err %v; want stored", k, ok, err)
	}
	return p
}

// samePair compares everything a store keeps.
func samePair(a, b Pair) bool {
	return a.SameContent(b) && a.Version == b.Version && a.UpdatedAt.Equal(b.UpdatedAt) && a.RunID == b.RunID
}

func testPairRoundTrip(t *testing.T, open openFunc) {
	s, clock := open(t)
	ctx := context.Background()
	k := key("ami-0123456789abcdef0", "111122223333", "eu-west-1")

	if _, ok, err := s.GetPair(ctx, k); err != nil || ok {
		t.Fatalf("GetPair of a new key = ok %v, err %v; want not found, nil", ok, err)
	}
	in := Pair{
		Key: k, Source: "999988887777", Status: PairFailed, Attempts: 2, Failures: 2,
		Fingerprint: "fp-1", CopyImageID: "ami-0fedcba9876543210", ClientToken: "tok-2",
		LastErrorCode: "KMS.DisabledException", LastError: "key disabled",
		NextRetry: clock.Now().Add(time.Hour),
		UpdatedAt: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), // overwritten by the store
		RunID:     "run-1",
	}
	got := mustPut(t, s, in)
	if got.Version != 1 {
		t.Errorf("created version = %d, want 1", got.Version)
	}
	if !got.UpdatedAt.Equal(clock.Now()) {
		t.Errorf("UpdatedAt = %s, want the clock's %s", got.UpdatedAt, clock.Now())
	}
	if !got.SameContent(in) || got.RunID != in.RunID {
		t.Errorf("PutPair returned %+v, want content of %+v", got, in)
	}
	if read := mustGet(t, s, k); !samePair(read, got) {
		t.Errorf("GetPair = %+v, want %+v", read, got)
	}

	// Settled pairs are still readable by key: the audit trail.
	clock.Advance(time.Minute)
	settled := got
	settled.Status = PairSettled
	settled = mustPut(t, s, settled)
	if read := mustGet(t, s, k); !samePair(read, settled) || read.Version != 2 || !read.UpdatedAt.Equal(clock.Now()) {
		t.Errorf("GetPair of settled pair = %+v, want %+v", read, settled)
	}
}

func testPairVersions(t *testing.T, open openFunc) {
	s, _ := open(t)
	ctx := context.Background()
	k := key("ami-1", "111122223333", "eu-west-1")
	first := mustPut(t, s, newPair(k, "999988887777", PairCopying))

	tests := []struct {
		name    string
		version int64
		stored  int64
	}{
		{"create twice", 0, 1},
		{"version from the future", 7, 1},
	}
	for _, tc := range tests {
		p := newPair(k, "999988887777", PairFailed)
		p.Version = tc.version
		_, err := s.PutPair(ctx, p)
		assertConflict(t, tc.name, err, k, tc.stored, tc.version)
	}

	second := first
	second.Attempts = 1
	second = mustPut(t, s, second)
	if second.Version != 2 {
		t.Fatalf("updated version = %d, want 2", second.Version)
	}
	stale := first // still version 1
	stale.Status = PairStuck
	_, err := s.PutPair(ctx, stale)
	assertConflict(t, "stale version", err, k, 2, 1)
	if read := mustGet(t, s, k); !samePair(read, second) {
		t.Errorf("after a lost write the store holds %+v, want %+v", read, second)
	}

	missing := newPair(key("ami-2", "111122223333", "eu-west-1"), "999988887777", PairCopying)
	missing.Version = 3
	_, err = s.PutPair(ctx, missing)
	assertConflict(t, "update of a pair never stored", err, missing.Key, 0, 3)
	if _, ok, _ := s.GetPair(ctx, missing.Key); ok {
		t.Errorf("a lost create stored pair %s", missing.Key)
	}
}

func assertConflict(t *testing.T, name string, err error, k PairKey, stored, expected int64) {
	t.Helper()
	if !errors.Is(err, ErrConflict) {
		t.Errorf("%s: err = %v, want ErrConflict", name, err)
		return
	}
	msg := err.Error()
	for _, want := range []string{k.String(), fmt.Sprintf("version %d", stored), fmt.Sprintf("version %d", expected)} {
		if !strings.Contains(msg, want) {
			t.Errorf("%s: error %q does not name %q", name, msg, want)
		}
	}
}

func testPairConcurrentWriters(t *testing.T, open openFunc) {
	s, _ := open(t)
	ctx := context.Background()
	k := key("ami-race", "111122223333", "eu-west-1")
	cur := mustPut(t, s, newPair(k, "999988887777", PairCopying))

	const writers, rounds = 8, 5
	for round := range rounds {
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			winners   []Pair
			conflicts int
			others    []error
		)
		for w := range writers {
			wg.Go(func() {
				p := cur
				p.Attempts = round*writers + w
				got, err := s.PutPair(ctx, p)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, got)
				case errors.Is(err, ErrConflict):
					conflicts++
				default:
					others = append(others, err)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 || conflicts != writers-1 || len(others) > 0 {
			t.Fatalf("round %d: %d winners, %d conflicts, other errors %v; want 1 winner, %d conflicts",
				round, len(winners), conflicts, others, writers-1)
		}
		if winners[0].Version != cur.Version+1 {
			t.Errorf("round %d: winner's version = %d, want %d", round, winners[0].Version, cur.Version+1)
		}
		if read := mustGet(t, s, k); !samePair(read, winners[0]) {
			t.Errorf("round %d: stored %+v, want the winner's %+v", round, read, winners[0])
		}
		cur = winners[0]
	}
}

// unsettledKeys lists the keys UnsettledPairs returns, sorted.
func unsettledKeys(t *testing.T, s Store, source string) []string {
	t.Helper()
	ps, err := s.UnsettledPairs(context.Background(), source)
	if err != nil {
		t.Fatalf("UnsettledPairs(%s): %v", source, err)
	}
	keys := make([]string, 0, len(ps))
	for _, p := range ps {
		if p.Status.Settled() {
			t.Errorf("UnsettledPairs(%s) returned settled pair %s", source, p.Key)
		}
		if p.Source != source {
			t.Errorf("UnsettledPairs(%s) returned pair %s of source %s", source, p.Key, p.Source)
		}
		keys = append(keys, p.Key.String())
	}
	slices.Sort(keys)
	return keys
}

func testUnsettledTransitions(t *testing.T, open openFunc) {
	s, _ := open(t)
	const source = "999988887777"
	k := key("ami-1", "111122223333", "eu-west-1")
	// A neighbour that stays unsettled throughout proves updates touch
	// only their own pair.
	other := mustPut(t, s, newPair(key("ami-1", "444455556666", "eu-west-1"), source, PairCopying))

	steps := []struct {
		status    PairStatus
		unsettled bool
	}{
		{PairCopying, true},
		{PairFailed, true},
		{PairStuck, true},
		{PairSettled, false},
		{PairCopying, true}, // the copy was deleted: unsettled again
		{PairRejected, true},
		{PairSettled, false},
		{PairSettled, false},
		{PairFailed, true},
	}
	var cur Pair
	for i, step := range steps {
		p := cur
		if i == 0 {
			p = newPair(k, source, step.status)
		}
		p.Status = step.status
		cur = mustPut(t, s, p)

		got := unsettledKeys(t, s, source)
		want := []string{other.Key.String()}
		if step.unsettled {
			want = append(want, k.String())
			slices.Sort(want)
		}
		if !slices.Equal(got, want) {
			t.Errorf("step %d (%s): unsettled = %v, want %v", i, step.status, got, want)
		}
		if read := mustGet(t, s, k); read.Status != step.status {
			t.Errorf("step %d: GetPair status = %s, want %s", i, read.Status, step.status)
		}
	}

	// A failed conditional write must not move the pair in the index.
	stale := cur
	stale.Version = 1
	stale.Status = PairSettled
	if _, err := s.PutPair(context.Background(), stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale settle: err = %v, want ErrConflict", err)
	}
	if got := unsettledKeys(t, s, source); !slices.Contains(got, k.String()) {
		t.Errorf("a lost write removed %s from the index: %v", k, got)
	}
}

func testUnsettledSources(t *testing.T, open openFunc) {
	s, _ := open(t)
	const srcA, srcB = "111111111111", "222222222222"
	a1 := mustPut(t, s, newPair(key("ami-a1", "333333333333", "eu-west-1"), srcA, PairCopying))
	a2 := mustPut(t, s, newPair(key("ami-a2", "333333333333", "us-east-1"), srcA, PairFailed))
	mustPut(t, s, newPair(key("ami-a3", "333333333333", "eu-west-1"), srcA, PairSettled))
	b1 := mustPut(t, s, newPair(key("ami-b1", "333333333333", "eu-west-1"), srcB, PairStuck))
	mustPut(t, s, newPair(key("ami-b2", "444444444444", "eu-west-1"), srcB, PairSettled))

	check := func(when, source string, want ...PairKey) {
		t.Helper()
		wantKeys := make([]string, 0, len(want))
		for _, k := range want {
			wantKeys = append(wantKeys, k.String())
		}
		slices.Sort(wantKeys)
		if got := unsettledKeys(t, s, source); !slices.Equal(got, wantKeys) {
			t.Errorf("%s: UnsettledPairs(%s) = %v, want %v", when, source, got, wantKeys)
		}
	}
	check("initially", srcA, a1.Key, a2.Key)
	check("initially", srcB, b1.Key)
	check("initially", "555555555555")

	// Should a pair ever change source account, it moves between indexes.
	moved := a2
	moved.Source = srcB
	mustPut(t, s, moved)
	check("after a source change", srcA, a1.Key)
	check("after a source change", srcB, b1.Key, a2.Key)
}

func mustPutRun(t *testing.T, s Store, r Run) {
	t.Helper()
	if err := s.PutRun(context.Background(), r); err != nil {
		t.Fatalf("PutRun(%s/%s): %v", r.Scope, r.ID, err)
	}
}

func runIDs(t *testing.T, s Store, scope string, limit int) []string {
	t.Helper()
	runs, err := s.RecentRuns(context.Background(), scope, limit)
	if err != nil {
		t.Fatalf("RecentRuns(%s, %d): %v", scope, limit, err)
	}
	ids := make([]string, 0, len(runs))
	for _, r := range runs {
		if r.Scope != scope {
			t.Errorf("RecentRuns(%s) returned run %s of scope %s", scope, r.ID, r.Scope)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

func testRuns(t *testing.T, open openFunc) {
	s, clock := open(t)
	base := clock.Now()
	full := Run{
		ID: "r2", Scope: "org", Trigger: "schedule", Shard: "2/8", Mode: "run", Status: "partial",
		Started: base.Add(2 * time.Minute), Finished: base.Add(3 * time.Minute),
		Counts:  map[string]int{"ok": 10, "missing": 2},
		Actions: map[string]int{"copy": 2},
		Errors:  []string{"account 123456789012 unreachable"},
		Unreachable: []UnreachableAccount{
			{Account: "123456789012", Regions: []string{"eu-west-1", "us-east-1"}, Reason: "AccessDenied"},
		},
		UnreachableCount: 3,
	}
	mustPutRun(t, s, full)
	for _, r := range []Run{
		{ID: "r1", Scope: "org", Started: base.Add(time.Minute)},
		{ID: "r3b", Scope: "org", Started: base.Add(3 * time.Minute)},
		{ID: "r3a", Scope: "org", Started: base.Add(3 * time.Minute)}, // same start: id breaks the tie
		{ID: "r0", Scope: "org", Started: base},
		{ID: "x1", Scope: "org-2", Started: base.Add(time.Hour)},
		{ID: "x0", Scope: "or", Started: base.Add(time.Hour)}, // prefix of another scope
	} {
		mustPutRun(t, s, r)
	}

	tests := []struct {
		scope string
		limit int
		want  []string
	}{
		{"org", 10, []string{"r3b", "r3a", "r2", "r1", "r0"}},
		{"org", 2, []string{"r3b", "r3a"}},
		{"org", 1, []string{"r3b"}},
		{"org-2", 10, []string{"x1"}},
		{"or", 10, []string{"x0"}},
		{"unknown", 10, []string{}},
	}
	for _, tc := range tests {
		if got := runIDs(t, s, tc.scope, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("RecentRuns(%s, %d) = %v, want %v", tc.scope, tc.limit, got, tc.want)
		}
	}

	runs, err := s.RecentRuns(context.Background(), "org", 3)
	if err != nil {
		t.Fatal(err)
	}
	got := runs[2]
	if got.ID != full.ID || got.Trigger != full.Trigger || got.Mode != full.Mode || got.Status != full.Status ||
		!got.Started.Equal(full.Started) || !got.Finished.Equal(full.Finished) ||
		!mapsEqual(got.Counts, full.Counts) || !mapsEqual(got.Actions, full.Actions) ||
		!slices.Equal(got.Errors, full.Errors) || got.UnreachableCount != full.UnreachableCount ||
		!slices.EqualFunc(got.Unreachable, full.Unreachable, func(a, b UnreachableAccount) bool {
			return a.Account == b.Account && a.Reason == b.Reason && slices.Equal(a.Regions, b.Regions)
		}) {
		t.Errorf("run round trip = %+v, want %+v", got, full)
	}

	// Replacing a run by (scope, id) keeps one record, at its new place.
	moved := Run{ID: "r0", Scope: "org", Status: "succeeded", Started: base.Add(10 * time.Minute)}
	mustPutRun(t, s, moved)
	if got := runIDs(t, s, "org", 10); !slices.Equal(got, []string{"r0", "r3b", "r3a", "r2", "r1"}) {
		t.Errorf("after replacing r0: RecentRuns = %v", got)
	}
	runs, err = s.RecentRuns(context.Background(), "org", 1)
	if err != nil || len(runs) != 1 || runs[0].Status != "succeeded" {
		t.Errorf("replaced run = %+v, %v; want status succeeded", runs, err)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func testRunExpiry(t *testing.T, open openFunc) {
	s, clock := open(t)
	base := clock.Now()
	mustPutRun(t, s, Run{ID: "forever", Scope: "org", Started: base})
	mustPutRun(t, s, Run{ID: "short", Scope: "org", Started: base.Add(time.Minute), ExpiresAt: base.Add(time.Hour)})
	mustPutRun(t, s, Run{ID: "long", Scope: "org", Started: base.Add(2 * time.Minute), ExpiresAt: base.Add(48 * time.Hour)})

	if got := runIDs(t, s, "org", 10); !slices.Equal(got, []string{"long", "short", "forever"}) {
		t.Errorf("before expiry: %v", got)
	}
	clock.Set(base.Add(time.Hour)) // exactly at expiry: gone
	if got := runIDs(t, s, "org", 10); !slices.Equal(got, []string{"long", "forever"}) {
		t.Errorf("at the first expiry: %v", got)
	}
	// The limit counts live runs only.
	if got := runIDs(t, s, "org", 2); !slices.Equal(got, []string{"long", "forever"}) {
		t.Errorf("limit 2 after the first expiry: %v", got)
	}
	// A write (which may delete expired runs) changes nothing visible.
	mustPutRun(t, s, Run{ID: "next", Scope: "org", Started: base.Add(time.Hour), ExpiresAt: base.Add(72 * time.Hour)})
	if got := runIDs(t, s, "org", 10); !slices.Equal(got, []string{"next", "long", "forever"}) {
		t.Errorf("after a write: %v", got)
	}
	clock.Set(base.Add(100 * time.Hour))
	mustPutRun(t, s, Run{ID: "other", Scope: "org-2", Started: base})
	if got := runIDs(t, s, "org", 10); !slices.Equal(got, []string{"forever"}) {
		t.Errorf("after every expiry: %v", got)
	}
}

func testLease(t *testing.T, open openFunc) {
	s, clock := open(t)
	ctx := context.Background()
	const ttl = 10 * time.Minute
	base := clock.Now()

	a, err := s.AcquireLease(ctx, "org", "run-a", ttl)
	if err != nil {
		t.Fatalf("acquire free lease: %v", err)
	}
	if a.Scope != "org" || a.Holder != "run-a" || !a.Expires.Equal(base.Add(ttl)) {
		t.Errorf("acquired %+v, want org/run-a until %s", a, base.Add(ttl))
	}

	// Another holder is told who holds it and until when.
	clock.Advance(ttl - time.Nanosecond)
	_, err = s.AcquireLease(ctx, "org", "run-b", ttl)
	var held *LeaseHeldError
	if !errors.As(err, &held) {
		t.Fatalf("acquire held lease: err = %v, want *LeaseHeldError", err)
	}
	if held.Scope != "org" || held.Holder != "run-a" || !held.Expires.Equal(a.Expires) {
		t.Errorf("LeaseHeldError = %+v, want org/run-a until %s", held, a.Expires)
	}
	if !strings.Contains(err.Error(), "run-a") {
		t.Errorf("LeaseHeldError message %q does not name the holder", err)
	}

	// Re-entrant: the holder refreshes its own lease.
	a2, err := s.AcquireLease(ctx, "org", "run-a", ttl)
	if err != nil || !a2.Expires.Equal(clock.Now().Add(ttl)) {
		t.Fatalf("re-acquire by the holder = %+v, %v; want expiry %s", a2, err, clock.Now().Add(ttl))
	}

	// Renew extends from now.
	clock.Advance(time.Minute)
	a3, err := s.RenewLease(ctx, a2, ttl)
	if err != nil || a3.Holder != "run-a" || !a3.Expires.Equal(clock.Now().Add(ttl)) {
		t.Fatalf("renew = %+v, %v; want run-a until %s", a3, err, clock.Now().Add(ttl))
	}

	// Expired but not taken over: still ours to renew.
	clock.Set(a3.Expires.Add(time.Minute))
	a4, err := s.RenewLease(ctx, a3, ttl)
	if err != nil || !a4.Expires.Equal(clock.Now().Add(ttl)) {
		t.Fatalf("renew of an expired lease nobody took = %+v, %v", a4, err)
	}

	// Expiry is reached at exactly Expires: another holder takes over.
	clock.Set(a4.Expires)
	b, err := s.AcquireLease(ctx, "org", "run-b", ttl)
	if err != nil || b.Holder != "run-b" {
		t.Fatalf("take over an expired lease = %+v, %v", b, err)
	}

	// The old holder has lost it: renew fails, re-acquire fails, release
	// is a no-op that leaves run-b's lease alone.
	if _, err := s.RenewLease(ctx, a4, ttl); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("renew after takeover: err = %v, want ErrLeaseLost", err)
	}
	if _, err := s.AcquireLease(ctx, "org", "run-a", ttl); !errors.As(err, &held) || held.Holder != "run-b" {
		t.Errorf("re-acquire after takeover: err = %v, want held by run-b", err)
	}
	if err := s.ReleaseLease(ctx, a4); err != nil {
		t.Errorf("release of a lost lease: %v, want nil", err)
	}
	if _, err := s.AcquireLease(ctx, "org", "run-c", ttl); !errors.As(err, &held) || held.Holder != "run-b" {
		t.Errorf("after a stale release: err = %v, want still held by run-b", err)
	}

	// Release by the holder frees the lease at once.
	if err := s.ReleaseLease(ctx, b); err != nil {
		t.Fatalf("release: %v", err)
	}
	if err := s.ReleaseLease(ctx, b); err != nil {
		t.Errorf("second release: %v, want nil", err)
	}
	if _, err := s.RenewLease(ctx, b, ttl); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("renew after release: err = %v, want ErrLeaseLost", err)
	}
	c, err := s.AcquireLease(ctx, "org", "run-c", ttl)
	if err != nil || c.Holder != "run-c" {
		t.Errorf("acquire after release = %+v, %v", c, err)
	}
}

func testLeaseScopes(t *testing.T, open openFunc) {
	s, _ := open(t)
	ctx := context.Background()
	if _, err := s.AcquireLease(ctx, "org", "run-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	b, err := s.AcquireLease(ctx, "org/ami-1", "run-b", time.Minute)
	if err != nil {
		t.Fatalf("a lease of another scope: %v", err)
	}
	// Releasing with another scope's lease touches only that scope.
	if err := s.ReleaseLease(ctx, Lease{Scope: "org", Holder: b.Holder}); err != nil {
		t.Fatal(err)
	}
	var held *LeaseHeldError
	if _, err := s.AcquireLease(ctx, "org", "run-c", time.Minute); !errors.As(err, &held) || held.Holder != "run-a" {
		t.Errorf("scope org: err = %v, want held by run-a", err)
	}
}

func testValidation(t *testing.T, open openFunc) {
	s, _ := open(t)
	ctx := context.Background()
	good := newPair(key("ami-1", "111122223333", "eu-west-1"), "999988887777", PairCopying)
	withPair := func(f func(*Pair)) Pair { p := good; f(&p); return p }

	tests := []struct {
		name string
		call func() error
		want string // the offending value or field the error must name
	}{
		{"empty source image", func() error {
			_, err := s.PutPair(ctx, withPair(func(p *Pair) { p.Key.SourceImage = "" }))
			return err
		}, "source image"},
		{"empty account", func() error {
			_, err := s.PutPair(ctx, withPair(func(p *Pair) { p.Key.Account = "" }))
			return err
		}, "account"},
		{"empty region", func() error {
			_, err := s.PutPair(ctx, withPair(func(p *Pair) { p.Key.Region = "" }))
			return err
		}, "region"},
		{"slash in key", func() error {
			_, err := s.PutPair(ctx, withPair(func(p *Pair) { p.Key.Region = "eu/west" }))
			return err
		}, "eu/west"},
		{"empty source", func() error {
			_, err := s.PutPair(ctx, withPair(func(p *Pair) { p.Source = "" }))
			return err
		}, "source account"},
		{"unknown status", func() error {
			_, err := s.PutPair(ctx, withPair(func(p *Pair) { p.Status = "bogus" }))
			return err
		}, `"bogus"`},
		{"empty status", func() error {
			_, err := s.PutPair(ctx, withPair(func(p *Pair) { p.Status = "" }))
			return err
		}, `status ""`},
		{"negative version", func() error {
			_, err := s.PutPair(ctx, withPair(func(p *Pair) { p.Version = -1 }))
			return err
		}, "-1"},
		{"negative failures", func() error {
			_, err := s.PutPair(ctx, withPair(func(p *Pair) { p.Failures = -3 }))
			return err
		}, "-3"},
		{"get with empty account", func() error {
			_, _, err := s.GetPair(ctx, key("ami-1", "", "eu-west-1"))
			return err
		}, "account"},
		{"unsettled of empty source", func() error {
			_, err := s.UnsettledPairs(ctx, "")
			return err
		}, "source account"},
		{"run without id", func() error { return s.PutRun(ctx, Run{Scope: "org"}) }, "id"},
		{"run without scope", func() error { return s.PutRun(ctx, Run{ID: "r-9"}) }, "r-9"},
		{"runs with zero limit", func() error {
			_, err := s.RecentRuns(ctx, "org", 0)
			return err
		}, "got 0"},
		{"runs of empty scope", func() error {
			_, err := s.RecentRuns(ctx, "", 5)
			return err
		}, "scope"},
		{"lease with zero ttl", func() error {
			_, err := s.AcquireLease(ctx, "org", "run-a", 0)
			return err
		}, "0s"},
		{"lease with negative ttl", func() error {
			_, err := s.AcquireLease(ctx, "org", "run-a", -time.Second)
			return err
		}, "-1s"},
		{"lease without holder", func() error {
			_, err := s.AcquireLease(ctx, "org", "", time.Minute)
			return err
		}, "holder"},
		{"lease without scope", func() error {
			_, err := s.AcquireLease(ctx, "", "run-a", time.Minute)
			return err
		}, "scope"},
		{"renew with zero ttl", func() error {
			_, err := s.RenewLease(ctx, Lease{Scope: "org", Holder: "run-a"}, 0)
			return err
		}, "0s"},
		{"release without holder", func() error { return s.ReleaseLease(ctx, Lease{Scope: "org"}) }, "holder"},
	}
	for _, tc := range tests {
		err := tc.call()
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not name %q", tc.name, err, tc.want)
		}
	}
	// Nothing invalid was stored.
	if ps, err := s.UnsettledPairs(ctx, "999988887777"); err != nil || len(ps) != 0 {
		t.Errorf("after invalid writes: unsettled = %v, %v; want none", ps, err)
	}
}

func testCopies(t *testing.T, open openFunc) {
	s, _ := open(t)
	ctx := context.Background()
	in := Run{
		ID: "r1", Scope: "org", Started: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		Counts: map[string]int{"ok": 1}, Actions: map[string]int{"copy": 1}, Errors: []string{"e1"},
	}
	mustPutRun(t, s, in)
	// The caller keeps using its own maps and slices.
	in.Counts["ok"] = 99
	in.Actions["copy"] = 99
	in.Errors[0] = "changed"

	first, err := s.RecentRuns(ctx, "org", 1)
	if err != nil || len(first) != 1 {
		t.Fatalf("RecentRuns = %v, %v", first, err)
	}
	if first[0].Counts["ok"] != 1 || first[0].Actions["copy"] != 1 || first[0].Errors[0] != "e1" {
		t.Fatalf("the store kept the caller's collections: %+v", first[0])
	}
	first[0].Counts["ok"] = 42
	first[0].Actions["new"] = 1
	first[0].Errors[0] = "mutated"
	first[0].ID = "mutated"
	second, err := s.RecentRuns(ctx, "org", 1)
	if err != nil || len(second) != 1 {
		t.Fatalf("RecentRuns = %v, %v", second, err)
	}
	if r := second[0]; r.ID != "r1" || r.Counts["ok"] != 1 || len(r.Actions) != 1 || r.Errors[0] != "e1" {
		t.Errorf("mutating a returned run changed the store: %+v", r)
	}

	p := mustPut(t, s, newPair(key("ami-1", "111122223333", "eu-west-1"), "999988887777", PairCopying))
	ps, err := s.UnsettledPairs(ctx, "999988887777")
	if err != nil || len(ps) != 1 {
		t.Fatalf("UnsettledPairs = %v, %v", ps, err)
	}
	ps[0].Status = PairSettled
	ps[0].Version = 100
	if read := mustGet(t, s, p.Key); !samePair(read, p) {
		t.Errorf("mutating a returned pair changed the store: %+v", read)
	}
}

func testClosed(t *testing.T, open openFunc) {
	s, _ := open(t)
	ctx := context.Background()
	p := mustPut(t, s, newPair(key("ami-1", "111122223333", "eu-west-1"), "999988887777", PairCopying))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	lease := Lease{Scope: "org", Holder: "run-a"}
	calls := map[string]func() error{
		"UnsettledPairs": func() error { _, err := s.UnsettledPairs(ctx, p.Source); return err },
		"GetPair":        func() error { _, _, err := s.GetPair(ctx, p.Key); return err },
		"PutPair":        func() error { _, err := s.PutPair(ctx, p); return err },
		"PutRun":         func() error { return s.PutRun(ctx, Run{ID: "r1", Scope: "org"}) },
		"RecentRuns":     func() error { _, err := s.RecentRuns(ctx, "org", 1); return err },
		"AcquireLease":   func() error { _, err := s.AcquireLease(ctx, "org", "run-a", time.Minute); return err },
		"RenewLease":     func() error { _, err := s.RenewLease(ctx, lease, time.Minute); return err },
		"ReleaseLease":   func() error { return s.ReleaseLease(ctx, lease) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
}

func testCancelled(t *testing.T, open openFunc) {
	s, _ := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := newPair(key("ami-1", "111122223333", "eu-west-1"), "999988887777", PairCopying)
	if _, err := s.PutPair(ctx, p); !errors.Is(err, context.Canceled) {
		t.Errorf("PutPair with a cancelled context: err = %v, want context.Canceled", err)
	}
	if _, err := s.AcquireLease(ctx, "org", "run-a", time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("AcquireLease with a cancelled context: err = %v, want context.Canceled", err)
	}
	if _, ok, err := s.GetPair(context.Background(), p.Key); err != nil || ok {
		t.Errorf("a cancelled write stored the pair: ok %v, err %v", ok, err)
	}
}

func testLeaseConcurrent(t *testing.T, open openFunc) {
	s, _ := open(t)
	const holders = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []Lease
		losers  []*LeaseHeldError
		others  []error
	)
	for i := range holders {
		wg.Go(func() {
			l, err := s.AcquireLease(context.Background(), "org", fmt.Sprintf("run-%d", i), time.Minute)
			var held *LeaseHeldError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, l)
			case errors.As(err, &held):
				losers = append(losers, held)
			default:
				others = append(others, err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 || len(losers) != holders-1 || len(others) > 0 {
		t.Fatalf("%d winners, %d told the lease is held, other errors %v; want 1 and %d",
			len(winners), len(losers), others, holders-1)
	}
	for _, held := range losers {
		if held.Holder != winners[0].Holder {
			t.Errorf("loser told the lease is held by %s; the winner is %s", held.Holder, winners[0].Holder)
		}
	}
}

// testCloseWhileBusy closes the store under concurrent use: every call
// must either work or report ErrClosed (and -race must stay quiet).
func testCloseWhileBusy(t *testing.T, open openFunc) {
	s, _ := open(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4*50)
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				p := newPair(key(fmt.Sprintf("ami-%d-%d", w, i), "111122223333", "eu-west-1"), "999988887777", PairCopying)
				if _, err := s.PutPair(ctx, p); err != nil && !errors.Is(err, ErrClosed) {
					errs <- err
				}
			}
		})
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("PutPair during Close: %v", err)
	}
}
