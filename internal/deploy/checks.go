package deploy

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a template.
type Problem struct {
	// Pos is file:line.
	Pos string
	Msg string
}

func (p Problem) String() string { return p.Pos + ": " + p.Msg }

// ResourceTypes are the CloudFormation resource types the templates may
// use, each with the attributes Fn::GetAtt may read (CloudFormation
// resource reference, "Return values"). It is an allow-list: a type
// missing here is a typo until it is checked against the documentation
// and added.
var ResourceTypes = map[string][]string{
	"AWS::CloudWatch::Alarm":           {"Arn"},
	"AWS::DynamoDB::Table":             {"Arn", "StreamArn"},
	"AWS::Events::EventBusPolicy":      nil,
	"AWS::Events::Rule":                {"Arn"},
	"AWS::IAM::Role":                   {"Arn", "RoleId"},
	"AWS::IAM::RolePolicy":             nil,
	"AWS::IAM::ServiceLinkedRole":      nil,
	"AWS::KMS::Alias":                  nil,
	"AWS::KMS::Key":                    {"Arn", "KeyId"},
	"AWS::Lambda::EventInvokeConfig":   nil,
	"AWS::Lambda::Function":            {"Arn"},
	"AWS::Lambda::Permission":          nil,
	"AWS::Logs::LogGroup":              {"Arn"},
	"AWS::SNS::Subscription":           {"Arn"},
	"AWS::SNS::Topic":                  {"TopicArn", "TopicName"},
	"AWS::SQS::Queue":                  {"Arn", "QueueName", "QueueUrl"},
	"AWS::SQS::QueuePolicy":            {"Id"},
	"AWS::Scheduler::Schedule":         {"Arn"},
	"AWS::StepFunctions::StateMachine": {"Arn", "Name", "StateMachineRevisionId"},
}

// resourceTypeShape is AWS::Service::Resource.
var resourceTypeShape = regexp.MustCompile(`^AWS::[A-Z][A-Za-z0-9]*::[A-Z][A-Za-z0-9]*$`)

// PseudoParameters are the names !Ref resolves without a declaration.
var PseudoParameters = []string{
	"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
	"AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
}

var (
	topLevelKeys = []string{"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters",
		"Rules", "Mappings", "Conditions", "Transform", "Resources", "Outputs"}
	resourceKeys = []string{"Type", "Properties", "Condition", "DependsOn", "DeletionPolicy",
		"UpdateReplacePolicy", "Metadata", "CreationPolicy", "UpdatePolicy"}
	parameterTypes = []string{"String", "Number", "List<Number>", "CommaDelimitedList"}
	// yaml11Bools are plain scalars YAML 1.2 (yaml.v3) reads as strings
	// and YAML 1.1 parsers may read as booleans: they must be quoted.
	yaml11Bools = []string{"y", "yes", "n", "no", "on", "off"}
)

// Check runs every generic check on a template: its sections, parameter
// defaults, resource types and attributes, that every Ref, GetAtt, Sub
// variable, condition and mapping resolves, that every parameter and
// condition is used, and the IAM rules (no "*" or service-wide actions, no
// mutating action on Resource "*" without a Condition, no "*" principal,
// external id and principal ARN on cross-account trust, source account
// on service trust), that no ARN names its partition literally
// (CheckPartitions), and that every name fits its resource type's limit
// (CheckNames).
func Check(t *Template) []Problem {
	c := &checker{t: t, used: map[string]bool{}}
	c.sections()
	c.parameters()
	c.conditions()
	c.resources()
	c.outputs()
	c.unused()
	c.quoting()
	c.probs = append(c.probs, CheckPartitions(t)...)
	c.probs = append(c.probs, t.checkPolicies()...)
	c.probs = append(c.probs, CheckNames(t)...)
	return c.probs
}

type checker struct {
	t     *Template
	probs []Problem
	// used records referenced parameters and conditions ("P:x", "C:x").
	used map[string]bool
}

