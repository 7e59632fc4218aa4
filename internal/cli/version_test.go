package cli_test

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestVersionPrintsTheBuildInfo: version and --version print the module,
// its version, the commit and the Go version, OS and architecture, read
// from the build information of the binary.
func TestVersionPrintsTheBuildInfo(t *testing.T) {
	env := awsEnv(t)
	var first string
	for _, args := range [][]string{{"version"}, {"--version"}} {
		res := runBinary(t, env, time.Minute, args...)
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, res.code, res.stderr)
		}
		for _, want := range []string{
			"amicopier ", "module  github.com/amicopier/amicopier ", "commit  ",
			"go      " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("%v: no %q in\n%s", args, want, res.stdout)
			}
		}
		if first == "" {
			first = res.stdout
		} else if res.stdout != first {
			t.Errorf("--version differs from version:\n%s\n%s", res.stdout, first)
		}
	}
}
