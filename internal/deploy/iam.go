package deploy

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// PolicyKind says what a policy document is attached to.
type PolicyKind string

// Policy kinds.
const (
	// IdentityPolicy is attached to a role (inline or RolePolicy).
	IdentityPolicy PolicyKind = "identity"
	// TrustPolicy is a role's AssumeRolePolicyDocument.
	TrustPolicy PolicyKind = "trust"
	// KeyPolicy is a KMS key's policy.
	KeyPolicy PolicyKind = "key"
	// ResourcePolicy is a queue, topic or event bus policy.
	ResourcePolicy PolicyKind = "resource"
)

// Policy is one policy document of a template.
type Policy struct {
	// Resource is the template resource holding it; Role the role
	// resource an identity policy applies to.
	Resource, Role string
	Kind           PolicyKind
	// Conditional is true when the policy exists only under a condition
	// (its resource has one, or it sits in an !If).
	Conditional bool
	Statements  []Statement
}

// Statement is one IAM statement, read from the template.
type Statement struct {
	// Pos is file:line.
	Pos   string
	Sid   string
	Value *Value
	// Effect is "Allow" or "Deny".
	Effect string
	// Actions are the literal action patterns.
	Actions []string
	// Resources are the literal resources ("*" or ARNs); an expression
	// shows as its function name ("Fn::Sub: arn:...").
	Resources []string
	// Condition is the statement's Condition (nil when absent).
	Condition *Value
	// Conditional is true when the statement exists only under a
	// template condition (an !If around it).
	Conditional bool
}

// ConditionAlways reports whether the statement has an IAM Condition in
// every branch of the template's conditions.
func (s Statement) ConditionAlways() bool { return !mayBeAbsent(s.Condition) }

// ConditionKeys returns the condition keys of the statement, in every
// branch, by operator: {"StringEquals": ["sts:ExternalId"]}.
func (s Statement) ConditionKeys() map[string][]string {
	out := map[string][]string{}
	for _, c := range Branches(s.Condition) {
		for _, op := range c.fieldsOrNil() {
			for _, k := range op.Value.fieldsOrNil() {
				out[op.Key] = append(out[op.Key], k.Key)
			}
		}
	}
	return out
}

// ConditionValue returns the value under operator and key in the
// statement's Condition (the first branch that has it), or nil.
func (s Statement) ConditionValue(op, key string) *Value {
	for _, c := range Branches(s.Condition) {
		if v := c.Path(op, key); v != nil {
			return v
		}
	}
	return nil
}

// PinsPrincipalArn reports whether, in every branch of the template's
// conditions, the statement's Condition limits aws:PrincipalArn (ArnEquals
// or StringEquals) to ARNs without wildcards: then a "*" principal means
// exactly those principals.
func (s Statement) PinsPrincipalArn() bool {
	branches := Branches(s.Condition)
	if len(branches) == 0 || mayBeAbsent(s.Condition) {
		return false
	}
	for _, c := range branches {
		pinned := false
		for _, op := range []string{"ArnEquals", "StringEquals"} {
			v := c.Path(op, "aws:PrincipalArn")
			if v == nil {
				continue
			}
			arns := Elements(v)
			pinned = len(arns) > 0
			for _, a := range arns {
				if r := RenderValue(a); !strings.HasPrefix(r, "arn:") || strings.ContainsAny(r, "*?") {
					pinned = false
				}
			}
			if pinned {
				break
			}
		}
		if !pinned {
			return false
		}
	}
	return true
}

// Principals returns the principals of a statement as "AWS: value" or
// "Service: value" strings, every branch included; expressions are
// rendered with RenderValue.
func (s Statement) Principals() []string {
	p := s.Value.Get("Principal")
	if p == nil {
		return nil
	}
	if p.Kind == Scalar {
		return []string{p.Str}
	}
	var out []string
	for _, f := range p.Fields {
		for _, e := range Elements(f.Value) {
			out = append(out, f.Key+": "+RenderValue(e))
		}
	}
	return out
}

