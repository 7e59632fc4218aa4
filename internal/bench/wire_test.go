package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/engineconfig"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
)

func scenario(t *testing.T, name string) Scenario {
	t.Helper()
	scs, err := Select([]string{name})
	if err != nil || len(scs) != 1 {
		t.Fatalf("Select(%s): %v", name, err)
	}
	return scs[0]
}

// TestWireScenariosAreTheInProcessOnes: a wire scenario is its in-process
// scenario's organisation and settings.
func TestWireScenariosAreTheInProcessOnes(t *testing.T) {
	for _, name := range []string{"small-noop", "small-catchup", "noop-1000x4x200", "catchup-10000"} {
		base, wire := scenario(t, name), scenario(t, "wire-"+name)
		if !wire.Wire || base.Wire {
			t.Errorf("%s: Wire %v, base %v", name, wire.Wire, base.Wire)
		}
		wire.Name, wire.Wire, wire.Doc = base.Name, false, base.Doc
		if !reflect.DeepEqual(wire, base) {
			t.Errorf("wire-%s differs from %s:\n%+v\n%+v", name, name, wire, base)
		}
	}
	if _, err := Run(context.Background(), scenario(t, "wire-small-noop"), Options{}); err == nil {
		t.Error("Run accepted a wire scenario")
	}
	if _, err := RunWire(context.Background(), scenario(t, "small-noop"), WireOptions{}); err == nil {
		t.Error("RunWire accepted an in-process scenario")
	}
}

// TestWireConfig: the file the binary reads gives the engine the settings
// of the in-process runs, with the served endpoints and a state file.
func TestWireConfig(t *testing.T) {
	for _, name := range []string{"small-catchup", "noop-1000x4x200"} {
		sc := scenario(t, "wire-"+name)
		dir := t.TempDir()
		path, state := filepath.Join(dir, "config.yaml"), filepath.Join(dir, "state.db")
		if err := writeWireConfig(path, sc, "http://127.0.0.1:4321", state); err != nil {
			t.Fatal(err)
		}
		got, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := scenarioConfig(sc)
		if err != nil {
			t.Fatal(err)
		}
		gs, err := engineconfig.Settings(got)
		if err != nil {
			t.Fatal(err)
		}
		ws, err := engineconfig.Settings(want)
		if err != nil {
			t.Fatal(err)
		}
		// The copy templates are compiled apart: compare their sources.
		// Printed, so that an empty list in the file equals a default nil.
		gs.Copy, ws.Copy = reconcile.CopySettings{}, reconcile.CopySettings{}
		if fmt.Sprintf("%+v", gs) != fmt.Sprintf("%+v", ws) || fmt.Sprintf("%+v", got.Copy) != fmt.Sprintf("%+v", want.Copy) {
			t.Errorf("%s: the file's engine settings\n%+v\nthe in-process runs'\n%+v", name, gs, ws)
		}
		e := got.AWS.Endpoints
		if e.EC2 != "http://127.0.0.1:4321" || e.Organizations != e.EC2 || e.STS != e.EC2 || got.State.Backend != wireStateBackend(sc) ||
			got.State.Path != state || got.Limits.Concurrency != sc.Concurrency {
			t.Errorf("%s: endpoints %+v, state %s %s, concurrency %d", name, e, got.State.Backend, got.State.Path, got.Limits.Concurrency)
		}
	}
}

// serveForTest serves the scenario in this process and returns the base
// URL; the server stops with the test.
func serveForTest(t *testing.T, sc Scenario, o ServeOptions) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	portFile := filepath.Join(t.TempDir(), "port")
	ready := make(chan string, 1)
	done := make(chan error, 1)
	o.PortFile, o.Ready = portFile, func(u string) { ready <- u }
	go func() { done <- Serve(ctx, sc, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(portFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the port file outlived the server: %v", err)
		}
	})
	select {
	case u := <-ready:
		port, ok, err := ReadPortFile(portFile)
		if err != nil || !ok || !strings.HasSuffix(u, ":"+strconv.Itoa(port)) || !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Fatalf("port file %d %v %v for %s", port, ok, err, u)
		}
		return u
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the server did not start")
	}
	return ""
}

