package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/lambdafn"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// templateDir holds the deployment templates, relative to this package.
const templateDir = "../../scripts/cloudformation"

// wantTemplates are the templates the deployment documents; a new one
// must be added here (and to scripts/deploy.md).
var wantTemplates = []string{
	"central.yaml", "member-stackset.yaml", "org-reader-role.yaml",
	"source-events.yaml", "source-role.yaml",
}

func loadTemplate(t *testing.T, name string) *Template {
	t.Helper()
	tpl, err := ParseTemplateFile(filepath.Join(templateDir, name))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return tpl
}

func mustResource(t *testing.T, tpl *Template, name string) Resource {
	t.Helper()
	r, ok := tpl.Resource(name)
	if !ok {
		t.Fatalf("%s: no resource %s", tpl.Name, name)
	}
	return r
}

func TestTemplatesPassChecks(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(templateDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if !slices.Equal(names, wantTemplates) {
		t.Errorf("templates in %s are %v, want %v", templateDir, names, wantTemplates)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			tpl := loadTemplate(t, name)
			for _, p := range Check(tpl) {
				t.Error(p)
			}
			if tpl.Section("Description") == nil {
				t.Errorf("%s has no Description", name)
			}
		})
	}
}

// tableShape is a DynamoDB table definition reduced to what must agree
// between the code and the template.
type tableShape struct {
	BillingMode string
	Attributes  map[string]string
	Keys        []string
	GSIs        map[string]indexShape
	LSIs        map[string]indexShape
}

type indexShape struct {
	Keys       []string
	Projection string
	NonKey     []string
}

func codeTable() tableShape {
	def := state.DynamoDBTableDefinition("amicopier-state")
	keys := func(ks []types.KeySchemaElement) []string {
		var out []string
		for _, k := range ks {
			out = append(out, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
		}
		return out
	}
	proj := func(p *types.Projection) (string, []string) {
		if p == nil {
			return "", nil
		}
		return string(p.ProjectionType), p.NonKeyAttributes
	}
	s := tableShape{
		BillingMode: string(def.BillingMode),
		Attributes:  map[string]string{},
		Keys:        keys(def.KeySchema),
		GSIs:        map[string]indexShape{},
		LSIs:        map[string]indexShape{},
	}
	for _, a := range def.AttributeDefinitions {
		s.Attributes[aws.ToString(a.AttributeName)] = string(a.AttributeType)
	}
	for _, g := range def.GlobalSecondaryIndexes {
		p, nk := proj(g.Projection)
		s.GSIs[aws.ToString(g.IndexName)] = indexShape{Keys: keys(g.KeySchema), Projection: p, NonKey: nk}
	}
	for _, l := range def.LocalSecondaryIndexes {
		p, nk := proj(l.Projection)
		s.LSIs[aws.ToString(l.IndexName)] = indexShape{Keys: keys(l.KeySchema), Projection: p, NonKey: nk}
	}
	return s
}

func templateTable(t *testing.T, props *Value) tableShape {
	t.Helper()
	literal := func(v *Value, what string) string {
		if v == nil || v.Kind != Scalar {
			t.Fatalf("StateTable %s must be a literal (it is compared with the code)", what)
		}
		return v.Str
	}
	keys := func(v *Value) []string {
		var out []string
		for _, k := range Elements(v) {
			out = append(out, literal(k.Get("AttributeName"), "key name")+" "+literal(k.Get("KeyType"), "key type"))
		}
		return out
	}
	index := func(v *Value) indexShape {
		return indexShape{
			Keys:       keys(v.Get("KeySchema")),
			Projection: literal(v.Path("Projection", "ProjectionType"), "projection"),
			NonKey:     v.Path("Projection", "NonKeyAttributes").Strings(),
		}
	}
	s := tableShape{
		BillingMode: literal(props.Get("BillingMode"), "BillingMode"),
		Attributes:  map[string]string{},
		Keys:        keys(props.Get("KeySchema")),
		GSIs:        map[string]indexShape{},
		LSIs:        map[string]indexShape{},
	}
	for _, a := range Elements(props.Get("AttributeDefinitions")) {
		s.Attributes[literal(a.Get("AttributeName"), "attribute name")] = literal(a.Get("AttributeType"), "attribute type")
	}
	for _, g := range Elements(props.Get("GlobalSecondaryIndexes")) {
		s.GSIs[literal(g.Get("IndexName"), "index name")] = index(g)
	}
	for _, l := range Elements(props.Get("LocalSecondaryIndexes")) {
		s.LSIs[literal(l.Get("IndexName"), "index name")] = index(l)
	}
	return s
}

func TestStateTableIsTheCodesDefinition(t *testing.T) {
	tpl := loadTemplate(t, "central.yaml")
	table := mustResource(t, tpl, "StateTable")
	props := table.Properties()
	got, want := templateTable(t, props), codeTable()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("central.yaml StateTable differs from state.DynamoDBTableDefinition:\n template: %+v\n code:     %+v", got, want)
	}
	if attr := props.Path("TimeToLiveSpecification", "AttributeName").Text(); attr != state.DynamoDBTTLAttribute {
		t.Errorf("time to live on %q, want state.DynamoDBTTLAttribute %q", attr, state.DynamoDBTTLAttribute)
	}
	for _, path := range [][]string{
		{"TimeToLiveSpecification", "Enabled"},
		{"PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled"},
		{"SSESpecification", "SSEEnabled"},
	} {
		if v := props.Path(path...); v.Text() != "true" {
			t.Errorf("StateTable %s is %q, want true", strings.Join(path, "."), v.Text())
		}
	}
	if fn, arg := props.Get("TableName").Func(); fn != "Ref" || arg.Text() != "StateTableName" {
		t.Errorf("StateTable TableName must be !Ref StateTableName")
	}
	for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
		if p := table.Value.Get(k).Text(); p != "Retain" {
			t.Errorf("StateTable %s is %q: the table is the audit trail, keep it (Retain)", k, p)
		}
	}
	// The function may use every index of the table, and only those.
	var indexes []string
	for name := range want.GSIs {
		indexes = append(indexes, name)
	}
	for name := range want.LSIs {
		indexes = append(indexes, name)
	}
	stmt := findStatement(t, tpl, "FunctionRole", "StateTableItems")
	for _, idx := range indexes {
		if !slices.Contains(stmt.Resources, "${StateTable.Arn}/index/"+idx) {
			t.Errorf("StateTableItems does not cover index %s: %v", idx, stmt.Resources)
		}
	}
	if len(stmt.Resources) != len(indexes)+1 {
		t.Errorf("StateTableItems resources %v: want the table and its %d indexes only", stmt.Resources, len(indexes))
	}
}

