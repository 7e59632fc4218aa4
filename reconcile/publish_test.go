package reconcile_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
)

const paramName = "/golden/web/latest"

// publishWorld is a world whose engine publishes /golden/<Recipe>/latest.
func publishWorld(t *testing.T, n int, opts ...sim.Option) *world {
	t.Helper()
	w := newWorld(t, n, opts...)
	w.cfg.Publish.SSM.NameTemplate = "/golden/{{.Tags.Recipe}}/latest"
	w.cfg.Publish.SSM.VerifyTimeout = 0
	must(t, w.cfg.Validate())
	return w
}

// recipeBuild adds a source image of recipe, created at created, targeted at
// targets, in eu-west-1.
func (w *world) recipeBuild(recipe string, created time.Time, targets string) cloud.Image {
	return w.cloud.AddImage(srcAccount, euWest, sim.ImageSpec{
		Name: recipe + "-" + created.Format("0102"), CreationDate: created,
		Tags: map[string]string{targetTag: targets, "Recipe": recipe},
	})
}

// param returns the parameter of account in eu-west-1 (ok false: none).
func (w *world) param(account, name string) (sim.SimParameter, bool) {
	return w.cloud.Parameter(account, euWest, name)
}

// copyOf returns the one copy of source in account (eu-west-1).
func (w *world) copyOf(account, source string) cloud.Image {
	w.t.Helper()
	cs := w.copies(account, euWest, source)
	if len(cs) != 1 {
		w.t.Fatalf("%d copies of %s in %s, want 1", len(cs), source, account)
	}
	return cs[0]
}

func paramsIn(r *report.Report, state report.ParameterState) []string {
	var out []string
	for _, p := range r.Parameters {
		if p.State == state {
			out = append(out, p.Account+" "+p.Name)
		}
	}
	return out
}

func calls(res *reconcile.Result, op string) int64 { return res.Summary.APICalls[op] }

