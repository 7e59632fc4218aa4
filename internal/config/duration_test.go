package config

import (
	"math"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"0":        0,
		"90s":      90 * time.Second,
		"15m":      15 * time.Minute,
		"1h30m":    90 * time.Minute,
		"7d":       7 * day,
		"0d":       0,
		"1d12h":    36 * time.Hour,
		" 2h ":     2 * time.Hour,
		"1.5h":     90 * time.Minute,
		"500ms":    500 * time.Millisecond,
		"106751d":  106751 * day,
		"+5m":      5 * time.Minute,
		"1d0s":     day,
		"2562047h": 2562047 * time.Hour,
	}
	for in, want := range good {
		got, err := ParseDuration(in)
		if err != nil || got.D() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got.D(), err, want)
		}
	}
	bad := map[string]string{
		"":           "empty",
		"-1m":        "must not be negative",
		"-7d":        "must not be negative",
		"1d-5h":      "must not be negative",
		"3600":       "use a number with a unit",
		"soon":       "use a number with a unit",
		"d":          "whole number",
		"1.5d":       "whole number",
		"+1d":        "whole number",
		"7days":      "use a number with a unit",
		"106752d":    "too long",
		"106751d24h": "too long",
		"1y":         "use a number with a unit",
	}
	for in, want := range bad {
		_, err := ParseDuration(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"`+in+`"`) {
			t.Errorf("ParseDuration(%q) = %v; want an error naming the value and saying %q", in, err, want)
		}
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[Duration]string{
		0:                          "0s",
		Duration(7 * day):          "7d",
		Duration(36 * time.Hour):   "36h0m0s",
		Duration(90 * time.Second): "1m30s",
		Duration(-day):             "-24h0m0s",
	} {
		if got := d.String(); got != want {
			t.Errorf("%d: got %q, want %q", int64(d), got, want)
		}
	}
}

func TestDurationYAMLRoundTrip(t *testing.T) {
	type doc struct {
		D Duration `yaml:"d"`
	}
	for _, d := range []Duration{0, Duration(time.Second), Duration(7 * day), Duration(36 * time.Hour), Duration(math.MaxInt64)} {
		out, err := yaml.Marshal(doc{D: d})
		if err != nil {
			t.Fatal(err)
		}
		var back doc
		if err := yaml.Unmarshal(out, &back); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if back.D != d {
			t.Errorf("%v -> %s -> %v", d, out, back.D)
		}
	}
	var back doc
	if err := yaml.Unmarshal([]byte("d: [1]\n"), &back); err == nil {
		t.Error("a list was accepted as a duration")
	}
}