// findStatement returns the statement with sid in the identity policies of
// role.
func findStatement(t *testing.T, tpl *Template, role, sid string) Statement {
	t.Helper()
	policies, probs := tpl.Policies()
	if len(probs) > 0 {
		t.Fatalf("%s: %v", tpl.Name, probs)
	}
	for _, p := range policies {
		for _, s := range p.Statements {
			if (p.Role == role || p.Resource == role) && s.Sid == sid {
				return s
			}
		}
	}
	t.Fatalf("%s: no statement %s for %s", tpl.Name, sid, role)
	return Statement{}
}

// grant is one action a role's identity policies allow.
type grant struct {
	action string
	stmt   Statement
	policy Policy
}

func roleGrants(t *testing.T, tpl *Template, role string) []grant {
	t.Helper()
	policies, probs := tpl.Policies()
	if len(probs) > 0 {
		t.Fatalf("%s: %v", tpl.Name, probs)
	}
	var out []grant
	for _, p := range policies {
		if p.Kind != IdentityPolicy || p.Role != role {
			continue
		}
		for _, s := range p.Statements {
			if s.Effect != "Allow" {
				continue
			}
			for _, a := range s.Actions {
				out = append(out, grant{action: a, stmt: s, policy: p})
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: role %s grants nothing", tpl.Name, role)
	}
	return out
}

// templateRoles says where each role of the deployment is.
var templateRoles = []struct {
	role     Role
	file     string
	resource string
	// also are roles whose needs this template role may cover
	// (conditionally).
	also []Role
}{
	{RoleCentral, "central.yaml", "FunctionRole", []Role{RoleOrgReader}},
	{RoleSource, "source-role.yaml", "SourceRole", nil},
	{RoleMember, "member-stackset.yaml", "CopierRole", nil},
	{RoleOrgReader, "org-reader-role.yaml", "OrgReaderRole", nil},
}

// TestRolesGrantExactlyWhatTheCodeCalls checks least privilege both ways:
// every action of deploy.APICalls (and RoleExtras) is allowed to its
// role, and every action a role allows is one of those.
func TestRolesGrantExactlyWhatTheCodeCalls(t *testing.T) {
	for _, tr := range templateRoles {
		t.Run(string(tr.role), func(t *testing.T) {
			tpl := loadTemplate(t, tr.file)
			grants := roleGrants(t, tpl, tr.resource)
			needs := RoleNeeds(tr.role)
			for _, need := range needs {
				if !slices.ContainsFunc(grants, func(g grant) bool { return ActionMatches(g.action, need) }) {
					t.Errorf("%s %s does not allow %s, which the code needs", tr.file, tr.resource, need)
				}
			}
			allowed := slices.Clone(needs)
			for _, r := range tr.also {
				allowed = append(allowed, RoleNeeds(r)...)
			}
			for _, g := range grants {
				// Justified when a needed action (pattern) covers all the
				// grant can match: kms:ReEncrypt* covers kms:ReEncryptFrom,
				// ec2:CopyImage does not cover ec2:Copy*.
				if !slices.ContainsFunc(allowed, func(need string) bool { return ActionMatches(need, g.action) }) {
					t.Errorf("%s: %s %s allows %s, which no code path needs (deploy.APICalls)", g.stmt.Pos, tr.file, tr.resource, g.action)
				}
			}
			for _, r := range tr.also {
				for _, need := range RoleNeeds(r) {
					for _, g := range grants {
						if ActionMatches(g.action, need) && !g.stmt.Conditional && !g.policy.Conditional {
							t.Errorf("%s: %s allows %s unconditionally; it is the %s role's, granted here only when that role is not used", g.stmt.Pos, tr.resource, need, r)
						}
					}
				}
			}
		})
	}
}

// conditionUsesParameter reports whether a template condition depends on
// a parameter, through other conditions too.
func conditionUsesParameter(tpl *Template, cond, param string) bool {
	found := false
	var visit func(name string, depth int)
	visit = func(name string, depth int) {
		if depth > 20 {
			return
		}
		tpl.Section("Conditions").Get(name).Walk(func(v *Value) bool {
			switch fn, arg := v.Func(); fn {
			case "Ref":
				found = found || arg.Text() == param
			case "Condition":
				visit(arg.Text(), depth+1)
			}
			return true
		})
	}
	visit(cond, 0)
	return found
}

func TestPruneActionsOnlyBehindEnablePrune(t *testing.T) {
	tpl := loadTemplate(t, "member-stackset.yaml")
	if d, _ := tpl.ParameterDefault("EnablePrune"); d != "false" {
		t.Errorf("EnablePrune defaults to %q, want \"false\" (prune.enabled defaults to false)", d)
	}
	grants := roleGrants(t, tpl, "CopierRole")
	for _, c := range APICalls {
		if c.Only != "prune" || !slices.Contains(c.Roles, RoleMember) {
			continue
		}
		for _, g := range grants {
			if !ActionMatches(g.action, c.Action()) {
				continue
			}
			res, _ := tpl.Resource(g.policy.Resource)
			if !conditionUsesParameter(tpl, res.Condition(), "EnablePrune") {
				t.Errorf("%s: %s is granted by %s, which does not depend on EnablePrune", g.stmt.Pos, c.Action(), g.policy.Resource)
			}
		}
	}
}

func TestMemberMutationsAreRestricted(t *testing.T) {
	tpl := loadTemplate(t, "member-stackset.yaml")
	managed := "aws:ResourceTag/" + reconcile.TagManaged
	for _, g := range roleGrants(t, tpl, "CopierRole") {
		switch g.action {
		case "ec2:CreateTags":
			if v := g.stmt.ConditionValue("StringEquals", "ec2:CreateAction").Text(); v != "CopyImage" {
				t.Errorf("%s: ec2:CreateTags must be limited to ec2:CreateAction CopyImage, got %q", g.stmt.Pos, v)
			}
		case "ec2:DeregisterImage", "ec2:DeleteSnapshot":
			if v := g.stmt.ConditionValue("StringEquals", managed).Text(); v != "true" {
				t.Errorf("%s: %s must be limited to resources tagged %s=true (reconcile.TagManaged), got %q", g.stmt.Pos, g.action, reconcile.TagManaged, v)
			}
		}
		if IsMutatingAction(g.action) && slices.Contains(g.stmt.Resources, "*") {
			t.Errorf("%s: mutating %s on Resource \"*\"", g.stmt.Pos, g.action)
		}
	}
}

func TestSourceSharingRestrictedToTheBakersTag(t *testing.T) {
	tpl := loadTemplate(t, "source-role.yaml")
	if k, _ := tpl.ParameterDefault("ImageTagKey"); k != "BuiltBy" {
		t.Errorf("ImageTagKey defaults to %q, want AMIgo's BuiltBy", k)
	}
	if v, _ := tpl.ParameterDefault("ImageTagValue"); v != "amigo" {
		t.Errorf("ImageTagValue defaults to %q, want amigo", v)
	}
	tagged := 0
	for _, g := range roleGrants(t, tpl, "SourceRole") {
		if g.action != "ec2:ModifyImageAttribute" && g.action != "ec2:ModifySnapshotAttribute" {
			if IsMutatingAction(g.action) {
				t.Errorf("%s: source role allows mutating %s", g.stmt.Pos, g.action)
			}
			continue
		}
		// After !Sub placeholders: aws:ResourceTag/ImageTagKey = ImageTagValue.
		if v := g.stmt.ConditionValue("StringEquals", "aws:ResourceTag/ImageTagKey").Text(); v == "ImageTagValue" {
			tagged++
			continue
		}
		// Only the snapshot statement may go without the tag, and only
		// when RestrictSnapshotsByTag is "false".
		res, _ := tpl.Resource(g.policy.Resource)
		if g.action != "ec2:ModifySnapshotAttribute" || !conditionUsesParameter(tpl, res.Condition(), "RestrictSnapshotsByTag") {
			t.Errorf("%s: %s is not restricted to images tagged ImageTagKey=ImageTagValue", g.stmt.Pos, g.action)
		}
	}
	if tagged != 2 {
		t.Errorf("%d tag-restricted sharing statements, want 2 (image and snapshot)", tagged)
	}
}

func TestKeyPolicy(t *testing.T) {
	tpl := loadTemplate(t, "member-stackset.yaml")
	key := mustResource(t, tpl, "CopyKey")
	if key.Properties().Get("EnableKeyRotation").Text() != "true" {
		t.Error("CopyKey: EnableKeyRotation must be true")
	}
	var keyPolicy Policy
	policies, _ := tpl.Policies()
	for _, p := range policies {
		if p.Resource == "CopyKey" {
			keyPolicy = p
		}
	}
	// actionsFor collects what the statements matching pick allow, and
	// whether their CreateGrant is limited to AWS resources.
	actionsFor := func(pick func(Statement) bool) (actions []string, grantLimited bool) {
		grantLimited = true
		for _, s := range keyPolicy.Statements {
			if !pick(s) {
				continue
			}
			actions = append(actions, s.Actions...)
			if slices.Contains(s.Actions, "kms:CreateGrant") && s.ConditionValue("Bool", "kms:GrantIsForAWSResource").Text() != "true" {
				grantLimited = false
			}
		}
		return actions, grantLimited
	}
	// The Auto Scaling service-linked role: named by an aws:PrincipalArn
	// condition on a "*" principal (its own policy grants nothing on
	// customer managed keys, so the account principal, which delegates
	// to IAM policies, would not do), in this account only, and never as
	// the principal itself (KMS refuses a policy naming a role that does
	// not exist yet).
	const slrARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	namesSLR := func(s Statement) bool {
		if RenderValue(s.ConditionValue("ArnEquals", "aws:PrincipalArn")) != slrARN {
			return false
		}
		if !slices.Equal(s.Principals(), []string{"AWS: *"}) || !s.PinsPrincipalArn() {
			t.Errorf("%s: statement %s names the Auto Scaling role by condition but its principal is %v", s.Pos, s.Sid, s.Principals())
		}
		if RenderValue(s.ConditionValue("StringEquals", "kms:CallerAccount")) != "${AWS::AccountId}" {
			t.Errorf("%s: statement %s must also require kms:CallerAccount = this account", s.Pos, s.Sid)
		}
		return true
	}
	for _, s := range keyPolicy.Statements {
		for _, pr := range s.Principals() {
			if strings.Contains(pr, "AWSServiceRoleForAutoScaling") || strings.Contains(pr, "AutoScalingServiceLinkedRole") {
				t.Errorf("%s: statement %s names the Auto Scaling role as its principal (%s): KMS refuses the policy where the role does not exist yet", s.Pos, s.Sid, pr)
			}
		}
	}
	acts, limited := actionsFor(namesSLR)
	for _, need := range []string{"kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"} {
		if !slices.ContainsFunc(acts, func(a string) bool { return ActionMatches(a, need) }) {
			t.Errorf("the key policy does not let the Auto Scaling service-linked role %s", need)
		}
	}
	if !limited {
		t.Error("the Auto Scaling service-linked role's kms:CreateGrant must require kms:GrantIsForAWSResource")
	}

	// The copier role: named by an aws:PrincipalArn condition on the
	// account principal, and allowed the same by its own policy on the
	// key of its alias.
	const copierARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${RoleName}"
	namesCopier := func(s Statement) bool {
		return RenderValue(s.ConditionValue("ArnEquals", "aws:PrincipalArn")) == copierARN &&
			slices.Equal(s.Principals(), []string{"AWS: arn:${AWS::Partition}:iam::${AWS::AccountId}:root"})
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(CopyImageKeyActions), CheckKeyActions...)))
	acts, limited = actionsFor(namesCopier)
	if got := slices.Compact(slices.Sorted(slices.Values(acts))); !slices.Equal(got, want) {
		t.Errorf("the key policy lets the copier role %v, want exactly %v (docs/design.md, safety rules)", got, want)
	}
	if !limited {
		t.Error("the copier role's kms:CreateGrant must require kms:GrantIsForAWSResource (key policy)")
	}
	var roleActs []string
	for _, g := range roleGrants(t, tpl, "CopierRole") {
		if !strings.HasPrefix(g.action, "kms:") || g.policy.Resource != "CopierRole" {
			continue
		}
		roleActs = append(roleActs, g.action)
		if RenderValue(g.stmt.ConditionValue("ForAnyValue:StringEquals", "kms:ResourceAliases")) != "${KeyAlias}" {
			t.Errorf("%s: the copier role's %s must be limited to the key aliased KeyAlias", g.stmt.Pos, g.action)
		}
		if g.action == "kms:CreateGrant" && g.stmt.ConditionValue("Bool", "kms:GrantIsForAWSResource").Text() != "true" {
			t.Errorf("%s: the copier role's kms:CreateGrant must require kms:GrantIsForAWSResource", g.stmt.Pos)
		}
	}
	if got := slices.Compact(slices.Sorted(slices.Values(roleActs))); !slices.Equal(got, want) {
		t.Errorf("the copier role's policy allows %v on the copies' key, want exactly %v", got, want)
	}
	for _, s := range keyPolicy.Statements {
		if r := s.Value.Get("Principal").Get("AWS"); r != nil && strings.Contains(RenderValue(r), "CopierRole") {
			t.Errorf("%s: the key policy names the copier role resource: KMS would refuse it before the role exists", s.Pos)
		}
	}
	alias := mustResource(t, tpl, "CopyKeyAlias")
	if fn, arg := alias.Properties().Get("TargetKeyId").Func(); fn != "Ref" || arg.Text() != "CopyKey" {
		t.Error("CopyKeyAlias must target CopyKey")
	}
	if fn, arg := tpl.Section("Outputs").Path("KeyAlias", "Value").Func(); fn != "Ref" || arg.Text() != "CopyKeyAlias" {
		t.Error("the member stack must output the key alias")
	}
	if d, _ := tpl.ParameterDefault("KeyAlias"); d != "alias/amicopier" {
		t.Errorf("KeyAlias defaults to %q", d)
	}
	central := loadTemplate(t, "central.yaml")
	if d, _ := central.ParameterDefault("KmsKey"); d != "alias/amicopier" {
		t.Errorf("central KmsKey defaults to %q, the member stack's alias is alias/amicopier", d)
	}
}

