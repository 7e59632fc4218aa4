package cli_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
)

// Tests of behaviour that belongs to the process (signals, exit codes,
// reading a FIFO, build information) run the built binary, as a user
// would. It is built once per test binary, on first use.

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// amicopierBinary returns the path of amicopier built from this tree, or
// the binary AMICOPIER_TEST_BINARY names (to run these tests against
// another build, an older one for instance).
func amicopierBinary(t *testing.T) string {
	t.Helper()
	if path := os.Getenv("AMICOPIER_TEST_BINARY"); path != "" {
		return path
	}
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "amicopier-cli-test-")
		if built.err != nil {
			return
		}
		// Some tests run the binary as another user (nobody).
		if built.err = os.Chmod(built.dir, 0o755); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "amicopier")
		cmd := exec.Command("go", "build", "-o", built.path, "github.com/amicopier/amicopier/cmd/amicopier")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// procResult is what a finished amicopier process left.
type procResult struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// awsEnv is a process environment with the fake AWS's base credentials
// and nothing that could reach a real AWS endpoint or a real profile.
func awsEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"AWS_ACCESS_KEY_ID=" + awsfake.BaseAccessKeyID, "AWS_SECRET_ACCESS_KEY=" + awsfake.BaseSecretAccessKey,
		"AWS_SESSION_TOKEN=" + awsfake.BaseSessionToken, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + none, "AWS_SHARED_CREDENTIALS_FILE=" + none,
	}
	return append(env, extra...)
}

// startBinary starts amicopier with args in env; stdin is empty unless
// given.
func startBinary(t *testing.T, env []string, stdin io.Reader, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(amicopierBinary(t), args...)
	cmd.Env = env
	out, errOut := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.Stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	})
	return cmd, out, errOut
}

// waitBinary waits for a started process, at most limit, and kills it
// (failing the test) when it outlives the limit.
func waitBinary(t *testing.T, cmd *exec.Cmd, out, errOut *syncBuffer, start time.Time, limit time.Duration) procResult {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		res := procResult{code: 0, stdout: out.String(), stderr: errOut.String(), elapsed: time.Since(start)}
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			res.code = exit.ExitCode()
			if res.code < 0 {
				t.Fatalf("amicopier %v died: %v\n%s", cmd.Args[1:], err, res.stderr)
			}
		case err != nil:
			t.Fatal(err)
		}
		return res
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("amicopier %v still running after %s; killed\nstdout:\n%s\nstderr:\n%s", cmd.Args[1:], limit, out.String(), errOut.String())
		return procResult{}
	}
}

// runBinary runs amicopier to the end (at most limit).
func runBinary(t *testing.T, env []string, limit time.Duration, args ...string) procResult {
	t.Helper()
	start := time.Now()
	cmd, out, errOut := startBinary(t, env, nil, args...)
	return waitBinary(t, cmd, out, errOut, start, limit)
}

// waitForOutput waits until buf holds want (at most limit).
func waitForOutput(t *testing.T, buf *syncBuffer, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output after %s:\n%s", want, limit, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
