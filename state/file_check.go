package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
)

// bbolt maps the state file into memory and trusts what it finds there: a
// page id past the end of a truncated file faults (SIGBUS), and a page
// that is not what its parent says it is panics deep inside bbolt. Neither
// can be recovered from reliably, so the file is checked with ordinary
// reads before bbolt sees it:
//
//   - checkHeader, before every transaction (a few reads): both meta pages
//     and their checksums, the meta page bbolt will use, the file size
//     against its page count, and the freelist page. This is what a file
//     cut short or a freelist overwritten looks like.
//   - checkTree, once when a store opens the file (one read of every page
//     in use): every branch and leaf page reachable from the root, with
//     every element inside its page, every child inside the file, no page
//     reached twice and none both in use and free. After it, bbolt's own
//     consistency check (tx.Check) is safe to run and covers the rest
//     (key order, pages leaked).
//
// The layout is bbolt's file format version 2, read the way bbolt
// v1.4 reads it (internal/common: meta.go, page.go, bucket.go); bbolt
// writes in the machine's byte order.

const (
	boltMagic          = 0xED0CDAED
	boltVersion        = 2
	boltPageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	boltMetaSize       = 64 // see boltMeta
	boltElementSize    = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	boltBucketHeader   = 16 // root pgid u64, sequence u64
	boltNoFreelist     = ^uint64(0)

	boltBranchPage   = 0x01
	boltLeafPage     = 0x02
	boltMetaPage     = 0x04
	boltFreelistPage = 0x10
	boltBucketLeaf   = 0x01

	// boltMaxDepth bounds the nesting of pages and buckets the walk
	// follows; a B+tree of this file is a few levels deep per bucket, and
	// buckets nest three deep (runs/<scope>/by_time).
	boltMaxDepth = 64
)

var native = binary.NativeEndian

// boltMeta is the part of a meta page the checks need.
type boltMeta struct {
	pageSize uint64
	root     uint64 // root page of the root bucket
	freelist uint64 // first page of the freelist, or boltNoFreelist
	hwm      uint64 // pages in use: every page id is below it
	txid     uint64
}

// boltFile is a state file as the checks read it: its size and the meta
// page bbolt will use.
type boltFile struct {
	r    io.ReaderAt
	size int64
	meta boltMeta
}

// errNotBolt says the file is not a bbolt file at all, as opposed to a
// bbolt file that is damaged.
var errNotBolt = errors.New("it is not a bbolt database (neither meta page has bbolt's marker)")

// parseMeta decodes the meta page in page, reporting why bbolt would
// reject it.
func parseMeta(page []byte) (boltMeta, error) {
	if len(page) < boltPageHeaderSize+boltMetaSize {
		return boltMeta{}, errors.New("too short")
	}
	m := page[boltPageHeaderSize : boltPageHeaderSize+boltMetaSize]
	if native.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, errNotBolt
	}
	if v := native.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("bbolt format version %d, this build reads %d", v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != native.Uint64(m[56:]) {
		return boltMeta{}, errors.New("checksum mismatch")
	}
	return boltMeta{
		pageSize: uint64(native.Uint32(m[8:])),
		root:     native.Uint64(m[16:]),
		freelist: native.Uint64(m[32:]),
		hwm:      native.Uint64(m[40:]),
		txid:     native.Uint64(m[48:]),
	}, nil
}

// readAt reads exactly len(buf) bytes at off. A file that ends early is
// damage; any other failure is an ioError.
func readAt(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	switch {
	case n == len(buf):
		return nil
	case err == nil || errors.Is(err, io.EOF):
		return fmt.Errorf("the file ends at byte %d, inside the page at byte %d", off+int64(n), off)
	}
	return ioError{err}
}

