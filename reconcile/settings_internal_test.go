package reconcile

import (
	"testing"
	"text/template"
	"time"
)

// testSettings are the engine's settings as the configuration's defaults
// give them, for source in regions (internal tests cannot import
// internal/config, which imports the engine).
func testSettings(t testing.TB, source string, regions ...string) Settings {
	t.Helper()
	if len(regions) == 0 {
		regions = []string{"eu-west-1"}
	}
	parse := func(name, text string) *template.Template {
		tmpl, err := template.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		return tmpl
	}
	return Settings{
		SourceAccount: source,
		SourceRegions: regions,
		TargetTagKey:  "amicopier:targets",
		Copy: CopySettings{
			Name:              parse("name", "{{.Name}}-encrypted-{{.ID}}"),
			Description:       parse("description", "Encrypted copy of {{.ID}} ({{.Name}}) from {{.Region}}"),
			EncryptedTagValue: "true",
		},
		Pairs:          PairPolicy{MaxAttempts: 3, RetryBackoff: time.Hour},
		Prune:          PrunePolicy{Grace: 7 * 24 * time.Hour},
		Concurrency:    16,
		InFlightCopies: 20,
		DeadlineMargin: time.Minute,
		LeaseTTL:       10 * time.Minute,
		RunRetention:   90 * 24 * time.Hour,
	}
}
