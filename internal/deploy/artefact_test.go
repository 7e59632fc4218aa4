package deploy

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildScript is scripts/build-lambda.sh, relative to this package.
const buildScript = "../../scripts/build-lambda.sh"

// artefactTestVar turns TestLambdaArtefact on.
const artefactTestVar = "AMICOPIER_ARTEFACT_TEST"

// testVersion is stamped into the test builds.
const testVersion = "v0.0.0-deploytest"

// buildArtefact runs scripts/build-lambda.sh for arch into dir and returns
// the zip's path.
func buildArtefact(t *testing.T, arch, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", buildScript)
	cmd.Env = append(os.Environ(), "DIST_DIR="+dir, "LAMBDA_GOARCH="+arch, "VERSION="+testVersion)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s (LAMBDA_GOARCH=%s): %v\n%s", buildScript, arch, err, stderr.String())
	}
	path := strings.TrimSpace(string(out))
	if want := filepath.Join(dir, "amicopier-lambda-"+arch+".zip"); path != want {
		t.Fatalf("%s printed %q, want the artefact path %q and nothing else", buildScript, path, want)
	}
	return path
}

// readBootstrap checks the zip's one entry and returns its bytes.
func readBootstrap(t *testing.T, zipPath string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" {
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		t.Fatalf("%s holds %v, want exactly [bootstrap]", zipPath, names)
	}
	f := zr.File[0]
	if f.Mode().Perm() != 0o755 || !f.Mode().IsRegular() {
		t.Errorf("bootstrap mode %v, want -rwxr-xr-x", f.Mode())
	}
	if !f.Modified.Equal(ZipEpoch) {
		t.Errorf("bootstrap modified %v, want the fixed %v", f.Modified, ZipEpoch)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// checkStaticELF checks that bin is a static executable for machine.
func checkStaticELF(t *testing.T, bin []byte, machine elf.Machine) {
	t.Helper()
	ef, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("bootstrap is not an ELF file: %v", err)
	}
	defer ef.Close()
	if ef.Machine != machine || ef.Class != elf.ELFCLASS64 || ef.Type != elf.ET_EXEC || ef.OSABI != elf.ELFOSABI_NONE {
		t.Errorf("bootstrap is %v %v %v %v, want %v ELFCLASS64 ET_EXEC (a Linux executable)", ef.Machine, ef.Class, ef.Type, ef.OSABI, machine)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("bootstrap has a PT_INTERP program header: it is dynamically linked")
		}
	}
	if libs, err := ef.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Errorf("bootstrap needs shared libraries %v (DT_NEEDED): build with CGO_ENABLED=0", libs)
	}
	if ef.Section(".dynamic") != nil {
		t.Error("bootstrap has a .dynamic section: it is not static")
	}
	if !bytes.Contains(bin, []byte(testVersion)) {
		t.Errorf("bootstrap does not carry the version %s (-X main.version)", testVersion)
	}
}

// TestLambdaArtefact builds the Lambda artefact with scripts/build-lambda.sh
// as CI and a release would: a zip whose only entry, bootstrap, is a static
// linux/arm64 executable; a second build gives the same bytes; and the
// host-architecture build of the same binary serves the Lambda Runtime API
// when AWS_LAMBDA_RUNTIME_API is set, and, under that API with a deadline
// inside its copy phase, stops starting work in time, records what it did,
// and leaves the rest to the next invocation, which copies nothing twice
// (deadline_test.go; it needs dynalite, AMICOPIER_DYNAMODB_ENDPOINT).
//
// Two builds for two architectures take minutes on a cold cache, so the
// test runs only when AMICOPIER_ARTEFACT_TEST=1, as scripts/test.sh sets it
// in a step of its own (with its own timeout, not competing with the
// other packages' tests).
func TestLambdaArtefact(t *testing.T) {
	if testing.Short() || os.Getenv(artefactTestVar) != "1" {
		t.Skipf("builds the Lambda artefact twice plus a host build (minutes on a cold cache): set %s=1 (scripts/test.sh does)", artefactTestVar)
	}
	if runtime.GOOS != "linux" {
		t.Skip("the build script and the artefact are for Linux")
	}
	dir := t.TempDir()
	first := buildArtefact(t, "arm64", filepath.Join(dir, "a"))
	second := buildArtefact(t, "arm64", filepath.Join(dir, "b"))
	a, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("two builds of the same tree differ: %s (%d bytes) and %s (%d bytes)", first, len(a), second, len(b))
	}
	checkStaticELF(t, readBootstrap(t, first), elf.EM_AARCH64)

	t.Run("serves the Lambda runtime API", func(t *testing.T) {
		hostArch, machine := runtime.GOARCH, elf.EM_X86_64
		switch hostArch {
		case "arm64":
			machine = elf.EM_AARCH64
		case "amd64":
		default:
			t.Skipf("no Lambda build for the host architecture %s", hostArch)
		}
		zipPath := first
		if hostArch != "arm64" {
			zipPath = buildArtefact(t, hostArch, filepath.Join(dir, "host"))
		}
		bin := readBootstrap(t, zipPath)
		checkStaticELF(t, bin, machine)
		exe := filepath.Join(dir, "bootstrap")
		if err := os.WriteFile(exe, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		runUnderFakeRuntime(t, exe)
		runWithABadConfiguration(t, exe)
		runAsCLI(t, exe)
	})
	t.Run("stops before the invocation's deadline, the next finishes", func(t *testing.T) {
		if runtime.GOARCH != "arm64" && runtime.GOARCH != "amd64" {
			t.Skipf("no Lambda build for the host architecture %s", runtime.GOARCH)
		}
		exe := filepath.Join(dir, "bootstrap")
		if _, err := os.Stat(exe); err != nil {
			t.Fatalf("no host build of the function to run (the subtest before writes it): %v", err)
		}
		runPastTheDeadline(t, exe)
	})
}