// checkHeader checks what every transaction relies on first: the meta
// pages, the size and the freelist. Problems come back as plain errors
// for the caller to wrap with the path; read failures are wrapped in
// ioError so that they are not mistaken for damage.
func checkHeader(r io.ReaderAt, size int64) (*boltFile, error) {
	if size == 0 {
		return nil, errors.New("it is empty (0 bytes)")
	}
	// Meta page 0 says the page size; if it is unreadable, bbolt looks
	// for meta page 1 at every page size from 1 KiB to 16 MiB.
	buf := make([]byte, boltPageHeaderSize+boltMetaSize)
	if int64(len(buf)) > size {
		return nil, fmt.Errorf("it is %d bytes long, shorter than a bbolt meta page: %w", size, errNotBolt)
	}
	if err := readAt(r, buf, 0); err != nil {
		return nil, err
	}
	meta0, err0 := parseMeta(buf)
	pageSize := meta0.pageSize
	if err0 != nil {
		pageSize = 0
		for shift := 10; shift <= 24 && int64(1)<<shift+int64(len(buf)) <= size; shift++ {
			if err := readAt(r, buf, int64(1)<<shift); err != nil {
				return nil, err
			}
			if m, err := parseMeta(buf); err == nil && m.pageSize == uint64(1)<<shift {
				pageSize = m.pageSize
				break
			}
		}
		if pageSize == 0 {
			if errors.Is(err0, errNotBolt) {
				return nil, errNotBolt
			}
			return nil, fmt.Errorf("both meta pages are invalid (meta page 0: %v; no valid meta page 1 at any page size)", err0)
		}
	}
	if pageSize < 512 || pageSize > 1<<24 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("meta page 0 gives an impossible page size of %d bytes", pageSize)
	}
	if size < 2*int64(pageSize) {
		return nil, fmt.Errorf("it is %d bytes long, shorter than its two meta pages of %d bytes", size, pageSize)
	}
	if err := readAt(r, buf, int64(pageSize)); err != nil {
		return nil, err
	}
	meta1, err1 := parseMeta(buf)
	if err0 == nil && meta0.pageSize != pageSize {
		err0 = fmt.Errorf("page size %d, not %d", meta0.pageSize, pageSize)
	}
	if err1 == nil && meta1.pageSize != pageSize {
		err1 = fmt.Errorf("page size %d, not %d", meta1.pageSize, pageSize)
	}
	// bbolt uses the meta page with the higher transaction id, or the
	// other one if that one is invalid (a write cut short by a crash).
	var m boltMeta
	switch {
	case err0 == nil && err1 == nil:
		m = meta0
		if meta1.txid > meta0.txid {
			m = meta1
		}
	case err0 == nil:
		m = meta0
	case err1 == nil:
		m = meta1
	case errors.Is(err0, errNotBolt) && errors.Is(err1, errNotBolt):
		return nil, errNotBolt
	default:
		return nil, fmt.Errorf("both meta pages are invalid (meta page 0: %v; meta page 1: %v)", err0, err1)
	}
	// bbolt's consistency check looks both meta pages up as pages, and
	// panics unless each calls itself page 0 or 1, of type meta.
	hdr := make([]byte, boltPageHeaderSize)
	for id := range uint64(2) {
		if err := readAt(r, hdr, int64(id*pageSize)); err != nil {
			return nil, err
		}
		if got, flags := native.Uint64(hdr), native.Uint16(hdr[8:]); got != id || flags != boltMetaPage {
			return nil, fmt.Errorf("meta page %d is overwritten: it calls itself page %d, of type %#x", id, got, flags)
		}
	}
	switch {
	case m.hwm < 3:
		return nil, fmt.Errorf("its meta page says it holds %d pages, fewer than any bbolt file", m.hwm)
	case m.hwm > uint64(size)/pageSize:
		need := ""
		if m.hwm < 1<<40 {
			need = fmt.Sprintf(" (%d bytes)", m.hwm*pageSize)
		}
		return nil, fmt.Errorf("it is %d bytes long, but its meta page says it holds %d pages of %d bytes%s: it was cut short",
			size, m.hwm, pageSize, need)
	case m.root < 2 || m.root >= m.hwm:
		return nil, fmt.Errorf("its meta page puts the root page at %d, outside pages 2 to %d", m.root, m.hwm-1)
	case m.freelist != boltNoFreelist && (m.freelist < 2 || m.freelist >= m.hwm):
		return nil, fmt.Errorf("its meta page puts the freelist at page %d, outside pages 2 to %d", m.freelist, m.hwm-1)
	}
	m.pageSize = pageSize
	bf := &boltFile{r: r, size: size, meta: m}
	if _, err := bf.freePages(); err != nil {
		return nil, err
	}
	_, flags, err := bf.page(m.root, "the root page")
	if err != nil {
		return nil, err
	}
	if flags != boltBranchPage && flags != boltLeafPage {
		return nil, fmt.Errorf("the root page (page %d) is overwritten: it is of type %#x, not a branch or leaf page", m.root, flags)
	}
	return bf, nil
}

// ioError marks a failure to read the file, which is not evidence of
// damage.
type ioError struct{ err error }

