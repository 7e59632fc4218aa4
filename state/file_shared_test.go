package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFileStoresShareTheFile: several stores (processes, in production)
// use one file at once; the lease stored in it, not a lock held while a
// store is open, keeps runs apart, and readers read meanwhile.
func TestFileStoresShareTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	a, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenFile(path, WithLockTimeout(time.Second))
	if err != nil {
		t.Fatalf("a second store on a file another store has open: %v", err)
	}
	defer b.Close()
	r, err := OpenFileReadOnly(path)
	if err != nil {
		t.Fatalf("a read-only store beside two writable ones: %v", err)
	}
	defer r.Close()

	lease, err := a.AcquireLease(ctx, "org", "run-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var held *LeaseHeldError
	if _, err := b.AcquireLease(ctx, "org", "run-b", time.Hour); !errors.As(err, &held) || held.Holder != "run-a" || !held.Expires.Equal(lease.Expires) {
		t.Fatalf("second store's AcquireLease: err = %v, want held by run-a until %s", err, lease.Expires)
	}
	p := mustPut(t, a, newPair(key("ami-1", "111122223333", "eu-west-1"), "999988887777", PairCopying))
	if got := mustGet(t, b, p.Key); !samePair(got, p) {
		t.Errorf("the other store reads %+v, want %+v", got, p)
	}
	if got := unsettledKeys(t, r, "999988887777"); len(got) != 1 {
		t.Errorf("the read-only store sees unsettled %v", got)
	}
	// The version condition holds across stores as within one.
	stale := p
	stale.Version = 0
	if _, err := b.PutPair(ctx, stale); !errors.Is(err, ErrConflict) {
		t.Errorf("stale write from the other store: err = %v, want ErrConflict", err)
	}
	if err := a.ReleaseLease(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AcquireLease(ctx, "org", "run-b", time.Hour); err != nil {
		t.Errorf("AcquireLease once the holder released it: %v", err)
	}
}

// TestFileReadOnly: a read-only store creates nothing, reads a file it may
// not write, and refuses writes.
func TestFileReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo", "state.db")
	if _, err := OpenFileReadOnly(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing+" does not exist") {
		t.Errorf("OpenFileReadOnly of a missing file: err = %v, want fs.ErrNotExist naming %s", err, missing)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenFileReadOnly created the directory of a missing file (stat: %v)", err)
	}

	path := filepath.Join(dir, "state.db")
	writeStateFixture(t, path)
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenFileReadOnly(path)
	if err != nil {
		t.Fatalf("OpenFileReadOnly of a file in a read-only directory: %v", err)
	}
	defer s.Close()
	if pairs, err := s.UnsettledPairs(ctx, "999988887777"); err != nil || len(pairs) != 43 {
		t.Errorf("UnsettledPairs = %d pairs, %v; want the fixture's 43", len(pairs), err)
	}
	if runs, err := s.RecentRuns(ctx, "999988887777", 10); err != nil || len(runs) != 3 {
		t.Errorf("RecentRuns = %d runs, %v", len(runs), err)
	}
	if _, err := s.PutPair(ctx, newPair(key("ami-x", "111122223333", "eu-west-1"), "999988887777", PairCopying)); !errors.Is(err, ErrReadOnly) {
		t.Errorf("PutPair on a read-only store: err = %v, want ErrReadOnly", err)
	}
	if _, err := s.AcquireLease(ctx, "999988887777", "run-x", time.Minute); !errors.Is(err, ErrReadOnly) {
		t.Errorf("AcquireLease on a read-only store: err = %v, want ErrReadOnly", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("the read-only store changed the file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want only the state file", len(entries))
	}
}

// TestFileCreateLeavesNoTrace: creating a file leaves nothing beside it,
// and two stores creating one file at once end up sharing it.
func TestFileCreateLeavesNoTrace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	var wg sync.WaitGroup
	stores := make([]*File, 4)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = OpenFile(path)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	p := mustPut(t, stores[0], newPair(key("ami-1", "111122223333", "eu-west-1"), "999988887777", PairCopying))
	for i, s := range stores {
		if got := mustGet(t, s, p.Key); got.Version != p.Version {
			t.Errorf("store %d reads version %d: the stores do not share one file", i, got.Version)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the directory holds %v, want only state.db", names)
	}
}

// The helper process of TestFileLeaseAcrossProcesses, started by it.
const (
	helperPathEnv   = "AMICOPIER_STATE_HELPER_PATH"
	helperIDEnv     = "AMICOPIER_STATE_HELPER_ID"
	helperRoundsEnv = "AMICOPIER_STATE_HELPER_ROUNDS"
)

var counterKey = key("ami-counter", "111122223333", "eu-west-1")

// TestFileLeaseAcrossProcesses starts two processes that each take the
// lease of one scope over and over and, while holding it, increment a
// counter pair by a read and a versioned write. If the lease ever let both
// in at once, a write would conflict (the helper fails) or an increment
// would be lost (the count is short). Meanwhile this process reads the
// file through a read-only store, which must never fail.
func TestFileLeaseAcrossProcesses(t *testing.T) {
	if os.Getenv(helperPathEnv) != "" {
		t.Skip("in a helper process")
	}
	const rounds = 40
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustPut(t, s, newPair(counterKey, "999988887777", PairFailed))

	var cmds []*exec.Cmd
	outs := make([]*strings.Builder, 2)
	for i := range outs {
		outs[i] = &strings.Builder{}
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileProcessHelper$", "-test.v")
		cmd.Env = append(os.Environ(), helperPathEnv+"="+path, fmt.Sprintf("%s=proc-%d", helperIDEnv, i),
			fmt.Sprintf("%s=%d", helperRoundsEnv, rounds))
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	r, err := OpenFileReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var stop atomic.Bool
	var reads atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		for !stop.Load() {
			if _, err := r.UnsettledPairs(context.Background(), "999988887777"); err != nil {
				readErr <- err
				return
			}
			reads.Add(1)
		}
	}()
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i])
		}
	}
	stop.Store(true)
	if err := <-readErr; err != nil {
		t.Errorf("reading while two processes write: %v", err)
	}
	if got := mustGet(t, s, counterKey); got.Attempts != 2*rounds {
		t.Errorf("counter = %d after %d increments under the lease: the lease let two processes in at once", got.Attempts, 2*rounds)
	}
	t.Logf("%d reads during the helpers' %d lease rounds", reads.Load(), 2*rounds)
}

// TestFileProcessHelper is the body of a helper process; it does nothing
// in a normal test run.
func TestFileProcessHelper(t *testing.T) {
	path := os.Getenv(helperPathEnv)
	if path == "" {
		t.Skip("only run as a helper process of TestFileLeaseAcrossProcesses")
	}
	id := os.Getenv(helperIDEnv)
	rounds, err := strconv.Atoi(os.Getenv(helperRoundsEnv))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(time.Minute)
	for i := 0; i < rounds; {
		lease, err := s.AcquireLease(ctx, "org", id, time.Minute)
		var held *LeaseHeldError
		if errors.As(err, &held) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("round %d: AcquireLease: %v", i, err)
		}
		p, _, err := s.GetPair(ctx, counterKey)
		if err != nil {
			t.Fatal(err)
		}
		p.Attempts++
		if _, err := s.PutPair(ctx, p); err != nil {
			t.Fatalf("round %d: increment under the lease: %v", i, err)
		}
		if err := s.ReleaseLease(ctx, lease); err != nil {
			t.Fatal(err)
		}
		i++
	}
}
