package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestFilePersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	path := filepath.Join(t.TempDir(), "nested", "dir", "state.db") // parents do not exist yet

	s, err := OpenFile(path, WithClock(clock.Now))
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	unsettled := mustPut(t, s, newPair(key("ami-1", "111122223333", "eu-west-1"), "999988887777", PairFailed))
	settled := mustPut(t, s, newPair(key("ami-2", "111122223333", "eu-west-1"), "999988887777", PairSettled))
	mustPutRun(t, s, Run{ID: "r1", Scope: "org", Started: clock.Now(), Counts: map[string]int{"ok": 3}})
	lease, err := s.AcquireLease(ctx, "org", "run-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenFile(path, WithClock(clock.Now))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	for _, want := range []Pair{unsettled, settled} {
		if got := mustGet(t, s, want.Key); !samePair(got, want) {
			t.Errorf("after reopen: %+v, want %+v", got, want)
		}
	}
	if got := unsettledKeys(t, s, "999988887777"); !slices.Equal(got, []string{unsettled.Key.String()}) {
		t.Errorf("after reopen: unsettled = %v", got)
	}
	runs, err := s.RecentRuns(ctx, "org", 5)
	if err != nil || len(runs) != 1 || runs[0].Counts["ok"] != 3 {
		t.Errorf("after reopen: runs = %+v, %v", runs, err)
	}
	var held *LeaseHeldError
	if _, err := s.AcquireLease(ctx, "org", "run-b", time.Hour); !errors.As(err, &held) || !held.Expires.Equal(lease.Expires) {
		t.Errorf("after reopen: lease err = %v, want held by run-a until %s", err, lease.Expires)
	}
	// Versions continue where they were.
	next := unsettled
	next.Attempts++
	if got := mustPut(t, s, next); got.Version != 2 {
		t.Errorf("version after reopen = %d, want 2", got.Version)
	}
}

// TestFileLockedByAnotherProgram: amicopier locks the file only for one
// transaction, so a lock held for longer (another program, or an older
// amicopier that kept the file open for a whole run) is waited for at most
// the lock timeout, and then named.
func TestFileLockedByAnotherProgram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenFile(path, WithLockTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second, err := OpenFile(path, WithLockTimeout(100*time.Millisecond))
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("OpenFile of a file another program holds succeeded")
	}
	want := fmt.Sprintf("state file %s is locked by another process (waited 100ms)", path)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if elapsed > 5*time.Second {
		t.Errorf("gave up after %s; want about the 100ms timeout", elapsed)
	}
	// An open store waits in the same way for each transaction.
	if _, _, err := s.GetPair(context.Background(), key("ami-1", "111122223333", "eu-west-1")); err == nil || !strings.Contains(err.Error(), "is locked by another process") {
		t.Errorf("GetPair while another program holds the file: err = %v", err)
	}

	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := OpenFile(path, WithLockTimeout(time.Second))
	if err != nil {
		t.Fatalf("OpenFile after the other program closed: %v", err)
	}
	third.Close()
	if _, _, err := s.GetPair(context.Background(), key("ami-1", "111122223333", "eu-west-1")); err != nil {
		t.Errorf("GetPair after the other program closed: %v", err)
	}
}

