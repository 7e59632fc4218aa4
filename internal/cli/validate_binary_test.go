package cli_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildConfigBinary builds cmd/amicopier into the test's temporary
// directory, for the tests of this file, which check what only the process
// shows: its memory, its environment. The build cache makes all but the
// first build a link.
func buildConfigBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "amicopier")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/amicopier/amicopier/cmd/amicopier").CombinedOutput()
	if err != nil {
		t.Fatalf("build amicopier: %v\n%s", err, out)
	}
	return bin
}

// runConfigBinary runs the built binary with args under a 4 GiB address
// space limit (so a runaway allocation fails fast instead of eating the
// machine), with exactly the environment env, and returns its exit code
// and output.
func runConfigBinary(t *testing.T, bin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", `ulimit -v 4194304 && exec "$0" "$@"`, bin}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// TestValidateBinaryBoundsConfigSize: a wrong --config (an endless device,
// a huge file) fails with a clear message instead of "fatal error: out of
// memory".
func TestValidateBinaryBoundsConfigSize(t *testing.T) {
	bin := buildConfigBinary(t)
	huge := filepath.Join(t.TempDir(), "huge.yaml")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	// More than the 4 GiB of address space the binary is allowed (a
	// smaller limit makes the Go runtime itself fail to start now and
	// then); the file is sparse.
	if err := f.Truncate(5 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct{ path, want string }{
		{"/dev/zero", "read config file /dev/zero: more than 2 MiB read, over the limit of 2 MiB"},
		{huge, "the file is 5 GiB (5368709120 bytes), over the limit of 2 MiB"},
	} {
		code, stdout, stderr := runConfigBinary(t, bin, nil, "validate", "--config", tc.path)
		if code != 1 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "fatal error") {
			t.Errorf("validate --config %s: exit %d, want 1 and %q\nstdout: %s\nstderr: %.600s", tc.path, code, tc.want, stdout, stderr)
		}
	}
}

// TestValidateBinaryReportsUnknownVariables: the process's own
// environment is checked for misspelt AMICOPIER_* names.
func TestValidateBinaryReportsUnknownVariables(t *testing.T) {
	bin := buildConfigBinary(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("source:\n  account_id: \"111111111111\"\n  regions: [eu-west-1]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	misspelt := "AMICOPIER" + "_STATE_TABEL" // spelt apart: see config.TestEveryVariableIsKnown
	code, stdout, stderr := runConfigBinary(t, bin, []string{misspelt + "=prod"}, "validate", "--config", cfg)
	want := misspelt + " (environment): not a variable amicopier reads, so it changes nothing; did you mean AMICOPIER_STATE_TABLE (state.table)?"
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, want 1 and %q\nstdout: %s\nstderr: %s", code, want, stdout, stderr)
	}
	code, stdout, stderr = runConfigBinary(t, bin, []string{misspelt + "=prod"}, "validate", "--no-env", "--config", cfg)
	if code != 0 {
		t.Errorf("--no-env: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}