func (e ioError) Error() string { return e.err.Error() }
func (e ioError) Unwrap() error { return e.err }

// page reads page id and its overflow pages; what names the page in
// errors. It returns the page's bytes and its type.
func (bf *boltFile) page(id uint64, what string) ([]byte, uint16, error) {
	m := bf.meta
	if id < 2 || id >= m.hwm {
		return nil, 0, fmt.Errorf("%s is page %d, outside pages 2 to %d", what, id, m.hwm-1)
	}
	hdr := make([]byte, boltPageHeaderSize)
	if err := readAt(bf.r, hdr, int64(id*m.pageSize)); err != nil {
		return nil, 0, err
	}
	if got := native.Uint64(hdr); got != id {
		return nil, 0, fmt.Errorf("%s (page %d) is overwritten: it calls itself page %d", what, id, got)
	}
	flags := native.Uint16(hdr[8:])
	overflow := uint64(native.Uint32(hdr[12:]))
	if overflow >= m.hwm-id {
		return nil, 0, fmt.Errorf("%s (page %d) runs over %d more pages, past the last page %d", what, id, overflow, m.hwm-1)
	}
	buf := make([]byte, (overflow+1)*m.pageSize)
	if err := readAt(bf.r, buf, int64(id*m.pageSize)); err != nil {
		return nil, 0, err
	}
	return buf, flags, nil
}

// freePages reads the freelist: the sorted ids of the free pages.
func (bf *boltFile) freePages() ([]uint64, error) {
	m := bf.meta
	if m.freelist == boltNoFreelist {
		return nil, nil
	}
	buf, flags, err := bf.page(m.freelist, "the freelist")
	if err != nil {
		return nil, err
	}
	if flags != boltFreelistPage {
		return nil, fmt.Errorf("the freelist (page %d) is overwritten: it is a page of type %#x", m.freelist, flags)
	}
	// A count of 0xFFFF means the real count is the first element.
	start, count := uint64(0), uint64(native.Uint16(buf[10:]))
	body := buf[boltPageHeaderSize:]
	if count == 0xFFFF {
		if len(body) < 8 {
			return nil, fmt.Errorf("the freelist (page %d) is cut short", m.freelist)
		}
		start, count = 1, native.Uint64(body)
	}
	if count > uint64(len(body))/8-start {
		return nil, fmt.Errorf("the freelist (page %d) lists %d pages, more than it has room for", m.freelist, count)
	}
	ids := make([]uint64, count)
	for i := range ids {
		id := native.Uint64(body[(start+uint64(i))*8:])
		if id < 2 || id >= m.hwm {
			return nil, fmt.Errorf("the freelist (page %d) lists page %d, outside pages 2 to %d", m.freelist, id, m.hwm-1)
		}
		ids[i] = id
	}
	slices.Sort(ids)
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			return nil, fmt.Errorf("the freelist (page %d) lists page %d twice", m.freelist, ids[i])
		}
	}
	return ids, nil
}

// checkTree walks every page in use, from the root bucket down, and
// checks that bbolt can read each one without leaving it or the file.
func checkTree(bf *boltFile) error {
	free, err := bf.freePages()
	if err != nil {
		return err
	}
	w := &treeWalk{bf: bf, used: make(map[uint64]bool), free: make(map[uint64]bool, len(free))}
	for _, id := range free {
		w.free[id] = true
	}
	if m := bf.meta; m.freelist != boltNoFreelist {
		buf, _, err := bf.page(m.freelist, "the freelist")
		if err != nil {
			return err
		}
		for i := range uint64(len(buf)) / m.pageSize {
			w.used[m.freelist+i] = true
		}
	}
	return w.tree(bf.meta.root, "", 0)
}

type treeWalk struct {
	bf   *boltFile
	used map[uint64]bool // pages seen in use, overflow pages included
	free map[uint64]bool
}

// bucketName names a bucket by its path from the root ("" is the root).
func bucketName(path string) string {
	if path == "" {
		return "the root bucket"
	}
	return "bucket " + path
}

