package lambdafn

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFixtures(t *testing.T) {
	for _, tc := range []struct {
		file  string
		kind  Kind
		mode  reconcile.Mode
		image string
		state string
	}{
		{"scheduled-event.json", KindSchedule, reconcile.ModeRun, "", ""},
		{"scheduler-plan.json", KindSchedule, reconcile.ModePlan, "", ""},
		{"sns-amigo.json", KindSNS, reconcile.ModeRun, "ami-0123456789abcdef0", ""},
		{"ami-state-change-available.json", KindAMIStateChange, reconcile.ModeRun, "ami-0123456789abcdef0", "available"},
		{"ami-state-change-pending.json", KindAMIStateChange, reconcile.ModeRun, "ami-0123456789abcdef0", "pending"},
		{"ami-state-change-failed.json", KindAMIStateChange, reconcile.ModeRun, "ami-0123456789abcdef0", "failed"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			ev, err := ParseEvent(fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != tc.kind || ev.Mode != tc.mode || ev.ImageID != tc.image || ev.State != tc.state {
				t.Errorf("event %+v", ev)
			}
		})
	}
	ev, _ := ParseEvent(fixture(t, "sns-amigo.json"))
	var ids []string
	for _, r := range ev.Targets {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{"222222222222", "999999999999"}) || len(ev.Invalid) != 1 || ev.Invalid[0].Token != `"not-an-account"` {
		t.Errorf("targets %v, invalid %+v", ids, ev.Invalid)
	}
	if ev.Region != "eu-west-1" {
		t.Errorf("event %+v", ev)
	}
}

// TestAmigoMessageIgnoresWhatItDoesNotUse: name, description and tags are
// AMIgo's and unused here; their shape must not make a message fail.
func TestAmigoMessageIgnoresWhatItDoesNotUse(t *testing.T) {
	for _, extra := range []string{
		`"tags":{"Build":7}`, `"tags":["a"]`, `"tags":null`, `"name":5`, `"description":{"text":"x"}`,
		`"name":"n","description":"d","tags":{"Recipe":"r"}`,
	} {
		msg := `{"sourceAmi":"ami-0123456789abcdef0","sourceRegion":"eu-west-1","targetAccounts":["222222222222"],` + extra + `}`
		m, err := ParseAmigoMessage(msg, "message")
		if err != nil {
			t.Errorf("%s: %v", extra, err)
			continue
		}
		if m.SourceAMI != "ami-0123456789abcdef0" || m.SourceRegion != "eu-west-1" || !slices.Equal(m.TargetAccounts, []string{"222222222222"}) {
			t.Errorf("%s: %+v", extra, m)
		}
	}
}

// snsWith wraps an AMIgo message in the SNS fixture's envelope.
func snsWith(t *testing.T, message string) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(fixture(t, "sns-amigo.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev["Records"].([]any)[0].(map[string]any)["Sns"].(map[string]any)["Message"] = message
	b, _ := json.Marshal(ev)
	return b
}

func TestParseShardRun(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		shard reconcile.Shard
		mode  reconcile.Mode
	}{
		{`{"shard": "2/8"}`, reconcile.Shard{Index: 2, Count: 8}, reconcile.ModeRun},
		{`{"shard": "1/1", "mode": "plan"}`, reconcile.Shard{Index: 1, Count: 1}, reconcile.ModePlan},
	} {
		ev, err := ParseEvent([]byte(tc.raw))
		if err != nil {
			t.Fatalf("%s: %v", tc.raw, err)
		}
		if ev.Kind != KindSchedule || ev.Shard != tc.shard || ev.Mode != tc.mode {
			t.Errorf("%s: %+v", tc.raw, ev)
		}
	}
}

func TestParseMalformedEventsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		raw   []byte
		field string
		want  string
	}{
		{"not JSON", []byte("hello"), "event", "not a JSON object"},
		{"array", []byte(`[1,2]`), "event", "not a JSON object"},
		{"empty object", []byte(`{}`), "event", "neither an SNS event"},
		{"unknown detail type", []byte(`{"detail-type":"Object Created"}`), "event.detail-type", `"Object Created"`},
		{"detail type not a string", []byte(`{"detail-type":5}`), "event.detail-type", "number"},
		{"bad mode", []byte(`{"detail-type":"Scheduled Event","detail":{"mode":"yolo"}}`), "event.detail.mode", `"yolo"`},
		{"bad shard", []byte(`{"shard":"9/8"}`), "event.shard", `"9/8"`},
		{"shard not a string", []byte(`{"shard":2}`), "event.shard", "number"},
		{"shard bad mode", []byte(`{"shard":"1/2","mode":"later"}`), "event.mode", `"later"`},
		{"no records", []byte(`{"Records":[]}`), "sns.Records", "no record"},
		{"two records", []byte(`{"Records":[{},{}]}`), "sns.Records", "2 records"},
		{"not sns", []byte(`{"Records":[{"EventSource":"aws:sqs","Sns":{"Message":"{}"}}]}`), "sns.Records[0].EventSource", `"aws:sqs"`},
		{"no message", []byte(`{"Records":[{"EventSource":"aws:sns","Sns":{}}]}`), "sns.Records[0].Sns.Message", "missing"},
		{"message not JSON", snsWith(t, "AMI baked!"), "sns.Records[0].Sns.Message", "not a JSON object"},
		{"bad AMI", snsWith(t, `{"sourceAmi":"ami-x","sourceRegion":"eu-west-1"}`), "sns.Records[0].Sns.Message.sourceAmi", `"ami-x" is not an AMI id`},
		{"no AMI", snsWith(t, `{"sourceRegion":"eu-west-1"}`), "sns.Records[0].Sns.Message.sourceAmi", "missing"},
		{"bad region", snsWith(t, `{"sourceAmi":"ami-0123456789abcdef0","sourceRegion":"moon-1"}`), "sns.Records[0].Sns.Message.sourceRegion", `"moon-1"`},
		{"targets not a list", snsWith(t, `{"sourceAmi":"ami-0123456789abcdef0","sourceRegion":"eu-west-1","targetAccounts":"222222222222"}`), "sns.Records[0].Sns.Message.targetAccounts", "a list"},
		{"target not a string", snsWith(t, `{"sourceAmi":"ami-0123456789abcdef0","sourceRegion":"eu-west-1","targetAccounts":[222222222222]}`), "sns.Records[0].Sns.Message.targetAccounts[0]", "number"},
		{"third target not a string", snsWith(t, `{"sourceAmi":"ami-0123456789abcdef0","sourceRegion":"eu-west-1","targetAccounts":["222222222222","333333333333",7]}`), "sns.Records[0].Sns.Message.targetAccounts[2]", "number"},
		{"target an object", snsWith(t, `{"sourceAmi":"ami-0123456789abcdef0","sourceRegion":"eu-west-1","targetAccounts":["222222222222",{"id":"333333333333"}]}`), "sns.Records[0].Sns.Message.targetAccounts[1]", "object"},
		{"message a number", []byte(`{"Records":[{"Sns":{"Message":5}}]}`), "sns.Records[0].Sns.Message", "number"},
		{"message a number, sns source", []byte(`{"Records":[{"EventSource":"aws:sns","Sns":{"Message":5}}]}`), "sns.Records[0].Sns.Message", "number"},
		{"records not a list", []byte(`{"Records":{"Sns":{}}}`), "sns.Records", "a list"},
		{"record not an object", []byte(`{"Records":[5]}`), "sns.Records[0]", "an object"},
		{"event source not a string", []byte(`{"Records":[{"EventSource":1,"Sns":{"Message":"{}"}}]}`), "sns.Records[0].EventSource", "number"},
		{"sns not an object", []byte(`{"Records":[{"EventSource":"aws:sns","Sns":"hello"}]}`), "sns.Records[0].Sns", "an object"},
		{"records and detail-type", []byte(`{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"{}"}}],"detail-type":"Scheduled Event"}`), "event", `both "Records"`},
		{"state change bad image", []byte(strings.Replace(string(fixture(t, "ami-state-change-available.json")), `"ImageId": "ami-0123456789abcdef0"`, `"ImageId": "snap-1"`, 1)), "event.detail.ImageId", `"snap-1"`},
		{"state change wrong source", []byte(strings.Replace(string(fixture(t, "ami-state-change-available.json")), `"source": "aws.ec2"`, `"source": "evil"`, 1)), "event.source", `"evil"`},
		{"state change no detail", []byte(`{"detail-type":"EC2 AMI State Change","source":"aws.ec2","account":"111111111111","region":"eu-west-1"}`), "event.detail", "missing"},
		{"state change bad account", []byte(strings.Replace(string(fixture(t, "ami-state-change-available.json")), `"account": "111111111111"`, `"account": "1"`, 1)), "event.account", `"1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEvent(tc.raw)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v: want a *FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want field %s and %q", err, tc.field, tc.want)
			}
		})
	}
}

func TestParseSNSBoundsTargets(t *testing.T) {
	targets := make([]string, maxTargetEntries+10)
	for i := range targets {
		targets[i] = "222222222222"
	}
	b, _ := json.Marshal(map[string]any{"sourceAmi": "ami-0123456789abcdef0", "sourceRegion": "eu-west-1", "targetAccounts": targets})
	ev, err := ParseEvent(snsWith(t, string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Targets) != maxTargetEntries || len(ev.Invalid) != 1 || !strings.Contains(ev.Invalid[0].Reason, "more than") {
		t.Errorf("%d targets, invalid %+v", len(ev.Targets), ev.Invalid)
	}
}

// FuzzParseEvent feeds the parser arbitrary payloads: it must never
// panic, an error must be a *FieldError naming a field of the payload,
// and an accepted event must be well formed.
func FuzzParseEvent(f *testing.F) {
	for _, name := range []string{"scheduled-event.json", "scheduler-plan.json", "sns-amigo.json", "ami-state-change-available.json", "ami-state-change-pending.json"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"shard":"3/16"}`))
	f.Add([]byte(`{"mode":"check","shard":"1/2"}`))
	f.Add([]byte(`{"Records":[{"Sns":{"Message":5}}]}`))
	f.Add([]byte(`{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"{\"sourceAmi\":\"ami-12345678\",\"sourceRegion\":\"us-east-1\",\"targetAccounts\":[\"222222222222\",\"333333333333\",7]}"}}]}`))
	f.Add([]byte(`{"Records":[],"detail-type":"Scheduled Event"}`))
	f.Add([]byte(`{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"{\"sourceAmi\":\"ami-12345678\",\"sourceRegion\":\"us-east-1\",\"targetAccounts\":[\"*\",\"ou-ab12-34cd56ef\"]}"}}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := ParseEvent(raw)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || !(strings.HasPrefix(fe.Field, "event") || strings.HasPrefix(fe.Field, "sns")) {
				t.Fatalf("error %v does not name a field", err)
			}
			return
		}
		switch ev.Kind {
		case KindSchedule:
			if ev.Mode != reconcile.ModeRun && ev.Mode != reconcile.ModePlan {
				t.Fatalf("schedule mode %q", ev.Mode)
			}
		case KindSNS, KindAMIStateChange:
			if !cloud.IsImageID(ev.ImageID) || !cloud.IsRegion(ev.Region) {
				t.Fatalf("accepted image %q in %q", ev.ImageID, ev.Region)
			}
			for _, r := range ev.Targets {
				if r.Kind == cloud.TargetAccount && !cloud.IsAccountID(r.ID) {
					t.Fatalf("accepted target %q", r.ID)
				}
			}
		case KindCheck:
			if ev.ImageID != "" || len(ev.Targets) != 0 {
				t.Fatalf("a check event carries %+v", ev)
			}
		default:
			t.Fatalf("accepted an event of kind %q", ev.Kind)
		}
	})
}
