package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
)

func TestPlanParameter(t *testing.T) {
	day := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	best := &ParameterCandidate{CopyID: "ami-0000000000000000b", Source: "ami-00000000000000b02", Created: day}
	param := func(value string) *cloud.Parameter {
		return &cloud.Parameter{Name: "/golden/web/latest", Value: value, Type: cloud.ParameterTypeString, DataType: cloud.DataTypeEC2Image, Version: 3}
	}
	ours := &ParameterOwner{Managed: true}
	older := ParameterValue{Copy: true, Source: "ami-00000000000000b01", Usable: true, Dated: true, Created: day.Add(-24 * time.Hour), InGroup: true}
	newer := ParameterValue{Copy: true, Source: "ami-00000000000000b03", State: "disabled", Dated: true, Created: day.Add(24 * time.Hour), InGroup: true}
	for _, tc := range []struct {
		name   string
		f      ParameterFacts
		state  report.ParameterState
		action string
		owner  bool // NeedsOwner
		reason string
	}{
		{"missing", ParameterFacts{Best: best}, report.ParamMissing, "create", false, "it will name ami-0000000000000000b"},
		{"nothing available yet", ParameterFacts{NoneWhy: "the copy is pending"}, report.ParamWaiting, "none", false, "pending"},
		{"names the newest copy", ParameterFacts{Best: best, Current: param(best.CopyID)}, report.ParamOK, "none", false, "newest build"},
		{"names another good copy of the newest build", ParameterFacts{Best: best, Current: param("ami-0000000000000000c"),
			Value: ParameterValue{Copy: true, Source: best.Source, Usable: true, Dated: true, Created: day, InGroup: true}}, report.ParamOK, "none", false, ""},
		{"older build, ownership unknown", ParameterFacts{Best: best, Current: param("ami-0000000000000000a"), Value: older}, report.ParamStale, "none", true, "older build"},
		{"older build, ours", ParameterFacts{Best: best, Current: param("ami-0000000000000000a"), Value: older, Owner: ours}, report.ParamStale, "update", false, "older build"},
		{"older build, another tool's", ParameterFacts{Best: best, Current: param("ami-0000000000000000a"), Value: older, Owner: &ParameterOwner{}},
			report.ParamForeign, "none", false, "amicopier did not create it"},
		{"older build, another deployment's", ParameterFacts{Best: best, Current: param("ami-0000000000000000a"), Value: older, Owner: &ParameterOwner{Other: "999999999999"}},
			report.ParamForeign, "none", false, "source account 999999999999"},
		{"older build, taken over", ParameterFacts{Best: best, Current: param("ami-0000000000000000a"), Value: older, Owner: &ParameterOwner{}, OverwriteForeign: true},
			report.ParamStale, "take_over", false, "takes it over"},
		{"newer build whose copy is disabled", ParameterFacts{Best: best, Current: param("ami-0000000000000000d"), Value: newer, Owner: ours},
			report.ParamAhead, "none", false, "never moved back"},
		{"a build that cannot be dated", ParameterFacts{Best: best, Current: param("ami-0000000000000000d"), Value: ParameterValue{Copy: true, Source: "ami-00000000000000c01"}, Owner: ours},
			report.ParamAhead, "none", false, "could not be dated"},
		{"a withdrawn build", ParameterFacts{Best: best, Current: param("ami-0000000000000000d"), Value: ParameterValue{Copy: true, Source: "ami-00000000000000c01", Gone: true}, Owner: ours},
			report.ParamElsewhere, "update", false, "withdrawn build"},
		{"another group's copy", ParameterFacts{Best: best, Current: param("ami-0000000000000000d"),
			Value: ParameterValue{Copy: true, Source: "ami-00000000000000c01", Usable: true, Dated: true, Created: day.Add(48 * time.Hour)}, Owner: ours},
			report.ParamElsewhere, "update", false, "another parameter"},
		{"a bad copy of the newest build", ParameterFacts{Best: best, Current: param("ami-0000000000000000d"),
			Value: ParameterValue{Copy: true, Source: best.Source, State: "failed", Dated: true, Created: day, InGroup: true}, Owner: ours},
			report.ParamElsewhere, "update", false, "that is failed"},
		{"no copy at all", ParameterFacts{Best: best, Current: param("ami-0123456789abcdef0"), Owner: ours}, report.ParamElsewhere, "update", false, "no copy of a source"},
		{"older build, nothing to move to, ownership unknown", ParameterFacts{Current: param("ami-0000000000000000a"), Value: older, NoneWhy: "the copy of the newest build is pending"},
			report.ParamStale, "none", true, "no available copy to name instead yet"},
		{"older build, nothing to move to, ours", ParameterFacts{Current: param("ami-0000000000000000a"), Value: older, NoneWhy: "pending", Owner: ours},
			report.ParamStale, "none", false, "no available copy to name instead yet"},
		{"older build, nothing to move to, another tool's", ParameterFacts{Current: param("ami-0000000000000000a"), Value: older, NoneWhy: "pending", Owner: &ParameterOwner{}},
			report.ParamForeign, "none", false, "no available copy"},
		{"text parameter, aws:ec2:image wanted", ParameterFacts{Best: best, Current: &cloud.Parameter{Value: "x", Type: cloud.ParameterTypeString, DataType: cloud.DataTypeText}, Owner: ours},
			report.ParamConflict, "none", false, "cannot change it"},
		{"missing, in a run narrowed to some sources", ParameterFacts{Best: best, Narrowed: true}, report.ParamMissing, "none", false, "the next full run writes it"},
		{"older build, ours, in a narrowed run", ParameterFacts{Best: best, Current: param("ami-0000000000000000a"), Value: older, Owner: ours, Narrowed: true},
			report.ParamStale, "none", false, "narrowed"},
		{"a SecureString", ParameterFacts{Best: best, Current: &cloud.Parameter{Value: "x", Type: "SecureString"}, Owner: ours},
			report.ParamConflict, "none", false, "SecureString"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.f.DataType == "" {
				tc.f.DataType = cloud.DataTypeEC2Image
			}
			d := PlanParameter(tc.f)
			if d.State != tc.state || d.Action() != tc.action || d.NeedsOwner != tc.owner || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("got %s %s (needs owner %v): %s\nwant %s %s (needs owner %v), reason with %q", d.State, d.Action(), d.NeedsOwner, d.Reason,
					tc.state, tc.action, tc.owner, tc.reason)
			}
			if d.Write && tc.f.Best == nil {
				t.Fatal("a write with nothing to write")
			}
			if again := PlanParameter(tc.f); again != d {
				t.Fatal("the planner is not pure")
			}
		})
	}
}

