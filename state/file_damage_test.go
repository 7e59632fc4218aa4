package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeStateFixture writes a state file with enough pairs for the pairs
// bucket to need branch pages, a few runs and a lease, and returns its
// bytes.
func writeStateFixture(t testing.TB, path string) []byte {
	t.Helper()
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 300 {
		status := PairSettled
		if i%7 == 0 {
			status = PairFailed
		}
		p := newPair(key(fmt.Sprintf("ami-%017d", i), "111122223333", "eu-west-1"), "999988887777", status)
		p.LastError = strings.Repeat("x", 100)
		if _, err := s.PutPair(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := s.PutRun(ctx, Run{ID: fmt.Sprintf("run-%d", i), Scope: "999988887777", Started: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AcquireLease(ctx, "999988887777", "run-2", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fixtureLayout locates the pages of a fixture the damage goes to.
type fixtureLayout struct {
	meta          boltMeta
	branch, leaf  uint64 // a branch page and a leaf page of the pairs tree
	olderMetaPage int64  // offset of the meta page bbolt does not use
}

func layoutOf(t *testing.T, data []byte) fixtureLayout {
	t.Helper()
	bf, err := checkHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("the fixture does not pass its own check: %v", err)
	}
	l := fixtureLayout{meta: bf.meta}
	ps := bf.meta.pageSize
	if m0, err := parseMeta(data); err == nil && m0.txid == bf.meta.txid {
		l.olderMetaPage = int64(ps)
	}
	free, _ := bf.freePages()
	isFree := map[uint64]bool{}
	for _, id := range free {
		isFree[id] = true
	}
	for id := uint64(2); id < bf.meta.hwm; id++ {
		hdr := data[id*ps:]
		if binary.NativeEndian.Uint64(hdr) != id || isFree[id] || id == bf.meta.root {
			continue
		}
		switch binary.NativeEndian.Uint16(hdr[8:]) {
		case boltBranchPage:
			l.branch = id
		case boltLeafPage:
			if binary.NativeEndian.Uint16(hdr[10:]) > 3 {
				l.leaf = id
			}
		}
	}
	if l.branch == 0 || l.leaf == 0 || bf.meta.freelist == boltNoFreelist {
		t.Fatalf("the fixture lacks a branch page, a leaf page or a freelist: %+v", l)
	}
	return l
}

// TestFileDamaged: a damaged file is refused with a DamagedFileError that
// names it and says how to recover, by the writable and the read-only
// store alike, and never crashes the process (bbolt would: SIGBUS on a
// file cut short, "invalid freelist page" and assertion panics on pages
// overwritten).
func TestFileDamaged(t *testing.T) {
	dir := t.TempDir()
	good := writeStateFixture(t, filepath.Join(dir, "fixture.db"))
	l := layoutOf(t, good)
	ps := int64(l.meta.pageSize)
	garbage := bytes.Repeat([]byte("garbage!"), int(ps)/8)
	overwrite := func(id uint64, with []byte) func([]byte) []byte {
		return func(b []byte) []byte { copy(b[int64(id)*ps:], with); return b }
	}
	poke := func(off int64, v uint64, width int) func([]byte) []byte {
		return func(b []byte) []byte {
			switch width {
			case 4:
				binary.NativeEndian.PutUint32(b[off:], uint32(v))
			case 8:
				binary.NativeEndian.PutUint64(b[off:], v)
			}
			return b
		}
	}
	const hdr, elem = boltPageHeaderSize, boltElementSize
	tests := []struct {
		name    string
		damage  func([]byte) []byte
		want    string
		foreign bool
	}{
		{"truncated to 10000 bytes", func(b []byte) []byte { return b[:10000] }, "it was cut short", false},
		{"truncated by one page", func(b []byte) []byte { return b[:int64(l.meta.hwm-1)*ps] }, "it was cut short", false},
		{"truncated inside the meta pages", func(b []byte) []byte { return b[:ps+100] }, "shorter than its two meta pages", false},
		{"empty", func([]byte) []byte { return nil }, "it is empty (0 bytes)", false},
		{"not bbolt", func([]byte) []byte { return []byte(strings.Repeat("not a database\n", 1000)) }, "not a bbolt database", true},
		{"freelist page overwritten", overwrite(l.meta.freelist, garbage), "the freelist (page", false},
		{"freelist lists a page past the end", poke(int64(l.meta.freelist)*ps+hdr, l.meta.hwm+5, 8), "outside pages 2 to", false},
		{"freelist lists a page in use", func(b []byte) []byte {
			binary.NativeEndian.PutUint16(b[int64(l.meta.freelist)*ps+10:], 1)
			binary.NativeEndian.PutUint64(b[int64(l.meta.freelist)*ps+hdr:], l.leaf)
			return b
		}, "in use and also listed as free", false},
		{"root page overwritten", overwrite(l.meta.root, garbage), "the root page", false},
		{"leaf page overwritten", overwrite(l.leaf, garbage), "is overwritten", false},
		{"branch page overwritten", overwrite(l.branch, garbage), "is overwritten", false},
		{"leaf element points out of its page", poke(int64(l.leaf)*ps+hdr+4, 0xFFFF_FF00, 4), "points past the end of the page", false},
		{"branch child past the end", poke(int64(l.branch)*ps+hdr+8, l.meta.hwm+1000, 8), "outside pages 2 to", false},
		{"branch child is the branch itself", poke(int64(l.branch)*ps+hdr+elem+8, l.branch, 8), "is in use twice", false},
		{"page claims too many overflow pages", poke(int64(l.leaf)*ps+12, 1<<30, 4), "past the last page", false},
		{"both meta pages broken", func(b []byte) []byte {
			b[hdr+20]++
			b[ps+hdr+20]++
			return b
		}, "both meta pages are invalid", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			if err := os.WriteFile(path, tc.damage(bytes.Clone(good)), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, open := range []struct {
				name string
				fn   func(string, ...Option) (*File, error)
			}{{"OpenFile", OpenFile}, {"OpenFileReadOnly", OpenFileReadOnly}} {
				s, err := open.fn(path)
				if err == nil {
					s.Close()
					t.Fatalf("%s of a damaged file succeeded", open.name)
				}
				var d *DamagedFileError
				if !errors.As(err, &d) || !errors.Is(err, ErrDamaged) {
					t.Fatalf("%s: err = %v (%T), want a *DamagedFileError", open.name, err, err)
				}
				msg := err.Error()
				for _, want := range []string{path, tc.want, "move it aside", "mv " + path + " " + path + ".damaged", "run again"} {
					if !strings.Contains(msg, want) {
						t.Errorf("%s: error %q does not say %q", open.name, msg, want)
					}
				}
				if d.Foreign != tc.foreign {
					t.Errorf("%s: Foreign = %v, want %v (%s)", open.name, d.Foreign, tc.foreign, msg)
				}
			}
			// Nothing was written to the damaged file.
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.damage(bytes.Clone(good))) {
				t.Error("opening the damaged file changed it")
			}
		})
	}
}

// TestFileOlderMetaPage: bbolt writes each commit's meta page over the
// older of two; if that write was cut short (its checksum fails), bbolt
// uses the other, intact one. That is recovery, not damage.
func TestFileOlderMetaPage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	data := writeStateFixture(t, path)
	l := layoutOf(t, data)
	newer := int64(l.meta.pageSize) - l.olderMetaPage // the page bbolt uses
	data[newer+boltPageHeaderSize+20]++               // break its checksum
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFileReadOnly(path)
	if err != nil {
		t.Fatalf("a file whose newer meta page is torn: %v", err)
	}
	defer s.Close()
	runs, err := s.RecentRuns(context.Background(), "999988887777", 10)
	if err != nil || len(runs) != 3 {
		t.Errorf("RecentRuns from the older meta page = %d runs, %v", len(runs), err)
	}
}

// TestFileDamagedWhileOpen: damage done to the file after a store opened
// it (cut short, or pages overwritten) is reported as damage by the next
// operation, not a crash.
func TestFileDamagedWhileOpen(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, l fixtureLayout)
		want   string
	}{
		// Seen before the transaction, by the header check.
		{"truncated", func(t *testing.T, path string, _ fixtureLayout) {
			if err := os.Truncate(path, 10000); err != nil {
				t.Fatal(err)
			}
		}, "it was cut short"},
		// Seen when bbolt trips over it inside the transaction: the
		// panic is caught and the file checked again.
		{"every data page overwritten", func(t *testing.T, path string, l fixtureLayout) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ps := int64(l.meta.pageSize)
			for id := uint64(2); id < l.meta.hwm; id++ {
				if id == l.meta.root || id == l.meta.freelist {
					continue
				}
				if _, err := f.WriteAt(bytes.Repeat([]byte("garbage!"), int(ps)/8), int64(id)*ps); err != nil {
					t.Fatal(err)
				}
			}
		}, "found when reading it failed after amicopier had checked it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			l := layoutOf(t, writeStateFixture(t, path))
			s, err := OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tc.damage(t, path, l)
			_, err = s.UnsettledPairs(ctx, "999988887777")
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("UnsettledPairs after the damage: err = %v, want a DamagedFileError naming %s and saying %q", err, path, tc.want)
			}
			_, err = s.PutPair(ctx, newPair(key("ami-new", "111122223333", "eu-west-1"), "999988887777", PairCopying))
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("PutPair after the damage: err = %v, want a DamagedFileError", err)
			}
		})
	}
}

