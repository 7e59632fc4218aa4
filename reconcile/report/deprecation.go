package report

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Deprecation actions (Deprecation.Action).
const (
	// DeprecationSet: EnableImageDeprecation with Wanted (or, when
	// Wanted has passed, the first minute EC2 takes).
	DeprecationSet = "set_deprecation"
	// DeprecationCancel: DisableImageDeprecation.
	DeprecationCancel = "cancel_deprecation"
	// DeprecationFailed and DeprecationDeferred: what a run reports when
	// the call failed, or was not made (the time budget, the run stopped).
	DeprecationFailed   = "deprecation_failed"
	DeprecationDeferred = "deferred"
)

// Deprecation is one copy amicopier made whose deprecation time differs
// from the one it should have: its source's, or copy.deprecate_after's
// when that is earlier.
type Deprecation struct {
	// Image is the copy; SourceImage the AMI it was copied from.
	Image       string `json:"image"`
	SourceImage string `json:"source_image"`
	Account     string `json:"account"`
	Region      string `json:"region"`
	// Current is the copy's deprecation time (absent: none), Wanted the
	// one it should have (absent: none).
	Current time.Time `json:"current,omitzero"`
	Wanted  time.Time `json:"wanted,omitzero"`
	// Action is what run does (plan) or did (run): DeprecationSet,
	// DeprecationCancel, DeprecationFailed or DeprecationDeferred; Set
	// is the time run sent (it differs from Wanted when that has passed).
	Action string    `json:"action"`
	Set    time.Time `json:"set,omitzero"`
	Reason string    `json:"reason"`
	Error  string    `json:"error,omitempty"`
}

// maxDeprecationLines is how many deprecation changes the table and the
// Markdown list (the JSON lists all of them).
const maxDeprecationLines = 20

// deprecationLines says, one line per copy, what a run changes (a dry
// run: would change) of the copies' deprecation times.
func deprecationLines(r *Report) []string {
	var out []string
	for i, d := range r.Deprecations {
		if i == maxDeprecationLines {
			out = append(out, fmt.Sprintf("... and %d more (the JSON report lists every one)", len(r.Deprecations)-i))
			break
		}
		out = append(out, deprecationLine(r.Mode == "plan", d))
	}
	return out
}

func deprecationLine(plan bool, d Deprecation) string {
	var what string
	switch {
	case d.Action == DeprecationFailed:
		what = "not changed: " + d.Error
	case d.Action == DeprecationDeferred:
		what = "deferred to the next run"
	case plan && d.Action == DeprecationCancel:
		what = "would cancel"
	case plan:
		what = "would set"
	case d.Action == DeprecationCancel:
		what = "cancelled"
	case !d.Set.IsZero() && !d.Set.Equal(d.Wanted):
		what = "set to " + stamp(d.Set) + ", the first minute EC2 takes"
	default:
		what = "set"
	}
	return fmt.Sprintf("%s in %s/%s (copy of %s): deprecation %s → %s (%s): %s",
		d.Image, d.Account, d.Region, d.SourceImage, stamp(d.Current), stamp(d.Wanted), what, d.Reason)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// WriteDeprecations writes deprecation changes, one per line fitted to
// o.Width (the table's "Deprecation:" section on its own); mode is the
// run's ("plan" says what run would do). Nothing when there are none.
func WriteDeprecations(w io.Writer, mode string, ds []Deprecation, o Options) error {
	lines := deprecationLines(&Report{Mode: mode, Deprecations: ds})
	if len(lines) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("\nDeprecation:\n")
	for _, l := range lines {
		writeWrapped(&b, l, o.Width, 2)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteDeprecationsMarkdown is WriteDeprecations as a Markdown list.
func WriteDeprecationsMarkdown(w io.Writer, mode string, ds []Deprecation) error {
	var b strings.Builder
	for _, l := range deprecationLines(&Report{Mode: mode, Deprecations: ds}) {
		fmt.Fprintf(&b, "- %s\n", mdText(l))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
