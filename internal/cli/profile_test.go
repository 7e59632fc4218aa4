package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cli"
)

// TestCPUProfileEnv: AMICOPIER_CPUPROFILE makes any command write a CPU
// profile (gzip, as pprof writes it); a path that cannot be created is an
// error naming it, before the command runs.
func TestCPUProfileEnv(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path string
		code       int
		stderr     string
	}{
		{"written", filepath.Join(dir, "cpu.pprof"), cli.ExitOK, ""},
		{"unwritable", filepath.Join(dir, "no-such-dir", "cpu.pprof"), cli.ExitError, "no-such-dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := cli.Main(context.Background(), []string{"version"}, cli.Env{
				Stdout: &out, Stderr: &errOut, Version: "test",
				Getenv: func(k string) string {
					if k == cli.CPUProfileEnv {
						return tt.path
					}
					return ""
				},
			})
			if code != tt.code || !strings.Contains(errOut.String(), tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut.String(), tt.code, tt.stderr)
			}
			if tt.code != cli.ExitOK {
				if out.Len() != 0 {
					t.Errorf("the command ran: %q", out.String())
				}
				return
			}
			b, err := os.ReadFile(tt.path)
			if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
				t.Errorf("profile %d bytes (%v), want a gzip stream", len(b), err)
			}
		})
	}
}
