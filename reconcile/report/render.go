package report

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Formats accepted by Write.
const (
	FormatTable    = "table"
	FormatJSON     = "json"
	FormatMarkdown = "markdown"
	// FormatHTML is the drift matrix: one self-contained page. It draws a
	// cell per listed item, so reports meant for it list ok pairs too
	// (reconcile.Request.IncludeOK).
	FormatHTML = "html"
)

// Formats lists the formats Write accepts.
var Formats = []string{FormatTable, FormatJSON, FormatMarkdown, FormatHTML}

// Write renders the report in format.
func Write(w io.Writer, r *Report, format string) error {
	switch format {
	case FormatTable:
		return WriteTable(w, r)
	case FormatJSON:
		return WriteJSON(w, r)
	case FormatMarkdown:
		return WriteMarkdown(w, r)
	case FormatHTML:
		return WriteHTML(w, r)
	}
	return fmt.Errorf("unknown report format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// WriteJSON writes v as indented JSON followed by a newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// countLine renders non-zero counts in category order, "ok" last.
func countLine(counts map[Category]int) string {
	var parts []string
	for _, c := range Categories {
		if n := counts[c]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
	}
	if len(parts) == 0 {
		return "no pairs"
	}
	return strings.Join(parts, ", ")
}

func headline(r *Report) string {
	drift := r.Drift()
	verdict := "no drift"
	if drift > 0 {
		verdict = fmt.Sprintf("%d pair(s) drifted", drift)
	}
	return fmt.Sprintf("Drift report (%s) for source account %s, regions %s: %d pair(s), %s.",
		r.Mode, r.SourceAccount, strings.Join(r.Regions, ", "), r.Pairs, verdict)
}

func driftItems(r *Report) []Item {
	items := make([]Item, 0, len(r.Items))
	for _, it := range r.Items {
		if it.Category.IsDrift() {
			items = append(items, it)
		}
	}
	return items
}

func accountLabel(it Item) string {
	if it.AccountName == "" {
		return it.Account
	}
	return it.Account + " (" + it.AccountName + ")"
}

func sourceLabel(it Item) string {
	if it.SourceName == "" {
		return it.SourceImage
	}
	return it.SourceImage + " (" + it.SourceName + ")"
}

// WriteTable renders the report for a terminal.
func WriteTable(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintln(&b, headline(r))
	fmt.Fprintln(&b, "Counts:", countLine(r.Counts))
	items := driftItems(r)
	if len(items) > 0 {
		fmt.Fprintln(&b)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CATEGORY\tSOURCE AMI\tACCOUNT\tREGION\tACTION\tREASON")
		for _, it := range items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.Category, sourceLabel(it),
				accountLabel(it), it.Region, orDash(it.Action), oneLine(it.Reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown renders the report for a ticket or a pull request.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## amicopier drift report\n\n%s\n\n", headline(r))
	fmt.Fprintln(&b, "| category | pairs |")
	fmt.Fprintln(&b, "|---|---:|")
	for _, c := range Categories {
		fmt.Fprintf(&b, "| `%s` | %d |\n", c, r.Counts[c])
	}
	items := driftItems(r)
	if len(items) > 0 {
		fmt.Fprintln(&b, "\n| category | source AMI | account | region | action | reason |")
		fmt.Fprintln(&b, "|---|---|---|---|---|---|")
		for _, it := range items {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", it.Category,
				mdCell(sourceLabel(it)), mdCell(accountLabel(it)), mdCell(it.Region),
				mdCell(orDash(it.Action)), mdCell(it.Reason))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSummaryTable renders a run summary for a terminal.
func WriteSummaryTable(w io.Writer, s *Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s (%s, trigger %s): %s in %.1fs.\n", s.RunID, s.Mode, s.Trigger, s.Status, s.DurationSeconds)
	fmt.Fprintf(&b, "Actions: %s\n", mapLine(s.Actions))
	var total int64
	for _, n := range s.APICalls {
		total += n
	}
	fmt.Fprintf(&b, "AWS calls: %d (%d mutating): %s\n", total, s.MutatingCalls, mapLine(s.APICalls))
	fmt.Fprintf(&b, "State writes: %d\n", s.StateWrites)
	for _, e := range s.Errors {
		fmt.Fprintf(&b, "Error: %s\n", e)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mapLine[V int | int64](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table row on one line whatever a reason contains.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// mdCell escapes what would break a Markdown table cell or inject markup.
func mdCell(s string) string {
	r := strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`)
	return r.Replace(oneLine(s))
}
