package deploy

import (
	"archive/zip"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestWriteZipIsDeterministic(t *testing.T) {
	entries := []ZipEntry{
		{Name: "z/last", Mode: 0o644, Data: []byte("last")},
		{Name: "bootstrap", Mode: 0o755, Data: bytes.Repeat([]byte("amicopier "), 1000)},
	}
	var a, b bytes.Buffer
	if err := WriteZip(&a, entries, ZipEpoch); err != nil {
		t.Fatal(err)
	}
	// The same entries in another order, written later, in another zone.
	reversed := []ZipEntry{entries[1], entries[0]}
	if err := WriteZip(&b, reversed, ZipEpoch.In(time.FixedZone("X", 5*3600))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same entries gave different zips")
	}
	zr, err := zip.NewReader(bytes.NewReader(a.Bytes()), int64(a.Len()))
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"bootstrap", "z/last"}
	for i, f := range zr.File {
		if f.Name != wantNames[i] {
			t.Errorf("entry %d is %s, want %s (sorted)", i, f.Name, wantNames[i])
		}
		if !f.Modified.Equal(ZipEpoch) {
			t.Errorf("%s modified %v, want %v", f.Name, f.Modified, ZipEpoch)
		}
		if f.Method != zip.Deflate {
			t.Errorf("%s stored with method %d, want deflate", f.Name, f.Method)
		}
	}
	if m := zr.File[0].Mode(); m.Perm() != 0o755 || !m.IsRegular() {
		t.Errorf("bootstrap mode %v, want -rwxr-xr-x", m)
	}
	rc, _ := zr.File[0].Open()
	data, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(data, entries[1].Data) {
		t.Error("bootstrap content changed in the zip")
	}
}

func TestWriteZipRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []ZipEntry
		mtime   time.Time
		want    string
	}{
		{"no entries", nil, ZipEpoch, "no entries"},
		{"duplicate", []ZipEntry{{Name: "a"}, {Name: "a"}}, ZipEpoch, "twice"},
		{"absolute path", []ZipEntry{{Name: "/etc/passwd"}}, ZipEpoch, "clean relative path"},
		{"parent path", []ZipEntry{{Name: "../x"}}, ZipEpoch, "clean relative path"},
		{"before 1980", []ZipEntry{{Name: "a"}}, time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), "before 1980"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteZip(io.Discard, tc.entries, tc.mtime)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("WriteZip = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
