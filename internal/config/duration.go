package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

const day = 24 * time.Hour

// ParseDuration reads a duration as config.yaml writes it: a Go duration
// ("90s", "15m", "1h30m", "0") optionally preceded by whole days ("7d",
// "1d12h"). Negative durations are rejected: every duration in the
// configuration is a length of time or a limit.
func ParseDuration(s string) (Duration, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return 0, fmt.Errorf("invalid duration %q: empty; use for example 90s, 15m, 1h30m or 7d", s)
	}
	if strings.HasPrefix(text, "-") {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	var days time.Duration
	if i := strings.IndexByte(text, 'd'); i >= 0 {
		n, err := strconv.ParseUint(text[:i], 10, 64)
		if err != nil || strings.HasPrefix(text[:i], "+") {
			return 0, fmt.Errorf("invalid duration %q: days must be a whole number, as in 7d or 1d12h", s)
		}
		if n > uint64(math.MaxInt64/int64(day)) {
			return 0, fmt.Errorf("invalid duration %q: too long", s)
		}
		days = time.Duration(n) * day
		text = text[i+1:]
		if text == "" {
			return Duration(days), nil
		}
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use a number with a unit, such as 90s, 15m, 1h30m or 7d", s)
	}
	if d < 0 || strings.HasPrefix(text, "-") {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	if d > math.MaxInt64-days {
		return 0, fmt.Errorf("invalid duration %q: too long", s)
	}
	return Duration(days + d), nil
}

// UnmarshalYAML accepts the forms ParseDuration does.
func (d *Duration) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as 90s, 15m, 1h30m or 7d, got %s", describeNode(value))
	}
	parsed, err := ParseDuration(value.Value)
	if err != nil {
		return err
	}
	*d = parsed
	return nil
}

// MarshalYAML writes the duration so that UnmarshalYAML reads it back.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String prints whole days as "7d" and anything else as a Go duration.
func (d Duration) String() string {
	if d > 0 && time.Duration(d)%day == 0 {
		return strconv.FormatInt(int64(time.Duration(d)/day), 10) + "d"
	}
	return time.Duration(d).String()
}
