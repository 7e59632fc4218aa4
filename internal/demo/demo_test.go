package demo_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/demo"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

func runDemo(t *testing.T) (*demo.Scene, *demo.Outcome) {
	t.Helper()
	scene, err := demo.NewScene(sim.DefaultStart())
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.OpenFile(t.TempDir() + "/state.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	out, err := demo.Run(context.Background(), scene, store, demo.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return scene, out
}

// TestDemoShowsTheWholeLoop checks what the demo promises: drift found,
// exactly the needed copies made, repaired drift gone, reported drift left.
func TestDemoShowsTheWholeLoop(t *testing.T) {
	scene, out := runDemo(t)
	if out.Before.Counts[report.Missing] == 0 {
		t.Fatal("the demo starts without missing copies")
	}
	needCopy := 0
	for _, it := range out.Before.Items {
		if strings.Contains(it.Action, "copy") {
			needCopy++
		}
	}
	if got := out.Run.APICalls["CopyImage"]; got != int64(needCopy) {
		t.Fatalf("CopyImage calls = %d, want %d (the pairs that needed a copy)", got, needCopy)
	}
	for _, c := range []report.Category{report.Missing, report.InProgress, report.Failed, report.Stuck} {
		if n := out.After.Counts[c]; n != 0 {
			t.Errorf("after: %s = %d, want 0", c, n)
		}
	}
	for _, c := range []report.Category{report.Unencrypted, report.RejectedTarget} {
		if out.Before.Counts[c] == 0 || out.After.Counts[c] != out.Before.Counts[c] {
			t.Errorf("%s: before %d, after %d; the demo must show it reported, untouched", c, out.Before.Counts[c], out.After.Counts[c])
		}
	}
	// The foreign account named by a tag is never shared with.
	for _, img := range scene.Images {
		for _, a := range scene.Cloud.LaunchPermissions(demo.SourceAccount, img.Region, img.ID) {
			if a == demo.Foreign || a == demo.LegacyBatch || a == demo.CIRunners {
				t.Errorf("%s shared with %s", img.ID, a)
			}
		}
	}
	if out.Run.Status != report.StatusSucceeded {
		t.Errorf("run status %s: %v", out.Run.Status, out.Run.Errors)
	}
}

func TestDemoJSONShape(t *testing.T) {
	_, out := runDemo(t)
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Before struct {
			Schema string         `json:"schema"`
			Counts map[string]int `json:"counts"`
			Items  []struct {
				Account, Region, SourceImage, Category, Reason string
			} `json:"items"`
		} `json:"before"`
		Run struct {
			APICalls map[string]int64 `json:"api_calls"`
			Actions  map[string]int   `json:"actions"`
		} `json:"run"`
		After json.RawMessage `json:"after"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Before.Schema != report.Schema {
		t.Errorf("schema = %q", doc.Before.Schema)
	}
	for _, c := range report.Categories {
		if _, ok := doc.Before.Counts[string(c)]; !ok {
			t.Errorf("counts lack %q", c)
		}
	}
	if doc.Run.APICalls["CopyImage"] == 0 || doc.Run.Actions["copy"] == 0 || len(doc.After) == 0 {
		t.Errorf("run summary incomplete: %+v", doc.Run)
	}
}

func TestDemoIsDeterministic(t *testing.T) {
	_, a := runDemo(t)
	_, b := runDemo(t)
	strip := func(r *report.Report) string {
		c := *r
		raw, _ := json.Marshal(c.Items)
		counts, _ := json.Marshal(c.Counts)
		return string(raw) + string(counts)
	}
	if strip(a.Before) != strip(b.Before) || strip(a.After) != strip(b.After) {
		t.Fatal("two demo runs report differently")
	}
}

func TestDemoMatrixKnowsEveryOU(t *testing.T) {
	scene, err := demo.NewScene(sim.DefaultStart())
	if err != nil {
		t.Fatal(err)
	}
	out, err := demo.Run(context.Background(), scene, state.NewMemory(state.WithClock(scene.Cloud.Now)),
		demo.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), IncludeOK: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{demo.ProdWeb: "Production", demo.StagingAPI: "Staging", demo.Analytics: "Workloads",
		demo.SandboxBob: "Sandbox", demo.SecurityTooling: "Security", demo.LegacyBatch: "Workloads"}
	got := map[string]string{}
	for _, a := range out.After.Accounts {
		got[a.ID] = a.OU
	}
	for id, ou := range want {
		if got[id] != ou {
			t.Errorf("account %s: OU %q, want %q", id, got[id], ou)
		}
	}
	if n := out.After.Counts[report.OK]; len(out.After.Items) != out.After.Pairs || n == 0 {
		t.Errorf("with IncludeOK every pair is listed: %d items for %d pairs", len(out.After.Items), out.After.Pairs)
	}
}

// TestDemoCheckFindsTheBrokenKey: after the run, the preflight check finds
// the key whose policy lost the Auto Scaling statements, and nothing else,
// without a mutating call.
func TestDemoCheckFindsTheBrokenKey(t *testing.T) {
	_, out := runDemo(t)
	if out.Check == nil {
		t.Fatal("the demo ran no check")
	}
	var got []string
	for _, f := range out.Check.Findings {
		got = append(got, string(f.Kind)+"@"+f.Account+"/"+f.Region)
	}
	want := []string{string(report.AutoScalingGrantMissing) + "@" + demo.StagingWeb + "/eu-west-1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("check findings %v, want %v; notes %v", got, want, out.Check.Notes)
	}
	if out.Check.Status != report.StatusSucceeded || out.Check.MutatingCalls != 0 || out.Check.DryRuns == 0 {
		t.Errorf("check: status %s, %d mutating calls, %d dry runs", out.Check.Status, out.Check.MutatingCalls, out.Check.DryRuns)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"check":{"schema":"amicopier.check/v1"`) {
		t.Errorf("the JSON output has no check object")
	}
}