func TestRoleNamesAgree(t *testing.T) {
	member := loadTemplate(t, "member-stackset.yaml")
	central := loadTemplate(t, "central.yaml")
	if d, _ := member.ParameterDefault("RoleName"); d != config.DefaultRoleName {
		t.Errorf("member RoleName defaults to %q, config.DefaultRoleName is %q", d, config.DefaultRoleName)
	}
	if d, _ := central.ParameterDefault("MemberRoleName"); d != config.DefaultRoleName {
		t.Errorf("central MemberRoleName defaults to %q, config.DefaultRoleName is %q", d, config.DefaultRoleName)
	}
	stmt := findStatement(t, central, "FunctionRole", "AssumeMemberCopierRoles")
	if want := "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}"; !slices.Equal(stmt.Resources, []string{want}) {
		t.Errorf("AssumeMemberCopierRoles resources %v, want only %s", stmt.Resources, want)
	}
	// Every role another account assumes trusts the central role by its
	// ARN parameter.
	for _, file := range []string{"member-stackset.yaml", "source-role.yaml", "org-reader-role.yaml"} {
		tpl := loadTemplate(t, file)
		policies, _ := tpl.Policies()
		for _, p := range policies {
			if p.Kind != TrustPolicy {
				continue
			}
			for _, s := range p.Statements {
				if v := s.ConditionValue("ArnEquals", "aws:PrincipalArn"); RenderValue(v) != "${CentralRoleArn}" {
					t.Errorf("%s: trust must be limited to aws:PrincipalArn = CentralRoleArn", s.Pos)
				}
				if v := s.ConditionValue("StringEquals", "sts:ExternalId"); RenderValue(v) != "${ExternalId}" {
					t.Errorf("%s: trust must require sts:ExternalId = ExternalId", s.Pos)
				}
			}
		}
		if tpl.Section("Parameters").Path("ExternalId", "NoEcho").Text() != "true" {
			t.Errorf("%s: ExternalId must be NoEcho", file)
		}
	}
}