// mayBeAbsent reports whether v can resolve to nothing: it is missing,
// AWS::NoValue, or an !If with such a branch.
func mayBeAbsent(v *Value) bool {
	if v == nil {
		return true
	}
	fn, arg := v.Func()
	switch {
	case fn == "Ref" && arg.Text() == "AWS::NoValue":
		return true
	case fn == "Fn::If" && arg != nil && arg.Kind == Sequence && len(arg.Items) == 3:
		return mayBeAbsent(arg.Items[1]) || mayBeAbsent(arg.Items[2])
	}
	return false
}

// RenderValue renders a value for matching and messages: a literal as
// itself, !Sub as its template string, !Ref X as ${X}, !GetAtt A.B as
// ${A.B}, anything else as its function name.
func RenderValue(v *Value) string {
	if v == nil {
		return ""
	}
	if v.Kind == Scalar {
		return v.Str
	}
	fn, arg := v.Func()
	switch fn {
	case "Ref":
		return "${" + arg.Text() + "}"
	case "Fn::GetAtt":
		if arg.Kind == Sequence && len(arg.Items) == 2 {
			return "${" + arg.Items[0].Text() + "." + arg.Items[1].Text() + "}"
		}
	case "Fn::Sub":
		if arg.Kind == Scalar {
			return arg.Str
		}
		if arg.Kind == Sequence && len(arg.Items) > 0 {
			return arg.Items[0].Text()
		}
	}
	if fn != "" {
		return "<" + fn + ">"
	}
	return "<" + fmt.Sprint(v.Kind) + ">"
}

// Policies returns every policy document of the template: roles' trust and
// inline policies, RolePolicy/Policy/ManagedPolicy documents, key
// policies, and queue, topic and event bus policies.
func (t *Template) Policies() ([]Policy, []Problem) {
	var out []Policy
	var probs []Problem
	add := func(r Resource, role string, kind PolicyKind, doc *Value, conditional bool) {
		for _, d := range Branches(doc) {
			stmts, err := t.statements(d, conditional || len(Branches(doc)) > 1)
			if err != nil {
				probs = append(probs, Problem{Pos: t.pos(d), Msg: fmt.Sprintf("%s: policy document: %v", r.Name, err)})
				continue
			}
			out = append(out, Policy{Resource: r.Name, Role: role, Kind: kind, Conditional: conditional, Statements: stmts})
		}
	}
	for _, r := range t.Resources() {
		props := r.Properties()
		cond := r.Condition() != ""
		switch r.Type {
		case "AWS::IAM::Role":
			add(r, r.Name, TrustPolicy, props.Get("AssumeRolePolicyDocument"), cond)
			for _, p := range Elements(props.Get("Policies")) {
				add(r, r.Name, IdentityPolicy, p.Get("PolicyDocument"), cond)
			}
		case "AWS::IAM::RolePolicy":
			add(r, refTarget(props.Get("RoleName")), IdentityPolicy, props.Get("PolicyDocument"), cond)
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy":
			for _, role := range Elements(props.Get("Roles")) {
				add(r, refTarget(role), IdentityPolicy, props.Get("PolicyDocument"), cond)
			}
		case "AWS::KMS::Key":
			add(r, "", KeyPolicy, props.Get("KeyPolicy"), cond)
		case "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy":
			add(r, "", ResourcePolicy, props.Get("PolicyDocument"), cond)
		case "AWS::Events::EventBusPolicy":
			st := props.Get("Statement")
			// One statement, no document around it: read it as one.
			line := st.lineOr(r.Value)
			doc := &Value{Kind: Mapping, Line: line, Fields: []Field{
				{Key: "Version", Value: &Value{Kind: Scalar, Line: line, Str: "2012-10-17", Tag: "!!str"}},
				{Key: "Statement", Value: st},
			}}
			add(r, "", ResourcePolicy, doc, cond)
		}
	}
	return out, probs
}

func (v *Value) lineOr(other *Value) int {
	if v != nil {
		return v.Line
	}
	return other.Line
}

// refTarget returns X for !Ref X, else the literal.
func refTarget(v *Value) string {
	if fn, arg := v.Func(); fn == "Ref" {
		return arg.Text()
	}
	return v.Text()
}