// TestParameterFollowsTheNewestAvailableBuild: a parameter appears once the
// first copy is available (never while it is pending), a run that changes
// nothing writes nothing (not even a tag read), and a newer build moves it
// only once its copy is available.
func TestParameterFollowsTheNewestAvailableBuild(t *testing.T) {
	w := publishWorld(t, 2)
	base := w.cloud.Now().Add(-48 * time.Hour)
	v1 := w.recipeBuild("web", base, w.ou)
	a, b := accountID(1), accountID(2)

	res := w.run(reconcile.ModeRun)
	if n := calls(res, cloud.OpPutParameter); n != 0 {
		t.Fatalf("run 1 wrote %d parameters while the copies were pending", n)
	}
	if got := paramsIn(res.Report, report.ParamWaiting); len(got) != 2 {
		t.Fatalf("waiting %v, want both accounts (copies pending)\n%+v", got, res.Report.Parameters)
	}
	if _, ok := w.param(a, paramName); ok {
		t.Fatal("a parameter names a pending copy")
	}

	w.settle()
	res = w.run(reconcile.ModeRun)
	if n := calls(res, cloud.OpPutParameter); n != 2 {
		t.Fatalf("run 2: %d PutParameter, want 2 (one per account)", n)
	}
	for _, acct := range []string{a, b} {
		p, ok := w.param(acct, paramName)
		if !ok {
			t.Fatalf("no parameter in %s", acct)
		}
		if want := w.copyOf(acct, v1.ID).ID; p.Value != want || p.DataType != cloud.DataTypeEC2Image || p.Type != cloud.ParameterTypeString {
			t.Errorf("%s: %+v, want %s as a String of aws:ec2:image", acct, p.Parameter, want)
		}
		if p.Tags[reconcile.TagManaged] != "true" || p.Tags[reconcile.TagSourceAccount] != srcAccount {
			t.Errorf("%s: tags %v do not say amicopier made it", acct, p.Tags)
		}
	}
	for _, it := range res.Report.Parameters {
		if it.State != report.ParamMissing || it.Action != "created" || it.Validation != report.ValidationDone {
			t.Errorf("run 2 item %+v", it)
		}
	}
	if res.Summary.Actions["parameter_created"] != 2 {
		t.Errorf("actions %v", res.Summary.Actions)
	}

	// Nothing changed: reads only, one GetParameters per account and
	// Region, no tag read, no write, and no lease.
	res = w.run(reconcile.ModeRun)
	if calls(res, cloud.OpPutParameter) != 0 || calls(res, cloud.OpListTagsForResource) != 0 || calls(res, cloud.OpGetParameters) != 2 {
		t.Fatalf("no-op run: %v", res.Summary.APICalls)
	}
	if res.Summary.StateWrites != 1 || res.Report.ParameterCounts[report.ParamOK] != 2 || len(res.Report.Parameters) != 0 {
		t.Fatalf("no-op run: %d state writes, counts %v, listed %v", res.Summary.StateWrites, res.Report.ParameterCounts, res.Report.Parameters)
	}

	// A newer build: nothing moves while its copies are pending.
	v2 := w.recipeBuild("web", base.Add(24*time.Hour), w.ou)
	res = w.run(reconcile.ModeRun)
	if calls(res, cloud.OpPutParameter) != 0 || res.Report.ParameterCounts[report.ParamOK] != 2 {
		t.Fatalf("with v2 pending: %v, counts %v", res.Summary.APICalls, res.Report.ParameterCounts)
	}
	w.settle()
	plan := w.run(reconcile.ModePlan)
	if got := paramsIn(plan.Report, report.ParamStale); len(got) != 2 || calls(plan, cloud.OpPutParameter) != 0 {
		t.Fatalf("plan: stale %v, calls %v", got, plan.Summary.APICalls)
	}
	for _, it := range plan.Report.Parameters {
		if it.Action != "update" || it.Want != w.copyOf(it.Account, v2.ID).ID || it.ValueSource != v1.ID {
			t.Errorf("plan item %+v", it)
		}
	}
	res = w.run(reconcile.ModeRun)
	if calls(res, cloud.OpPutParameter) != 2 || calls(res, cloud.OpListTagsForResource) != 2 {
		t.Fatalf("moving to v2: %v", res.Summary.APICalls)
	}
	for _, acct := range []string{a, b} {
		if p, _ := w.param(acct, paramName); p.Value != w.copyOf(acct, v2.ID).ID || p.Version != 2 {
			t.Errorf("%s: %+v, want the v2 copy at version 2", acct, p.Parameter)
		}
	}
}

// TestParameterNeverMovesBackwards: when the newest build's copy stops
// being good (disabled, or deregistered), the parameter keeps naming it
// and is reported ahead; it never goes back to the older build.
func TestParameterNeverMovesBackwards(t *testing.T) {
	w := publishWorld(t, 2)
	base := w.cloud.Now().Add(-48 * time.Hour)
	w.recipeBuild("web", base, w.ou)
	v2 := w.recipeBuild("web", base.Add(time.Hour), w.ou)
	w.run(reconcile.ModeRun)
	w.settle()
	w.run(reconcile.ModeRun)
	a, b := accountID(1), accountID(2)
	copyA, copyB := w.copyOf(a, v2.ID), w.copyOf(b, v2.ID)
	if p, _ := w.param(a, paramName); p.Value != copyA.ID {
		t.Fatalf("parameter %+v, want %s", p.Parameter, copyA.ID)
	}
	w.cloud.DisableImage(a, euWest, copyA.ID)
	ctx := context.Background()
	must(t, deregister(ctx, w.cloud.Client(b, euWest), copyB.ID))
	// A while later (the pair's settled record is reopened only by a run
	// after the one that wrote it).
	w.cloud.Advance(time.Minute)

	res := w.run(reconcile.ModeRun)
	if n := calls(res, cloud.OpPutParameter); n != 0 {
		t.Fatalf("%d PutParameter: a parameter moved back to the older build", n)
	}
	got := map[string]report.Parameter{}
	for _, it := range res.Report.Parameters {
		got[it.Account] = it
	}
	if it := got[a]; it.State != report.ParamAhead || !strings.Contains(it.Reason, "never moved back") {
		t.Errorf("disabled copy: %+v", it)
	}
	if it := got[b]; it.State != report.ParamAhead || !strings.Contains(it.Reason, "deregistered") {
		t.Errorf("deregistered copy: %+v", it)
	}
	for _, acct := range []string{a, b} {
		if p, _ := w.param(acct, paramName); p.Version != 1 {
			t.Errorf("%s: version %d", acct, p.Version)
		}
	}
	// The deregistered copy is made again; once it is available the
	// parameter moves forward to it.
	w.settle()
	w.run(reconcile.ModeRun)
	if p, _ := w.param(b, paramName); p.Value != w.copyOf(b, v2.ID).ID || p.Value == copyB.ID {
		t.Errorf("after the new copy: %+v", p.Parameter)
	}
}

