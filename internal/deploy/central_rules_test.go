package deploy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/lambdafn"
)

// stackParams are parameter values for evaluating a template's
// conditions and rules: the given ones, else the defaults.
type stackParams struct {
	tpl    *Template
	values map[string]string
}

func (p stackParams) value(name string) string {
	if v, ok := p.values[name]; ok {
		return v
	}
	switch name {
	case "AWS::AccountId":
		return "123456789012"
	case "AWS::Region":
		return "eu-west-1"
	case "AWS::Partition":
		return "aws"
	}
	if d, ok := p.tpl.ParameterDefault(name); ok {
		return d
	}
	return ""
}

// str evaluates the string expressions conditions and rules use.
func (p stackParams) str(t *testing.T, v *Value) string {
	t.Helper()
	fn, arg := v.Func()
	switch fn {
	case "":
		return v.Text()
	case "Ref":
		return p.value(arg.Text())
	case "Fn::Join":
		sep := arg.Items[0].Text()
		var parts []string
		for _, e := range Elements(arg.Items[1]) {
			if f, a := e.Func(); f == "Ref" {
				parts = append(parts, strings.Split(p.value(a.Text()), ",")...)
				continue
			}
			parts = append(parts, p.str(t, e))
		}
		return strings.Join(parts, sep)
	}
	t.Fatalf("%s: cannot evaluate %s as a string", p.tpl.pos(v), fn)
	return ""
}

// truth evaluates a condition or rule expression.
func (p stackParams) truth(t *testing.T, v *Value) bool {
	t.Helper()
	fn, arg := v.Func()
	switch fn {
	case "Condition":
		return p.condition(t, arg.Text())
	case "Fn::Equals":
		return p.str(t, arg.Items[0]) == p.str(t, arg.Items[1])
	case "Fn::Not":
		return !p.truth(t, arg.Items[0])
	case "Fn::And", "Fn::Or":
		and := fn == "Fn::And"
		for _, it := range arg.Items {
			if p.truth(t, it) != and {
				return !and
			}
		}
		return and
	case "Fn::Contains":
		return slices.Contains(arg.Items[0].Strings(), p.str(t, arg.Items[1]))
	}
	t.Fatalf("%s: cannot evaluate %q as a condition", p.tpl.pos(v), fn)
	return false
}

func (p stackParams) condition(t *testing.T, name string) bool {
	t.Helper()
	c := p.tpl.Section("Conditions").Get(name)
	if c == nil {
		t.Fatalf("no condition %s", name)
	}
	return p.truth(t, c)
}

// exists reports whether a resource is created with these parameters.
func (p stackParams) exists(t *testing.T, r Resource) bool {
	t.Helper()
	return r.Condition() == "" || p.condition(t, r.Condition())
}

// refusals returns the assertion descriptions of the rules these
// parameters break.
func (p stackParams) refusals(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, rule := range p.tpl.Section("Rules").fieldsOrNil() {
		if c := rule.Value.Get("RuleCondition"); c != nil && !p.truth(t, c) {
			continue
		}
		for _, a := range Elements(rule.Value.Get("Assertions")) {
			if !p.truth(t, a.Get("Assert")) {
				out = append(out, rule.Key+": "+a.Get("AssertDescription").Text())
			}
		}
	}
	return out
}

// invokesOnEvents reports whether a resource makes an event start the
// function: an SNS subscription, an EventBridge rule targeting it, or a
// permission letting SNS or EventBridge invoke it.
func invokesOnEvents(r Resource) bool {
	switch r.Type {
	case "AWS::SNS::Subscription", "AWS::Events::Rule":
		return true
	case "AWS::Lambda::Permission":
		principal := r.Properties().Get("Principal").Text()
		return principal == "sns.amazonaws.com" || principal == "events.amazonaws.com"
	}
	return false
}