// fakeRuntime is a Lambda Runtime API serving one invocation.
type fakeRuntime struct {
	requestID string
	event     []byte
	// done unblocks the function's next /next once the test is over.
	done chan struct{}

	mu      sync.Mutex
	nexts   int
	result  string // "response" or "error"
	body    []byte
	initErr []byte
	// initErrType is the init error's Lambda-Runtime-Function-Error-Type.
	initErrType string
	answered    chan struct{}
	once        sync.Once
}

func (f *fakeRuntime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const base = "/2018-06-01/runtime/"
	path := strings.TrimPrefix(r.URL.Path, base)
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Method == http.MethodGet && path == "invocation/next":
		f.mu.Lock()
		f.nexts++
		n := f.nexts
		f.mu.Unlock()
		if n > 1 {
			// The function asks for the next event after answering
			// this one: hold it until the test is done.
			<-f.done
			w.WriteHeader(http.StatusGone)
			return
		}
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", f.requestID)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(60*time.Second).UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:amicopier")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(f.event)
	case r.Method == http.MethodPost && (path == "invocation/"+f.requestID+"/response" || path == "invocation/"+f.requestID+"/error"):
		f.mu.Lock()
		f.result = strings.TrimPrefix(path, "invocation/"+f.requestID+"/")
		f.body = body
		f.mu.Unlock()
		f.once.Do(func() { close(f.answered) })
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && path == "init/error":
		f.mu.Lock()
		f.initErr = body
		f.initErrType = r.Header.Get("Lambda-Runtime-Function-Error-Type")
		f.mu.Unlock()
		f.once.Do(func() { close(f.answered) })
		w.WriteHeader(http.StatusAccepted)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}

// runUnderFakeRuntime starts the binary as Lambda starts a provided.al2023
// function and checks that it fetches the invocation and answers it. The
// events are of no shape the function accepts (one is not even JSON, so
// only a handler taking the raw payload can name what is wrong), so it
// answers with an error at once, without calling AWS (whose endpoints
// point at a closed port anyway).
func runUnderFakeRuntime(t *testing.T, exe string) {
	for _, tc := range []struct {
		event, want string
	}{
		{`{"deploy-test": "an event of no known shape"}`, "neither an SNS event"},
		{`this payload is not JSON`, "event: not a JSON object"},
	} {
		fr, logs := startUnderFakeRuntime(t, exe, tc.event, "")
		fr.mu.Lock()
		if fr.nexts < 1 {
			t.Error("the function never asked for the next invocation")
		}
		if fr.initErr != nil {
			t.Fatalf("the function reported an init error: %s\noutput:\n%s", fr.initErr, logs)
		}
		t.Logf("the function answered the invocation with %s: %s", fr.result, fr.body)
		if fr.result != "error" || !strings.Contains(string(fr.body), tc.want) || !strings.Contains(string(fr.body), "MalformedEventError") {
			t.Errorf("event %q got a %s %s, want an error saying %q", tc.event, fr.result, fr.body, tc.want)
		}
		if !strings.Contains(logs, `"level":"ERROR","msg":"malformed event; nothing done"`) {
			t.Errorf("the refusal is not a JSON log line:\n%s", logs)
		}
		fr.mu.Unlock()
	}
}