func TestCentralFunctionAndSchedule(t *testing.T) {
	tpl := loadTemplate(t, "central.yaml")
	fn := mustResource(t, tpl, "Function").Properties()
	for k, want := range map[string]string{"Runtime": "provided.al2023", "Handler": "bootstrap"} {
		if got := fn.Get(k).Text(); got != want {
			t.Errorf("Function %s is %q, want %q", k, got, want)
		}
	}
	if got := fn.Get("Architectures").Strings(); !slices.Equal(got, []string{"arm64"}) {
		t.Errorf("Function Architectures %v, want [arm64] (scripts/build-lambda.sh builds arm64)", got)
	}
	for k, param := range map[string]string{"Timeout": "Timeout", "MemorySize": "MemorySize", "ReservedConcurrentExecutions": "ReservedConcurrency"} {
		if f, arg := fn.Get(k).Func(); f != "Ref" || arg.Text() != param {
			t.Errorf("Function %s must be !Ref %s", k, param)
		}
	}
	if d, _ := tpl.ParameterDefault("ReservedConcurrency"); d != "1" {
		t.Errorf("ReservedConcurrency defaults to %q, want 1: one run at a time", d)
	}
	sched := mustResource(t, tpl, "NightlySchedule").Properties()
	if m := sched.Path("FlexibleTimeWindow", "Mode").Text(); m != "OFF" {
		t.Errorf("schedule FlexibleTimeWindow Mode %q, want OFF", m)
	}
	target := sched.Get("Target")
	for _, k := range []string{"RetryPolicy", "DeadLetterConfig", "RoleArn", "Input"} {
		if target.Get(k) == nil {
			t.Errorf("schedule target has no %s", k)
		}
	}
	if f, arg := sched.Get("ScheduleExpression").Func(); f != "Ref" || arg.Text() != "ScheduleExpression" {
		t.Error("ScheduleExpression must be a parameter")
	}
	if d, _ := tpl.ParameterDefault("ScheduleExpression"); !strings.HasPrefix(d, "cron(") {
		t.Errorf("ScheduleExpression defaults to %q, want a nightly cron()", d)
	}
	// Optional triggers are optional.
	for res, cond := range map[string]string{
		"AmigoSubscription": "HasAmigoTopic", "AmigoInvokePermission": "HasAmigoTopic",
		"AmiStateChangeRule": "AmiRule", "AmiStateChangeInvokePermission": "AmiRule",
		"ShardedRunStateMachine": "Sharded", "AlarmTopic": "CreateAlarmTopic",
	} {
		if got := mustResource(t, tpl, res).Condition(); got != cond {
			t.Errorf("%s has condition %q, want %q", res, got, cond)
		}
	}
	pattern := mustResource(t, tpl, "AmiStateChangeRule").Properties().Get("EventPattern")
	if got := pattern.Get("detail-type").Strings(); !slices.Equal(got, []string{"EC2 AMI State Change"}) {
		t.Errorf("rule detail-type %v", got)
	}
	if got := pattern.Path("detail", "State").Strings(); !slices.Equal(got, []string{"available"}) {
		t.Errorf("rule detail.State %v, want [available]", got)
	}
	lg := mustResource(t, tpl, "LogGroup").Properties()
	if f, arg := lg.Get("RetentionInDays").Func(); f != "Ref" || arg.Text() != "LogRetentionInDays" {
		t.Error("LogGroup RetentionInDays must be a parameter")
	}
}