// statements reads a policy document: a mapping, or a JSON document
// written with !Sub.
func (t *Template) statements(doc *Value, conditional bool) ([]Statement, error) {
	if doc == nil {
		return nil, fmt.Errorf("missing")
	}
	if fn, arg := doc.Func(); fn == "Fn::Sub" {
		src := arg.Text()
		if arg.Kind == Sequence && len(arg.Items) > 0 {
			src = arg.Items[0].Text()
		}
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(SubstitutePlaceholders(src)), &n); err != nil || len(n.Content) != 1 {
			return nil, fmt.Errorf("the !Sub JSON document does not parse: %v", err)
		}
		parsed, err := convert(n.Content[0])
		if err != nil {
			return nil, err
		}
		shiftLines(parsed, doc.Line)
		doc = parsed
	}
	if doc.Kind != Mapping {
		return nil, fmt.Errorf("not a mapping")
	}
	if v := doc.Get("Version").Text(); v != "2012-10-17" {
		return nil, fmt.Errorf("policy Version is %q, want \"2012-10-17\"", v)
	}
	var out []Statement
	list := doc.Get("Statement")
	items := Elements(list)
	if list != nil && list.Kind == Mapping && list.Get("Effect") != nil {
		items = []*Value{list}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("no Statement")
	}
	var direct map[*Value]bool
	if list != nil && list.Kind == Sequence {
		direct = map[*Value]bool{}
		for _, it := range list.Items {
			direct[it] = true
		}
	}
	for _, s := range items {
		if s.Kind != Mapping {
			return nil, fmt.Errorf("line %d: a statement is a mapping", s.Line)
		}
		st := Statement{
			Pos:         t.pos(s),
			Sid:         s.Get("Sid").Text(),
			Value:       s,
			Effect:      s.Get("Effect").Text(),
			Condition:   s.Get("Condition"),
			Conditional: conditional || (direct != nil && !direct[s]),
		}
		for _, a := range Elements(s.Get("Action")) {
			st.Actions = append(st.Actions, RenderValue(a))
		}
		for _, r := range Elements(s.Get("Resource")) {
			st.Resources = append(st.Resources, RenderValue(r))
		}
		out = append(out, st)
	}
	return out, nil
}

// shiftLines makes the lines of a parsed !Sub document relative to the
// template line of the !Sub.
func shiftLines(v *Value, base int) {
	v.Walk(func(x *Value) bool {
		x.Line += base
		return true
	})
}

// mutatingVerbs start the names of actions that change something. An
// action pattern that can match one of them is mutating.
var mutatingVerbs = []string{
	"Assume", "Attach", "Cancel", "Copy", "Create", "Delete", "Deregister", "Detach",
	"Disable", "Enable", "Import", "Invoke", "Modify", "Pass", "Publish", "Put",
	"Register", "Replace", "Reset", "Retire", "Revoke", "Rotate", "Run", "Schedule",
	"Send", "Set", "Start", "Stop", "Tag", "Terminate", "Untag", "Update",
}

// IsMutatingAction reports whether an IAM action pattern ("ec2:Copy*",
// "kms:*Grant*") can match an action that changes something: one starting
// with a mutating verb, or any action naming a grant.
func IsMutatingAction(pattern string) bool {
	_, name, ok := strings.Cut(pattern, ":")
	if !ok {
		return true
	}
	if strings.Contains(strings.ToLower(name), "grant") {
		return true
	}
	prefix, _, wild := strings.Cut(name, "*")
	if wild && prefix == "" {
		return true
	}
	for _, verb := range mutatingVerbs {
		if strings.HasPrefix(name, verb) || (wild && strings.HasPrefix(verb, prefix)) {
			return true
		}
	}
	return false
}