// tree checks the B+tree of bucket path whose root is page id.
func (w *treeWalk) tree(id uint64, path string, depth int) error {
	name := bucketName(path)
	if depth > boltMaxDepth {
		return fmt.Errorf("%s nests deeper than %d pages", name, boltMaxDepth)
	}
	buf, flags, err := w.bf.page(id, "a page of "+name)
	if err != nil {
		return err
	}
	for i := range uint64(len(buf)) / w.bf.meta.pageSize {
		switch {
		case w.used[id+i]:
			return fmt.Errorf("page %d (of %s) is in use twice", id+i, name)
		case w.free[id+i]:
			return fmt.Errorf("page %d (of %s) is in use and also listed as free", id+i, name)
		}
		w.used[id+i] = true
	}
	switch flags {
	case boltBranchPage:
		n, err := elements(buf)
		if err == nil && n == 0 {
			err = errors.New("it has no elements")
		}
		if err != nil {
			return fmt.Errorf("branch page %d (of %s): %w", id, name, err)
		}
		for i := range n {
			e := buf[boltPageHeaderSize+i*boltElementSize:]
			if _, err := span(buf, e, i, native.Uint32(e[0:]), native.Uint32(e[4:]), 0); err != nil {
				return fmt.Errorf("branch page %d (of %s): %w", id, name, err)
			}
			if err := w.tree(native.Uint64(e[8:]), path, depth+1); err != nil {
				return err
			}
		}
		return nil
	case boltLeafPage:
		return w.leaf(buf, fmt.Sprintf("leaf page %d (of %s)", id, name), path, depth)
	}
	return fmt.Errorf("page %d (of %s) is overwritten: it is of type %#x, not a branch or leaf page", id, name, flags)
}

// leaf checks the elements of a leaf page (a page of the file, or the
// inline page of a small bucket) and the buckets they hold.
func (w *treeWalk) leaf(buf []byte, what, path string, depth int) error {
	n, err := elements(buf)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for i := range n {
		e := buf[boltPageHeaderSize+i*boltElementSize:]
		flags, pos, ksize, vsize := native.Uint32(e[0:]), native.Uint32(e[4:]), native.Uint32(e[8:]), native.Uint32(e[12:])
		kv, err := span(buf, e, i, pos, ksize, vsize)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if flags&boltBucketLeaf == 0 {
			continue
		}
		child := fmt.Sprintf("%q", kv[:ksize])
		if path != "" {
			child = path + "/" + child
		}
		if err := w.bucket(kv[ksize:], child, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// bucket checks a bucket from its value in the parent's leaf: a header
// with its root page, or, with root 0, an inline leaf page after it.
func (w *treeWalk) bucket(v []byte, path string, depth int) error {
	name := bucketName(path)
	if len(v) < boltBucketHeader {
		return fmt.Errorf("%s has a header of %d bytes, not %d", name, len(v), boltBucketHeader)
	}
	if root := native.Uint64(v); root != 0 {
		return w.tree(root, path, depth)
	}
	inline := v[boltBucketHeader:]
	if len(inline) < boltPageHeaderSize {
		return fmt.Errorf("inline %s is cut short", name)
	}
	if flags := native.Uint16(inline[8:]); flags != boltLeafPage {
		return fmt.Errorf("inline %s is of type %#x, not a leaf page", name, flags)
	}
	// bbolt keeps a bucket inline only while it holds no bucket itself.
	n, err := elements(inline)
	if err != nil {
		return fmt.Errorf("inline %s: %w", name, err)
	}
	for i := range n {
		if native.Uint32(inline[boltPageHeaderSize+i*boltElementSize:])&boltBucketLeaf != 0 {
			return fmt.Errorf("inline %s holds a bucket, which bbolt never writes", name)
		}
	}
	return w.leaf(inline, "inline "+name, path, depth)
}

// elements returns the element count of a page, checking that the
// element headers fit in it.
func elements(buf []byte) (int, error) {
	n := int(native.Uint16(buf[10:]))
	if boltPageHeaderSize+n*boltElementSize > len(buf) {
		return 0, fmt.Errorf("%d elements do not fit in %d bytes", n, len(buf))
	}
	return n, nil
}

// span returns the key and value of element i, whose header e lies
// within buf: bbolt finds them pos bytes after the element header, and
// they must end inside the page. A key is never empty (bbolt refuses to
// write one, and asserts, panicking, when it reads one back).
func span(buf, e []byte, i int, pos, ksize, vsize uint32) ([]byte, error) {
	if ksize == 0 {
		return nil, fmt.Errorf("element %d has an empty key, which bbolt never writes", i)
	}
	at := uint64(len(buf)-len(e)) + uint64(pos)
	end := at + uint64(ksize) + uint64(vsize)
	if end > uint64(len(buf)) {
		return nil, fmt.Errorf("element %d points past the end of the page (bytes %d to %d of %d)", i, at, end, len(buf))
	}
	return buf[at:end], nil
}
