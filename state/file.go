package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
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

// maxBatch bounds the writes one transaction commits for many callers.
const maxBatch = 256

// File is a Store in a local bbolt file: the default for local runs.
//
// The file is open only for the moment of one transaction: each read
// opens it with a shared lock (flock), each write with an exclusive one,
// and closes it at once. Several processes can therefore use one file at
// the same time (a run, and status or plan beside it), and runs exclude
// each other through the lease stored in the file, as with the other
// backends, rather than through the lock. Writes that callers make at the
// same time go into one transaction (one open, one commit), so a run that
// writes from many goroutines does not pay the open for every write.
//
// bbolt maps the file into memory and trusts it, so the file is checked
// before bbolt sees it (file_check.go): fully when the store opens it,
// and its meta pages, size and freelist before every transaction. A
// damaged file gives a *DamagedFileError, never a crash.
type File struct {
	path     string
	opts     options
	readOnly bool

	// life is held shared by operations and exclusively by Close.
	life   sync.RWMutex
	closed bool // guarded by life

	// turn is this process's right to use the file, one transaction at a
	// time: flock(2) locks belong to an open file, so two handles of one
	// process exclude each other as two processes do.
	turn chan struct{}

	qmu   sync.Mutex
	queue []*writeReq // writes waiting for a transaction; guarded by qmu

	commits atomic.Int64 // write transactions committed, for benchmarks
}

var _ Store = (*File)(nil)

// writeReq is one write waiting for a transaction. fn must change
// nothing before it returns a refusal (refused), so a refused write can
// share a transaction with others.
type writeReq struct {
	ctx  context.Context
	op   string
	fn   func(*bolt.Tx) error
	err  error
	done chan struct{}
}

// ErrReadOnly is returned by the writes of a store opened with
// OpenFileReadOnly.
var ErrReadOnly = errors.New("the state file was opened read-only")

// DamagedFileError says that a state file cannot be used as it is: it is
// damaged, or it is not an amicopier state file at all. Its message says
// how to recover.
type DamagedFileError struct {
	Path string
	// Problem says what is wrong, for people.
	Problem string
	// Foreign is set when the file is not a state file at all (not bbolt,
	// or another program's bbolt file): state.path may name the wrong file.
	Foreign bool
}

func (e *DamagedFileError) Error() string {
	move := fmt.Sprintf("move it aside (mv %s %s) and run again", shellQuote(e.Path), shellQuote(e.Path+".damaged"))
	if e.Foreign {
		return fmt.Sprintf("state file %s is not an amicopier state file: %s. Check state.path; if this is the state file, "+
			"it is damaged: the state is only amicopier's memory (EC2 is the truth), so %s", e.Path, e.Problem, move)
	}
	return fmt.Sprintf("state file %s is damaged: %s. The state is only amicopier's memory (EC2 is the truth): %s; "+
		"the next run starts afresh from what EC2 shows, forgetting only attempt counts, failures and past runs", e.Path, e.Problem, move)
}

// Is makes errors.Is(err, ErrDamaged) true for every DamagedFileError.
func (e *DamagedFileError) Is(target error) bool { return target == ErrDamaged }

// ErrDamaged matches every *DamagedFileError (errors.Is).
var ErrDamaged = errors.New("the state file is damaged")

// shellQuote quotes a path for a command line a user may paste.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:,@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// OpenFile opens the state file at path for reading and writing, creating
// it and its parent directories if it does not exist. It checks the whole
// file first: a damaged one gives a *DamagedFileError. The file is not
// held open afterwards (see File).
func OpenFile(path string, opts ...Option) (*File, error) {
	return openFile(path, false, opts)
}

// OpenFileReadOnly opens an existing state file for reading only (status,
// plan): it creates nothing, needs no write permission on the file or its
// directory, and its writes fail with ErrReadOnly. A missing file is an
// error wrapping fs.ErrNotExist.
func OpenFileReadOnly(path string, opts ...Option) (*File, error) {
	return openFile(path, true, opts)
}

