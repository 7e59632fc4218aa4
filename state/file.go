package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileSchemaVersion is the layout version this build writes and reads.
// OpenFile refuses a file with a newer one rather than misread it.
const FileSchemaVersion = 1

// Bucket layout (every record is JSON):
//
//	meta                          schema_version -> decimal FileSchemaVersion
//	pairs                         PairKey.String() -> Pair
//	unsettled/<source account>    PairKey.String() -> status; only unsettled pairs
//	runs/<scope>/by_time          runTimeKey(Started, ID) -> Run
//	runs/<scope>/by_id            ID -> runTimeKey(Started, ID)
//	run_expiry                    runTimeKey(ExpiresAt, ...) ++ scope ++ ID -> empty
//	leases                        scope -> Lease
//
// The unsettled index is written in the same transaction as the pair, so a
// normal run reads it without touching settled pairs. by_time sorts runs
// oldest first; RecentRuns walks it backwards. run_expiry sorts runs by
// expiry so each PutRun can delete a few expired ones without scanning.
var (
	bucketMeta      = []byte("meta")
	bucketPairs     = []byte("pairs")
	bucketUnsettled = []byte("unsettled")
	bucketRuns      = []byte("runs")
	bucketRunExpiry = []byte("run_expiry")
	bucketLeases    = []byte("leases")
	bucketByTime    = []byte("by_time")
	bucketByID      = []byte("by_id")
	keySchema       = []byte("schema_version")
)

// expirySweepLimit bounds the expired runs one PutRun deletes, so a file
// that has not been written for months does not make one write slow.
const expirySweepLimit = 64

// File is a Store in a local bbolt file: the default for local runs. The
// file is locked while open, so a second process cannot use it at the same
// time.
type File struct {
	path string
	opts options

	// mu guards db against Close: operations hold it shared, Close
	// exclusively. bbolt itself serialises writers.
	mu sync.RWMutex
	db *bolt.DB // nil once closed
}

var _ Store = (*File)(nil)

// OpenFile opens or creates the state file at path, creating its parent
// directories. If another process holds the file it waits at most the lock
// timeout (WithLockTimeout) and then fails with an error naming the path.
func OpenFile(path string, opts ...Option) (*File, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: state file path is empty", ErrInvalid)
	}
	o := buildOptions(opts)
	if o.lockTimeout <= 0 {
		return nil, fmt.Errorf("%w: state file %s: lock timeout must be positive, got %s", ErrInvalid, path, o.lockTimeout)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state file %s: create directory: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("state file %s is locked by another amicopier process (waited %s): %w", path, o.lockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("state file %s: open: %w", path, err)
	}
	if err := db.Update(initSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return &File{path: path, opts: o, db: db}, nil
}

// initSchema creates the buckets of a new file and checks the schema
// version of an existing one.
func initSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		if !empty {
			return errors.New("not an amicopier state file (it has no meta bucket)")
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return fmt.Errorf("create meta bucket: %w", err)
		}
		if err := meta.Put(keySchema, []byte(strconv.Itoa(FileSchemaVersion))); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
	}
	raw := meta.Get(keySchema)
	if raw == nil {
		return errors.New("meta bucket has no schema version")
	}
	v, err := strconv.Atoi(string(raw))
	if err != nil {
		return fmt.Errorf("malformed schema version %q: %w", raw, err)
	}
	if v > FileSchemaVersion {
		return fmt.Errorf("schema version %d is newer than this amicopier supports (%d): upgrade amicopier", v, FileSchemaVersion)
	}
	if v < FileSchemaVersion {
		return fmt.Errorf("schema version %d is older than any this amicopier can read (%d)", v, FileSchemaVersion)
	}
	for _, name := range [][]byte{bucketPairs, bucketUnsettled, bucketRuns, bucketRunExpiry, bucketLeases} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// Path returns the file the store was opened on.
func (f *File) Path() string { return f.path }

// view and update run fn in a read or write transaction. Errors fn returns
// pass through untouched, so conflict and lease errors read the same as
// the memory store's; failures of the file itself name the path.
func (f *File) view(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	return f.tx(ctx, op, false, fn)
}

func (f *File) update(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	return f.tx(ctx, op, true, fn)
}

func (f *File) tx(ctx context.Context, op string, write bool, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return fmt.Errorf("state file %s: %s: %w", f.path, op, ErrClosed)
	}
	var fnErr error
	run := func(tx *bolt.Tx) error { fnErr = fn(tx); return fnErr }
	var err error
	if write {
		err = f.db.Update(run)
	} else {
		err = f.db.View(run)
	}
	if err != nil && fnErr == nil {
		return fmt.Errorf("state file %s: %s: %w", f.path, op, err)
	}
	return err
}