func (c *checker) bad(v *Value, format string, args ...any) {
	c.probs = append(c.probs, Problem{Pos: c.t.pos(v), Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) sections() {
	if c.t.Root.Get("AWSTemplateFormatVersion").Text() != "2010-09-09" {
		c.bad(c.t.Root, "AWSTemplateFormatVersion must be \"2010-09-09\"")
	}
	for _, f := range c.t.Root.Fields {
		if !slices.Contains(topLevelKeys, f.Key) {
			c.bad(f.Value, "unknown top-level section %q", f.Key)
		}
	}
	if len(c.t.names("Resources")) == 0 {
		c.bad(c.t.Root, "no Resources")
	}
}

func (c *checker) parameters() {
	for _, f := range c.t.Section("Parameters").fieldsOrNil() {
		p := f.Value
		typ := p.Get("Type").Text()
		if !slices.Contains(parameterTypes, typ) && !strings.HasPrefix(typ, "AWS::") {
			c.bad(p, "parameter %s: unknown Type %q", f.Key, typ)
		}
		if p.Get("Description") == nil {
			c.bad(p, "parameter %s has no Description", f.Key)
		}
		def := p.Get("Default")
		if def == nil {
			continue
		}
		if pat := p.Get("AllowedPattern").Text(); pat != "" && typ == "String" {
			re, err := regexp.Compile(pat)
			if err != nil {
				c.bad(p, "parameter %s: AllowedPattern does not compile: %v", f.Key, err)
			} else if !re.MatchString(def.Str) {
				c.bad(def, "parameter %s: Default %q does not match its AllowedPattern", f.Key, def.Str)
			}
		}
		if av := p.Get("AllowedValues"); av != nil && !slices.Contains(av.Strings(), def.Str) {
			c.bad(def, "parameter %s: Default %q is not one of its AllowedValues", f.Key, def.Str)
		}
		if typ == "Number" {
			n, err := strconv.ParseFloat(def.Str, 64)
			if err != nil {
				c.bad(def, "parameter %s: Default %q is not a number", f.Key, def.Str)
			}
			if lo := p.Get("MinValue"); lo != nil && err == nil {
				if m, _ := strconv.ParseFloat(lo.Str, 64); n < m {
					c.bad(def, "parameter %s: Default %s is under MinValue %s", f.Key, def.Str, lo.Str)
				}
			}
			if hi := p.Get("MaxValue"); hi != nil && err == nil {
				if m, _ := strconv.ParseFloat(hi.Str, 64); n > m {
					c.bad(def, "parameter %s: Default %s is over MaxValue %s", f.Key, def.Str, hi.Str)
				}
			}
		}
	}
}

func (c *checker) conditions() {
	for _, f := range c.t.Section("Conditions").fieldsOrNil() {
		c.refs(f.Value, "condition "+f.Key, false)
	}
}

func (c *checker) resources() {
	for _, r := range c.t.Resources() {
		v := r.Value
		if v.Kind != Mapping {
			c.bad(v, "resource %s is not a mapping", r.Name)
			continue
		}
		for _, f := range v.Fields {
			if !slices.Contains(resourceKeys, f.Key) {
				c.bad(f.Value, "resource %s: unknown attribute %q", r.Name, f.Key)
			}
		}
		switch _, known := ResourceTypes[r.Type]; {
		case !resourceTypeShape.MatchString(r.Type):
			c.bad(v, "resource %s: type %q is not of the form AWS::Service::Resource", r.Name, r.Type)
		case !known:
			c.bad(v, "resource %s: type %q is not in the list of known CloudFormation types (deploy.ResourceTypes)", r.Name, r.Type)
		}
		if cond := v.Get("Condition"); cond != nil {
			c.condition(cond, cond.Text(), "resource "+r.Name)
		}
		for _, d := range Elements(v.Get("DependsOn")) {
			if _, ok := c.t.Resource(d.Text()); !ok {
				c.bad(d, "resource %s: DependsOn %q is no resource", r.Name, d.Text())
			}
		}
		for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
			if p := v.Get(k); p != nil && !slices.Contains([]string{"Delete", "Retain", "RetainExceptOnCreate", "Snapshot"}, p.Text()) {
				c.bad(p, "resource %s: %s %q is not a policy", r.Name, k, p.Text())
			}
		}
		c.refs(v.Get("Properties"), "resource "+r.Name, true)
	}
}

func (c *checker) outputs() {
	for _, f := range c.t.Section("Outputs").fieldsOrNil() {
		if cond := f.Value.Get("Condition"); cond != nil {
			c.condition(cond, cond.Text(), "output "+f.Key)
		}
		if f.Value.Get("Value") == nil {
			c.bad(f.Value, "output %s has no Value", f.Key)
		}
		c.refs(f.Value.Get("Value"), "output "+f.Key, true)
	}
}

// condition checks that a condition name exists and marks it used.
func (c *checker) condition(at *Value, name, where string) {
	if c.t.Section("Conditions").Get(name) == nil {
		c.bad(at, "%s: condition %q is not defined", where, name)
	}
	c.used["C:"+name] = true
}

// refs checks every intrinsic function under v. Resources may be named
// only where resources is true (not in Conditions).
func (c *checker) refs(v *Value, where string, resources bool) {
	v.Walk(func(x *Value) bool {
		fn, arg := x.Func()
		switch fn {
		case "":
			return true
		case "Ref":
			c.ref(x, arg.Text(), where, resources)
		case "Condition":
			c.condition(x, arg.Text(), where)
		case "Fn::GetAtt":
			if arg.Kind != Sequence || len(arg.Items) != 2 {
				c.bad(x, "%s: Fn::GetAtt takes [Resource, Attribute]", where)
				return true
			}
			c.getAtt(x, arg.Items[0].Text(), arg.Items[1].Text(), where, resources)
		case "Fn::Sub":
			c.sub(x, arg, where, resources)
		case "Fn::If":
			if arg.Kind != Sequence || len(arg.Items) != 3 {
				c.bad(x, "%s: Fn::If takes [Condition, IfTrue, IfFalse]", where)
				return true
			}
			c.condition(x, arg.Items[0].Text(), where)
		case "Fn::FindInMap":
			if arg.Kind != Sequence || len(arg.Items) != 3 {
				c.bad(x, "%s: Fn::FindInMap takes [Map, TopKey, SecondKey]", where)
				return true
			}
			if m := arg.Items[0]; m.Kind == Scalar && c.t.Section("Mappings").Get(m.Str) == nil {
				c.bad(x, "%s: mapping %q is not defined", where, m.Str)
			}
		case "Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Fn::Join", "Fn::Select", "Fn::Split",
			"Fn::Base64", "Fn::ImportValue", "Fn::GetAZs", "Fn::Cidr", "Fn::Length", "Fn::ToJsonString", "Fn::Transform":
		default:
			c.bad(x, "%s: unknown intrinsic function %s", where, fn)
		}
		return true
	})
}

func (c *checker) ref(at *Value, name, where string, resources bool) {
	switch {
	case slices.Contains(PseudoParameters, name):
	case c.t.Section("Parameters").Get(name) != nil:
		c.used["P:"+name] = true
	case resources && c.t.Section("Resources").Get(name) != nil:
	case c.t.Section("Resources").Get(name) != nil:
		c.bad(at, "%s: Ref %s: a condition can only refer to parameters", where, name)
	default:
		c.bad(at, "%s: Ref %q is no parameter, resource or pseudo parameter", where, name)
	}
}

func (c *checker) getAtt(at *Value, res, attr, where string, resources bool) {
	r, ok := c.t.Resource(res)
	if !ok || !resources {
		c.bad(at, "%s: Fn::GetAtt %s.%s: no resource %q", where, res, attr, res)
		return
	}
	attrs, known := ResourceTypes[r.Type]
	if known && !slices.Contains(attrs, attr) {
		c.bad(at, "%s: Fn::GetAtt %s.%s: %s has no attribute %q (it has %v)", where, res, attr, r.Type, attr, attrs)
	}
}

func (c *checker) sub(at, arg *Value, where string, resources bool) {
	var src string
	var vars *Value
	switch {
	case arg.Kind == Scalar:
		src = arg.Str
	case arg.Kind == Sequence && len(arg.Items) == 2 && arg.Items[0].Kind == Scalar && arg.Items[1].Kind == Mapping:
		src, vars = arg.Items[0].Str, arg.Items[1]
	default:
		c.bad(at, "%s: Fn::Sub takes a string or [String, {Var: Value}]", where)
		return
	}
	names, err := subVars(src)
	if err != nil {
		c.bad(at, "%s: Fn::Sub: %v", where, err)
		return
	}
	for _, name := range names {
		if vars.Get(name) != nil {
			continue
		}
		if res, attr, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "AWS::") {
			c.getAtt(at, res, attr, where+" (in Fn::Sub)", resources)
			continue
		}
		c.ref(at, name, where+" (in Fn::Sub)", resources)
	}
}

