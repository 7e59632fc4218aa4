package lambdafn

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/reconcile/report"
)

func TestParseCheck(t *testing.T) {
	for _, tc := range []struct {
		raw, field string
		shard      string
	}{
		{`{"mode": "check"}`, "", ""},
		{`{"mode": "check", "shard": "2/4"}`, "", "2/4"},
		{`{"shard": "2/4", "mode": "check"}`, "", "2/4"},
		{`{"mode": "chek"}`, "event.mode", ""},
		{`{"mode": 3}`, "event.mode", ""},
		{`{"mode": "check", "shard": "5/4"}`, "event.shard", ""},
		{`{"mode": "check", "detail": {}}`, "event.detail", ""},
	} {
		ev, err := ParseEvent([]byte(tc.raw))
		if tc.field == "" {
			if err != nil || ev.Kind != KindCheck || ev.Shard.String() != tc.shard {
				t.Errorf("%s: %+v, %v", tc.raw, ev, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: error %v, want one naming %s", tc.raw, err, tc.field)
		}
	}
}

func TestCheckEventReportsFindingsAsMetrics(t *testing.T) {
	w := newWorld(t)
	w.cloud.DenyAssumeRole(acctB)
	w.cloud.DenyCopierActions(acctA, "ec2:CopyImage")
	res, err := w.h.Handle(context.Background(), json.RawMessage(`{"mode": "check"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeChecked || res.Check == nil || res.Check.FindingCount != 2 ||
		res.Check.Counts[report.RoleNotAssumable] != 1 || res.Check.Counts[report.CopyNotAuthorized] != 1 {
		t.Fatalf("result %+v (check %+v)", res, res.Check)
	}
	if w.cloud.MutatingCalls() != 0 || len(w.copies()) != 0 {
		t.Fatalf("the check changed something: %d mutating calls, copies %v", w.cloud.MutatingCalls(), w.copies())
	}
	ms := w.metrics(t)
	if len(ms) != 1 || ms[0]["Trigger"] != string(KindCheck) || ms[0][CheckMetric] != 2.0 ||
		ms[0][CheckMetric+"."+string(report.RoleNotAssumable)] != 1.0 || ms[0]["MutatingCalls"] != 0.0 {
		t.Fatalf("metrics %v", ms)
	}
	if !strings.Contains(w.stdout.String(), `"msg":"check finding"`) {
		t.Errorf("findings are not logged:\n%s", w.stdout.String())
	}
}