// TestShardedRunHasNoEventTriggers: shards take the leases
// <account>/shard-I-of-N, an event-triggered (unsharded) run the lease
// <account>; they do not exclude each other, so a sharded stack must have
// no event trigger, and must refuse to be asked for one.
func TestShardedRunHasNoEventTriggers(t *testing.T) {
	tpl := loadTemplate(t, "central.yaml")
	triggers := map[string]string{
		"AmigoTopicArn":            "arn:aws:sns:eu-west-1:111111111111:amigo-PROD-notify",
		"EnableAmiStateChangeRule": "true",
		"SourceAccountId":          "111111111111",
	}
	var eventResources []Resource
	for _, r := range tpl.Resources() {
		if invokesOnEvents(r) {
			eventResources = append(eventResources, r)
		}
	}
	if len(eventResources) < 4 {
		t.Fatalf("found only %d event trigger resources: the test no longer recognises them", len(eventResources))
	}
	for _, sharded := range []string{"false", "true"} {
		values := map[string]string{"EnableShardedRun": sharded, "ReservedConcurrency": "4"}
		for k, v := range triggers {
			values[k] = v
		}
		p := stackParams{tpl: tpl, values: values}
		for _, r := range eventResources {
			if got, want := p.exists(t, r), sharded == "false"; got != want {
				t.Errorf("EnableShardedRun=%s with event triggers asked for: %s (%s) exists = %v, want %v", sharded, r.Name, r.Type, got, want)
			}
		}
		refused := p.refusals(t)
		if sharded == "false" && len(refused) != 0 {
			t.Errorf("unsharded stack with event triggers refused: %v", refused)
		}
		if sharded == "true" {
			for _, param := range []string{"AmigoTopicArn", "EnableAmiStateChangeRule"} {
				if !slices.ContainsFunc(refused, func(s string) bool { return strings.Contains(s, param) }) {
					t.Errorf("a sharded stack with %s set is not refused by a rule (refusals %v)", param, refused)
				}
			}
		}
	}
	// Sharded without event triggers: nothing invokes the function on
	// events, the schedule starts the state machine.
	p := stackParams{tpl: tpl, values: map[string]string{"EnableShardedRun": "true", "ReservedConcurrency": "4"}}
	if refused := p.refusals(t); len(refused) != 0 {
		t.Errorf("a sharded stack without event triggers is refused: %v", refused)
	}
	for _, r := range eventResources {
		if p.exists(t, r) {
			t.Errorf("sharded stack: %s exists", r.Name)
		}
	}
	arn := p.pick(t, mustResource(t, tpl, "NightlySchedule").Properties().Path("Target", "Arn"))
	if fn, a := arn.Func(); fn != "Ref" || a.Text() != "ShardedRunStateMachine" {
		t.Errorf("the sharded schedule starts %s, want the state machine", RenderValue(arn))
	}
}

// pick resolves the !If of a value with these parameters.
func (p stackParams) pick(t *testing.T, v *Value) *Value {
	t.Helper()
	for {
		fn, arg := v.Func()
		if fn != "Fn::If" {
			return v
		}
		if p.condition(t, arg.Items[0].Text()) {
			v = arg.Items[1]
		} else {
			v = arg.Items[2]
		}
	}
}

// TestShardedRunNeedsConcurrency: shards run in parallel; a reserved
// concurrency of 1 (the default) or 0 would throttle every shard but one.
func TestShardedRunNeedsConcurrency(t *testing.T) {
	tpl := loadTemplate(t, "central.yaml")
	for _, tc := range []struct {
		sharded, concurrency string
		refused              bool
	}{
		{"false", "1", false},
		{"false", "0", false},
		{"true", "1", true},
		{"true", "0", true},
		{"true", "2", false},
		{"true", "40", false},
	} {
		p := stackParams{tpl: tpl, values: map[string]string{"EnableShardedRun": tc.sharded, "ReservedConcurrency": tc.concurrency}}
		refused := slices.ContainsFunc(p.refusals(t), func(s string) bool { return strings.Contains(s, "ReservedConcurrency") })
		if refused != tc.refused {
			t.Errorf("EnableShardedRun=%s ReservedConcurrency=%s: refused = %v, want %v", tc.sharded, tc.concurrency, refused, tc.refused)
		}
	}
	// The defaults deploy: unsharded, one run at a time.
	if refused := (stackParams{tpl: tpl}).refusals(t); len(refused) != 0 {
		t.Errorf("the defaults are refused: %v", refused)
	}
	// Every parameter a rule names exists.
	for _, rule := range tpl.Section("Rules").fieldsOrNil() {
		rule.Value.Walk(func(v *Value) bool {
			if fn, arg := v.Func(); fn == "Ref" && tpl.Section("Parameters").Get(arg.Text()) == nil {
				t.Errorf("rule %s: Ref %s is no parameter", rule.Key, arg.Text())
			}
			return true
		})
	}
}

// TestMemberRolesOnlyInTheOrganization: OrganizationId is required and
// always limits the member roles the function may assume.
func TestMemberRolesOnlyInTheOrganization(t *testing.T) {
	tpl := loadTemplate(t, "central.yaml")
	param := tpl.Section("Parameters").Get("OrganizationId")
	if _, has := tpl.ParameterDefault("OrganizationId"); has {
		t.Error("OrganizationId has a default: without it the function may assume copier roles in any account")
	}
	re := regexp.MustCompile(param.Get("AllowedPattern").Text())
	for v, ok := range map[string]bool{"o-abcdefghij": true, "o-a1b2c3d4e5f6g7h8": true, "": false, "o-short": false, "ou-ab12-34cd56ef": false, "r-ab12": false} {
		if re.MatchString(v) != ok {
			t.Errorf("OrganizationId %q accepted = %v, want %v", v, !ok, ok)
		}
	}
	stmt := findStatement(t, tpl, "FunctionRole", "AssumeMemberCopierRoles")
	if !stmt.ConditionAlways() || stmt.Conditional {
		t.Error("AssumeMemberCopierRoles must always carry its condition")
	}
	if v := stmt.ConditionValue("StringEquals", "aws:ResourceOrgID"); v == nil || RenderValue(v) != "${OrganizationId}" {
		t.Errorf("AssumeMemberCopierRoles must require aws:ResourceOrgID = OrganizationId, got %s", RenderValue(v))
	}
}

