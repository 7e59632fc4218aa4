package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/amicopier/amicopier/internal/termtable"
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

// DefaultMarkdownItems is how many pairs of each category the Markdown
// summary lists (and how many accounts its per-account table shows)
// unless Options.MarkdownItems says otherwise; the rest are counted.
const DefaultMarkdownItems = 20

// Options tune the text renderers: the table and Markdown. The zero
// value prints tables unshortened and summarises Markdown with the
// defaults.
type Options struct {
	// Width is the width, in columns, tables must fit: source AMIs are
	// shown by name (listed with their ids under the table), account
	// names and copy details are clipped, and reasons wrap, or move under
	// their row when the table is narrow. 0 or less means no limit: one
	// line per pair, every id in full (the CLI's --wide).
	Width int
	// MarkdownItems is how many pairs per category, and accounts, the
	// Markdown summary lists; 0 means DefaultMarkdownItems, a negative
	// number every one (the CLI's --wide).
	MarkdownItems int
	// HeadingLevel is the level of the Markdown report's heading
	// (default 2, for a ticket); its parts are one level below.
	HeadingLevel int
	// Title is the Markdown report's heading (default "amicopier drift
	// report (MODE)").
	Title string
}

func (o Options) markdownItems() int {
	switch {
	case o.MarkdownItems == 0:
		return DefaultMarkdownItems
	case o.MarkdownItems < 0:
		return -1
	}
	return o.MarkdownItems
}

func (o Options) headingLevel() int {
	if o.HeadingLevel < 1 || o.HeadingLevel > 5 {
		return 2
	}
	return o.HeadingLevel
}

