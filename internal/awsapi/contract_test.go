package awsapi

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/demo"
	"github.com/amicopier/amicopier/internal/engineconfig"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// TestEngineContract runs the same engine scenario (the demo's
// organisation) once through the simulator's own connector and once
// through the SDK adapters talking HTTP to awsfake over that simulator:
// both must see the same world and do the same things.
func TestEngineContract(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := func(scene *demo.Scene, connect reconcile.ConnectFunc) *reconcile.Engine {
		e, err := reconcile.New(reconcile.Options{
			Settings: settingsOf(t, scene.Config), Connect: connect, Store: state.NewMemory(), Clock: scene.Cloud, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	viaSim := func(scene *demo.Scene) reconcile.ConnectFunc {
		return func(context.Context, string) (cloud.Connector, error) {
			return scene.Cloud.Connector(demo.SourceAccount), nil
		}
	}

	simScene, err := demo.NewScene(sim.DefaultStart())
	if err != nil {
		t.Fatal(err)
	}
	httpScene, err := demo.NewScene(sim.DefaultStart())
	if err != nil {
		t.Fatal(err)
	}
	fakeEnv(t)
	fake := awsfake.New(httpScene.Cloud, awsfake.Options{BaseAccount: demo.SourceAccount, ExternalID: httpScene.Config.Targets.ExternalID, PageSize: 2, OrgPageSize: 3})
	defer fake.Close()
	cfg := *httpScene.Config
	cfg.AWS.Region = "eu-west-1"
	cfg.AWS.Endpoints.EC2, cfg.AWS.Endpoints.Organizations, cfg.AWS.Endpoints.STS = fake.URL(), fake.URL(), fake.URL()
	// The demo publishes its copies and sends events: through the fake too.
	cfg.AWS.Endpoints.SSM, cfg.AWS.Endpoints.Events = fake.URL(), fake.URL()
	httpScene.Config = &cfg
	sess, err := NewSession(ctx, &cfg, Options{Logger: quiet, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	viaHTTP := func(readOnly bool) reconcile.ConnectFunc {
		return func(_ context.Context, id string) (cloud.Connector, error) {
			return sess.Connect(id, ConnectOptions{ReadOnly: readOnly}), nil
		}
	}

	simEngine, httpEngine := engine(simScene, viaSim(simScene)), engine(httpScene, viaHTTP(false))
	plan := reconcile.Request{Mode: reconcile.ModePlan, Trigger: "test", IncludeOK: true, RunID: "plan-1"}
	want, err := simEngine.Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	got, err := engine(httpScene, viaHTTP(true)).Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Report, want.Report) {
		t.Fatalf("plan through HTTP differs from the simulator's:\n got %+v\nwant %+v", got.Report, want.Report)
	}
	if got.Report.Counts[report.Missing] == 0 {
		t.Fatal("the scenario has nothing missing: it proves nothing")
	}
	if n := fake.MutatingCalls(); n != 0 || got.Summary.MutatingCalls != 0 {
		t.Fatalf("plan made %d mutating calls (summary says %d)", n, got.Summary.MutatingCalls)
	}

	apply := reconcile.Request{Mode: reconcile.ModeRun, Trigger: "test", RunID: "run-1"}
	wantRun, err := simEngine.Run(ctx, apply)
	if err != nil {
		t.Fatal(err)
	}
	gotRun, err := httpEngine.Run(ctx, apply)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(gotRun.Summary.Actions, wantRun.Summary.Actions) || !maps.Equal(gotRun.Summary.Counts, wantRun.Summary.Counts) {
		t.Errorf("run through HTTP: actions %v counts %v\nsimulator: actions %v counts %v",
			gotRun.Summary.Actions, gotRun.Summary.Counts, wantRun.Summary.Actions, wantRun.Summary.Counts)
	}
	if gotRun.Summary.Status != wantRun.Summary.Status {
		t.Errorf("status %s, simulator %s (errors %v)", gotRun.Summary.Status, wantRun.Summary.Status, gotRun.Summary.Errors)
	}
	if copies := fake.Calls("CopyImage"); copies != gotRun.Summary.Actions["copy"] {
		t.Errorf("%d CopyImage requests for %d copies", copies, gotRun.Summary.Actions["copy"])
	}
	if c := gotRun.Summary.APICalls; c["AssumeRole"] == 0 || c["CopyImage"] == 0 {
		t.Errorf("api calls %v", c)
	}

	// Time passes, the copies finish: nothing is missing any more.
	httpScene.Cloud.Advance(httpScene.Cloud.CopyDuration() + time.Minute)
	after, err := httpEngine.Run(ctx, reconcile.Request{Mode: reconcile.ModePlan, Trigger: "test", RunID: "plan-2"})
	if err != nil {
		t.Fatal(err)
	}
	if n := after.Report.Counts[report.Missing] + after.Report.Counts[report.InProgress] + after.Report.Counts[report.Failed]; n != 0 {
		t.Errorf("after the copies finished: counts %v", after.Report.Counts)
	}

	// The next run publishes the copies in SSM and sends their events,
	// through HTTP as the simulator does.
	simScene.Cloud.Advance(simScene.Cloud.CopyDuration() + time.Minute)
	next := reconcile.Request{Mode: reconcile.ModeRun, Trigger: "test", RunID: "run-2", AllParameters: true}
	wantNext, err := simEngine.Run(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	gotNext, err := httpEngine.Run(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(gotNext.Summary.Actions, wantNext.Summary.Actions) || gotNext.Summary.Actions["parameter_updated"] != 3 {
		t.Errorf("next run through HTTP: actions %v, simulator %v", gotNext.Summary.Actions, wantNext.Summary.Actions)
	}
	if !reflect.DeepEqual(gotNext.Report.Parameters, wantNext.Report.Parameters) {
		t.Errorf("parameters through HTTP differ:\n got %+v\nwant %+v", gotNext.Report.Parameters, wantNext.Report.Parameters)
	}
	if !maps.Equal(gotNext.Summary.Events.Published, wantNext.Summary.Events.Published) || fake.Calls("PutParameter") != gotRun.Summary.Actions["parameter_created"]+gotNext.Summary.Actions["parameter_created"]+gotNext.Summary.Actions["parameter_updated"] {
		t.Errorf("events %v (simulator %v), %d PutParameter requests", gotNext.Summary.Events.Published, wantNext.Summary.Events.Published, fake.Calls("PutParameter"))
	}
	for _, p := range gotNext.Report.Parameters {
		if p.Validation != "" && p.Validation != report.ValidationDone {
			t.Errorf("parameter %s in %s: validation %s", p.Name, p.Account, p.Validation)
		}
	}
}

// settingsOf is the engine's settings for cfg.
func settingsOf(t testing.TB, cfg *config.Config) reconcile.Settings {
	t.Helper()
	s, err := engineconfig.Settings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