// TestTimeoutLeavesTimeToWork: a function whose timeout is within
// limits.deadline_margin plus the handler's reserve would start nothing.
func TestTimeoutLeavesTimeToWork(t *testing.T) {
	tpl := loadTemplate(t, "central.yaml")
	lo, err := strconv.Atoi(tpl.Section("Parameters").Path("Timeout", "MinValue").Text())
	if err != nil {
		t.Fatal(err)
	}
	need := config.Default().Limits.DeadlineMargin.D() + lambdafn.DeadlineReserve
	if min := time.Duration(lo) * time.Second; min <= need {
		t.Errorf("Timeout MinValue %s: must exceed the default limits.deadline_margin plus the handler's reserve (%s)", min, need)
	}
}

// lambdaEnvLimit is Lambda's limit on a function's environment variables,
// measured on their JSON form ({"NAME":"value",...}).
const lambdaEnvLimit = 4096

// escapeAllowance is how much longer than ConfigYaml's MaxLength its JSON
// form is assumed to be at most: line breaks, double quotes and
// backslashes are escaped to two characters; the budget lets one
// character in four be one of those.
const escapeAllowance = 4

// regionMax bounds the length of a Region name (AWS::Region).
const regionMax = 20

// TestFunctionEnvironmentFitsLambdasLimit computes the largest environment
// the central stack can give the function, every parameter at its
// longest, and checks it fits in Lambda's 4 KB.
func TestFunctionEnvironmentFitsLambdasLimit(t *testing.T) {
	tpl := loadTemplate(t, "central.yaml")
	params := tpl.Section("Parameters")
	maxOf := func(name string) int {
		t.Helper()
		p := params.Get(name)
		if p == nil {
			t.Fatalf("no parameter %s", name)
		}
		if av := p.Get("AllowedValues"); av != nil {
			n := 0
			for _, v := range av.Strings() {
				n = max(n, len(v))
			}
			return n
		}
		n, err := strconv.Atoi(p.Get("MaxLength").Text())
		if err != nil {
			t.Fatalf("parameter %s goes into the function's environment without a MaxLength or AllowedValues", name)
		}
		if name == "ConfigYaml" {
			n += n / escapeAllowance
		}
		return n
	}
	vars := mustResource(t, tpl, "Function").Properties().Path("Environment", "Variables")
	total := 2 // {}
	var lines []string
	for i, f := range vars.fieldsOrNil() {
		key, _ := json.Marshal(f.Key)
		n := 0
		fn, arg := f.Value.Func()
		switch {
		case fn == "" && f.Value.Kind == Scalar:
			v, _ := json.Marshal(f.Value.Str)
			n = len(v) - 2
		case fn == "Ref" && arg.Text() == "AWS::Region":
			n = regionMax
		case fn == "Ref" && arg.Text() == "StateTable":
			n = maxOf("StateTableName")
		case fn == "Ref":
			n = maxOf(arg.Text())
		default:
			t.Fatalf("%s: the test cannot bound %s", f.Key, RenderValue(f.Value))
		}
		size := len(key) + 1 + n + 2 // "KEY":"value"
		if i > 0 {
			size++ // ,
		}
		total += size
		lines = append(lines, fmt.Sprintf("%s: %d", f.Key, size))
	}
	t.Logf("worst-case environment %d bytes of %d:\n%s", total, lambdaEnvLimit, strings.Join(lines, "\n"))
	if total > lambdaEnvLimit {
		t.Errorf("the function's environment can reach %d bytes, over Lambda's %d: lower the MaxLength of ConfigYaml (or of another parameter)", total, lambdaEnvLimit)
	}
}

// TestKeyAdministratorsCannotUseTheKey: the account's administrators get
// the key's administration, named action by action, and no use of it
// (neither the cryptographic operations nor grants).
func TestKeyAdministratorsCannotUseTheKey(t *testing.T) {
	tpl := loadTemplate(t, "member-stackset.yaml")
	policies, _ := tpl.Policies()
	var admin *Statement
	for _, p := range policies {
		if p.Resource != "CopyKey" {
			continue
		}
		for i := range p.Statements {
			if p.Statements[i].Sid == "AccountAdministersKey" {
				admin = &p.Statements[i]
			}
		}
	}
	if admin == nil {
		t.Fatal("no AccountAdministersKey statement in the key policy")
	}
	uses := []string{
		"kms:CreateGrant", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyPair",
		"kms:GenerateDataKeyPairWithoutPlaintext", "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateMac",
		"kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:Sign", "kms:Verify", "kms:VerifyMac", "kms:DeriveSharedSecret",
	}
	for _, a := range admin.Actions {
		if strings.ContainsAny(a, "*?") {
			t.Errorf("%s: %s: name administration actions one by one", admin.Pos, a)
		}
		for _, u := range uses {
			if ActionMatches(a, u) {
				t.Errorf("%s: the administrators' %s allows %s, a use of the key", admin.Pos, a, u)
			}
		}
	}
	for _, need := range []string{"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:EnableKeyRotation", "kms:TagResource"} {
		if !slices.Contains(admin.Actions, need) {
			t.Errorf("the administrators lack %s", need)
		}
	}
}