func (c *checker) unused() {
	for _, f := range c.t.Section("Parameters").fieldsOrNil() {
		if !c.used["P:"+f.Key] {
			c.bad(f.Value, "parameter %s is never used", f.Key)
		}
	}
	for _, f := range c.t.Section("Conditions").fieldsOrNil() {
		if !c.used["C:"+f.Key] {
			c.bad(f.Value, "condition %s is never used", f.Key)
		}
	}
}

func (c *checker) quoting() {
	c.t.Root.Walk(func(v *Value) bool {
		if v.Kind == Scalar && v.Plain && v.Tag == "!!str" && slices.Contains(yaml11Bools, strings.ToLower(v.Str)) {
			c.bad(v, "%q unquoted is a boolean to YAML 1.1 parsers: quote it", v.Str)
		}
		return true
	})
}

// hardCodedPartition finds an ARN written with its partition
// ("arn:aws:", "arn:aws-cn:") instead of ${AWS::Partition}.
var hardCodedPartition = regexp.MustCompile(`\barn:aws(-[a-z]+)*:`)

// proseKeys hold text for people, where an example ARN is no ARN the
// stack uses.
var proseKeys = []string{"Description", "AssertDescription", "AlarmDescription", "ConstraintDescription"}

// CheckPartitions reports every ARN the template writes with a literal
// partition: the stack must work in every partition (aws, aws-cn,
// aws-us-gov), so ARNs use ${AWS::Partition}. Descriptions are left out,
// and so is the Metadata section.
func CheckPartitions(t *Template) []Problem {
	var probs []Problem
	var walk func(v *Value, where string)
	walk = func(v *Value, where string) {
		switch v.Kind {
		case Scalar:
			if m := hardCodedPartition.FindString(v.Str); m != "" {
				probs = append(probs, Problem{Pos: t.pos(v), Msg: fmt.Sprintf(
					"%s: %q names the partition literally: write arn:${AWS::Partition}: (in a !Sub) so the stack works in every partition", where, m)})
			}
		case Mapping:
			for _, f := range v.Fields {
				if !slices.Contains(proseKeys, f.Key) {
					walk(f.Value, where)
				}
			}
		case Sequence:
			for _, it := range v.Items {
				walk(it, where)
			}
		}
	}
	for _, f := range t.Root.Fields {
		switch f.Key {
		case "Metadata", "Description":
		case "Resources", "Outputs", "Parameters":
			for _, e := range f.Value.fieldsOrNil() {
				walk(e.Value, strings.ToLower(strings.TrimSuffix(f.Key, "s"))+" "+e.Key)
			}
		default:
			walk(f.Value, f.Key)
		}
	}
	return probs
}
