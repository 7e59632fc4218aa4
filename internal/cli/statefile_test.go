package cli_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/internal/sim"
	bolt "go.etcd.io/bbolt"
)

// The embedded state file as the built binary meets it: damaged files,
// several processes at once, read-only commands. These run the binary,
// because a crash (SIGBUS, a panic in bbolt) and the locks of separate
// processes are what they are about.

// buildAmicopier is the binary every binary test of the package runs
// (binary_test.go: built once, or AMICOPIER_TEST_BINARY).
func buildAmicopier(t *testing.T) string {
	t.Helper()
	return amicopierBinary(t)
}

type binResult struct {
	code           int
	stdout, stderr string
}

// binCmd prepares the binary with the test's environment (the fake AWS
// credentials newAWSWorld exported), without any AMICOPIER_ variable.
func binCmd(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AMICOPIER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

func runCmd(t *testing.T, cmd *exec.Cmd) binResult {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return binResult{cmd.ProcessState.ExitCode(), out.String(), errOut.String()}
}

func runBin(t *testing.T, bin string, args ...string) binResult {
	t.Helper()
	return runCmd(t, binCmd(bin, args...))
}

// boltPages reads, from a bbolt file's current meta page, its page size,
// its root page and its freelist page.
func boltPages(t *testing.T, data []byte) (pageSize, root, freelist int64) {
	t.Helper()
	meta := func(off int) (txid uint64, ps, root, free int64) {
		m := data[off+16:]
		return binary.NativeEndian.Uint64(m[48:]), int64(binary.NativeEndian.Uint32(m[8:])),
			int64(binary.NativeEndian.Uint64(m[16:])), int64(binary.NativeEndian.Uint64(m[32:]))
	}
	tx0, ps, root, free := meta(0)
	if tx1, _, root1, free1 := meta(int(ps)); tx1 > tx0 {
		root, free = root1, free1
	}
	return ps, root, free
}

// TestBinaryDamagedStateFile: every command refuses a damaged state file
// with exit 1 (never 2, which means drift), names the file, says what is
// wrong and how to recover, and leaves the file as it was. Before, bbolt
// crashed the process: SIGBUS or "panic: invalid freelist page", exit 2.
func TestBinaryDamagedStateFile(t *testing.T) {
	bin := buildAmicopier(t)
	w := newAWSWorld(t, false, sim.WithCopyDuration(0))
	if code, out, errOut := run(t, "run", "--config", w.cfgPath, "--log-level", "warn"); code != cli.ExitOK {
		t.Fatalf("run to fill the state file: exit %d\n%s%s", code, out, errOut)
	}
	good, err := os.ReadFile(w.state)
	if err != nil {
		t.Fatal(err)
	}
	ps, root, freelist := boltPages(t, good)
	garbage := bytes.Repeat([]byte("garbage!"), int(ps)/8)
	overwrite := func(page int64) func([]byte) []byte {
		return func(b []byte) []byte { copy(b[page*ps:], garbage); return b }
	}
	newerSchema := func(b []byte) []byte {
		tmp := filepath.Join(t.TempDir(), "newer.db")
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("2")) })
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err = os.ReadFile(tmp)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	move := []string{"move it aside", "run again"}
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		want   []string
	}{
		{"truncated to 10000 bytes", func(b []byte) []byte { return b[:10000] }, append([]string{"is damaged", "cut short"}, move...)},
		{"freelist page overwritten", overwrite(freelist), append([]string{"is damaged", "the freelist"}, move...)},
		{"root page overwritten", overwrite(root), append([]string{"is damaged", "the root page"}, move...)},
		{"empty", func([]byte) []byte { return nil }, append([]string{"is damaged", "empty (0 bytes)"}, move...)},
		{"not bbolt", func([]byte) []byte { return []byte(strings.Repeat("not a database\n", 1000)) },
			append([]string{"is not an amicopier state file", "not a bbolt database", "Check state.path"}, move...)},
		{"newer schema", newerSchema, []string{"schema version 2 is newer", "upgrade amicopier"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			damaged := tc.damage(bytes.Clone(good))
			for _, args := range [][]string{{"status"}, {"plan"}, {"run"}, {"state", "init"}} {
				if err := os.WriteFile(w.state, damaged, 0o600); err != nil {
					t.Fatal(err)
				}
				r := runBin(t, bin, append(args, "--config", w.cfgPath)...)
				if r.code != cli.ExitError {
					t.Errorf("%v: exit %d, want %d\n%s%s", args, r.code, cli.ExitError, r.stdout, r.stderr)
				}
				for _, want := range append([]string{w.state}, tc.want...) {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("%v: stderr does not say %q:\n%s", args, want, r.stderr)
					}
				}
				for _, crash := range []string{"panic", "fatal error", "goroutine ", "SIGBUS", "SIGSEGV"} {
					if strings.Contains(r.stderr, crash) {
						t.Errorf("%v: the process crashed:\n%s", args, r.stderr)
						break
					}
				}
				if got, _ := os.ReadFile(w.state); !bytes.Equal(got, damaged) {
					t.Errorf("%v changed the damaged file", args)
				}
			}
		})
	}
	if n := w.fake.MutatingCalls(); n != 2+2 {
		t.Errorf("%d mutating AWS calls; want only the first run's (2 copies, 2 shares): nothing runs on a damaged file", n)
	}
}

