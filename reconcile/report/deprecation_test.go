package report

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestDeprecationSection(t *testing.T) {
	wanted := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	base := Deprecation{Image: "ami-copy", SourceImage: "ami-src", Account: "222222222222", Region: "eu-west-1",
		Wanted: wanted, Reason: "its source's deprecation time"}
	with := func(mod func(*Deprecation)) Deprecation {
		d := base
		mod(&d)
		return d
	}
	tests := []struct {
		name, mode string
		d          Deprecation
		want       string
	}{
		{"plan sets", "plan", with(func(d *Deprecation) { d.Action = DeprecationSet }),
			"ami-copy in 222222222222/eu-west-1 (copy of ami-src): deprecation none → 2026-06-01 12:00 UTC (would set): its source's deprecation time"},
		{"plan cancels", "plan", with(func(d *Deprecation) { d.Action, d.Current, d.Wanted = DeprecationCancel, wanted, time.Time{} }),
			"deprecation 2026-06-01 12:00 UTC → none (would cancel)"},
		{"run set", "run", with(func(d *Deprecation) { d.Action, d.Set = DeprecationSet, wanted }), "(set): its source's"},
		{"run set the first minute EC2 takes", "run", with(func(d *Deprecation) {
			d.Action, d.Set = DeprecationSet, wanted.Add(72*time.Hour)
		}), "(set to 2026-06-04 12:00 UTC, the first minute EC2 takes)"},
		{"run failed", "run", with(func(d *Deprecation) { d.Action, d.Error = DeprecationFailed, "UnauthorizedOperation" }), "(not changed: UnauthorizedOperation)"},
		{"run deferred", "run", with(func(d *Deprecation) { d.Action = DeprecationDeferred }), "(deferred to the next run)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteTable(&b, &Report{Mode: tt.mode, Counts: map[Category]int{}, Deprecations: []Deprecation{tt.d}}, Options{}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), "\nDeprecation:\n") || !strings.Contains(b.String(), tt.want) {
				t.Fatalf("table:\n%s\nwant %q", b.String(), tt.want)
			}
		})
	}
}

// The table and Markdown list at most maxDeprecationLines changes and
// count the rest; the JSON lists every one.
func TestDeprecationSectionIsBounded(t *testing.T) {
	r := &Report{Mode: "plan", Counts: map[Category]int{}}
	for range 25 {
		r.Deprecations = append(r.Deprecations, Deprecation{Image: "ami-copy", Action: DeprecationSet})
	}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, r, Options{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "- ami-copy"); n != maxDeprecationLines || !strings.Contains(b.String(), "and 5 more") {
		t.Fatalf("%d lines:\n%s", n, b.String())
	}
}
