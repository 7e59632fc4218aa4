package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary documents to Parse and Validate: they must
// never panic, and every error must say something. The seed corpus is in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config with an error: %v", err)
			}
			checkErrorText(t, err)
			return
		}
		if err := c.Validate(); err != nil {
			checkErrorText(t, err)
		}
		// The helpers must cope with whatever Parse accepted.
		_ = c.KMSKeyFor("111111111111", "eu-west-1")
		_ = c.TargetRoleARN("111111111111")
		_ = c.Copy.KeepTag("Recipe")
		if name, _, err := c.Copy.Templates(); err == nil {
			_, _ = render(name, sampleCopyNameData())
		}
	})
}

func checkErrorText(t *testing.T, err error) {
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
	}
}