// TestFunctionEnvironment checks that every AMICOPIER_* variable the
// template sets is one the binary reads.
func TestFunctionEnvironment(t *testing.T) {
	tpl := loadTemplate(t, "central.yaml")
	vars := mustResource(t, tpl, "Function").Properties().Path("Environment", "Variables")
	known := map[string]bool{}
	for _, e := range config.EnvOverrides {
		known[e.Name] = true
	}
	for _, name := range lambdaEnvVars {
		known[name] = true
	}
	for _, f := range vars.fieldsOrNil() {
		if !known[f.Key] {
			t.Errorf("central.yaml sets %s, which amicopier does not read (config.EnvOverrides, internal/lambdafn)", f.Key)
		}
	}
	for _, want := range []string{"AMICOPIER_STATE_BACKEND", "AMICOPIER_STATE_TABLE", "AMICOPIER_EXTERNAL_ID", "AMICOPIER_SOURCE_ACCOUNT_ID"} {
		if vars.Get(want) == nil {
			t.Errorf("central.yaml does not set %s", want)
		}
	}
	if v := vars.Get("AMICOPIER_STATE_BACKEND").Text(); v != config.BackendDynamoDB {
		t.Errorf("AMICOPIER_STATE_BACKEND is %q, want %q", v, config.BackendDynamoDB)
	}
	if f, arg := vars.Get("AMICOPIER_STATE_TABLE").Func(); f != "Ref" || arg.Text() != "StateTable" {
		t.Error("AMICOPIER_STATE_TABLE must be !Ref StateTable")
	}
}