// storageErr wraps a failure inside a transaction with the file's path.
func (f *File) storageErr(op string, err error) error {
	return fmt.Errorf("state file %s: %s: %w", f.path, op, err)
}

// UnsettledPairs implements Store. Pairs come ordered by key.
func (f *File) UnsettledPairs(ctx context.Context, source string) ([]Pair, error) {
	if err := validateSource(source); err != nil {
		return nil, err
	}
	var out []Pair
	err := f.view(ctx, "read unsettled pairs of "+source, func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketUnsettled).Bucket([]byte(source))
		if idx == nil {
			return nil
		}
		pairs := tx.Bucket(bucketPairs)
		return idx.ForEach(func(k, _ []byte) error {
			raw := pairs.Get(k)
			if raw == nil {
				return f.storageErr("read unsettled pairs of "+source,
					fmt.Errorf("index names pair %s, which is not stored", k))
			}
			var p Pair
			if err := json.Unmarshal(raw, &p); err != nil {
				return f.storageErr("decode pair "+string(k), err)
			}
			out = append(out, p)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetPair implements Store.
func (f *File) GetPair(ctx context.Context, key PairKey) (Pair, bool, error) {
	if err := validatePairKey(key); err != nil {
		return Pair{}, false, err
	}
	var (
		p     Pair
		found bool
	)
	err := f.view(ctx, "get pair "+key.String(), func(tx *bolt.Tx) error {
		var err error
		p, found, err = f.loadPair(tx, key)
		return err
	})
	if err != nil {
		return Pair{}, false, err
	}
	return p, found, nil
}

func (f *File) loadPair(tx *bolt.Tx, key PairKey) (Pair, bool, error) {
	raw := tx.Bucket(bucketPairs).Get([]byte(key.String()))
	if raw == nil {
		return Pair{}, false, nil
	}
	var p Pair
	if err := json.Unmarshal(raw, &p); err != nil {
		return Pair{}, false, f.storageErr("decode pair "+key.String(), err)
	}
	return p, true, nil
}

// PutPair implements Store.
func (f *File) PutPair(ctx context.Context, p Pair) (Pair, error) {
	if err := validatePair(p); err != nil {
		return Pair{}, err
	}
	op := "put pair " + p.Key.String()
	var next Pair
	err := f.update(ctx, op, func(tx *bolt.Tx) error {
		stored, found, err := f.loadPair(tx, p.Key)
		if err != nil {
			return err
		}
		if next, err = nextPair(stored, found, p, f.opts.now()); err != nil {
			return err
		}
		data, err := json.Marshal(next)
		if err != nil {
			return f.storageErr(op, err)
		}
		k := []byte(next.Key.String())
		if err := tx.Bucket(bucketPairs).Put(k, data); err != nil {
			return f.storageErr(op, err)
		}
		index := tx.Bucket(bucketUnsettled)
		if found && stored.Source != next.Source {
			if err := unindex(index, stored.Source, k); err != nil {
				return f.storageErr(op, err)
			}
		}
		if next.Status.Settled() {
			err = unindex(index, next.Source, k)
		} else {
			var idx *bolt.Bucket
			if idx, err = index.CreateBucketIfNotExists([]byte(next.Source)); err == nil {
				err = idx.Put(k, []byte(next.Status))
			}
		}
		if err != nil {
			return f.storageErr(op, err)
		}
		return nil
	})
	if err != nil {
		return Pair{}, err
	}
	return next, nil
}

// unindex removes a pair from a source's unsettled index, and the source's
// bucket once it is empty so the index stays as sparse as the pairs.
func unindex(index *bolt.Bucket, source string, k []byte) error {
	idx := index.Bucket([]byte(source))
	if idx == nil {
		return nil
	}
	if err := idx.Delete(k); err != nil {
		return err
	}
	if first, _ := idx.Cursor().First(); first == nil {
		return index.DeleteBucket([]byte(source))
	}
	return nil
}

// PutRun implements Store. It also deletes up to expirySweepLimit expired
// runs of any scope, standing in for DynamoDB's TTL.
func (f *File) PutRun(ctx context.Context, r Run) error {
	if err := validateRun(r); err != nil {
		return err
	}
	r = cloneRun(r)
	op := fmt.Sprintf("put run %s of scope %s", r.ID, r.Scope)
	return f.update(ctx, op, func(tx *bolt.Tx) error {
		if err := f.sweepExpiredRuns(tx, f.opts.now()); err != nil {
			return err
		}
		if err := f.deleteRun(tx, r.Scope, []byte(r.ID)); err != nil {
			return err
		}
		data, err := json.Marshal(r)
		if err != nil {
			return f.storageErr(op, err)
		}
		scope, err := tx.Bucket(bucketRuns).CreateBucketIfNotExists([]byte(r.Scope))
		if err == nil {
			err = putRunRecord(tx, scope, r, data)
		}
		if err != nil {
			return f.storageErr(op, err)
		}
		return nil
	})
}

func putRunRecord(tx *bolt.Tx, scope *bolt.Bucket, r Run, data []byte) error {
	byTime, err := scope.CreateBucketIfNotExists(bucketByTime)
	if err != nil {
		return err
	}
	byID, err := scope.CreateBucketIfNotExists(bucketByID)
	if err != nil {
		return err
	}
	tk := runTimeKey(r.Started, r.ID)
	if err := byTime.Put(tk, data); err != nil {
		return err
	}
	if err := byID.Put([]byte(r.ID), tk); err != nil {
		return err
	}
	if r.ExpiresAt.IsZero() {
		return nil
	}
	return tx.Bucket(bucketRunExpiry).Put(runExpiryKey(r.ExpiresAt, r.Scope, r.ID), []byte{})
}

// deleteRun removes a run and its index entries, if it is stored.
func (f *File) deleteRun(tx *bolt.Tx, scopeName string, id []byte) error {
	op := fmt.Sprintf("delete run %s of scope %s", id, scopeName)
	scope := tx.Bucket(bucketRuns).Bucket([]byte(scopeName))
	if scope == nil {
		return nil
	}
	byTime, byID := scope.Bucket(bucketByTime), scope.Bucket(bucketByID)
	if byTime == nil || byID == nil {
		return nil
	}
	tk := byID.Get(id)
	if tk == nil {
		return nil
	}
	tk = bytes.Clone(tk)
	if raw := byTime.Get(tk); raw != nil {
		var old Run
		if err := json.Unmarshal(raw, &old); err != nil {
			return f.storageErr("decode "+op, err)
		}
		if !old.ExpiresAt.IsZero() {
			if err := tx.Bucket(bucketRunExpiry).Delete(runExpiryKey(old.ExpiresAt, old.Scope, old.ID)); err != nil {
				return f.storageErr(op, err)
			}
		}
	}
	if err := byTime.Delete(tk); err != nil {
		return f.storageErr(op, err)
	}
	if err := byID.Delete(id); err != nil {
		return f.storageErr(op, err)
	}
	return nil
}

// sweepExpiredRuns deletes the runs whose expiry has passed, oldest expiry
// first, at most expirySweepLimit of them.
func (f *File) sweepExpiredRuns(tx *bolt.Tx, now time.Time) error {
	expiry := tx.Bucket(bucketRunExpiry)
	var due [][]byte
	c := expiry.Cursor()
	for k, _ := c.First(); k != nil && len(due) < expirySweepLimit; k, _ = c.Next() {
		t, _, _, ok := parseRunExpiryKey(k)
		if !ok {
			return f.storageErr("sweep expired runs", fmt.Errorf("malformed expiry key %x", k))
		}
		if now.Before(t) {
			break
		}
		due = append(due, bytes.Clone(k))
	}
	for _, k := range due {
		_, scope, id, _ := parseRunExpiryKey(k)
		if err := f.deleteRun(tx, scope, []byte(id)); err != nil {
			return err
		}
		// deleteRun removes the entry through the stored record; an entry
		// without a record would otherwise stay due forever.
		if err := expiry.Delete(k); err != nil {
			return f.storageErr("sweep expired runs", err)
		}
	}
	return nil
}

// RecentRuns implements Store. It reads the scope's runs newest first and
// stops after limit live ones.
func (f *File) RecentRuns(ctx context.Context, scope string, limit int) ([]Run, error) {
	if err := validateRecent(scope, limit); err != nil {
		return nil, err
	}
	var out []Run
	op := "read runs of scope " + scope
	err := f.view(ctx, op, func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketRuns).Bucket([]byte(scope))
		if sb == nil {
			return nil
		}
		byTime := sb.Bucket(bucketByTime)
		if byTime == nil {
			return nil
		}
		now := f.opts.now()
		c := byTime.Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var r Run
			if err := json.Unmarshal(v, &r); err != nil {
				return f.storageErr(op, fmt.Errorf("decode run: %w", err))
			}
			if !runExpired(r, now) {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AcquireLease implements Store.
func (f *File) AcquireLease(ctx context.Context, scope, holder string, ttl time.Duration) (Lease, error) {
	if err := validateLease(scope, holder, ttl); err != nil {
		return Lease{}, err
	}
	var l Lease
	err := f.update(ctx, "acquire lease of scope "+scope, func(tx *bolt.Tx) error {
		cur, found, err := f.loadLease(tx, scope)
		if err != nil {
			return err
		}
		if l, err = acquireLease(cur, found, scope, holder, ttl, f.opts.now()); err != nil {
			return err
		}
		return f.storeLease(tx, l)
	})
	if err != nil {
		return Lease{}, err
	}
	return l, nil
}

// RenewLease implements Store.
func (f *File) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if err := validateLease(l.Scope, l.Holder, ttl); err != nil {
		return Lease{}, err
	}
	var next Lease
	err := f.update(ctx, "renew lease of scope "+l.Scope, func(tx *bolt.Tx) error {
		cur, found, err := f.loadLease(tx, l.Scope)
		if err != nil {
			return err
		}
		if next, err = renewLease(cur, found, l, ttl, f.opts.now()); err != nil {
			return err
		}
		return f.storeLease(tx, next)
	})
	if err != nil {
		return Lease{}, err
	}
	return next, nil
}

// ReleaseLease implements Store.
func (f *File) ReleaseLease(ctx context.Context, l Lease) error {
	if err := validateRelease(l); err != nil {
		return err
	}
	op := "release lease of scope " + l.Scope
	return f.update(ctx, op, func(tx *bolt.Tx) error {
		cur, found, err := f.loadLease(tx, l.Scope)
		if err != nil || !releaseLease(cur, found, l) {
			return err
		}
		if err := tx.Bucket(bucketLeases).Delete([]byte(l.Scope)); err != nil {
			return f.storageErr(op, err)
		}
		return nil
	})
}

func (f *File) loadLease(tx *bolt.Tx, scope string) (Lease, bool, error) {
	raw := tx.Bucket(bucketLeases).Get([]byte(scope))
	if raw == nil {
		return Lease{}, false, nil
	}
	var l Lease
	if err := json.Unmarshal(raw, &l); err != nil {
		return Lease{}, false, f.storageErr("decode lease of scope "+scope, err)
	}
	return l, true, nil
}

func (f *File) storeLease(tx *bolt.Tx, l Lease) error {
	data, err := json.Marshal(l)
	if err == nil {
		err = tx.Bucket(bucketLeases).Put([]byte(l.Scope), data)
	}
	if err != nil {
		return f.storageErr("store lease of scope "+l.Scope, err)
	}
	return nil
}

// Close implements Store: it releases the file lock. Closing twice is not
// an error.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.db == nil {
		return nil
	}
	err := f.db.Close()
	f.db = nil
	if err != nil {
		return fmt.Errorf("state file %s: close: %w", f.path, err)
	}
	return nil
}

// runTimeKeyLen is the width of the time prefix of run keys.
const runTimeKeyLen = 12

// runTimeKey encodes t so that byte order is time order (whole seconds
// with the sign bit flipped, then nanoseconds, big-endian), followed by
// the run id to break ties and keep keys unique.
func runTimeKey(t time.Time, id string) []byte {
	k := make([]byte, runTimeKeyLen, runTimeKeyLen+len(id))
	binary.BigEndian.PutUint64(k, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(k[8:], uint32(t.Nanosecond()))
	return append(k, id...)
}

func parseRunTime(k []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
	nsec := int64(binary.BigEndian.Uint32(k[8:]))
	return time.Unix(sec, nsec).UTC()
}

// runExpiryKey is the expiry time, then the scope length-prefixed (scopes
// are free text), then the run id.
func runExpiryKey(expires time.Time, scope, id string) []byte {
	k := runTimeKey(expires, "")
	k = binary.AppendUvarint(k, uint64(len(scope)))
	k = append(k, scope...)
	return append(k, id...)
}

func parseRunExpiryKey(k []byte) (expires time.Time, scope, id string, ok bool) {
	if len(k) < runTimeKeyLen {
		return time.Time{}, "", "", false
	}
	expires = parseRunTime(k)
	rest := k[runTimeKeyLen:]
	n, w := binary.Uvarint(rest)
	if w <= 0 || uint64(len(rest)-w) < n {
		return time.Time{}, "", "", false
	}
	rest = rest[w:]
	return expires, string(rest[:n]), string(rest[n:]), true
}