var actionShape = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9*?]+$`)

// ActionMatches reports whether an IAM action pattern (with * and ?)
// matches an action, case-insensitively as IAM does.
func ActionMatches(pattern, action string) bool {
	return wildcardMatch(strings.ToLower(pattern), strings.ToLower(action))
}

func wildcardMatch(p, s string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if wildcardMatch(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && wildcardMatch(p[1:], s[1:])
	}
	return s != "" && p[0] == s[0] && wildcardMatch(p[1:], s[1:])
}

// checkPolicies applies the IAM rules to every statement of the template.
func (t *Template) checkPolicies() []Problem {
	policies, probs := t.Policies()
	for _, p := range policies {
		for _, s := range p.Statements {
			probs = append(probs, checkStatement(p, s)...)
		}
	}
	return probs
}

func checkStatement(p Policy, s Statement) []Problem {
	var probs []Problem
	bad := func(format string, args ...any) {
		probs = append(probs, Problem{Pos: s.Pos, Msg: fmt.Sprintf("%s %s policy, statement %q: ", p.Resource, p.Kind, s.Sid) + fmt.Sprintf(format, args...)})
	}
	if s.Effect != "Allow" && s.Effect != "Deny" {
		bad("Effect %q is neither Allow nor Deny", s.Effect)
	}
	for _, k := range []string{"NotAction", "NotResource", "NotPrincipal"} {
		if s.Value.Get(k) != nil {
			bad("%s grants everything but a list: name what is granted instead", k)
		}
	}
	if len(s.Actions) == 0 {
		bad("no Action")
	}
	for _, a := range s.Actions {
		switch {
		case a == "*":
			bad("Action \"*\" grants every action of every service")
		case strings.HasSuffix(a, ":*"):
			bad("Action %q grants every action of the service", a)
		case !actionShape.MatchString(a):
			bad("Action %q is not of the form service:Action", a)
		}
	}
	star := false
	for _, r := range s.Resources {
		if r == "*" {
			star = true
		}
	}
	if p.Kind == TrustPolicy {
		if len(s.Resources) > 0 {
			bad("a trust policy statement has no Resource")
		}
	} else if len(s.Resources) == 0 {
		bad("no Resource")
	}
	if s.Effect == "Allow" && star && !s.ConditionAlways() {
		for _, a := range s.Actions {
			if IsMutatingAction(a) {
				bad("mutating action %s on Resource \"*\" without a Condition", a)
			}
		}
	}
	if p.Kind == IdentityPolicy {
		if s.Value.Get("Principal") != nil {
			bad("an identity policy statement has no Principal")
		}
		return probs
	}
	principals := s.Principals()
	if len(principals) == 0 {
		bad("no Principal")
	}
	for _, pr := range principals {
		if (pr == "*" || strings.HasSuffix(pr, ": *")) && !s.PinsPrincipalArn() {
			bad("Principal %q is everyone (allow it only with an aws:PrincipalArn condition naming the one principal)", pr)
		}
		// KMS refuses a key policy naming a principal that does not exist
		// (CreateKey, PutKeyPolicy: "The principals in the key policy must
		// exist and be visible to KMS"): a role or user is matched by an
		// aws:PrincipalArn condition instead, on an account principal or
		// a pinned "*".
		if p.Kind == KeyPolicy && strings.HasPrefix(pr, "AWS: ") && strings.Contains(pr, ":iam::") && !strings.HasSuffix(pr, ":root") {
			bad("names %s as a principal: KMS refuses the key policy while it does not exist; match it with an aws:PrincipalArn condition", strings.TrimPrefix(pr, "AWS: "))
		}
	}
	if p.Kind != TrustPolicy || s.Effect != "Allow" {
		return probs
	}
	keys := s.ConditionKeys()
	has := func(key string) bool {
		for _, ks := range keys {
			for _, k := range ks {
				if strings.EqualFold(k, key) {
					return true
				}
			}
		}
		return false
	}
	for _, pr := range principals {
		switch {
		case strings.HasPrefix(pr, "AWS: "):
			// Another account assumes the role: only amicopier's central
			// role, and only with the external id.
			if !has("sts:ExternalId") {
				bad("trusts %s without an sts:ExternalId condition", pr)
			}
			if !has("aws:PrincipalArn") {
				bad("trusts %s without an aws:PrincipalArn condition naming the one role allowed", pr)
			}
		case strings.HasPrefix(pr, "Service: "):
			// A service assumes the role on behalf of this account only
			// (no confused deputy).
			if !has("aws:SourceAccount") && !has("aws:SourceArn") {
				bad("trusts %s without an aws:SourceAccount or aws:SourceArn condition", pr)
			}
		}
	}
	return probs
}
