package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary documents to Parse, ParseWithEnv and
// Validate: they must never panic, every error must say something, and
// every line it names must be in the document. The seed corpus is in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Fuzz(func(t *testing.T, data []byte) {
		// YAML breaks lines at CR LF, LF and a lone CR alike (yaml.v3
		// counts them so, and so do editors that show old Mac files).
		lines := bytes.Count(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\n")) + bytes.Count(bytes.ReplaceAll(data, []byte("\r\n"), nil), []byte("\r")) + 1
		if _, err := ParseWithEnv(data, "fuzz.yaml", func(string) string { return "" }); err != nil {
			checkErrorText(t, err, lines)
		}
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config with an error: %v", err)
			}
			checkErrorText(t, err, lines)
			return
		}
		if err := c.Validate(); err != nil {
			checkErrorText(t, err, lines)
		}
		// The helpers must cope with whatever Parse accepted.
		_ = c.TargetRoleARN("111111111111")
		_ = c.Copy.KeepTag("Recipe")
		if name, _, err := c.Copy.Templates(); err == nil {
			_, _ = render(name, sampleCopyNameData())
		}
	})
}

func checkErrorText(t *testing.T, err error, lines int) {
	t.Helper()
	if strings.TrimSpace(err.Error()) == "" {
		t.Fatalf("empty error message (%T)", err)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return
	}
	if len(ve.Errors) == 0 {
		t.Fatal("ValidationError without errors")
	}
	for _, fe := range ve.Errors {
		if strings.TrimSpace(fe.Message) == "" {
			t.Fatalf("empty message for %q at line %d", fe.Path, fe.Line)
		}
		if fe.Line < 0 || fe.Line > lines {
			t.Fatalf("line %d of a document of %d lines: %s", fe.Line, lines, fe.format("fuzz.yaml"))
		}
	}
}
