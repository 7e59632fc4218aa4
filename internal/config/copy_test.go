package config

import (
	"strings"
	"testing"
	"text/template"
)

func TestKeepTag(t *testing.T) {
	cases := []struct {
		name             string
		include, exclude []string
		key              string
		want             bool
	}{
		{"plain", nil, nil, "Recipe", true},
		{"aws prefix", nil, nil, "aws:cloudformation:stack-id", false},
		{"aws prefix any case", nil, nil, "AWS:Foo", false},
		{"aws prefix even when included", []string{"*"}, nil, "aws:x", false},
		{"aws-like but not prefix", nil, nil, "awsx", true},
		{"short key", nil, nil, "aw", true},
		{"excluded", nil, []string{"Owner*"}, "OwnerEmail", false},
		{"not excluded", nil, []string{"Owner*"}, "Recipe", true},
		{"exclude beats include", []string{"*"}, []string{"Secret"}, "Secret", false},
		{"included", []string{"Recipe", "Build*"}, nil, "BuildNumber", true},
		{"not included", []string{"Recipe", "Build*"}, nil, "Name", false},
		{"bad glob matches nothing", []string{"["}, []string{"["}, "[", false},
		{"glob is case-sensitive", nil, []string{"owner"}, "Owner", true},
	}
	for _, tc := range cases {
		c := Copy{IncludeTags: tc.include, ExcludeTags: tc.exclude}
		if got := c.KeepTag(tc.key); got != tc.want {
			t.Errorf("%s: KeepTag(%q) = %v, want %v", tc.name, tc.key, got, tc.want)
		}
	}
}

func TestTemplates(t *testing.T) {
	data := CopyNameData{Name: "ubuntu", ID: "ami-0123456789abcdef0", Region: "eu-west-1", Account: "222222222222", TargetRegion: "us-east-1", Tags: map[string]string{"Recipe": "r"}}
	name, desc, err := Default().Copy.Templates()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		got  string
		want string
	}{
		{execute(t, name, data), "ubuntu-encrypted-ami-0123456789abcdef0"},
		{execute(t, desc, data), "Encrypted copy of ami-0123456789abcdef0 (ubuntu) from eu-west-1"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}

	c := Copy{NameTemplate: "{{.Tags.Team}}-{{.ID}}", DescriptionTemplate: `{{index .Tags "Team"}}`}
	name, desc, err = c.Templates()
	if err != nil {
		t.Fatal(err)
	}
	if err := name.Execute(&strings.Builder{}, data); err == nil || !strings.Contains(err.Error(), `no entry for key "Team"`) {
		t.Errorf("missing tag: got %v, want missingkey=error", err)
	}
	if got := execute(t, desc, data); got != "" {
		t.Errorf("index of a missing tag: got %q", got)
	}

	for _, c := range []Copy{
		{NameTemplate: "{{.ID", DescriptionTemplate: "x"},
		{NameTemplate: "{{.ID}}", DescriptionTemplate: "{{if}}"},
	} {
		_, _, err := c.Templates()
		if err == nil || !strings.Contains(err.Error(), "copy.") {
			t.Errorf("%+v: got %v, want an error naming the template", c, err)
		}
	}
}

func TestRenderIsCapped(t *testing.T) {
	tpl, err := newTemplate("t", `{{range 100000}}xxxxxxxxxx{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := render(tpl, sampleCopyNameData()); err == nil || !strings.Contains(err.Error(), "more than 4096") {
		t.Errorf("got %v", err)
	}
}

func TestIsAMIName(t *testing.T) {
	for s, want := range map[string]bool{
		"abc":                       true,
		"ab":                        false,
		strings.Repeat("a", 128):    true,
		strings.Repeat("a", 129):    false,
		"ubuntu (jammy) [x] ./-'@_": true,
		"a:b":                       false,
		"a,b":                       false,
		"é-ami":                     false,
	} {
		if got := IsAMIName(s); got != want {
			t.Errorf("IsAMIName(%q) = %v, want %v", s, got, want)
		}
	}
}

func execute(t *testing.T, tpl *template.Template, data CopyNameData) string {
	t.Helper()
	var b strings.Builder
	if err := tpl.Execute(&b, data); err != nil {
		t.Fatalf("execute %s: %v", tpl.Name(), err)
	}
	return b.String()
}