// TestForeignParametersAreNeverOverwritten: a parameter amicopier did not
// create is reported, never written, unless publish.ssm.overwrite_foreign;
// then it is overwritten and tagged as amicopier's.
func TestForeignParametersAreNeverOverwritten(t *testing.T) {
	w := publishWorld(t, 2)
	v1 := w.recipeBuild("web", w.cloud.Now().Add(-time.Hour), w.ou)
	a, b := accountID(1), accountID(2)
	w.cloud.SetParameter(a, euWest, sim.ParameterSpec{Name: paramName, Value: "ami-0123456789abcdef0", DataType: cloud.DataTypeEC2Image})
	w.cloud.SetParameter(b, euWest, sim.ParameterSpec{Name: paramName, Value: "ami-0123456789abcdef0", DataType: cloud.DataTypeEC2Image,
		Tags: map[string]string{reconcile.TagManaged: "true", reconcile.TagSourceAccount: "999999999999"}})
	w.run(reconcile.ModeRun)
	w.settle()
	res := w.run(reconcile.ModeRun)
	if calls(res, cloud.OpPutParameter) != 0 {
		t.Fatalf("foreign parameters written: %v", res.Summary.APICalls)
	}
	if got := paramsIn(res.Report, report.ParamForeign); len(got) != 2 {
		t.Fatalf("foreign %v\n%+v", got, res.Report.Parameters)
	}
	for _, it := range res.Report.Parameters {
		if it.Account == b && !strings.Contains(it.Reason, "source account 999999999999") {
			t.Errorf("another deployment's parameter: %s", it.Reason)
		}
	}

	w.cfg.Publish.SSM.OverwriteForeign = true
	res = w.run(reconcile.ModeRun)
	if calls(res, cloud.OpPutParameter) != 2 || calls(res, cloud.OpAddTagsToResource) != 2 {
		t.Fatalf("take over: %v", res.Summary.APICalls)
	}
	for _, acct := range []string{a, b} {
		p, _ := w.param(acct, paramName)
		if p.Value != w.copyOf(acct, v1.ID).ID || p.Tags[reconcile.TagSourceAccount] != srcAccount {
			t.Errorf("%s after take over: %+v", acct, p)
		}
	}
}