// TestBinaryRunsShareTheStateFile starts `amicopier run` and, while it
// holds the lease, a second run, a run that waits for the lease, status
// and plan, all on one state file. Before, all but the first failed after
// 2 s: "locked by another amicopier process".
func TestBinaryRunsShareTheStateFile(t *testing.T) {
	bin := buildAmicopier(t)
	// Slow mutating calls keep the first run inside its lease.
	w := newAWSWorld(t, false, sim.WithCopyDuration(0), sim.WithLatency(sim.Latency{Mutating: 2500 * time.Millisecond}))
	if code, out, errOut := run(t, "state", "init", "--config", w.cfgPath); code != cli.ExitOK {
		t.Fatalf("state init: exit %d\n%s%s", code, out, errOut)
	}
	first := binCmd(bin, "run", "--config", w.cfgPath, "--output", "json", "--log-level", "warn")
	var firstOut, firstErr bytes.Buffer
	first.Stdout, first.Stderr = &firstOut, &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	// The first mutating call comes after the lease is taken.
	deadline := time.Now().Add(30 * time.Second)
	for w.fake.MutatingCalls() == 0 {
		if time.Now().After(deadline) {
			_ = first.Process.Kill()
			_ = first.Wait()
			t.Fatalf("the first run made no mutating call in 30 s\n%s", firstErr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	type named struct {
		name string
		args []string
		res  binResult
	}
	others := []*named{
		{name: "second run", args: []string{"run", "--config", w.cfgPath, "--log-level", "warn"}},
		{name: "run --wait-lease", args: []string{"run", "--config", w.cfgPath, "--wait-lease", "2m", "--log-level", "warn", "--output", "json"}},
		{name: "status", args: []string{"status", "--config", w.cfgPath}},
		{name: "plan", args: []string{"plan", "--config", w.cfgPath}},
	}
	var wg sync.WaitGroup
	for _, o := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.res = runCmd(t, binCmd(bin, o.args...))
		}()
	}
	// The readers and the refused run finish while the first still runs.
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v\n%s", err, firstErr.String())
	}
	firstDone := time.Now()
	wg.Wait()
	var res struct {
		Summary struct {
			RunID   string         `json:"run_id"`
			Actions map[string]int `json:"actions"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(firstOut.Bytes(), &res); err != nil {
		t.Fatalf("first run's output: %v\n%s", err, firstOut.String())
	}
	if res.Summary.Actions["copy"] != 2 {
		t.Errorf("first run: actions %v, want 2 copies", res.Summary.Actions)
	}
	for _, o := range others {
		if o.res.code != cli.ExitOK {
			t.Errorf("%s: exit %d, want 0\n%s%s", o.name, o.res.code, o.res.stdout, o.res.stderr)
		}
		if strings.Contains(o.res.stderr, "locked") {
			t.Errorf("%s: %s", o.name, o.res.stderr)
		}
	}
	held := others[0].res.stderr
	holder := regexp.MustCompile(`holder (\S+),`).FindStringSubmatch(held)
	if !strings.Contains(held, "holds the lease") || holder == nil || holder[1] != res.Summary.RunID || !strings.Contains(held, "Nothing was changed") {
		t.Errorf("second run does not name the first (%s) as the holder:\n%s", res.Summary.RunID, held)
	}
	if !strings.Contains(others[2].res.stdout, "State: file "+w.state) {
		t.Errorf("status during the run:\n%s%s", others[2].res.stdout, others[2].res.stderr)
	}
	if !strings.Contains(others[3].res.stdout, "missing") {
		t.Errorf("plan during the run does not show the missing copies:\n%s", others[3].res.stdout)
	}
	// The waiting run went on once the first released its lease, found
	// nothing left to do and copied nothing.
	if n := w.fake.Calls("CopyImage"); n != 2 {
		t.Errorf("CopyImage calls = %d, want 2: one per missing pair, none twice", n)
	}
	var waited struct {
		Summary struct {
			Finished time.Time      `json:"finished"`
			Actions  map[string]int `json:"actions"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(others[1].res.stdout), &waited); err != nil {
		t.Fatalf("run --wait-lease output: %v\n%s%s", err, others[1].res.stdout, others[1].res.stderr)
	}
	if waited.Summary.Finished.Before(firstDone.Add(-time.Second)) || waited.Summary.Actions["copy"] != 0 {
		t.Errorf("run --wait-lease finished at %s (the first run at %s) with actions %v: it did not wait",
			waited.Summary.Finished, firstDone, waited.Summary.Actions)
	}
}

// TestBinaryReadOnlyCommands: status and plan create no state file or
// directory (a typo in state.path shows), and read a state file they may
// not write. Before, both created the file and its directories.
func TestBinaryReadOnlyCommands(t *testing.T) {
	bin := buildAmicopier(t)
	w := newAWSWorld(t, false, sim.WithCopyDuration(0))
	doc, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	typoDir := filepath.Join(filepath.Dir(w.state), "stat")
	typo := filepath.Join(typoDir, "state.db")
	typoCfg := filepath.Join(filepath.Dir(w.cfgPath), "typo.yaml")
	if err := os.WriteFile(typoCfg, bytes.Replace(doc, []byte("path: "+w.state), []byte("path: "+typo), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runBin(t, bin, "status", "--config", typoCfg)
	for _, want := range []string{typo + " does not exist", "state.path", "amicopier state init", "amicopier run"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("status with a missing state file: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.code != cli.ExitError {
		t.Errorf("status with a missing state file: exit %d, want %d", r.code, cli.ExitError)
	}
	r = runBin(t, bin, "plan", "--config", typoCfg, "--log-format", "text")
	if r.code != cli.ExitOK || !strings.Contains(r.stderr, "the state file does not exist") || !strings.Contains(r.stderr, typo) ||
		!strings.Contains(r.stdout, "missing") {
		t.Errorf("plan with a missing state file: exit %d, want 0, a warning naming %s and a plan\n%s%s", r.code, typo, r.stdout, r.stderr)
	}
	if _, err := os.Stat(typoDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("status or plan created %s (stat: %v)", typoDir, err)
	}

	// A state file nobody may write, in a directory nobody may write.
	if code, out, errOut := run(t, "run", "--config", w.cfgPath, "--log-level", "warn"); code != cli.ExitOK {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	dir := filepath.Dir(w.state)
	// Every directory of the test (the binary's, the fake AWS files') open
	// to the user the binary runs as, but the state file's.
	root := filepath.Dir(dir)
	subdirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append([]os.DirEntry{nil}, subdirs...) {
		name := root
		if p != nil {
			name = filepath.Join(root, p.Name())
		}
		if err := os.Chmod(name, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(w.cfgPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(w.state, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	before, err := os.ReadFile(w.state)
	if err != nil {
		t.Fatal(err)
	}
	// Root may write anything: run the binary as nobody then.
	asUser := func(cmd *exec.Cmd) *exec.Cmd {
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		return cmd
	}
	r = runCmd(t, asUser(binCmd(bin, "status", "--config", w.cfgPath)))
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "Latest runs (1") {
		t.Errorf("status of a read-only state file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, asUser(binCmd(bin, "plan", "--config", w.cfgPath)))
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "Drift report (plan)") {
		t.Errorf("plan of a read-only state file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, asUser(binCmd(bin, "run", "--config", w.cfgPath)))
	if r.code != cli.ExitError || !strings.Contains(r.stderr, w.state+" cannot be opened for writing") {
		t.Errorf("run on a read-only state file: exit %d, want 1 naming the file\n%s%s", r.code, r.stdout, r.stderr)
	}
	if after, _ := os.ReadFile(w.state); !bytes.Equal(after, before) {
		t.Error("a read-only command changed the state file")
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "config.yaml state.db typo.yaml" {
		t.Errorf("the state directory holds %v, want only what the test put there", names)
	}
}