// apiSources says which service the calls of each source file go to; a
// file that calls AWS and is missing here fails the test.
var apiSources = map[string]string{
	"../awsapi/amigo.go":             "dynamodb",
	"../awsapi/connector.go":         "sts",
	"../awsapi/ec2.go":               "ec2",
	"../awsapi/ec2_lifecycle.go":     "ec2",
	"../awsapi/events.go":            "events",
	"../awsapi/kms.go":               "kms",
	"../awsapi/ssm.go":               "ssm",
	"../awsapi/org.go":               "organizations",
	"../../state/dynamodb.go":        "dynamodb",
	"../../state/dynamodb_batch.go":  "dynamodb",
	"../../state/dynamodb_grants.go": "dynamodb",
	"../../state/dynamodb_table.go":  "dynamodb",
}

// callPatterns find the AWS operations a file calls: client methods
// (x.api.Op(, x.reader.Op(), paginators and the operation names the
// adapters wrap their errors with.
var callPatterns = []*regexp.Regexp{
	regexp.MustCompile(`\b(?:api|reader)\.([A-Z][A-Za-z]+)\(`),
	regexp.MustCompile(`\.New([A-Z][A-Za-z]+)Paginator\(`),
	regexp.MustCompile(`\bapiError\("([A-Z][A-Za-z]+)"`),
}

// notOperations are methods the patterns also find that are no AWS
// operation (smithy.APIError's, on variables named api).
var notOperations = []string{"ErrorCode", "ErrorMessage", "ErrorFault"}

// TestAPICallsTableCoversTheCode reads internal/awsapi and the DynamoDB
// store and fails on any AWS operation they call that deploy.APICalls (or
// OperatorOnlyCalls) does not list, so the templates cannot silently miss
// a permission.
func TestAPICallsTableCoversTheCode(t *testing.T) {
	files, err := filepath.Glob("../awsapi/*.go")
	if err != nil {
		t.Fatal(err)
	}
	stateFiles, _ := filepath.Glob("../../state/dynamodb*.go")
	files = append(files, stateFiles...)
	listed := map[string]bool{}
	for _, c := range APICalls {
		listed[c.Action()] = true
	}
	for _, a := range OperatorOnlyCalls {
		listed[a] = true
	}
	found := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ops []string
		for _, re := range callPatterns {
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				if !slices.Contains(notOperations, m[1]) {
					ops = append(ops, m[1])
				}
			}
		}
		service, known := apiSources[filepath.ToSlash(f)]
		if !known {
			if len(ops) > 0 {
				t.Errorf("%s calls %v: add the file to apiSources with its service", f, ops)
			}
			continue
		}
		for _, op := range ops {
			action := service + ":" + op
			found[action] = true
			if !listed[action] {
				t.Errorf("%s calls %s, which deploy.APICalls does not list: add it with the role that needs it", f, action)
			}
		}
	}
	for _, c := range APICalls {
		if !found[c.Action()] {
			t.Errorf("deploy.APICalls lists %s, which the code no longer calls", c.Action())
		}
	}
	if len(found) < 15 {
		t.Errorf("found only %d operations in the sources: the patterns no longer match the code", len(found))
	}
}

// lambdaEnvVars are the variables the Lambda entry point reads besides
// config.EnvOverrides.
var lambdaEnvVars = []string{lambdafn.EnvConfigYAML, lambdafn.EnvConfigPath, lambdafn.EnvLogLevel}

// emittedMetrics runs the function's metric writer on a run summary and
// returns the namespace, dimension names and metric names of its EMF line.
func emittedMetrics(t *testing.T) (namespace string, dims []string, names []string) {
	t.Helper()
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	res := &reconcile.Result{
		Report:  report.New(string(reconcile.ModeRun), "111111111111", []string{"eu-west-1"}, now),
		Summary: &report.Summary{RunID: "r1", Trigger: string(lambdafn.KindSchedule), Mode: string(reconcile.ModeRun), Status: report.StatusSucceeded},
	}
	var buf bytes.Buffer
	if err := lambdafn.WriteMetrics(&buf, res, now); err != nil {
		t.Fatal(err)
	}
	_, _, runNames := metricLine(t, buf.Bytes())
	buf.Reset()
	rep := report.NewCheckReport("c1", string(lambdafn.KindCheck), "111111111111", []string{"eu-west-1"}, now)
	if err := lambdafn.WriteCheckMetrics(&buf, rep, now); err != nil {
		t.Fatal(err)
	}
	namespace, dims, names = metricLine(t, buf.Bytes())
	return namespace, dims, append(runNames, names...)
}

// metricLine decodes one EMF line: namespace, dimension names, metric
// names.
func metricLine(t *testing.T, b []byte) (namespace string, dims []string, names []string) {
	t.Helper()
	buf := bytes.NewBuffer(b)
	var line struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name string }
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("metric line %q: %v", buf.String(), err)
	}
	if len(line.AWS.CloudWatchMetrics) != 1 || len(line.AWS.CloudWatchMetrics[0].Dimensions) != 1 {
		t.Fatalf("metric line %s: want one directive with one dimension set", buf.String())
	}
	d := line.AWS.CloudWatchMetrics[0]
	for _, m := range d.Metrics {
		names = append(names, m.Name)
	}
	return d.Namespace, d.Dimensions[0], names
}