// Write renders the report in format.
func Write(w io.Writer, r *Report, format string, o Options) error {
	switch format {
	case FormatTable:
		return WriteTable(w, r, o)
	case FormatJSON:
		return WriteJSON(w, r)
	case FormatMarkdown:
		return WriteMarkdown(w, r, o)
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

// listedItems are the items a text report lists: the drifted ones, and
// the ok ones too when the report is an inventory (IncludesOK).
func listedItems(r *Report) []Item {
	items := make([]Item, 0, len(r.Items))
	for _, it := range r.Items {
		if it.Category.IsDrift() || r.IncludesOK {
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

// copiesLabel describes the copies of a pair on one line: id, state and
// key of each.
func copiesLabel(it Item) string {
	if len(it.Copies) == 0 {
		return strings.Join(it.CopyImages, ", ")
	}
	parts := make([]string, len(it.Copies))
	for i, c := range it.Copies {
		var details []string
		if c.State != "" {
			details = append(details, c.State)
		}
		switch {
		case c.KMSKey != "":
			details = append(details, "key "+c.KMSKey)
		case c.KMSKeyFrom == KeyAccountDefault:
			details = append(details, "default EBS key")
		}
		if !c.DeprecationTime.IsZero() {
			details = append(details, "deprecated from "+c.DeprecationTime.UTC().Format("2006-01-02 15:04"))
		}
		parts[i] = c.ImageID
		if len(details) > 0 {
			parts[i] += " (" + strings.Join(details, ", ") + ")"
		}
	}
	return strings.Join(parts, ", ")
}

// shortSources names each listed source AMI for a narrow table: by its
// name, with the end of its id where two sources share a name; by its id
// when it has no name. ok is false when no source has a name (the ids
// are the labels and no legend is needed).
func shortSources(items []Item) (labels map[string]string, ok bool) {
	ids := map[string][]string{} // name -> ids
	for _, it := range items {
		if it.SourceName != "" && !slices.Contains(ids[it.SourceName], it.SourceImage) {
			ids[it.SourceName] = append(ids[it.SourceName], it.SourceImage)
		}
	}
	labels = map[string]string{}
	for _, it := range items {
		if _, done := labels[it.SourceImage]; done {
			continue
		}
		switch {
		case it.SourceName == "":
			labels[it.SourceImage] = it.SourceImage
		case len(ids[it.SourceName]) > 1:
			labels[it.SourceImage] = it.SourceName + " (…" + it.SourceImage[max(0, len(it.SourceImage)-6):] + ")"
			ok = true
		default:
			labels[it.SourceImage] = it.SourceName
			ok = true
		}
	}
	return labels, ok
}

// WriteTable renders the report for a terminal, fitted to o.Width: the
// pairs, then what the run shared and took back and the images that are
// not sources.
func WriteTable(w io.Writer, r *Report, o Options) error {
	var b strings.Builder
	if err := writePairTable(&b, r, o); err != nil {
		return err
	}
	writeSharingText(&b, r, o.Width)
	writeParametersText(&b, r, o.Width) // parameters.go
	if line := eventsLine(r.Events, r.Mode); line != "" {
		b.WriteString("\n")
		writeWrapped(&b, line, o.Width, 2)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writePairTable(b *strings.Builder, r *Report, o Options) error {
	writeWrapped(b, headline(r), o.Width, 0)
	writeWrapped(b, "Counts: "+countLine(r.Counts), o.Width, 2)
	items := listedItems(r)
	if len(items) == 0 {
		return nil
	}
	b.WriteByte('\n')
	inventory := r.IncludesOK
	cols := []termtable.Column{
		{Header: "CATEGORY", Min: 99},
		{Header: "SOURCE AMI", Min: 10},
		{Header: "ACCOUNT", Min: 12, Clip: clipAccount},
		{Header: "REGION", Min: 99},
		{Header: "ACTION", Min: 6, Wrap: true},
	}
	if inventory {
		cols = append(cols, termtable.Column{Header: "COPIES", Min: 21, Wrap: true})
	}
	cols = append(cols, termtable.Column{Header: "REASON", Min: 50, Wrap: true, Below: true})
	rows := func(source func(Item) string, account func(Item) string) [][]string {
		out := make([][]string, len(items))
		for i, it := range items {
			row := []string{string(it.Category), source(it), account(it), it.Region, orDash(it.Action)}
			if inventory {
				row = append(row, orDash(copiesLabel(it)))
			}
			out[i] = append(row, it.Reason)
		}
		return out
	}
	full := rows(sourceLabel, accountLabel)
	labels, named := shortSources(items)
	if o.Width <= 0 || termtable.NaturalWidth(cols, full) <= o.Width || !named {
		if o.Width > 0 && !named {
			full = rows(func(it Item) string { return it.SourceImage }, shortAccount)
		}
		if err := termtable.Write(b, o.Width, cols, full); err != nil {
			return err
		}
		return nil
	}
	// Too wide for the terminal: sources by name, their ids in a legend.
	short := rows(func(it Item) string { return labels[it.SourceImage] }, shortAccount)
	if err := termtable.Write(b, o.Width, cols, short); err != nil {
		return err
	}
	b.WriteString("\nSource AMIs:\n")
	var legend [][]string
	seen := map[string]bool{}
	for _, it := range items {
		if seen[it.SourceImage] || labels[it.SourceImage] == it.SourceImage {
			continue
		}
		seen[it.SourceImage] = true
		legend = append(legend, []string{labels[it.SourceImage], it.SourceImage, it.SourceRegion})
	}
	slices.SortFunc(legend, func(a, b []string) int { return cmp.Or(NaturalCompare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	var lb strings.Builder
	if err := termtable.Write(&lb, o.Width-2, []termtable.Column{{Header: "NAME", Min: 12}, {Header: "ID", Min: 99}, {Header: "REGION", Min: 99}}, legend); err != nil {
		return err
	}
	for line := range strings.Lines(lb.String()) {
		b.WriteString("  " + line)
	}
	return nil
}

// shortAccount is "id name": the id, which is what AWS consoles and
// CLIs take, first, so clipping only shortens the name.
func shortAccount(it Item) string {
	if it.AccountName == "" {
		return it.Account
	}
	return it.Account + " " + it.AccountName
}

// clipAccount fits an "id name" cell: the name is clipped, and dropped
// when fewer than four of its letters fit; the id stays whole.
func clipAccount(s string, width int) string {
	id, name, ok := strings.Cut(s, " ")
	if !ok || width >= len(s) {
		return s
	}
	if width < len(id)+5 {
		return id
	}
	return id + " " + termtable.Clip(name, width-len(id)-1)
}

// writeWrapped writes text wrapped to width, continuation lines indented.
func writeWrapped(b *strings.Builder, text string, width, indent int) {
	if width <= 0 {
		b.WriteString(text)
		b.WriteByte('\n')
		return
	}
	lines := termtable.Wrap(text, width)
	if len(lines) > 1 && indent > 0 {
		rest := strings.Join(lines[1:], " ")
		lines = append(lines[:1], termtable.Wrap(rest, max(width-indent, 20))...)
	}
	for i, line := range lines {
		if i > 0 {
			b.WriteString(strings.Repeat(" ", indent))
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
}

// WriteMarkdown renders the report for a ticket or a pull request as a
// summary: the counts, the drift per account and the first pairs of each
// category (o.MarkdownItems), each list saying how many it leaves out;
// the JSON report lists every pair.
func WriteMarkdown(w io.Writer, r *Report, o Options) error {
	var b strings.Builder
	level := o.headingLevel()
	h := strings.Repeat("#", level)
	sub := h + "#"
	title := o.Title
	if title == "" {
		title = "amicopier drift report (" + r.Mode + ")"
	}
	fmt.Fprintf(&b, "%s %s\n\n", h, mdText(title))
	fmt.Fprintf(&b, "Source account `%s`, Regions %s, observed %s; scope: %s.\n\n",
		r.SourceAccount, mdText(strings.Join(r.Regions, ", ")), r.GeneratedAt.UTC().Format("2006-01-02 15:04 UTC"), mdText(scopeLine(r.Scope)))
	drift := r.Drift()
	if drift == 0 {
		fmt.Fprintf(&b, "**No drift:** %s pair(s), all ok.\n", thousands(r.Pairs))
	} else {
		fmt.Fprintf(&b, "**%s of %s pair(s) drifted.**\n", thousands(drift), thousands(r.Pairs))
	}
	if r.Pairs > 0 {
		b.WriteString("\n| category | pairs |\n|---|---:|\n")
		for _, c := range Categories {
			if n := r.Counts[c]; n > 0 {
				fmt.Fprintf(&b, "| `%s` | %s |\n", c, thousands(n))
			}
		}
	}
	limit := o.markdownItems()
	items := listedItems(r)
	writeAccountTable(&b, sub, items, limit)
	for _, c := range Categories {
		var in []Item
		for _, it := range items {
			if it.Category == c {
				in = append(in, it)
			}
		}
		if len(in) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s `%s`: %s pair(s)\n\n", sub, c, thousands(len(in)))
		header, rule := "| source AMI | account | region | action |", "|---|---|---|---|"
		if r.IncludesOK {
			header, rule = header+" copies |", rule+"---|"
		}
		fmt.Fprintf(&b, "%s reason |\n%s---|\n", header, rule)
		shown := in
		if limit >= 0 && len(in) > limit {
			shown = in[:limit]
		}
		for _, it := range shown {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |", mdCell(sourceLabel(it)), mdCell(accountLabel(it)), mdCell(it.Region), mdCell(orDash(it.Action)))
			if r.IncludesOK {
				fmt.Fprintf(&b, " %s |", mdCell(orDash(copiesLabel(it))))
			}
			fmt.Fprintf(&b, " %s |\n", mdCell(it.Reason))
		}
		if rest := len(in) - len(shown); rest > 0 {
			fmt.Fprintf(&b, "\n_… and %s more `%s` pair(s): the JSON report (`--output json`) lists every pair._\n", thousands(rest), c)
		}
	}
	if unlisted := r.Counts[OK]; unlisted > 0 && !r.IncludesOK {
		fmt.Fprintf(&b, "\n_%s ok pair(s) are counted, not listed (`--include-ok` lists them with their copies)._\n", thousands(unlisted))
	}
	writeSharingMarkdown(&b, r, sub)
	writeParametersMarkdown(&b, r, sub, limit) // parameters.go
	if line := eventsLine(r.Events, r.Mode); line != "" {
		fmt.Fprintf(&b, "\n%s\n", mdText(line))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeAccountTable writes the drift per account: one row per account
// with drift (most drifted first, at most limit of them), one column per
// drift category that occurs.
func writeAccountTable(b *strings.Builder, heading string, items []Item, limit int) {
	type acct struct {
		id, name string
		counts   map[Category]int
		drift    int
	}
	byID := map[string]*acct{}
	var list []*acct
	present := map[Category]bool{}
	for _, it := range items {
		if !it.Category.IsDrift() {
			continue
		}
		a := byID[it.Account]
		if a == nil {
			a = &acct{id: it.Account, name: it.AccountName, counts: map[Category]int{}}
			byID[it.Account] = a
			list = append(list, a)
		}
		a.counts[it.Category]++
		a.drift++
		present[it.Category] = true
	}
	if len(list) == 0 {
		return
	}
	slices.SortFunc(list, func(x, y *acct) int { return cmp.Or(cmp.Compare(y.drift, x.drift), cmp.Compare(x.id, y.id)) })
	var cats []Category
	for _, c := range Categories {
		if present[c] {
			cats = append(cats, c)
		}
	}
	fmt.Fprintf(b, "\n%s Drift per account\n\n| account | name |", heading)
	for _, c := range cats {
		fmt.Fprintf(b, " `%s` |", c)
	}
	b.WriteString(" drifted |\n|---|---|")
	b.WriteString(strings.Repeat("---:|", len(cats)+1))
	b.WriteByte('\n')
	shown := list
	if limit >= 0 && len(list) > limit {
		shown = list[:limit]
	}
	for _, a := range shown {
		fmt.Fprintf(b, "| %s | %s |", mdCell(a.id), mdCell(orDash(a.name)))
		for _, c := range cats {
			if n := a.counts[c]; n > 0 {
				fmt.Fprintf(b, " %s |", thousands(n))
			} else {
				b.WriteString(" |")
			}
		}
		fmt.Fprintf(b, " %s |\n", thousands(a.drift))
	}
	if rest := list[len(shown):]; len(rest) > 0 {
		n := 0
		for _, a := range rest {
			n += a.drift
		}
		fmt.Fprintf(b, "\n_… and %s more account(s) with %s drifted pair(s)._\n", thousands(len(rest)), thousands(n))
	}
}

// WriteSummaryTable renders a run summary for a terminal, lines wrapped
// to o.Width.
func WriteSummaryTable(w io.Writer, s *Summary, o Options) error {
	var b strings.Builder
	writeWrapped(&b, fmt.Sprintf("Run %s (%s, trigger %s): %s in %.1fs.", s.RunID, s.Mode, s.Trigger, s.Status, s.DurationSeconds), o.Width, 2)
	writeList(&b, "Actions: ", mapEntries(s.Actions), o.Width)
	var total int64
	for _, n := range s.APICalls {
		total += n
	}
	writeList(&b, fmt.Sprintf("AWS calls: %d (%d mutating): ", total, s.MutatingCalls), mapEntries(s.APICalls), o.Width)
	writeWrapped(&b, fmt.Sprintf("State writes: %d", s.StateWrites), o.Width, 2)
	if line := eventsLine(s.Events, s.Mode); line != "" {
		writeWrapped(&b, line, o.Width, 2)
	}
	if line := unreachableLine(s.Unreachable, s.UnreachableCount); line != "" {
		writeWrapped(&b, "Unreachable: "+line, o.Width, 2)
	}
	for _, e := range s.Errors {
		writeWrapped(&b, "Error: "+e, o.Width, 2)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSummaryMarkdown renders a run summary as a Markdown list.
func WriteSummaryMarkdown(w io.Writer, s *Summary) error {
	var b strings.Builder
	var total int64
	for _, n := range s.APICalls {
		total += n
	}
	fmt.Fprintf(&b, "- Run `%s` (%s, trigger %s): **%s** in %.1fs\n", s.RunID, s.Mode, mdText(s.Trigger), s.Status, s.DurationSeconds)
	fmt.Fprintf(&b, "- Actions: %s\n", mdText(mapLine(s.Actions)))
	fmt.Fprintf(&b, "- AWS calls: %d (%d mutating): %s\n", total, s.MutatingCalls, mdText(mapLine(s.APICalls)))
	fmt.Fprintf(&b, "- State writes: %d\n", s.StateWrites)
	if line := eventsLine(s.Events, s.Mode); line != "" {
		fmt.Fprintf(&b, "- %s\n", mdText(line))
	}
	if line := unreachableLine(s.Unreachable, s.UnreachableCount); line != "" {
		fmt.Fprintf(&b, "- Unreachable: %s\n", mdText(line))
	}
	if s.ErrorCount > 0 {
		fmt.Fprintf(&b, "- Errors (%d):\n", s.ErrorCount)
		for _, e := range s.Errors {
			fmt.Fprintf(&b, "  - %s\n", mdText(e))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// unreachableLine lists unreachable accounts on one line; count is how
// many there were in all (the list may be cut).
func unreachableLine(list []UnreachableAccount, count int) string {
	if len(list) == 0 && count == 0 {
		return ""
	}
	parts := make([]string, len(list))
	for i, u := range list {
		parts[i] = u.Account
		if len(u.Regions) > 0 {
			parts[i] += " (" + strings.Join(u.Regions, ", ") + ")"
		}
		if u.Reason != "" {
			parts[i] += ": " + u.Reason
		}
	}
	line := strings.Join(parts, "; ")
	if rest := count - len(list); rest > 0 {
		line += fmt.Sprintf("; and %d more", rest)
	}
	return fmt.Sprintf("%d account(s): %s", max(count, len(list)), line)
}

func mapLine[V int | int64](m map[string]V) string {
	return strings.Join(mapEntries(m), ", ")
}

// mapEntries renders counts as "key n" in key order; "none" when empty.
func mapEntries[V int | int64](m map[string]V) []string {
	if len(m) == 0 {
		return []string{"none"}
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
	return parts
}

// writeList writes prefix and the entries separated by ", ", breaking
// lines between entries (never inside one) to fit width; continuation
// lines are indented by two.
func writeList(b *strings.Builder, prefix string, entries []string, width int) {
	line := prefix
	for i, e := range entries {
		sep := ""
		if i < len(entries)-1 {
			sep = ","
		}
		switch {
		case i == 0:
			line += e + sep
		case width > 0 && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(e+sep) > width:
			b.WriteString(line + "\n")
			line = "  " + e + sep
		default:
			line += " " + e + sep
		}
	}
	b.WriteString(line + "\n")
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

// mdText escapes what would inject markup into Markdown prose.
func mdText(s string) string {
	r := strings.NewReplacer("<", "&lt;", ">", "&gt;", "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`)
	return r.Replace(oneLine(s))
}

// mdCell escapes what would break a Markdown table cell or inject markup.
func mdCell(s string) string {
	return strings.ReplaceAll(mdText(s), "|", `\|`)
}
