package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Kind says what a Value holds.
type Kind int

// Kinds of Value.
const (
	Scalar Kind = iota
	Mapping
	Sequence
)

// Value is one node of a template, with the short-form intrinsic functions
// already rewritten to their long form: `!Ref X` is the mapping {Ref: X},
// `!GetAtt A.B` is {Fn::GetAtt: [A, B]}, `!Condition C` is {Condition: C}
// and every other `!Fn` is {Fn::Fn: ...}. Checks therefore see one form.
type Value struct {
	Kind Kind
	// Line is the line in the template file, for messages.
	Line int
	// Str is a scalar's text; Tag its YAML tag (!!str, !!int, !!bool...).
	Str string
	Tag string
	// Plain is true for an unquoted scalar.
	Plain bool
	// Fields of a mapping, in file order.
	Fields []Field
	// Items of a sequence.
	Items []*Value
}

// Field is one key of a mapping.
type Field struct {
	Key   string
	Value *Value
}

// Get returns the value of key in a mapping, or nil.
func (v *Value) Get(key string) *Value {
	if v == nil || v.Kind != Mapping {
		return nil
	}
	for _, f := range v.Fields {
		if f.Key == key {
			return f.Value
		}
	}
	return nil
}

// Path follows keys through nested mappings; nil when one is missing.
func (v *Value) Path(keys ...string) *Value {
	for _, k := range keys {
		v = v.Get(k)
	}
	return v
}

// Text returns a scalar's text, or "" for anything else.
func (v *Value) Text() string {
	if v == nil || v.Kind != Scalar {
		return ""
	}
	return v.Str
}

// Func returns the intrinsic function a value is ("Ref", "Fn::Sub",
// "Condition"...) and its argument, or "" when it is not one: a mapping of
// exactly one key that names a function.
func (v *Value) Func() (string, *Value) {
	if v == nil || v.Kind != Mapping || len(v.Fields) != 1 {
		return "", nil
	}
	k := v.Fields[0].Key
	if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
		return k, v.Fields[0].Value
	}
	return "", nil
}

// Walk calls fn for v and every value under it, depth first; fn returning
// false skips what is under that value.
func (v *Value) Walk(fn func(*Value) bool) {
	if v == nil || !fn(v) {
		return
	}
	for _, f := range v.Fields {
		f.Value.Walk(fn)
	}
	for _, it := range v.Items {
		it.Walk(fn)
	}
}

// Strings returns the literal strings of a value that is a string or a
// list of strings; intrinsic functions inside yield nothing (see Branches
// for !If).
func (v *Value) Strings() []string {
	switch {
	case v == nil:
		return nil
	case v.Kind == Scalar:
		return []string{v.Str}
	case v.Kind == Sequence:
		var out []string
		for _, it := range v.Items {
			if it.Kind == Scalar {
				out = append(out, it.Str)
			}
		}
		return out
	}
	return nil
}

// Template is a parsed CloudFormation template.
type Template struct {
	// Name is the file name, for messages.
	Name string
	Root *Value
}

// Resource is one entry of the Resources section.
type Resource struct {
	Name  string
	Type  string
	Value *Value
}

// Properties returns the resource's Properties (nil when it has none).
func (r Resource) Properties() *Value { return r.Value.Get("Properties") }

// Condition returns the name of the resource's condition, if any.
func (r Resource) Condition() string { return r.Value.Get("Condition").Text() }

// ParseTemplateFile reads and parses a template file.
func ParseTemplateFile(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseTemplate(filepath.Base(path), data)
}

// ParseTemplate parses a CloudFormation template in YAML (JSON is YAML
// too), understanding the short-form tags of the intrinsic functions.
func ParseTemplate(name string, data []byte) (*Template, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("%s:%d: a template is one YAML document", name, extra.Line)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%s: empty template", name)
	}
	root, err := convert(doc.Content[0])
	if err != nil {
		return nil, fmt.Errorf("%s:%w", name, err)
	}
	if root.Kind != Mapping {
		return nil, fmt.Errorf("%s:%d: a template is a mapping", name, root.Line)
	}
	return &Template{Name: name, Root: root}, nil
}

// shortForms maps the YAML tags CloudFormation accepts to their long
// names.
var shortForms = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr", "!FindInMap": "Fn::FindInMap",
	"!GetAtt": "Fn::GetAtt", "!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue",
	"!Join": "Fn::Join", "!Select": "Fn::Select", "!Split": "Fn::Split", "!Sub": "Fn::Sub",
	"!Transform": "Fn::Transform", "!And": "Fn::And", "!Equals": "Fn::Equals",
	"!If": "Fn::If", "!Not": "Fn::Not", "!Or": "Fn::Or",
	"!Length": "Fn::Length", "!ToJsonString": "Fn::ToJsonString",
}

