package deploy

import (
	"slices"
	"strings"
	"testing"
)

// TestParameterActionsOnlyUnderParameterPath: the copier role's Parameter
// Store actions come with ParameterPath (empty by default: none), and
// only on the parameters under it.
func TestParameterActionsOnlyUnderParameterPath(t *testing.T) {
	tpl := loadTemplate(t, "member-stackset.yaml")
	if d, _ := tpl.ParameterDefault("ParameterPath"); d != "" {
		t.Errorf("ParameterPath defaults to %q, want \"\" (publish.ssm is off by default)", d)
	}
	var want []string
	for _, c := range APICalls {
		if c.Only == "publish-ssm" && slices.Contains(c.Roles, RoleMember) {
			want = append(want, c.Action())
			want = append(want, c.Also...)
		}
	}
	if len(want) < 4 {
		t.Fatalf("deploy.APICalls lists %v for publish-ssm", want)
	}
	found := map[string]bool{}
	for _, g := range roleGrants(t, tpl, "CopierRole") {
		if !strings.HasPrefix(g.action, "ssm:") {
			continue
		}
		found[g.action] = true
		res, _ := tpl.Resource(g.policy.Resource)
		if !conditionUsesParameter(tpl, res.Condition(), "ParameterPath") {
			t.Errorf("%s: %s is granted by %s, which does not depend on ParameterPath", g.stmt.Pos, g.action, g.policy.Resource)
		}
		for _, r := range g.stmt.Resources {
			if !strings.HasSuffix(r, ":parameter${ParameterPath}/*") {
				t.Errorf("%s: %s on %q, want only the parameters under ${ParameterPath}", g.stmt.Pos, g.action, r)
			}
		}
	}
	for _, a := range want {
		if !found[a] {
			t.Errorf("the copier role is never granted %s", a)
		}
	}
}

// TestEventsOnlyOnTheBus: the function may put events on EventBusArn
// (empty by default: on none), and on no other bus.
func TestEventsOnlyOnTheBus(t *testing.T) {
	tpl := loadTemplate(t, "central.yaml")
	if d, _ := tpl.ParameterDefault("EventBusArn"); d != "" {
		t.Errorf("EventBusArn defaults to %q, want \"\" (events.bus is off by default)", d)
	}
	n := 0
	for _, g := range roleGrants(t, tpl, "FunctionRole") {
		if g.action != "events:PutEvents" {
			continue
		}
		n++
		if !g.stmt.Conditional {
			t.Errorf("%s: events:PutEvents granted whether or not EventBusArn is set", g.stmt.Pos)
		}
		if !slices.Equal(g.stmt.Resources, []string{"${EventBusArn}"}) {
			t.Errorf("%s: events:PutEvents on %v, want the EventBusArn parameter only", g.stmt.Pos, g.stmt.Resources)
		}
	}
	if n != 1 {
		t.Errorf("%d grants of events:PutEvents, want 1", n)
	}
}