// TestAlarmsWatchEmittedMetrics checks each alarm on amicopier's own
// metrics against what internal/lambdafn emits: namespace, metric name,
// dimensions, and the trigger value of the nightly run.
func TestAlarmsWatchEmittedMetrics(t *testing.T) {
	namespace, dims, names := emittedMetrics(t)
	tpl := loadTemplate(t, "central.yaml")
	checkMetric := func(alarm string, m *Value) {
		if m.Get("Namespace").Text() != namespace {
			return
		}
		if name := m.Get("MetricName").Text(); !slices.Contains(names, name) {
			t.Errorf("alarm %s watches %s, which the function does not emit (it emits %v)", alarm, name, names)
		}
		var got []string
		for _, d := range Elements(m.Get("Dimensions")) {
			got = append(got, d.Get("Name").Text())
			trigger := lambdafn.KindSchedule
			if strings.HasPrefix(m.Get("MetricName").Text(), lambdafn.CheckMetric) {
				trigger = lambdafn.KindCheck // the preflight check's own metrics
			}
			if d.Get("Name").Text() == "Trigger" && d.Get("Value").Text() != string(trigger) {
				t.Errorf("alarm %s watches Trigger=%s, want %s", alarm, d.Get("Value").Text(), trigger)
			}
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(dims))
		if !slices.Equal(got, want) {
			t.Errorf("alarm %s uses dimensions %v, the function emits %v: CloudWatch matches them exactly", alarm, got, want)
		}
	}
	watched := map[string]bool{}
	for _, r := range tpl.ResourcesOfType("AWS::CloudWatch::Alarm") {
		props := r.Properties()
		if props.Get("Namespace") != nil {
			checkMetric(r.Name, props)
			watched[props.Get("Namespace").Text()+"/"+props.Get("MetricName").Text()] = true
		}
		for _, m := range Elements(props.Get("Metrics")) {
			if metric := m.Path("MetricStat", "Metric"); metric != nil {
				checkMetric(r.Name, metric)
				watched[metric.Get("Namespace").Text()+"/"+metric.Get("MetricName").Text()] = true
			}
		}
		if props.Get("AlarmDescription") == nil {
			t.Errorf("alarm %s has no description (the runbook entry)", r.Name)
		}
	}
	if namespace != "amicopier" {
		t.Errorf("the function's namespace is %q; the alarms use amicopier", namespace)
	}
	for _, m := range []string{"AWS/Lambda/Errors", "AWS/SQS/ApproximateNumberOfMessagesVisible",
		"amicopier/Drift.stuck", "amicopier/Drift.unencrypted", "amicopier/Drift.wrong_key",
		"amicopier/Drift.duplicate", "amicopier/Drift.unreachable", "amicopier/DurationSeconds", "amicopier/CheckFindings"} {
		if !watched[m] {
			t.Errorf("no alarm watches %s", m)
		}
	}
}

// shardedRunASL is the scale work's state machine definition, the source
// of truth for central.yaml's once it exists.
const shardedRunASL = "../../scripts/sharded-run.asl.json"

// parseDefinition parses a state machine definition written for !Sub (or
// DefinitionSubstitutions), its variables replaced by placeholders.
func parseDefinition(t *testing.T, what, src string) map[string]any {
	t.Helper()
	var def map[string]any
	if err := json.Unmarshal([]byte(SubstitutePlaceholders(src)), &def); err != nil {
		t.Fatalf("%s does not parse as JSON: %v", what, err)
	}
	return def
}