// FuzzFileOpen: whatever the bytes of a state file, opening it gives a
// store or an error, never a crash; and a file that passed the checks
// never makes bbolt fail later (which the store would report as the file
// changing while in use).
func FuzzFileOpen(f *testing.F) {
	dir := f.TempDir()
	good := writeStateFixture(f, filepath.Join(dir, "fixture.db"))
	small := filepath.Join(dir, "small.db")
	s, err := OpenFile(small)
	if err != nil {
		f.Fatal(err)
	}
	_, _ = s.PutPair(context.Background(), newPair(key("ami-1", "111122223333", "eu-west-1"), "999988887777", PairFailed))
	_ = s.Close()
	smallData, err := os.ReadFile(small)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(smallData)
	f.Add(good)
	f.Add(good[:10000])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "state.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		inUse := func(err error) {
			t.Helper()
			var d *DamagedFileError
			if errors.As(err, &d) && strings.Contains(d.Problem, "after amicopier had checked it") {
				t.Fatalf("a file that passed the checks failed in use: %v", err)
			}
		}
		r, err := OpenFileReadOnly(path, WithLockTimeout(time.Second))
		if err != nil {
			return
		}
		_, err = r.UnsettledPairs(ctx, "999988887777")
		inUse(err)
		_, err = r.RecentRuns(ctx, "999988887777", 10)
		inUse(err)
		_, _, err = r.GetPair(ctx, key("ami-1", "111122223333", "eu-west-1"))
		inUse(err)
		_ = r.Close()
		w, err := OpenFile(path, WithLockTimeout(time.Second))
		if err != nil {
			return
		}
		defer w.Close()
		_, err = w.PutPair(ctx, newPair(key("ami-fuzz", "111122223333", "eu-west-1"), "999988887777", PairCopying))
		inUse(err)
		inUse(w.PutRun(ctx, Run{ID: "fuzz", Scope: "999988887777", Started: time.Now()}))
		_, err = w.AcquireLease(ctx, "999988887777", "fuzz", time.Minute)
		inUse(err)
	})
}

// TestFilePanicOfABugIsNotDamage: a panic in a transaction with the file
// sound is a bug, and is not disguised as a damaged file.
func TestFilePanicOfABugIsNotDamage(t *testing.T) {
	s := openFileForTest(t, time.Now).(*File)
	func() {
		defer func() {
			if r := recover(); r != "a bug" {
				t.Errorf("recovered %v, want the panic of the transaction", r)
			}
		}()
		_ = s.view(context.Background(), "panic", func(*bolt.Tx) error { panic("a bug") })
		t.Error("the panic of a transaction was swallowed")
	}()
	// The store is still usable.
	if _, _, err := s.GetPair(context.Background(), key("ami-1", "111122223333", "eu-west-1")); err != nil {
		t.Errorf("GetPair after the panic: %v", err)
	}
}
