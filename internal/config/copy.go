package config

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"text/template"
)

// Templates parses the name and description templates once, with
// missingkey=error so that a template naming a tag the image lacks fails
// loudly instead of producing "<no value>" in an AMI name. Execute them
// with a CopyNameData. A template that should tolerate a missing tag can
// use {{index .Tags "Key"}}, which gives "" instead.
func (c Copy) Templates() (name, description *template.Template, err error) {
	name, err = parseTemplate("copy.name_template", c.NameTemplate)
	if err != nil {
		return nil, nil, err
	}
	description, err = parseTemplate("copy.description_template", c.DescriptionTemplate)
	if err != nil {
		return nil, nil, err
	}
	return name, description, nil
}

func parseTemplate(name, text string) (*template.Template, error) {
	t, err := newTemplate(name, text)
	if err != nil {
		return nil, fmt.Errorf("parse %s %q: %w", name, text, err)
	}
	return t, nil
}

func newTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Parse(text)
}

// maxRendered bounds a rendered template: far above the 128 and 255
// character limits, low enough that a runaway template stops early.
const maxRendered = 4096

// errTooLong stops a template whose output exceeds maxRendered.
var errTooLong = errors.New("renders to more than 4096 characters")

// cappedWriter fails once more than maxRendered bytes were written.
type cappedWriter struct{ b strings.Builder }

func (w *cappedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > maxRendered {
		return 0, errTooLong
	}
	return w.b.Write(p)
}

// render executes t over data into a string.
func render(t *template.Template, data CopyNameData) (string, error) {
	var w cappedWriter
	if err := t.Execute(&w, data); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

// KeepTag reports whether a source tag with this key is copied to the
// copies: never a key starting with "aws:" (AWS reserves them and rejects
// them in TagSpecifications), never one matching an exclude_tags glob,
// and, when include_tags is set, only one matching an include glob.
// Malformed globs match nothing (Validate rejects them).
func (c Copy) KeepTag(key string) bool {
	if len(key) >= 4 && strings.EqualFold(key[:4], "aws:") {
		return false
	}
	if matchAny(c.ExcludeTags, key) {
		return false
	}
	return len(c.IncludeTags) == 0 || matchAny(c.IncludeTags, key)
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, err := path.Match(p, s); err == nil && ok {
			return true
		}
	}
	return false
}

// sampleCopyNameData is what Validate renders the templates with. The
// name is short on purpose: the engine sanitises and truncates long
// source names, so only the template's own text is judged here. The tags
// are those AMIgo sets.
func sampleCopyNameData() CopyNameData {
	return CopyNameData{
		Name:         "ubuntu-jammy",
		ID:           "ami-0123456789abcdef0",
		Region:       "eu-west-1",
		Account:      "222222222222",
		TargetRegion: "eu-central-1",
		Tags: map[string]string{
			"Name":        "ubuntu-jammy",
			"Recipe":      "ubuntu-jammy",
			"BuildNumber": "42",
			"AmigoStage":  "PROD",
			"BuiltBy":     "amigo",
			"SourceAMI":   "ami-0fedcba9876543210",
		},
	}
}