func TestFileSchemaVersion(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []string
	}{
		{"newer", "2", []string{"schema version 2", "newer", "upgrade amicopier"}},
		{"older", "0", []string{"schema version 0", "older"}},
		{"malformed", "two", []string{`"two"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s, err := OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			setMeta(t, path, tc.value)

			s, err = OpenFile(path)
			if err == nil {
				s.Close()
				t.Fatalf("OpenFile of a file with schema version %q succeeded", tc.value)
			}
			for _, want := range append([]string{path}, tc.want...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

func setMeta(t *testing.T, path, version string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(version))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFileRefusesForeignFiles(t *testing.T) {
	dir := t.TempDir()

	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(garbage); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Errorf("OpenFile of a garbage file: err = %v, want an error naming %s", err, garbage)
	}

	foreign := filepath.Join(dir, "foreign.db")
	db, err := bolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(foreign); err == nil || !strings.Contains(err.Error(), "not an amicopier state file") {
		t.Errorf("OpenFile of another program's bbolt file: err = %v", err)
	}
}

func TestFileOpenValidation(t *testing.T) {
	if _, err := OpenFile(""); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty path: err = %v, want ErrInvalid", err)
	}
	path := filepath.Join(t.TempDir(), "state.db")
	if _, err := OpenFile(path, WithLockTimeout(0)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "0s") {
		t.Errorf("zero lock timeout: err = %v, want ErrInvalid naming 0s", err)
	}
}

// TestFileIndexHoldsOnlyUnsettled looks inside the file: the index bucket
// that UnsettledPairs reads must not hold settled pairs, however many.
func TestFileIndexHoldsOnlyUnsettled(t *testing.T) {
	s := openFileForTest(t, time.Now).(*File)
	const source = "999988887777"
	for i := range 50 {
		status := PairSettled
		if i%10 == 0 {
			status = PairCopying
		}
		mustPut(t, s, newPair(key(fmt.Sprintf("ami-%03d", i), "111122223333", "eu-west-1"), source, status))
	}
	var indexed, stored int
	err := peekFile(t, s.Path(), func(tx *bolt.Tx) error {
		indexed = tx.Bucket(bucketUnsettled).Bucket([]byte(source)).Stats().KeyN
		stored = tx.Bucket(bucketPairs).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if indexed != 5 || stored != 50 {
		t.Errorf("index holds %d keys and pairs %d; want 5 and 50", indexed, stored)
	}

	// Settling the last unsettled pairs drops the source's index bucket.
	for i := 0; i < 50; i += 10 {
		p := mustGet(t, s, key(fmt.Sprintf("ami-%03d", i), "111122223333", "eu-west-1"))
		p.Status = PairSettled
		mustPut(t, s, p)
	}
	err = peekFile(t, s.Path(), func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUnsettled).Bucket([]byte(source)) != nil {
			return errors.New("index bucket of a source without unsettled pairs remains")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestFileDeletesExpiredRuns checks that writes remove expired runs and
// every index entry pointing at them.
func TestFileDeletesExpiredRuns(t *testing.T) {
	clock := newTestClock()
	s := openFileForTest(t, clock.Now).(*File)
	base := clock.Now()
	for i := range 3 {
		mustPutRun(t, s, Run{ID: fmt.Sprintf("old-%d", i), Scope: "org", Started: base.Add(time.Duration(i) * time.Minute), ExpiresAt: base.Add(time.Hour)})
	}
	mustPutRun(t, s, Run{ID: "kept", Scope: "org", Started: base, ExpiresAt: base.Add(48 * time.Hour)})
	// Replacing a run moves its expiry entry rather than adding one.
	mustPutRun(t, s, Run{ID: "kept", Scope: "org", Started: base, ExpiresAt: base.Add(72 * time.Hour)})
	mustPutRun(t, s, Run{ID: "forever", Scope: "org-2", Started: base})

	clock.Advance(2 * time.Hour)
	mustPutRun(t, s, Run{ID: "new", Scope: "org-3", Started: clock.Now()})

	var byTime, byID, expiry int
	err := peekFile(t, s.Path(), func(tx *bolt.Tx) error {
		org := tx.Bucket(bucketRuns).Bucket([]byte("org"))
		byTime = org.Bucket(bucketByTime).Stats().KeyN
		byID = org.Bucket(bucketByID).Stats().KeyN
		expiry = tx.Bucket(bucketRunExpiry).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if byTime != 1 || byID != 1 || expiry != 1 {
		t.Errorf("after the sweep: scope org holds %d runs, %d ids; %d expiry entries; want 1, 1, 1", byTime, byID, expiry)
	}
}

func TestRunKeysSortByTime(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC),
		time.Date(2025, 3, 1, 2, 0, 0, 1, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := runTimeKey(times[i-1], "z"), runTimeKey(times[i], "a")
		if string(a) >= string(b) {
			t.Errorf("key of %s does not sort before key of %s", times[i-1], times[i])
		}
	}
	for _, tm := range times {
		k := runExpiryKey(tm, "scope/with\x00odd bytes", "run-1")
		got, scope, id, ok := parseRunExpiryKey(k)
		if !ok || !got.Equal(tm) || scope != "scope/with\x00odd bytes" || id != "run-1" {
			t.Errorf("parseRunExpiryKey(runExpiryKey(%s)) = %s, %q, %q, %v", tm, got, scope, id, ok)
		}
	}
	if _, _, _, ok := parseRunExpiryKey([]byte{1, 2, 3}); ok {
		t.Error("a short key parsed")
	}
}

// peekFile reads the file directly with bbolt, as a test looking inside.
func peekFile(t *testing.T, path string, fn func(*bolt.Tx) error) error {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return db.View(fn)
}
