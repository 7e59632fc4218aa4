package deploy

import (
	"archive/zip"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"time"
)

// ZipEpoch is the modification time written for every zip entry unless the
// caller chooses another (SOURCE_DATE_EPOCH): a fixed time, so two builds
// of one commit give the same bytes whatever the clock or time zone.
var ZipEpoch = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// ZipEntry is one file of a zip archive.
type ZipEntry struct {
	// Name is the path inside the archive, with forward slashes.
	Name string
	// Mode is the Unix permission bits recorded for the file (Lambda
	// needs the executable bit on bootstrap).
	Mode fs.FileMode
	// Data is the file's content.
	Data []byte
}

// WriteZip writes entries as a deterministic zip archive: sorted by name,
// every entry with the same modification time (mtime, in UTC), its mode
// and nothing else from the file system (no owner, no access time), and
// compressed with Go's deflate, which gives the same output for the same
// input and Go version. The zip command would record local time and depend
// on the zlib it was built with.
func WriteZip(w io.Writer, entries []ZipEntry, mtime time.Time) error {
	if len(entries) == 0 {
		return errors.New("zip: no entries")
	}
	if mtime.Year() < 1980 {
		return fmt.Errorf("zip: modification time %s is before 1980, which zip cannot record", mtime.UTC().Format(time.RFC3339))
	}
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b ZipEntry) int { return cmp.Compare(a.Name, b.Name) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name == sorted[i-1].Name {
			return fmt.Errorf("zip: entry %q appears twice", sorted[i].Name)
		}
	}
	zw := zip.NewWriter(w)
	for _, e := range sorted {
		if !fs.ValidPath(e.Name) || e.Name == "." {
			return fmt.Errorf("zip: entry name %q is not a clean relative path", e.Name)
		}
		h := &zip.FileHeader{Name: e.Name, Method: zip.Deflate, Modified: mtime.UTC()}
		h.SetMode(e.Mode.Perm())
		f, err := zw.CreateHeader(h)
		if err != nil {
			return fmt.Errorf("zip: entry %s: %w", e.Name, err)
		}
		if _, err := f.Write(e.Data); err != nil {
			return fmt.Errorf("zip: entry %s: %w", e.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	return nil
}