// convert turns a yaml node into a Value, rewriting short forms.
func convert(n *yaml.Node) (*Value, error) {
	var v *Value
	switch n.Kind {
	case yaml.ScalarNode:
		tag := n.Tag
		if _, short := shortForms[tag]; short {
			tag = "!!str"
		}
		v = &Value{Kind: Scalar, Line: n.Line, Str: n.Value, Tag: tag, Plain: n.Style == 0}
	case yaml.MappingNode:
		v = &Value{Kind: Mapping, Line: n.Line}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%d: mapping keys must be plain strings", k.Line)
			}
			if k.Value == "<<" {
				return nil, fmt.Errorf("%d: YAML merge keys are not CloudFormation", k.Line)
			}
			if v.Get(k.Value) != nil {
				return nil, fmt.Errorf("%d: key %q appears twice in one mapping", k.Line, k.Value)
			}
			cv, err := convert(val)
			if err != nil {
				return nil, err
			}
			v.Fields = append(v.Fields, Field{Key: k.Value, Value: cv})
		}
	case yaml.SequenceNode:
		v = &Value{Kind: Sequence, Line: n.Line}
		for _, c := range n.Content {
			cv, err := convert(c)
			if err != nil {
				return nil, err
			}
			v.Items = append(v.Items, cv)
		}
	case yaml.AliasNode:
		return nil, fmt.Errorf("%d: YAML aliases (*%s) are not CloudFormation", n.Line, n.Value)
	default:
		return nil, fmt.Errorf("%d: unexpected YAML node", n.Line)
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return v, nil
	}
	long, ok := shortForms[n.Tag]
	if !ok {
		return nil, fmt.Errorf("%d: unknown tag %s (not a CloudFormation intrinsic function)", n.Line, n.Tag)
	}
	if long == "Fn::GetAtt" && v.Kind == Scalar {
		res, attr, ok := strings.Cut(v.Str, ".")
		if !ok {
			return nil, fmt.Errorf("%d: !GetAtt %s: want Resource.Attribute", n.Line, v.Str)
		}
		v = &Value{Kind: Sequence, Line: n.Line, Items: []*Value{
			{Kind: Scalar, Line: n.Line, Str: res, Tag: "!!str"},
			{Kind: Scalar, Line: n.Line, Str: attr, Tag: "!!str"},
		}}
	}
	return &Value{Kind: Mapping, Line: n.Line, Fields: []Field{{Key: long, Value: v}}}, nil
}

// Section returns a top-level section (Parameters, Resources...).
func (t *Template) Section(name string) *Value { return t.Root.Get(name) }

// Resources lists the resources in file order.
func (t *Template) Resources() []Resource {
	var out []Resource
	for _, f := range t.Section("Resources").fieldsOrNil() {
		out = append(out, Resource{Name: f.Key, Type: f.Value.Get("Type").Text(), Value: f.Value})
	}
	return out
}

// Resource returns the named resource.
func (t *Template) Resource(name string) (Resource, bool) {
	v := t.Section("Resources").Get(name)
	if v == nil {
		return Resource{}, false
	}
	return Resource{Name: name, Type: v.Get("Type").Text(), Value: v}, true
}

// ResourcesOfType lists the resources of one type.
func (t *Template) ResourcesOfType(typ string) []Resource {
	var out []Resource
	for _, r := range t.Resources() {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// ParameterDefault returns a parameter's Default, and whether it has one.
func (t *Template) ParameterDefault(name string) (string, bool) {
	d := t.Section("Parameters").Path(name, "Default")
	if d == nil {
		return "", false
	}
	return d.Str, true
}

// names returns the keys of a top-level section.
func (t *Template) names(section string) []string {
	var out []string
	for _, f := range t.Section(section).fieldsOrNil() {
		out = append(out, f.Key)
	}
	return out
}

func (v *Value) fieldsOrNil() []Field {
	if v == nil || v.Kind != Mapping {
		return nil
	}
	return v.Fields
}

// pos formats a position for messages.
func (t *Template) pos(v *Value) string {
	if v == nil {
		return t.Name
	}
	return t.Name + ":" + strconv.Itoa(v.Line)
}

// Branches returns the values v may take once the template's !If are
// decided: v itself when it is no !If, else the branches of every !If
// (recursively), leaving out AWS::NoValue. Lists are not expanded.
func Branches(v *Value) []*Value {
	fn, arg := v.Func()
	if fn == "Fn::If" && arg != nil && arg.Kind == Sequence && len(arg.Items) == 3 {
		return append(Branches(arg.Items[1]), Branches(arg.Items[2])...)
	}
	if fn == "Ref" && arg.Text() == "AWS::NoValue" {
		return nil
	}
	if v == nil {
		return nil
	}
	return []*Value{v}
}

// Elements returns the elements of a list value, expanding !If branches
// at the list and element level; a scalar is a list of one.
func Elements(v *Value) []*Value {
	var out []*Value
	for _, b := range Branches(v) {
		if b.Kind != Sequence {
			out = append(out, b)
			continue
		}
		for _, it := range b.Items {
			out = append(out, Branches(it)...)
		}
	}
	return out
}

// subVars returns the ${...} variables of a Fn::Sub string, without the
// ${!Literal} escapes.
func subVars(s string) ([]string, error) {
	var vars []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return vars, nil
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unterminated ${ in %q", s)
		}
		name := s[i+2 : i+end]
		s = s[i+end+1:]
		if strings.HasPrefix(name, "!") {
			continue
		}
		if name == "" {
			return nil, errors.New("empty ${} in Fn::Sub")
		}
		vars = append(vars, name)
	}
}

// SubstitutePlaceholders replaces every ${Var} of a Fn::Sub string with
// a placeholder naming it ("Var"), and ${!Literal} with ${Literal}: a JSON
// document written with !Sub can then be parsed.
func SubstitutePlaceholders(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		name := s[i+2 : i+end]
		if lit, ok := strings.CutPrefix(name, "!"); ok {
			b.WriteString("${" + lit + "}")
		} else {
			b.WriteString(strings.ReplaceAll(name, "::", "-"))
		}
		s = s[i+end+1:]
	}
}
