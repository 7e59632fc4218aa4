package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sparseFile makes a file of size bytes without writing them (it reads as
// NULs), as a disk image or a wrong --config would be.
func sparseFile(t testing.TB, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "big.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadRefusesOversizeFiles: a file over MaxFileSize is refused with
// its size and the limit, whether the size is known up front (a regular
// file) or only by reading (a device, a pipe).
func TestLoadRefusesOversizeFiles(t *testing.T) {
	big := sparseFile(t, 42<<20)
	cases := []struct {
		name, path string
		want       []string
	}{
		{"regular file", big, []string{big, "42 MiB (44040192 bytes)", "limit of 2 MiB (2097152 bytes)"}},
		{"device without end", "/dev/zero", []string{"/dev/zero", "more than 2 MiB", "limit of 2 MiB"}},
	}
	if _, err := os.Stat("/dev/zero"); err != nil {
		cases = cases[:1]
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for name, load := range map[string]func(string) error{
				"Load":        func(p string) error { _, err := Load(p); return err },
				"LoadWithEnv": func(p string) error { _, err := LoadWithEnv(p, func(string) string { return "" }); return err },
			} {
				err := load(tc.path)
				if err == nil {
					t.Fatalf("%s accepted %s", name, tc.path)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: %q lacks %q", name, err, w)
					}
				}
			}
		})
	}

	// Exactly at the limit is read (and then parsed: all comments here).
	at := filepath.Join(t.TempDir(), "at-limit.yaml")
	doc := bytes.Repeat([]byte("#234567\n"), MaxFileSize/8)
	if err := os.WriteFile(at, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(at); err != nil {
		t.Errorf("a file of exactly %d bytes: %v", MaxFileSize, err)
	}
	if err := os.WriteFile(at, append(doc, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(at); err == nil || !strings.Contains(err.Error(), "limit of 2 MiB") {
		t.Errorf("one byte over the limit: %v", err)
	}
}

// TestParseRefusesOversizeDocuments: the same limit holds for a document
// given in memory (AMICOPIER_CONFIG_YAML, --config -).
func TestParseRefusesOversizeDocuments(t *testing.T) {
	doc := bytes.Repeat([]byte("# comment\n"), MaxFileSize/10+1)
	for name, parse := range map[string]func() error{
		"Parse":        func() error { _, err := Parse(doc, "inline"); return err },
		"ParseWithEnv": func() error { _, err := ParseWithEnv(doc, "inline", func(string) string { return "" }); return err },
	} {
		err := parse()
		if err == nil || !strings.Contains(err.Error(), "limit of 2 MiB") || !strings.Contains(err.Error(), "2.0 MiB (2097160 bytes)") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestReadAllStopsAtTheLimit(t *testing.T) {
	var endless endlessReader
	data, err := ReadAll(&endless, "stdin")
	if err == nil || data != nil || !strings.Contains(err.Error(), "stdin: more than 2 MiB read, over the limit of 2 MiB") {
		t.Fatalf("got %d bytes, %v", len(data), err)
	}
	if endless.n > MaxFileSize+64<<10 {
		t.Errorf("read %d bytes to find out that the input is over %d", endless.n, MaxFileSize)
	}
	data, err = ReadAll(strings.NewReader("source: {}\n"), "stdin")
	if err != nil || string(data) != "source: {}\n" {
		t.Errorf("small input: %q, %v", data, err)
	}
}

// endlessReader reads as NULs for ever, counting what was asked of it.
type endlessReader struct{ n int }

func (r *endlessReader) Read(p []byte) (int, error) {
	clear(p)
	r.n += len(p)
	return len(p), nil
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 bytes", 1: "1 byte", 1023: "1023 bytes", 1 << 10: "1 KiB", 1536: "1.5 KiB",
		2 << 20: "2 MiB", 42 << 20: "42 MiB", 3 << 30: "3 GiB", 2<<20 + 1: "2.0 MiB", 5 << 29: "2.5 GiB",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// BenchmarkLoadBounded prints how much memory loading takes: an oversize
// file and an endless device must cost next to nothing (refused before or
// while reading), and the largest accepted document bounds the rest. Run
// with: go test -run '^$' -bench BenchmarkLoadBounded ./internal/config/
func BenchmarkLoadBounded(b *testing.B) {
	big := sparseFile(b, 42<<20)
	largest := filepath.Join(b.TempDir(), "largest.yaml")
	if err := os.WriteFile(largest, largestDocument(), 0o600); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name, path string
		valid      bool
	}{
		{"42MiB-file", big, false},
		{"dev-zero", "/dev/zero", false},
		{"largest-accepted", largest, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, err := LoadWithEnv(tc.path, func(string) string { return "" })
				if (err == nil) != tc.valid {
					b.Fatalf("%s: %v", tc.path, err)
				}
			}
		})
	}
}

// largestDocument is a valid configuration just under MaxFileSize: a key
// override per account, the kind of list that makes a file long.
func largestDocument() []byte {
	var b bytes.Buffer
	b.WriteString(base + "encryption:\n  overrides:\n")
	for i := 0; ; i++ {
		item := fmt.Sprintf("    - account: \"%012d\"\n      kms_key: alias/amicopier-%d\n", 100000000000+i, i)
		if b.Len()+len(item) > MaxFileSize {
			return b.Bytes()
		}
		b.WriteString(item)
	}
}

// BenchmarkSyntaxErrorLine prints what locating a syntax error costs in
// the largest document accepted, with the error on its last line (the
// worst place: the enclosing block began at the top).
func BenchmarkSyntaxErrorLine(b *testing.B) {
	doc := largestDocument()
	doc = append(doc[:len(doc)-200:len(doc)-200], "\n     bad: indent\n"...)
	want := bytes.Count(doc, []byte("\n"))
	b.ReportAllocs()
	for b.Loop() {
		_, err := Parse(doc, "large.yaml")
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Errors[0].Line != want {
			b.Fatalf("want an error at line %d, got %v", want, err)
		}
	}
}