// TestDemoShowsTheLifecycle: the next run deprecates every copy made (its
// source's time or copy.deprecate_after's, the earlier), the previous web
// build's copies (three accounts) are reported superseded and deprecated
// like their source, and
// after that nothing differs.
func TestDemoShowsTheLifecycle(t *testing.T) {
	scene, out := runDemo(t)
	if out.Run.Actions["copy"] == 0 || len(out.Deprecations) != out.Run.Actions["copy"] {
		t.Fatalf("the next run set %d deprecation times for %d copies made", len(out.Deprecations), out.Run.Actions["copy"])
	}
	for _, d := range out.Deprecations {
		img, ok := scene.Cloud.Image(d.Account, d.Region, d.Image)
		if !ok || d.Action != report.DeprecationSet || !img.DeprecationTime.Equal(d.Wanted) {
			t.Errorf("%+v: the copy's deprecation time is %v", d, img.DeprecationTime)
		}
	}
	superseded := 0
	previous := scene.Images["ubuntu-jammy-web-411"]
	for _, it := range out.After.Items {
		if it.Category != report.Superseded {
			continue
		}
		superseded++
		if it.SourceImage != previous.ID || len(it.Copies) != 1 || !it.Copies[0].DeprecationTime.Equal(previous.DeprecationTime) {
			t.Errorf("superseded %+v: want the previous build's copy, deprecated like its source (%v)", it, previous.DeprecationTime)
		}
	}
	if superseded != 3 {
		t.Errorf("%d superseded copies reported, want 3", superseded)
	}
	if len(out.After.Deprecations) != 0 || out.NextRun.Status != report.StatusSucceeded {
		t.Errorf("after: deprecations still differ %+v; next run %s %v", out.After.Deprecations, out.NextRun.Status, out.NextRun.Errors)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"next_run":{`, `"deprecations":[{`, `"category":"superseded"`, `"deprecation_time":"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the JSON output lacks %s", want)
		}
	}
}

// TestDemoPublishesTheCopies: after the run, the SSM parameters of every
// target account name available, encrypted copies of their recipe's newest
// build; the three that named the previous build's copies were moved to
// the new build's; the hand-made one is reported, untouched; the account
// whose only copy is unencrypted has none.
func TestDemoPublishesTheCopies(t *testing.T) {
	scene, out := runDemo(t)
	moved := map[string]bool{demo.ProdAPI: true, demo.ProdData: true, demo.StagingAPI: true}
	before := map[string]report.Parameter{}
	for _, p := range out.Before.Parameters {
		before[p.Account+" "+p.Region+" "+p.Name] = p
	}
	ok := 0
	for _, p := range out.After.Parameters {
		key := p.Account + " " + p.Region + " " + p.Name
		switch {
		case p.Account == demo.SandboxBob && p.Name == demo.BaseParameter:
			if p.State != report.ParamForeign || p.Value != "ami-0123456789abcdef0" {
				t.Errorf("the hand-made parameter: %+v", p)
			}
			continue
		case p.Account == demo.Analytics && p.Name == "/golden/al2023-ecs/latest":
			if p.State != report.ParamWaiting || !strings.Contains(p.Reason, "unencrypted") {
				t.Errorf("the unencrypted copy's parameter: %+v", p)
			}
			continue
		}
		if p.State != report.ParamOK {
			t.Errorf("after: %s is %s: %s", key, p.State, p.Reason)
			continue
		}
		ok++
		img, found := scene.Cloud.Image(p.Account, p.Region, p.Value)
		if !found || img.State != "available" || img.BlockDevices[0].KMSKeyID == "" {
			t.Errorf("%s names %s: %+v", key, p.Value, img)
		}
		sp, _ := scene.Cloud.Parameter(p.Account, p.Region, p.Name)
		if p.Name == demo.WebParameter && moved[p.Account] {
			if b := before[key]; b.State != report.ParamStale || b.ValueSource != scene.Previous.ID || sp.Version != 2 {
				t.Errorf("%s before: %+v; now version %d", key, b, sp.Version)
			}
		}
	}
	if ok != out.After.ParameterCounts[report.ParamOK] || ok < 15 {
		t.Errorf("%d ok parameters listed, counts %v", ok, out.After.ParameterCounts)
	}
	if out.NextRun.Actions["parameter_updated"] != 3 || out.NextRun.Actions["parameter_created"] == 0 {
		t.Errorf("next run's actions %v", out.NextRun.Actions)
	}
	// The events: each run's Run Finished, and one Copy Available per
	// copy the first run started.
	types := map[string]int{}
	for _, e := range out.Events {
		types[e.DetailType]++
	}
	if types["amicopier Run Finished"] != 2 || int64(types["amicopier Copy Available"]) != out.Run.APICalls["CopyImage"] || types["amicopier Pair Stuck"] != 0 {
		t.Errorf("events %v (%d copies started)", types, out.Run.APICalls["CopyImage"])
	}
}