// TestServeInspection: a served organisation answers its scenario, calls
// and copies, read-only.
func TestServeInspection(t *testing.T) {
	ctx := context.Background()
	sc := scenario(t, "small-catchup")
	sc.Latency = 0
	url := serveForTest(t, sc, ServeOptions{})
	insp := NewInspectClient(url)

	served, err := insp.Scenario(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := build(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	e := w.expect()
	if served.Name != sc.Name || served.Pairs != e.Pairs || served.Missing != e.Missing || served.Startable != e.Startable ||
		served.Bound != e.Bound || served.Floor != e.Floor {
		t.Errorf("served %+v, want the expectations of bound.go %+v", served, e)
	}
	calls, err := insp.Calls(ctx)
	if err != nil || calls.Total != 0 {
		t.Errorf("calls before any request: %+v %v", calls, err)
	}
	census, err := insp.Copies(ctx, ItemsAnomalies)
	if err != nil {
		t.Fatal(err)
	}
	if census.Pairs != 1100 || census.PairsWithoutCopy != 1100 || census.Copies != 0 || len(census.Items) != 1100 {
		t.Errorf("census %+v (%d items)", census, len(census.Items))
	}
	for _, bad := range []string{"copies?items=some", "nothing"} {
		resp, err := http.Get(url + "/_sim/" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET /_sim/%s: %s", bad, resp.Status)
		}
	}
	resp, err := http.Post(url+"/_sim/calls", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("POST /_sim/calls: %s (the inspection is read-only)", resp.Status)
	}
}

// TestServeCopiesComplete: with CopiesComplete a copy the server accepts
// is available at once; without, it stays pending.
func TestServeCopiesComplete(t *testing.T) {
	ctx := context.Background()
	sc := scenario(t, "small-catchup")
	sc.Latency = 0
	for _, complete := range []bool{false, true} {
		base := serveForTest(t, sc, ServeOptions{CopiesComplete: complete})
		insp := NewInspectClient(base)
		census, err := insp.Copies(ctx, ItemsAll)
		if err != nil {
			t.Fatal(err)
		}
		p := census.Items[0] // a pair of account 200000000001
		form := url.Values{"Action": {"CopyImage"}, "Version": {"2016-11-15"}, "SourceImageId": {p.SourceImage},
			"SourceRegion": {p.SourceRegion}, "Name": {"copy-" + p.SourceImage}, "Encrypted": {"true"}}
		req, err := http.NewRequest(http.MethodPost, base, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// As the source account: it may copy its own image.
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+awsfake.BaseAccessKeyID+"/20260101/"+p.Region+"/ec2/aws4_request, SignedHeaders=host, Signature=00")
		req.Header.Set("X-Amz-Security-Token", awsfake.BaseSessionToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("CopyImage: %s", resp.Status)
		}
		census, err = insp.Copies(ctx, ItemsNone)
		if err != nil {
			t.Fatal(err)
		}
		want := "pending"
		if complete {
			want = "available"
		}
		if census.MadeByCopyImage != 1 || census.CopiesByState[want] != 1 {
			t.Errorf("CopiesComplete %v: census %+v, want one %s copy", complete, census, want)
		}
	}
}

// TestCensus: one copy per pair is the norm; a second live copy, a copy
// of no wanted pair and a deregistered copy are told apart.
func TestCensus(t *testing.T) {
	ctx := context.Background()
	w, err := build(ctx, Scenario{Name: "census", Kind: NoOp, Accounts: 4, OUs: 2, Regions: []string{"eu-west-1"},
		Images:      []ImageSet{{Region: "eu-west-1", Count: 2, Snapshots: 1, OU: 0, Copied: true}},
		InFlightCap: 20, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	in := &inspector{w: w, exp: w.expect()}
	got := in.census(nil, ItemsAnomalies)
	if got.Pairs != 4 || got.PairsWithOneCopy != 4 || got.Copies != 4 || len(got.Items) != 0 {
		t.Fatalf("scenery: %+v", got)
	}
	src := w.images[0]
	tags := map[string]string{reconcile.TagCopiedFrom: src.img.ID}
	dup := w.cloud.AddImage(w.ous[0][0], "eu-west-1", sim.ImageSpec{Name: "second", Tags: tags})
	w.cloud.AddImage(w.ous[1][0], "eu-west-1", sim.ImageSpec{Name: "outside the OU", Tags: tags})
	got = in.census(nil, ItemsAll)
	if got.PairsWithMore != 1 || got.UnwantedCopies != 1 || got.Copies != 6 || len(got.Items) != 5 {
		t.Fatalf("with a duplicate and an unwanted copy: %+v", got)
	}
	w.cloud.DisableImage(w.ous[0][0], "eu-west-1", dup.ID)
	if got = in.census(nil, ItemsNone); got.PairsWithMore != 1 || got.CopiesByState["disabled"] != 1 || len(got.Items) != 0 {
		t.Fatalf("a disabled copy still counts: %+v", got)
	}
}

// TestWireScenarioEndToEnd builds the binaries and runs the small wire
// scenarios without latency: plan and run of the built binary against the
// served organisation, measured.
func TestWireScenarioEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	dir := t.TempDir()
	bins := map[string]string{"amicopier": "../../cmd/amicopier", "amicopier-bench": "./cmd/amicopier-bench"}
	for name, pkg := range bins {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	for _, name := range []string{"wire-small-noop", "wire-small-catchup"} {
		sc := scenario(t, name)
		sc.Latency = 0
		res, err := RunWire(context.Background(), sc, WireOptions{
			Amicopier: filepath.Join(dir, "amicopier"), Server: []string{filepath.Join(dir, "amicopier-bench"), "serve"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Pass || res.PeakRSSMB <= 0 || res.Plan.CPUSeconds <= 0 || res.AnswersMB <= 0 || res.APICalls.Total != int64(res.LowerBoundCalls)+res.OverheadCalls {
			t.Errorf("%s: %+v", name, res)
		}
	}
}

// TestPeakRSSIsTheChildsOwn: a child started by a process with a large
// resident set is measured at its own peak, not at its parent's (which
// wait4's ru_maxrss reports on Linux: the reason peakRSS polls VmHWM).
func TestPeakRSSIsTheChildsOwn(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	ballast := make([]byte, 256<<20)
	for i := range ballast {
		ballast[i] = byte(i)
	}
	cmd := exec.Command("sleep", "0.3")
	var h peakRSS
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.watch(cmd.Process.Pid)
	err := cmd.Wait()
	h.stop()
	if err != nil {
		t.Fatal(err)
	}
	got := h.megabytes()
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	t.Logf("sleep's peak RSS: %.1f MB polled; ru_maxrss says %.1f MB (the parent holds %d MB)", got, float64(ru.Maxrss)/1024, len(ballast)>>20)
	if got <= 0 || got > 64 {
		t.Errorf("sleep's peak RSS %.1f MB, want its own few MB", got)
	}
	runtime.KeepAlive(ballast)
}
