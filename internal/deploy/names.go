package deploy

import (
	"errors"
	"fmt"
	"math"
	"regexp/syntax"
	"strconv"
	"strings"
)

// NameLimit is the longest value AWS accepts for a name property of a
// resource type.
type NameLimit struct {
	// Property is the property's name; "Policies[].PolicyName" is the
	// PolicyName of every element of the list Policies.
	Property string
	// Max is the limit in characters.
	Max int
	// Source is where the limit is documented.
	Source string
}

// NameLimits are the name properties of the resource types the templates
// use, with the length AWS allows (the CloudFormation resource reference
// and the service's API reference). A name a template derives from a
// parameter (`${FunctionName}-nightly`) must fit for the longest value the
// parameter accepts: CheckNames computes that bound.
var NameLimits = map[string][]NameLimit{
	"AWS::CloudWatch::Alarm": {{"AlarmName", 255,
		"CloudWatch API Reference, PutMetricAlarm: AlarmName, maximum length of 255"}},
	"AWS::DynamoDB::Table": {{"TableName", 255,
		"DynamoDB API Reference, CreateTable: TableName, 3 to 255 characters"}},
	"AWS::Events::EventBusPolicy": {{"StatementId", 64,
		"EventBridge API Reference, PutPermission: StatementId, 1 to 64 characters of [a-zA-Z0-9-_]"}},
	"AWS::Events::Rule": {{"Name", 64,
		"EventBridge API Reference, PutRule: Name, 1 to 64 characters"}},
	"AWS::IAM::Role": {
		{"RoleName", 64, "IAM API Reference, CreateRole: RoleName, 1 to 64 characters"},
		{"Policies[].PolicyName", 128, "IAM API Reference, PutRolePolicy: PolicyName, 1 to 128 characters"},
	},
	"AWS::IAM::RolePolicy": {{"PolicyName", 128,
		"IAM API Reference, PutRolePolicy: PolicyName, 1 to 128 characters"}},
	"AWS::KMS::Alias": {{"AliasName", 256,
		"KMS API Reference, CreateAlias: AliasName, 1 to 256 characters, alias/ included"}},
	"AWS::Lambda::Function": {{"FunctionName", 64,
		"Lambda API Reference, CreateFunction: a function name alone is limited to 64 characters"}},
	"AWS::Logs::LogGroup": {{"LogGroupName", 512,
		"CloudWatch Logs API Reference, CreateLogGroup: logGroupName, 1 to 512 characters"}},
	"AWS::Scheduler::Schedule": {{"Name", 64,
		"EventBridge Scheduler API Reference, CreateSchedule: Name, 1 to 64 characters of [0-9a-zA-Z-_.]"}},
	"AWS::SNS::Topic": {{"TopicName", 256,
		"SNS API Reference, CreateTopic: Name, up to 256 characters"}},
	"AWS::SQS::Queue": {{"QueueName", 80,
		"SQS API Reference, CreateQueue: QueueName, up to 80 characters"}},
	"AWS::StepFunctions::StateMachine": {{"StateMachineName", 80,
		"Step Functions API Reference, CreateStateMachine: name, 1 to 80 characters"}},
}

// pseudoParameterMax bounds the values of the pseudo parameters a name may
// contain. Region codes are at most 14 characters today (ap-southeast-7,
// us-isob-east-1); 20 leaves room for new ones. Partitions: aws-iso-b is
// the longest; 16 leaves room. Stack names: CloudFormation CreateStack,
// 128 characters.
var pseudoParameterMax = map[string]int{
	"AWS::AccountId": 12,
	"AWS::Region":    20,
	"AWS::Partition": 16,
	"AWS::StackName": 128,
	"AWS::URLSuffix": 16,
}

// errUnbounded says a value's length cannot be bounded from the template.
var errUnbounded = errors.New("no bound on its length")

// CheckNames reports every name property (NameLimits) whose longest
// possible value exceeds its limit, or whose length the template does not
// bound: a parameter without MaxLength, a bounded AllowedPattern or
// AllowedValues, or a value computed from a resource's attributes.
func CheckNames(t *Template) []Problem {
	var probs []Problem
	for _, r := range t.Resources() {
		for _, lim := range NameLimits[r.Type] {
			for _, v := range propertyValues(r.Properties(), lim.Property) {
				n, err := t.MaxLength(v)
				switch {
				case err != nil:
					probs = append(probs, Problem{Pos: t.pos(v), Msg: fmt.Sprintf(
						"resource %s: %s %s: %v; AWS allows %d characters (%s)",
						r.Name, lim.Property, RenderValue(v), err, lim.Max, lim.Source)})
				case n > lim.Max:
					probs = append(probs, Problem{Pos: t.pos(v), Msg: fmt.Sprintf(
						"resource %s: %s %s can be %d characters long; AWS allows %d (%s): constrain the parameters it is made of",
						r.Name, lim.Property, RenderValue(v), n, lim.Max, lim.Source)})
				}
			}
		}
	}
	return probs
}

// propertyValues returns the values at a property path of NameLimit's
// form, every branch of an !If included.
func propertyValues(props *Value, path string) []*Value {
	list, field, nested := strings.Cut(path, "[].")
	if !nested {
		return Branches(props.Get(path))
	}
	var out []*Value
	for _, e := range Elements(props.Get(list)) {
		out = append(out, Branches(e.Get(field))...)
	}
	return out
}