func openFile(path string, readOnly bool, opts []Option) (*File, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: state file path is empty", ErrInvalid)
	}
	o := buildOptions(opts)
	if o.lockTimeout <= 0 {
		return nil, fmt.Errorf("%w: state file %s: lock timeout must be positive, got %s", ErrInvalid, path, o.lockTimeout)
	}
	f := &File{path: path, opts: o, readOnly: readOnly, turn: make(chan struct{}, 1)}
	if !readOnly {
		if err := f.create(); err != nil {
			return nil, err
		}
	}
	needsInit := false
	err := f.withDB(dbCheck, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			if err := f.consistency(tx); err != nil {
				return err
			}
			var err error
			needsInit, err = f.checkSchema(tx)
			return err
		})
	})
	if err == nil && needsInit && !readOnly {
		err = f.withDB(dbWrite, func(db *bolt.DB) error {
			if err := db.Update(initSchema); err != nil {
				return fmt.Errorf("state file %s: %w", path, err)
			}
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// create makes a missing state file: a complete empty one is written
// beside it and linked into place, so that a crash never leaves a file
// half made, and two processes creating it at once end up with one file.
func (f *File) create() error {
	if _, err := os.Stat(f.path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil // opening it says what is wrong, if anything
	}
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state file %s: create directory: %w", f.path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".*.new")
	if err != nil {
		return fmt.Errorf("state file %s: create: %w", f.path, err)
	}
	name := tmp.Name()
	_ = tmp.Close()
	defer os.Remove(name)
	db, err := bolt.Open(name, 0o600, &bolt.Options{Timeout: f.opts.lockTimeout})
	if err == nil {
		err = db.Update(initSchema)
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("state file %s: create: %w", f.path, err)
	}
	if err := os.Link(name, f.path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process created it first
		}
		// A file system without hard links: rename, unless the file
		// appeared meanwhile.
		if _, serr := os.Stat(f.path); serr == nil {
			return nil
		}
		if err := os.Rename(name, f.path); err != nil {
			return fmt.Errorf("state file %s: create: %w", f.path, err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new name durable
		_ = d.Close()
	}
	return nil
}

// consistency runs bbolt's own check of the whole file (safe once
// checkTree passed: every page it follows was checked).
func (f *File) consistency(tx *bolt.Tx) error {
	var problems []string
	n := 0
	for err := range tx.Check() {
		if n++; len(problems) < 3 {
			problems = append(problems, err.Error())
		}
	}
	if n == 0 {
		return nil
	}
	more := ""
	if n > len(problems) {
		more = fmt.Sprintf(" and %d more", n-len(problems))
	}
	return &DamagedFileError{Path: f.path, Problem: fmt.Sprintf("bbolt's consistency check found %d problem(s): %s%s",
		n, strings.Join(problems, "; "), more)}
}

// checkSchema checks the meta bucket of a file. needsInit says buckets
// are missing: a writer creates them; a reader reads them as empty.
func (f *File) checkSchema(tx *bolt.Tx) (needsInit bool, err error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		if !empty {
			return false, &DamagedFileError{Path: f.path, Foreign: true,
				Problem: "it is a bbolt database of another program (it has no meta bucket)"}
		}
		return true, nil
	}
	if err := checkSchemaVersion(meta); err != nil {
		return false, fmt.Errorf("state file %s: %w", f.path, err)
	}
	for _, name := range [][]byte{bucketPairs, bucketUnsettled, bucketRuns, bucketRunExpiry, bucketLeases} {
		if tx.Bucket(name) == nil {
			needsInit = true
		}
	}
	return needsInit, nil
}

func checkSchemaVersion(meta *bolt.Bucket) error {
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
	return nil
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
	if err := checkSchemaVersion(meta); err != nil {
		return err
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

// dbMode is how withDB opens the file.
type dbMode int

const (
	dbRead  dbMode = iota // shared lock, read-only handle
	dbWrite               // exclusive lock, writable handle
	dbCheck               // shared lock, read-only handle, the whole file checked first
)

// errLockTimeout is the lock wait running out.
var errLockTimeout = errors.New("timed out waiting for the file lock")

// withDB opens the file in mode, runs fn and closes the file. The file
// is locked and checked (checkHeader, and with dbCheck checkTree) on the
// descriptor bbolt then maps, before bbolt reads any of it. Errors of
// opening and closing name the path; fn's come back as fn returned them.
//
// A fault in the mapping or a panic of bbolt can still happen if the file
// is damaged after the check, while this process uses it. Then the whole
// file is checked again: what that finds becomes a *DamagedFileError
// instead of a crash, and so does any fault in the mapping
// (debug.SetPanicOnFault). A panic with the file found sound is a bug,
// and goes on.
func (f *File) withDB(mode dbMode, fn func(*bolt.DB) error) (err error) {
	var file *os.File
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if file != nil {
			_ = file.Close() // releases the lock if bbolt did not get to it
		}
		_, fault := r.(interface{ Addr() uintptr })
		finding := f.recheck()
		if finding == nil && !fault {
			panic(r)
		}
		problem := fmt.Sprintf("reading it failed (%v) after amicopier had checked it, so it was changed while in use", r)
		if finding != nil {
			problem = fmt.Sprintf("%v (found when reading it failed after amicopier had checked it: %v)", finding, r)
		}
		err = &DamagedFileError{Path: f.path, Problem: problem}
	}()
	open := func(name string, _ int, _ os.FileMode) (*os.File, error) {
		fl, err := f.lockAndCheck(name, mode)
		file = fl
		return fl, err
	}
	db, err := bolt.Open(f.path, 0o600, &bolt.Options{ReadOnly: mode != dbWrite, Timeout: f.opts.lockTimeout, OpenFile: open})
	if err != nil {
		return f.openErr(err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("state file %s: close: %w", f.path, cerr)
		}
	}()
	return fn(db)
}

// recheck checks the whole file again, under a shared lock, and returns
// what is wrong with it, or nil.
func (f *File) recheck() error {
	fl, err := os.Open(f.path)
	if err != nil {
		return nil // cannot tell
	}
	defer fl.Close()
	if err := flockWait(fl, false, f.opts.lockTimeout); err != nil {
		return nil
	}
	st, err := fl.Stat()
	if err != nil {
		return nil
	}
	bf, err := checkHeader(fl, st.Size())
	if err == nil {
		err = checkTree(bf)
	}
	var ioErr ioError
	if errors.As(err, &ioErr) {
		return nil
	}
	return err
}

// damage marks a finding of the checks, as opposed to a failure to read.
type damage struct{ error }

func (d damage) Unwrap() error { return d.error }

// lockAndCheck opens the file, locks it and checks it. A writer (and a
// writable store checking the file when it opens) opens it for writing,
// so a file it may not write fails now rather than at its first write.
// It never creates the file: one that disappeared is an error.
func (f *File) lockAndCheck(name string, mode dbMode) (*os.File, error) {
	flag := os.O_RDONLY
	if !f.readOnly {
		flag = os.O_RDWR
	}
	fl, err := os.OpenFile(name, flag, 0)
	if err != nil {
		return nil, err
	}
	if err := flockWait(fl, mode == dbWrite, f.opts.lockTimeout); err != nil {
		_ = fl.Close()
		return nil, err
	}
	st, err := fl.Stat()
	if err != nil {
		_ = fl.Close()
		return nil, err
	}
	bf, err := checkHeader(fl, st.Size())
	if err == nil && mode == dbCheck {
		err = checkTree(bf)
	}
	if err != nil {
		_ = fl.Close()
		var ioErr ioError
		if errors.As(err, &ioErr) {
			return nil, ioErr.err
		}
		return nil, damage{err}
	}
	return fl, nil
}

// notExistError says the state file does not exist; it matches
// fs.ErrNotExist.
type notExistError struct{ msg string }

func (e notExistError) Error() string { return e.msg }
func (e notExistError) Unwrap() error { return fs.ErrNotExist }

// openErr explains a failure to open the file.
func (f *File) openErr(err error) error {
	var d damage
	switch {
	case errors.As(err, &d):
		return &DamagedFileError{Path: f.path, Problem: d.Error(), Foreign: errors.Is(d.error, errNotBolt)}
	case errors.Is(err, fs.ErrNotExist):
		where := ""
		if abs, aerr := filepath.Abs(f.path); aerr == nil && abs != f.path {
			where = " (" + abs + ")"
		}
		return notExistError{fmt.Sprintf("state file %s%s does not exist", f.path, where)}
	case errors.Is(err, fs.ErrPermission) && !f.readOnly:
		return fmt.Errorf("state file %s cannot be opened for writing (%w): run and state init write the state; status and plan only read it", f.path, err)
	case errors.Is(err, errLockTimeout):
		return fmt.Errorf("state file %s is locked by another process (waited %s). amicopier holds the lock only "+
			"for the moment of one read or write, so something else holds it: another program using the file, "+
			"or an amicopier older than this one, which locked it for a whole run", f.path, f.opts.lockTimeout)
	}
	return fmt.Errorf("state file %s: open: %w", f.path, err)
}

// enter starts an operation unless the context is done or the store is
// closed; on success the caller must f.life.RUnlock when done, and Close
// waits for that.
func (f *File) enter(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.life.RLock()
	if f.closed {
		f.life.RUnlock()
		return fmt.Errorf("state file %s: %s: %w", f.path, op, ErrClosed)
	}
	return nil
}

// view runs fn in a read transaction. Errors fn returns pass through
// untouched, so conflict and lease errors read the same as the memory
// store's; failures of the file itself name the path.
func (f *File) view(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	if err := f.enter(ctx, op); err != nil {
		return err
	}
	defer f.life.RUnlock()
	select {
	case f.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-f.turn }()
	return f.withDB(dbRead, func(db *bolt.DB) error {
		var fnErr error
		err := db.View(func(tx *bolt.Tx) error { fnErr = fn(tx); return fnErr })
		if err != nil && fnErr == nil {
			return fmt.Errorf("state file %s: %s: %w", f.path, op, err)
		}
		return err
	})
}

// update runs fn in a write transaction, with the writes other callers
// make meanwhile: the caller that gets the turn commits every write
// waiting, the others wait for their outcome.
func (f *File) update(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	if err := f.enter(ctx, op); err != nil {
		return err
	}
	defer f.life.RUnlock()
	if f.readOnly {
		return fmt.Errorf("state file %s: %s: %w", f.path, op, ErrReadOnly)
	}
	req := &writeReq{ctx: ctx, op: op, fn: fn, done: make(chan struct{})}
	f.qmu.Lock()
	f.queue = append(f.queue, req)
	f.qmu.Unlock()
	select {
	case f.turn <- struct{}{}:
	case <-req.done:
		return req.err
	case <-ctx.Done():
		f.qmu.Lock()
		if i := slices.Index(f.queue, req); i >= 0 {
			f.queue = slices.Delete(f.queue, i, i+1)
			f.qmu.Unlock()
			return ctx.Err()
		}
		f.qmu.Unlock()
		// A transaction took it: its outcome is the truth.
		<-req.done
		return req.err
	}
	defer func() { <-f.turn }()
	for {
		select {
		case <-req.done:
			return req.err
		default:
		}
		f.qmu.Lock()
		n := min(len(f.queue), maxBatch)
		batch := slices.Clone(f.queue[:n])
		f.queue = slices.Delete(f.queue, 0, n)
		f.qmu.Unlock()
		f.commit(batch)
	}
}

// errBatchAborted stops a shared transaction in which a write failed
// other than by refusal; each write is then tried alone.
var errBatchAborted = errors.New("batch aborted")

// refused reports whether a write's error is a refusal that changed
// nothing (the version condition, the lease), so the other writes of its
// transaction may go on.
func refused(err error) bool {
	var held *LeaseHeldError
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrLeaseLost) || errors.As(err, &held)
}

// commit runs batch in one write transaction and tells each write its
// outcome.
func (f *File) commit(batch []*writeReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	var txErr error
	committed := false
	err := f.withDB(dbWrite, func(db *bolt.DB) error {
		txErr = db.Update(func(tx *bolt.Tx) error {
			for _, r := range live {
				if r.err = r.fn(tx); r.err != nil && !refused(r.err) {
					return errBatchAborted
				}
			}
			return nil
		})
		committed = txErr == nil
		return txErr
	})
	switch {
	case committed:
		// Durable once Update returned; closing the file cannot undo it.
		f.commits.Add(1)
	case errors.Is(txErr, errBatchAborted) && len(live) > 1:
		for _, r := range live {
			r.err = nil
			f.commit([]*writeReq{r})
		}
		return
	case errors.Is(txErr, errBatchAborted):
		// The write's own error, as fn returned it.
	case txErr != nil:
		for _, r := range live {
			if r.err == nil || !refused(r.err) {
				r.err = fmt.Errorf("state file %s: %s: %w", f.path, r.op, txErr)
			}
		}
	default:
		// Opening the file failed (or it turned out damaged): the error
		// says why, and names the file.
		for _, r := range live {
			r.err = err
		}
	}
	for _, r := range live {
		close(r.done)
	}
}

// storageErr wraps a failure inside a transaction with the file's path.
func (f *File) storageErr(op string, err error) error {
	return fmt.Errorf("state file %s: %s: %w", f.path, op, err)
}

// bucketAt follows names from the root; nil when a bucket is missing
// (a file no writer has initialised reads as empty).
func bucketAt(tx *bolt.Tx, names ...[]byte) *bolt.Bucket {
	b := tx.Bucket(names[0])
	for _, n := range names[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(n)
	}
	return b
}

// UnsettledPairs implements Store. Pairs come ordered by key.
func (f *File) UnsettledPairs(ctx context.Context, source string) ([]Pair, error) {
	if err := validateSource(source); err != nil {
		return nil, err
	}
	var out []Pair
	err := f.view(ctx, "read unsettled pairs of "+source, func(tx *bolt.Tx) error {
		idx := bucketAt(tx, bucketUnsettled, []byte(source))
		pairs := bucketAt(tx, bucketPairs)
		if idx == nil {
			return nil
		}
		if pairs == nil {
			return f.storageErr("read unsettled pairs of "+source, errors.New("the pairs bucket is missing"))
		}
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
	b := bucketAt(tx, bucketPairs)
	if b == nil {
		return Pair{}, false, nil
	}
	raw := b.Get([]byte(key.String()))
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
		pairs, err := tx.CreateBucketIfNotExists(bucketPairs)
		if err == nil {
			err = pairs.Put(k, data)
		}
		if err != nil {
			return f.storageErr(op, err)
		}
		index, err := tx.CreateBucketIfNotExists(bucketUnsettled)
		if err != nil {
			return f.storageErr(op, err)
		}
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
		runs, err := tx.CreateBucketIfNotExists(bucketRuns)
		var scope *bolt.Bucket
		if err == nil {
			scope, err = runs.CreateBucketIfNotExists([]byte(r.Scope))
		}
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
	expiry, err := tx.CreateBucketIfNotExists(bucketRunExpiry)
	if err != nil {
		return err
	}
	return expiry.Put(runExpiryKey(r.ExpiresAt, r.Scope, r.ID), []byte{})
}

// deleteRun removes a run and its index entries, if it is stored.
func (f *File) deleteRun(tx *bolt.Tx, scopeName string, id []byte) error {
	op := fmt.Sprintf("delete run %s of scope %s", id, scopeName)
	scope := bucketAt(tx, bucketRuns, []byte(scopeName))
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
			if expiry := bucketAt(tx, bucketRunExpiry); expiry != nil {
				if err := expiry.Delete(runExpiryKey(old.ExpiresAt, old.Scope, old.ID)); err != nil {
					return f.storageErr(op, err)
				}
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
	expiry := bucketAt(tx, bucketRunExpiry)
	if expiry == nil {
		return nil
	}
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
		byTime := bucketAt(tx, bucketRuns, []byte(scope), bucketByTime)
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
		if err := bucketAt(tx, bucketLeases).Delete([]byte(l.Scope)); err != nil {
			return f.storageErr(op, err)
		}
		return nil
	})
}

func (f *File) loadLease(tx *bolt.Tx, scope string) (Lease, bool, error) {
	b := bucketAt(tx, bucketLeases)
	if b == nil {
		return Lease{}, false, nil
	}
	raw := b.Get([]byte(scope))
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
		var leases *bolt.Bucket
		if leases, err = tx.CreateBucketIfNotExists(bucketLeases); err == nil {
			err = leases.Put([]byte(l.Scope), data)
		}
	}
	if err != nil {
		return f.storageErr("store lease of scope "+l.Scope, err)
	}
	return nil
}

// Close implements Store. It waits for the operations under way; the
// file itself is open only during each of them. Closing twice is not an
// error.
func (f *File) Close() error {
	f.life.Lock()
	defer f.life.Unlock()
	f.closed = true
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