func TestEventBatches(t *testing.T) {
	small := cloud.Event{DetailType: EventCopyAvailable, Detail: `{"a":1}`, Time: time.Unix(1, 0)}
	big := cloud.Event{DetailType: EventCopyAvailable, Detail: `{"a":"` + strings.Repeat("x", 100*1024) + `"}`}
	huge := cloud.Event{DetailType: EventRunFinished, Detail: `{"a":"` + strings.Repeat("x", cloud.MaxPutEventsSize) + `"}`}
	repeat := func(e cloud.Event, n int) []cloud.Event {
		out := make([]cloud.Event, n)
		for i := range out {
			out[i] = e
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		events   []cloud.Event
		sizes    []int
		tooLarge int
	}{
		{"ten a call", repeat(small, 25), []int{10, 10, 5}, 0},
		{"within 256 KB", repeat(big, 5), []int{2, 2, 1}, 0},
		{"too large alone", append(repeat(small, 3), huge), []int{3}, 1},
		{"none", nil, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batches, tooLarge := eventBatches(DefaultEventSource, tc.events)
			var sizes []int
			for _, b := range batches {
				sizes = append(sizes, len(b))
				total := 0
				for _, e := range b {
					total += cloud.EventSize(DefaultEventSource, e)
				}
				if len(b) > cloud.MaxPutEventsEntries || total >= cloud.MaxPutEventsSize {
					t.Errorf("a batch of %d entries, %d bytes", len(b), total)
				}
			}
			if len(sizes) != len(tc.sizes) || len(tooLarge) != tc.tooLarge {
				t.Fatalf("batches %v, %d too large; want %v, %d", sizes, len(tooLarge), tc.sizes, tc.tooLarge)
			}
			for i := range sizes {
				if sizes[i] != tc.sizes[i] {
					t.Fatalf("batches %v, want %v", sizes, tc.sizes)
				}
			}
		})
	}
}
