package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
)

// publishAWSWorld is the AWS world with publish.ssm and events.bus set,
// the SSM and EventBridge endpoints pointing at the fake.
func publishAWSWorld(t *testing.T) (*awsWorld, string) {
	t.Helper()
	w := newAWSWorld(t, false)
	bus := w.cloud.AddEventBus(awsSource, awsRegion, "images")
	doc, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The endpoints are the file's last section.
	doc = append(doc, []byte("    ssm: "+w.fake.URL()+"\n    events: "+w.fake.URL()+"\n"+
		"publish:\n  ssm:\n    name_template: /golden/{{.Name}}/latest\n    verify_timeout: 2s\n"+
		"events:\n  bus: images\n")...)
	if err := os.WriteFile(w.cfgPath, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	return w, bus
}

func busTypes(evs []sim.BusEvent) map[string]int {
	out := map[string]int{}
	for _, e := range evs {
		out[e.DetailType]++
	}
	return out
}

// TestPublishAgainstAWSProtocols drives plan and run through the SDK
// adapters against the fake AWS: SSM over JSON 1.1 (GetParameters,
// ListTagsForResource, PutParameter), EventBridge's PutEvents, and plan
// sending no mutating request.
func TestPublishAgainstAWSProtocols(t *testing.T) {
	w, bus := publishAWSWorld(t)
	baseCopy := w.cloud.Images(awsAcctA, awsRegion)[0]

	code, out, errOut := run(t, "plan", "--config", w.cfgPath, "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("plan: exit %d\n%s", code, errOut)
	}
	rep := decodeReport(t, out)
	got := map[string]report.Parameter{}
	for _, p := range rep.Parameters {
		got[p.Account+" "+p.Name] = p
	}
	if p := got[awsAcctA+" /golden/base/latest"]; p.State != report.ParamMissing || p.Action != "create" || p.Want != baseCopy.ID {
		t.Errorf("plan, base in A: %+v", p)
	}
	if p := got[awsAcctB+" /golden/web/latest"]; p.State != report.ParamWaiting {
		t.Errorf("plan, web in B: %+v", p)
	}
	if rep.Events == nil || rep.Events.WouldPublish[reconcile.EventRunFinished] != 1 {
		t.Errorf("plan's events: %+v", rep.Events)
	}
	if n := w.fake.MutatingCalls(); n != 0 || w.fake.Calls("GetParameters") == 0 {
		t.Fatalf("plan: %d mutating requests, %d GetParameters", n, w.fake.Calls("GetParameters"))
	}

	code, out, errOut = run(t, "run", "--config", w.cfgPath, "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	p, ok := w.cloud.Parameter(awsAcctA, awsRegion, "/golden/base/latest")
	if !ok || p.Value != baseCopy.ID || p.DataType != cloud.DataTypeEC2Image || p.Tags[reconcile.TagManaged] != "true" {
		t.Fatalf("the parameter in A: %+v (%v)", p, ok)
	}
	if got := busTypes(w.cloud.BusEvents(bus)); got[reconcile.EventRunFinished] != 1 || len(got) != 1 {
		t.Fatalf("events after run 1: %v", got)
	}
	var res struct {
		Summary report.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Summary.Actions["parameter_created"] != 1 || res.Summary.Events.Published[reconcile.EventRunFinished] != 1 {
		t.Fatalf("run summary %+v, %v", res.Summary, err)
	}

	// The copies finish: the next run names them and says so.
	w.cloud.Advance(w.cloud.CopyDuration() + 1)
	puts := w.fake.Calls("PutParameter")
	if code, _, errOut := run(t, "run", "--config", w.cfgPath); code != cli.ExitOK {
		t.Fatalf("run 2: exit %d\n%s", code, errOut)
	}
	if n := w.fake.Calls("PutParameter") - puts; n != 2 {
		t.Errorf("run 2: %d PutParameter requests, want 2 (web in A and B)", n)
	}
	for _, acct := range []string{awsAcctA, awsAcctB} {
		p, _ := w.cloud.Parameter(acct, awsRegion, "/golden/web/latest")
		var copyID string
		for _, img := range w.cloud.Images(acct, awsRegion) {
			if img.Tags[reconcile.TagCopiedFrom] == w.img1.ID {
				copyID = img.ID
			}
		}
		if p.Value == "" || p.Value != copyID {
			t.Errorf("web in %s: %+v, want %s", acct, p.Parameter, copyID)
		}
	}
	if got := busTypes(w.cloud.BusEvents(bus)); got[reconcile.EventCopyAvailable] != 2 || got[reconcile.EventRunFinished] != 2 {
		t.Errorf("events after run 2: %v", got)
	}

	// Nothing changed: no write, no tag read.
	puts, tags := w.fake.Calls("PutParameter"), w.fake.Calls("ListTagsForResource")
	code, out, _ = run(t, "run", "--config", w.cfgPath)
	if code != cli.ExitOK || w.fake.Calls("PutParameter") != puts || w.fake.Calls("ListTagsForResource") != tags {
		t.Fatalf("run 3: exit %d, %d writes, %d tag reads\n%s", code, w.fake.Calls("PutParameter")-puts, w.fake.Calls("ListTagsForResource")-tags, out)
	}
	if !strings.Contains(out, "SSM parameter(s): ok 3") || !strings.Contains(out, "Events to images: published amicopier Run Finished 1") {
		t.Errorf("run 3's table:\n%s", out)
	}
	// The requests were signed for ssm and events, JSON 1.1.
	for _, r := range w.fake.Requests() {
		if r.Op == "PutParameter" && (r.Service != "ssm" || r.Header.Get("X-Amz-Target") != "AmazonSSM.PutParameter" || !r.Assumed) {
			t.Errorf("PutParameter request %s %s assumed=%v", r.Service, r.Header.Get("X-Amz-Target"), r.Assumed)
		}
		if r.Op == "PutEvents" && (r.Service != "events" || r.Assumed || r.Account != awsSource) {
			t.Errorf("PutEvents request %s as %s assumed=%v", r.Service, r.Account, r.Assumed)
		}
	}
}

// TestPublishConfigErrors: validate names a bad template (with its line),
// and accepts the example; plan refuses to start on the same file.
func TestPublishConfigErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	doc := "source:\n  account_id: \"111111111111\"\n  regions: [eu-west-1]\npublish:\n  ssm:\n    name_template: \"/golden/{{.Tags.Recipe}} latest\"\nevents:\n  bus: arn:aws:events:eu-west-1:111111111111:event-bus/images\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "validate", "--config", path, "--no-env")
	all := out + errOut
	if code != cli.ExitError || !strings.Contains(all, "publish.ssm.name_template ("+path+":6)") || !strings.Contains(all, `"/golden/ubuntu-jammy latest"`) {
		t.Fatalf("validate: exit %d\n%s", code, all)
	}
	code, _, errOut = run(t, "plan", "--config", path)
	if code != cli.ExitError || !strings.Contains(errOut, "publish.ssm.name_template") {
		t.Fatalf("plan: exit %d\n%s", code, errOut)
	}
	doc = strings.Replace(doc, "}} latest", "}}/latest", 1)
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "validate", "--config", path, "--no-env"); code != cli.ExitOK {
		t.Fatalf("validate a good file: exit %d\n%s%s", code, out, errOut)
	}
}
