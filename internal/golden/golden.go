// Package golden compares a test's output with a file kept under the
// test's testdata/ directory, the golden file, and rewrites the file when
// the test runs with -update. Changes of the golden files are reviewed
// in the diff like code.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update is -update of the test binaries that import this package.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with the output of this build")

// Check compares got with testdata/name, or with -update writes got there.
func Check(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run '%s' -update creates it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -run '%s' -update rewrites it; review the diff):\n--- got\n%s\n--- want\n%s",
			path, t.Name(), got, want)
	}
}
