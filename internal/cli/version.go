package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

func runVersion(_ context.Context, args []string, env Env) int {
	fs := newFlags("version", usageDoc{
		description: "Print the version of this build: the version stamped into it (or the module's), the module\n" +
			"and its version, the commit it was built from, and the Go version, OS and architecture.",
		examples: []string{"amicopier version", "amicopier --version"},
		exits:    []exitDoc{{ExitOK, "always"}},
	}, env)
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	bi, _ := debug.ReadBuildInfo()
	writeVersion(env.Stdout, env.Version, bi)
	return ExitOK
}

// writeVersion prints the version from the build information the Go
// toolchain embeds (runtime/debug.ReadBuildInfo): version is the one
// stamped at build time (main.version), bi may be nil (a binary built
// without module support).
func writeVersion(w io.Writer, version string, bi *debug.BuildInfo) {
	if version == "" {
		version = "dev"
	}
	fmt.Fprintf(w, "amicopier %s\n", version)
	goVersion := runtime.Version()
	if bi == nil {
		fmt.Fprintf(w, "  module  unknown (no build information)\n")
		fmt.Fprintf(w, "  go      %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
		return
	}
	if bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	fmt.Fprintf(w, "  module  %s %s\n", bi.Main.Path, bi.Main.Version)
	commit := "unknown (built without version control information)"
	if rev := settings["vcs.revision"]; rev != "" {
		var notes []string
		if t := settings["vcs.time"]; t != "" {
			notes = append(notes, "committed "+t)
		}
		if settings["vcs.modified"] == "true" {
			notes = append(notes, "with uncommitted changes")
		}
		commit = rev
		if len(notes) > 0 {
			commit += " (" + strings.Join(notes, ", ") + ")"
		}
	}
	fmt.Fprintf(w, "  commit  %s\n", commit)
	goos, goarch := settings["GOOS"], settings["GOARCH"]
	if goos == "" {
		goos = runtime.GOOS
	}
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	fmt.Fprintf(w, "  go      %s %s/%s\n", goVersion, goos, goarch)
}