// runWithABadConfiguration: a configuration with two problems makes the
// cold start report both to the Runtime API's init error endpoint and log
// them as one JSON line, and the process exit.
func runWithABadConfiguration(t *testing.T, exe string) {
	bad := "source:\n  account_id: \"12345\"\n  regions: [eu-west-1]\nlimits:\n  concurrency: 0\n"
	fr, logs := startUnderFakeRuntime(t, exe, `{"detail-type": "Scheduled Event"}`, bad)
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.initErr == nil {
		t.Fatalf("no init error reported (the invocation got a %s); output:\n%s", fr.result, logs)
	}
	for _, want := range []string{`"errorType":"InvalidConfiguration"`, "source.account_id", "limits.concurrency"} {
		if !strings.Contains(string(fr.initErr), want) {
			t.Errorf("init error %s lacks %s", fr.initErr, want)
		}
	}
	if fr.initErrType != "InvalidConfiguration" {
		t.Errorf("Lambda-Runtime-Function-Error-Type %q, want InvalidConfiguration", fr.initErrType)
	}
	if !strings.Contains(logs, `"msg":"the function cannot start"`) || !strings.Contains(logs, `"problem_count":2`) {
		t.Errorf("the cold start failure is not one JSON line with both problems:\n%s", logs)
	}
}

// startUnderFakeRuntime runs the binary under a fake Runtime API serving
// event (with configYAML, when set, as AMICOPIER_CONFIG_YAML) until it
// answers the invocation or reports an init error; it returns the fake
// and the process's output.
func startUnderFakeRuntime(t *testing.T, exe, event, configYAML string) (*fakeRuntime, string) {
	t.Helper()
	fr := &fakeRuntime{
		requestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
		event:     []byte(event),
		done:      make(chan struct{}),
		answered:  make(chan struct{}),
	}
	srv := httptest.NewServer(fr)
	defer srv.Close()
	defer close(fr.done)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Dir = t.TempDir()
	cmd.Env = lambdaEnv(t, strings.TrimPrefix(srv.URL, "http://"), cmd.Dir)
	if configYAML != "" {
		cmd.Env = append(cmd.Env, "AMICOPIER_CONFIG_YAML="+configYAML)
	}
	logs, exited, stop := startFunction(t, cmd)
	defer stop()
	select {
	case <-fr.answered:
		// The process wrote its log lines before it answered, but they
		// reach logs through a pipe: give them a moment to arrive.
		logs.settle(2 * time.Second)
	case err := <-exited:
		t.Fatalf("the function exited (%v) without answering the invocation; output:\n%s", err, logs.String())
	case <-ctx.Done():
		t.Fatalf("no answer to the invocation in time; output:\n%s", logs.String())
	}
	if configYAML != "" {
		// After an init error the runtime must exit.
		select {
		case err := <-exited:
			exited <- err
			if err == nil {
				t.Error("the function exited 0 after its init error")
			}
		case <-time.After(30 * time.Second):
			t.Error("the function did not exit after reporting its init error")
		}
	}
	return fr, logs.String()
}

// syncBuffer collects a process's output as exec copies it from the
// pipes, safe to read meanwhile.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	at  time.Time // last write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.at = time.Now()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// settle waits until no output has come for 100 ms, at most max.
func (b *syncBuffer) settle(max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		quiet := time.Since(b.at) > 100*time.Millisecond
		b.mu.Unlock()
		if quiet {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lambdaEnv is the environment Lambda gives a provided.al2023 function,
// plus a small configuration; no credentials and no reachable AWS.
func lambdaEnv(t *testing.T, runtimeAPI, dir string) []string {
	t.Helper()
	closed := "http://127.0.0.1:1"
	cfg := fmt.Sprintf(`source:
  account_id: "111111111111"
  regions: [eu-west-1]
state:
  backend: memory
aws:
  region: eu-west-1
  endpoints: {ec2: %q, organizations: %q, sts: %q, dynamodb: %q}
`, closed, closed, closed, closed)
	return []string{
		"AWS_LAMBDA_RUNTIME_API=" + runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME=amicopier",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/amicopier",
		"AWS_LAMBDA_LOG_STREAM_NAME=2024/01/01/[$LATEST]0123456789abcdef",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"AWS_REGION=eu-west-1",
		"AWS_DEFAULT_REGION=eu-west-1",
		"_HANDLER=bootstrap",
		"LAMBDA_TASK_ROOT=" + dir,
		"HOME=" + dir,
		"TZ=:UTC",
		"AWS_ACCESS_KEY_ID=AKIDDEPLOYTEST",
		"AWS_SECRET_ACCESS_KEY=deploytest",
		"AWS_EC2_METADATA_DISABLED=true",
		"AMICOPIER_CONFIG_YAML=" + cfg,
	}
}

// runAsCLI checks that without the runtime variables the same binary is
// the command line, stamped with the build's version.
func runAsCLI(t *testing.T, exe string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "version")
	cmd.Env = []string{"HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bootstrap version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), testVersion) {
		t.Errorf("bootstrap version printed %q, want it to name %s", out, testVersion)
	}
}

// startFunction starts the function's process, its output into logs;
// exited receives its end, and stop kills it and waits for it.
func startFunction(t *testing.T, cmd *exec.Cmd) (logs *syncBuffer, exited chan error, stop func()) {
	t.Helper()
	logs = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return logs, exited, func() {
		_ = cmd.Process.Kill()
		<-exited
	}
}