func TestShardedRunDefinition(t *testing.T) {
	tpl := loadTemplate(t, "central.yaml")
	sm := mustResource(t, tpl, "ShardedRunStateMachine")
	src := RenderValue(sm.Properties().Get("DefinitionString"))
	def := parseDefinition(t, "ShardedRunStateMachine DefinitionString", src)
	states, _ := def["States"].(map[string]any)
	distributed := false
	for _, st := range states {
		m, _ := st.(map[string]any)
		proc, _ := m["ItemProcessor"].(map[string]any)
		cfg, _ := proc["ProcessorConfig"].(map[string]any)
		distributed = distributed || (m["Type"] == "Map" && cfg["Mode"] == "DISTRIBUTED")
	}
	if !distributed {
		t.Error("the sharded run has no Distributed Map state")
	}
	if !strings.Contains(src, "${FunctionArn}") {
		t.Error("the definition must invoke ${FunctionArn}")
	}
	// The sharded branch of the schedule's input is what the definition
	// reads.
	var inputs []string
	for _, b := range Branches(mustResource(t, tpl, "NightlySchedule").Properties().Path("Target", "Input")) {
		inputs = append(inputs, RenderValue(b))
	}
	if !slices.Contains(inputs, `{"shards": ${ShardCount}}`) || !strings.Contains(src, `"$.shards"`) {
		t.Errorf("the schedule's inputs %q do not pass {\"shards\": ShardCount}, which the definition reads as $.shards", inputs)
	}
	asl, err := os.ReadFile(shardedRunASL)
	if os.IsNotExist(err) {
		t.Logf("%s does not exist (yet): central.yaml carries its own definition", shardedRunASL)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if file := parseDefinition(t, shardedRunASL, string(asl)); !reflect.DeepEqual(file, def) {
		t.Errorf("central.yaml's ShardedRunStateMachine definition differs from %s: copy the file into DefinitionString", shardedRunASL)
	}
}

// TestResourceNamesFitTheirLimits computes the longest value of every
// name a template gives a resource (the parameters' MaxLength,
// AllowedPattern and AllowedValues bound them) and fails when AWS could
// refuse it: `${FunctionName}-nightly` must fit a schedule name's 64
// characters for the longest FunctionName the stack accepts.
func TestResourceNamesFitTheirLimits(t *testing.T) {
	checked := 0
	for _, name := range wantTemplates {
		tpl := loadTemplate(t, name)
		for _, p := range CheckNames(tpl) {
			t.Error(p)
		}
		for _, r := range tpl.Resources() {
			for _, lim := range NameLimits[r.Type] {
				checked += len(propertyValues(r.Properties(), lim.Property))
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d names checked: NameLimits no longer matches the templates' resources", checked)
	}
}

// TestNoHardCodedPartition fails on any ARN a template or the state
// machine definition writes as arn:aws:... instead of with
// ${AWS::Partition}: such a stack fails in aws-cn and aws-us-gov.
func TestNoHardCodedPartition(t *testing.T) {
	for _, name := range wantTemplates {
		for _, p := range CheckPartitions(loadTemplate(t, name)) {
			t.Error(p)
		}
	}
	asl, err := os.ReadFile(shardedRunASL)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(asl), "\n") {
		if m := hardCodedPartition.FindString(line); m != "" {
			t.Errorf("%s:%d: %q names the partition literally: write arn:${AWS::Partition}:", shardedRunASL, i+1, m)
		}
	}
	// The check itself sees ARNs in !Sub strings and in plain values, and
	// leaves descriptions alone.
	tpl, err := ParseTemplate("t.yaml", []byte(header+`Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties:
      A: !Sub "arn:aws:sqs:${AWS::Region}:1:q"
      B: arn:aws-us-gov:iam::1:root
      C: !Sub "arn:${AWS::Partition}:sqs:::q"
      Description: e.g. arn:aws:iam::123456789012:role/x
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := CheckPartitions(tpl); len(got) != 2 {
		t.Errorf("CheckPartitions found %v, want the two literal partitions", got)
	}
}

// TestShardedRunRoleCoversChildExecutions checks the state machine's role
// against the ARN of a Distributed Map child execution,
// execution:<state machine>/<map run label>:<id> (Step Functions
// Developer Guide, "IAM policies for using Distributed Map states"): the
// map run describes and stops its children, and a policy written for
// execution:<state machine>:* (a top-level execution) does not match them.
func TestShardedRunRoleCoversChildExecutions(t *testing.T) {
	tpl := loadTemplate(t, "central.yaml")
	const machine = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${FunctionName}-sharded-run"
	const child = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${FunctionName}-sharded-run/Reconcile-every-shard-label:5f0c6a7e-1d2b-4c3a-9e8f-0123456789ab"
	const other = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:someone-else/label:5f0c6a7e"
	grants := roleGrants(t, tpl, "ShardedRunRole")
	allows := func(action, resource string) bool {
		return slices.ContainsFunc(grants, func(g grant) bool {
			return ActionMatches(g.action, action) && slices.ContainsFunc(g.stmt.Resources, func(r string) bool {
				return wildcardMatch(r, resource)
			})
		})
	}
	if !allows("states:StartExecution", machine) {
		t.Errorf("the sharded run's role may not start its own state machine's child executions (%s)", machine)
	}
	for _, action := range []string{"states:DescribeExecution", "states:StopExecution"} {
		if !allows(action, child) {
			t.Errorf("the sharded run's role does not allow %s on its Distributed Map's child executions (%s)", action, child)
		}
		if allows(action, other) {
			t.Errorf("the sharded run's role allows %s on another state machine's executions (%s)", action, other)
		}
	}
}

// runbook is the deployment runbook the templates come with.
const runbook = "../../scripts/deploy.md"

// TestRunbookUndoesConcurrencyOutsideTheStack checks what the runbook says
// about stopping the function with put-function-concurrency: a stack
// update does not undo it (CloudFormation applies only the properties
// whose values changed in the template or its parameters, so the
// function stays at 0), and the undo is put-function-concurrency with the
// stack's ReservedConcurrency.
func TestRunbookUndoesConcurrencyOutsideTheStack(t *testing.T) {
	data, err := os.ReadFile(runbook)
	if err != nil {
		t.Fatal(err)
	}
	// Claims that a stack update restores a value set outside the stack.
	restoresByUpdate := regexp.MustCompile(`(?i)(undo|restor|back)\w*[^.;]*\b(by|with) a stack update`)
	stops := 0
	for i, para := range strings.Split(string(data), "\n\n") {
		flat := strings.Join(strings.Fields(para), " ")
		if !strings.Contains(flat, "put-function-concurrency") {
			continue
		}
		if m := restoresByUpdate.FindString(flat); m != "" {
			t.Errorf("%s, paragraph %d: %q: a stack update applies only changed properties and leaves a concurrency set outside the stack as it is", runbook, i+1, m)
		}
		if strings.Contains(flat, "--reserved-concurrent-executions 0") {
			stops++
			if !strings.Contains(flat, "A stack update does not undo it") ||
				!regexp.MustCompile(`put-function-concurrency [^.]*--reserved-concurrent-executions [1-9]`).MatchString(flat) {
				t.Errorf("%s, paragraph %d stops the function with put-function-concurrency 0 but does not say that a stack update does not undo it and how to set the stack's ReservedConcurrency back:\n%s", runbook, i+1, flat)
			}
		}
	}
	if stops == 0 {
		t.Errorf("%s no longer says how to stop the function with put-function-concurrency 0", runbook)
	}
}
