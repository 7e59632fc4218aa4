package cli

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestWriteVersion(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version string
		bi      *debug.BuildInfo
		want    []string
	}{
		{"release from a clean clone", "v1.4.0", &debug.BuildInfo{
			GoVersion: "go1.26.1", Main: debug.Module{Path: "github.com/amicopier/amicopier", Version: "v1.4.0"},
			Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
				{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.time", Value: "2026-03-01T10:00:00Z"},
				{Key: "vcs.modified", Value: "false"}},
		}, []string{
			"amicopier v1.4.0\n",
			"  module  github.com/amicopier/amicopier v1.4.0\n",
			"  commit  0123456789abcdef0123456789abcdef01234567 (committed 2026-03-01T10:00:00Z)\n",
			"  go      go1.26.1 linux/arm64\n",
		}},
		{"a work tree with changes", "", &debug.BuildInfo{
			GoVersion: "go1.26.1", Main: debug.Module{Path: "github.com/amicopier/amicopier", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}},
		}, []string{"amicopier dev\n", "  commit  abc (with uncommitted changes)\n"}},
		{"no version control", "dev", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "m", Version: "(devel)"}},
			[]string{"  commit  unknown (built without version control information)\n"}},
		{"no build information", "dev", nil, []string{"  module  unknown (no build information)\n", "  go      go"}},
	} {
		var b strings.Builder
		writeVersion(&b, tc.version, tc.bi)
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: no %q in\n%s", tc.name, w, b.String())
			}
		}
	}
}