// TestParameterValidationIsAsynchronous: SSM validates an aws:ec2:image
// value after PutParameter answered. A value not shown by the end of the
// run is reported pending; one that fails the validation never shows, and
// the next run writes it again.
func TestParameterValidationIsAsynchronous(t *testing.T) {
	w := publishWorld(t, 1, sim.WithParameterValidation(time.Hour))
	a := accountID(1)
	w.recipeBuild("web", w.cloud.Now().Add(-time.Hour), w.ou)
	w.run(reconcile.ModeRun)
	w.settle()
	res := w.run(reconcile.ModeRun)
	if len(res.Report.Parameters) != 1 || res.Report.Parameters[0].Validation != report.ValidationPending {
		t.Fatalf("%+v", res.Report.Parameters)
	}
	if _, ok := w.param(a, paramName); ok {
		t.Fatal("the value showed before SSM validated it")
	}
	if res.Summary.Actions["parameter_validation_pending"] != 1 {
		t.Errorf("actions %v", res.Summary.Actions)
	}
	w.cloud.Advance(time.Hour)
	res = w.run(reconcile.ModeRun)
	if calls(res, cloud.OpPutParameter) != 0 || res.Report.ParameterCounts[report.ParamOK] != 1 {
		t.Fatalf("after validation: %v %v", res.Summary.APICalls, res.Report.ParameterCounts)
	}

	// The copier role may not describe images: SSM's validation fails,
	// nothing shows, and every run tries again.
	w2 := publishWorld(t, 1)
	w2.recipeBuild("web", w2.cloud.Now().Add(-time.Hour), w2.ou)
	w2.run(reconcile.ModeRun)
	w2.settle()
	w2.cloud.DenyCopierActions(a, "ec2:DescribeImages")
	for i := range 2 {
		res := w2.run(reconcile.ModeRun)
		if calls(res, cloud.OpPutParameter) != 1 || res.Report.Parameters[0].Validation != report.ValidationPending {
			t.Fatalf("run %d: %v %+v", i, res.Summary.APICalls, res.Report.Parameters)
		}
	}
	if _, ok := w2.param(a, paramName); ok {
		t.Fatal("a value that failed validation shows")
	}
}

// TestParametersReadInBatchesOfTen: GetParameters takes ten names; a
// Region with more groups reads them in several calls.
func TestParametersReadInBatchesOfTen(t *testing.T) {
	w := publishWorld(t, 1)
	for i := range 23 {
		w.recipeBuild("r"+string(rune('a'+i)), w.cloud.Now().Add(-time.Hour), w.ou)
	}
	res := w.run(reconcile.ModePlan)
	if n := calls(res, cloud.OpGetParameters); n != 3 {
		t.Fatalf("%d GetParameters for 23 names, want 3", n)
	}
	if res.Report.ParameterCounts[report.ParamWaiting] != 23 {
		t.Fatalf("counts %v", res.Report.ParameterCounts)
	}
}

// TestParametersNeverNameBadCopies: an unencrypted copy (made by hand) and
// a copy under another key are never published; the parameter waits.
func TestParametersNeverNameBadCopies(t *testing.T) {
	w := publishWorld(t, 2)
	v1 := w.recipeBuild("web", w.cloud.Now().Add(-time.Hour), w.ou)
	a, b := accountID(1), accountID(2)
	w.cloud.AddImage(a, euWest, sim.ImageSpec{Name: "by-hand", Tags: map[string]string{reconcile.TagCopiedFrom: v1.ID}})
	other := w.cloud.AddKey(b, euWest, "other")
	w.cloud.AddImage(b, euWest, sim.ImageSpec{Name: "other-key", Devices: []sim.DeviceSpec{{KMSKeyARN: other}}, Tags: map[string]string{
		reconcile.TagCopiedFrom: v1.ID, reconcile.TagManaged: "true", reconcile.TagSourceAccount: srcAccount, reconcile.TagKMSKey: "alias/other",
	}})
	w.run(reconcile.ModeRun)
	w.settle()
	res := w.run(reconcile.ModeRun)
	if calls(res, cloud.OpPutParameter) != 0 {
		t.Fatalf("a bad copy was published: %v", res.Summary.APICalls)
	}
	got := paramsIn(res.Report, report.ParamWaiting)
	slices.Sort(got)
	if len(got) != 2 {
		t.Fatalf("waiting %v\n%+v", got, res.Report.Parameters)
	}
	for _, it := range res.Report.Parameters {
		if !strings.Contains(it.Reason, "unencrypted") && !strings.Contains(it.Reason, "another key") {
			t.Errorf("reason %q does not say why", it.Reason)
		}
	}
}