// MaxLength returns the longest value v can take in characters: literals
// count themselves, !Ref a parameter its longest accepted value, !Sub its
// literal text plus the longest value of each variable, !If its longest
// branch. Anything else, and any parameter the template does not bound,
// is an error.
func (t *Template) MaxLength(v *Value) (int, error) {
	if v == nil {
		return 0, nil
	}
	if v.Kind == Scalar {
		return len([]rune(v.Str)), nil
	}
	fn, arg := v.Func()
	switch fn {
	case "Ref":
		return t.refMaxLength(arg.Text())
	case "Fn::If":
		longest := 0
		for _, b := range Branches(v) {
			n, err := t.MaxLength(b)
			if err != nil {
				return 0, err
			}
			longest = max(longest, n)
		}
		return longest, nil
	case "Fn::Sub":
		src, vars := arg.Text(), (*Value)(nil)
		if arg.Kind == Sequence && len(arg.Items) == 2 {
			src, vars = arg.Items[0].Text(), arg.Items[1]
		}
		return t.subMaxLength(src, vars)
	}
	return 0, fmt.Errorf("%s: %w", RenderValue(v), errUnbounded)
}

// subMaxLength bounds a Fn::Sub string: its literal text plus the longest
// value of every variable (${!Literal} stands for ${Literal}).
func (t *Template) subMaxLength(s string, vars *Value) (int, error) {
	total := 0
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return total + len([]rune(s)), nil
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return 0, fmt.Errorf("unterminated ${ in %q", s)
		}
		total += len([]rune(s[:i]))
		name := s[i+2 : i+end]
		s = s[i+end+1:]
		if lit, ok := strings.CutPrefix(name, "!"); ok {
			total += len([]rune(lit)) + 3
			continue
		}
		var n int
		var err error
		if v := vars.Get(name); v != nil {
			n, err = t.MaxLength(v)
		} else if strings.Contains(name, ".") && !strings.HasPrefix(name, "AWS::") {
			err = fmt.Errorf("${%s}, an attribute of a resource: %w", name, errUnbounded)
		} else {
			n, err = t.refMaxLength(name)
		}
		if err != nil {
			return 0, err
		}
		total += n
	}
}

// refMaxLength bounds what !Ref name can be: a parameter's longest
// accepted value, or a pseudo parameter's.
func (t *Template) refMaxLength(name string) (int, error) {
	if n, ok := pseudoParameterMax[name]; ok {
		return n, nil
	}
	p := t.Section("Parameters").Get(name)
	if p == nil {
		return 0, fmt.Errorf("${%s}, which is no parameter: %w", name, errUnbounded)
	}
	n, err := ParameterMaxLength(p)
	if err != nil {
		return 0, fmt.Errorf("parameter %s: %w", name, err)
	}
	return n, nil
}

// ParameterMaxLength is the longest value a String parameter accepts: the
// least of its MaxLength, the longest of its AllowedValues, and the longest
// string its AllowedPattern matches when that is finite.
func ParameterMaxLength(p *Value) (int, error) {
	limit := math.MaxInt
	if m := p.Get("MaxLength"); m != nil {
		n, err := strconv.Atoi(m.Text())
		if err != nil {
			return 0, fmt.Errorf("MaxLength %q is not a number", m.Text())
		}
		limit = min(limit, n)
	}
	if av := p.Get("AllowedValues"); av != nil {
		longest := 0
		for _, s := range av.Strings() {
			longest = max(longest, len([]rune(s)))
		}
		limit = min(limit, longest)
	}
	if pat := p.Get("AllowedPattern").Text(); pat != "" {
		re, err := syntax.Parse(pat, syntax.Perl)
		if err != nil {
			return 0, fmt.Errorf("AllowedPattern does not compile: %v", err)
		}
		if n, ok := regexpMaxLength(re); ok {
			limit = min(limit, n)
		}
	}
	if limit == math.MaxInt {
		return 0, fmt.Errorf("no MaxLength, bounded AllowedPattern or AllowedValues: %w", errUnbounded)
	}
	return limit, nil
}

// regexpMaxLength is the longest string (in characters) re matches, and
// whether that is finite. CloudFormation matches AllowedPattern against
// the whole value, so anchors do not matter.
func regexpMaxLength(re *syntax.Regexp) (int, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpNoMatch:
		return 0, true
	case syntax.OpLiteral:
		return len(re.Rune), true
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1, true
	case syntax.OpCapture:
		return regexpMaxLength(re.Sub[0])
	case syntax.OpQuest:
		return regexpMaxLength(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus:
		return 0, false
	case syntax.OpRepeat:
		if re.Max < 0 {
			return 0, false
		}
		n, ok := regexpMaxLength(re.Sub[0])
		return n * re.Max, ok
	case syntax.OpConcat:
		total := 0
		for _, s := range re.Sub {
			n, ok := regexpMaxLength(s)
			if !ok {
				return 0, false
			}
			total += n
		}
		return total, true
	case syntax.OpAlternate:
		longest := 0
		for _, s := range re.Sub {
			n, ok := regexpMaxLength(s)
			if !ok {
				return 0, false
			}
			longest = max(longest, n)
		}
		return longest, true
	}
	return 0, false
}
