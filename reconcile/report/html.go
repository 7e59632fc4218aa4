package report

import (
	"bufio"
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The HTML drift matrix is one self-contained page: inline CSS and inline
// JavaScript, no fonts, scripts or images from elsewhere, so it opens
// offline and can be attached to a ticket. It is rendered from the same
// Report model as the other formats, through html/template, so every value
// taken from AWS (AMI names, tags, reasons) is escaped for its context; the
// matrix cells, the hot loop, are written by CellsHTML, which escapes every
// attribute value the way html/template does.
//
// Every pair of the report is exactly one element carrying a data-cat
// attribute (the "cell"); nothing else in the page carries data-cat, so a
// test, or a person with the browser's console, can count the pairs per
// category with a selector.

//go:embed html.tmpl
var htmlTemplateText string

var htmlTemplate = template.Must(template.New("html.tmpl").Funcs(template.FuncMap{
	"join":       strings.Join,
	"thousands":  thousands,
	"paramGlyph": func(s ParameterState) string { return parameterStyles[s].Glyph },
	"paramCSS":   parameterCSS,
}).Parse(htmlTemplateText))

// categoryStyle is how a category looks in the matrix. The palette is
// built on Okabe and Ito's colour-blind-safe colours, and every category
// also has its own glyph, so the legend still works in greyscale or
// printed.
type categoryStyle struct {
	Glyph string
	// Label is the category in words; Help says what it means and what
	// run does about it.
	Label, Help string
	// Background and Foreground are constants of this file, never report
	// data, which is why they may be trusted as CSS.
	Background, Foreground template.CSS
}

var categoryStyles = map[Category]categoryStyle{
	Missing: {"M", "missing", "no copy in the account and Region yet; run shares the source and copies it",
		"#f6d8a0", "#5e3b00"},
	InProgress: {"…", "in progress", "a copy is pending; run waits for it",
		"#cde5f5", "#0b4a75"},
	Failed: {"F", "failed", "the copy failed; run deregisters it and retries with backoff",
		"#d55e00", "#ffffff"},
	Stuck: {"S", "stuck", "the copy failed too often; run stops retrying until the source or the configuration changes",
		"#a34a7c", "#ffffff"},
	Unencrypted: {"U", "unencrypted", "a copy exists but a volume is not encrypted; never deleted by amicopier, remove it by hand",
		"#2b2b2b", "#ffffff"},
	WrongKey: {"K", "wrong key", "the copy is encrypted with another KMS key than the configured one",
		"#0072b2", "#ffffff"},
	Duplicate: {"D", "duplicate", "more than one good copy in the account and Region; never deleted automatically",
		"#e2d2eb", "#4f2a63"},
	Orphaned: {"O", "orphaned", "a copy amicopier made whose source AMI no longer exists",
		"#dfe1e4", "#3c4148"},
	Superseded: {"↓", "superseded", "a copy amicopier made of an older build that source.keep_latest no longer keeps; pruned (when enabled) once unused and a newer build's copy is available",
		"#efe3c2", "#5a4512"},
	RejectedTarget: {"R", "rejected target", "a target amicopier must not serve: not an ACTIVE member of the organisation, excluded, or not an account id; never shared with",
		"repeating-linear-gradient(135deg, #eef0f3 0 3px, #d5d9df 3px 6px)", "#39414d"},
	Unreachable: {"?", "unreachable", "the account or Region could not be read (role not assumable, calls denied)",
		"#f1e88f", "#4f4800"},
	OK: {"✓", "ok", "one good, encrypted copy is available",
		"#cfe9de", "#0b5a41"},
}

// Group names the matrix uses for what the report's inventory does not list.
const (
	noOU        = "(no OU)"
	otherOU     = "(not in the organisation)"
	goneSources = "(source AMIs that no longer exist)"
)

// driftListLimit caps the list under the matrix; the matrix and the JSON
// report hold every pair.
const driftListLimit = 2000

// HTMLOption changes what WriteHTML renders.
type HTMLOption func(*htmlConfig)

type htmlConfig struct {
	title   string
	summary *Summary
}

// HTMLTitle sets the page title (default "amicopier drift report").
func HTMLTitle(title string) HTMLOption {
	return func(c *htmlConfig) { c.title = title }
}

// HTMLRunSummary shows what a run did above the report of its outcome.
func HTMLRunSummary(s *Summary) HTMLOption {
	return func(c *htmlConfig) { c.summary = s }
}

// Section is one part of an HTML page: a heading, optionally what a run
// did, and optionally a drift report drawn as a matrix.
type Section struct {
	// ID names the section in the page (its anchor, and the hook tests
	// use); unique within a page. Default: "report-N".
	ID string
	// Title and Note head the section.
	Title string
	Note  string
	// Summary, when set, is shown before the report.
	Summary *Summary
	// Report, when set, is drawn as a drift matrix. The matrix shows
	// listed items only: build the report with ok pairs listed
	// (reconcile.Request.IncludeOK) for a cell per pair.
	Report *Report
}

// WriteHTML renders one report as a self-contained HTML page.
func WriteHTML(w io.Writer, r *Report, opts ...HTMLOption) error {
	cfg := htmlConfig{title: "amicopier drift report"}
	for _, o := range opts {
		o(&cfg)
	}
	return WriteHTMLPage(w, cfg.title, []Section{{ID: "report", Report: r, Summary: cfg.summary}})
}

// WriteHTMLPage renders several sections (the demo's before, run and
// after) as one self-contained HTML page. The page's <title> (what a tab,
// a bookmark or an attachment list shows) adds to title the source account
// and the observation time of the first report.
func WriteHTMLPage(w io.Writer, title string, sections []Section) error {
	page := pageView{Title: title, DocTitle: title}
	for _, s := range sections {
		if s.Report != nil {
			page.DocTitle = fmt.Sprintf("%s: source account %s, %s", title, s.Report.SourceAccount,
				s.Report.GeneratedAt.UTC().Format("2006-01-02 15:04 UTC"))
			break
		}
	}
	for _, c := range Categories {
		page.Categories = append(page.Categories, catView{Name: c, categoryStyle: categoryStyles[c]})
	}
	seen := map[string]bool{}
	for i, s := range sections {
		id := s.ID
		if id == "" {
			id = fmt.Sprintf("report-%d", i+1)
		}
		if seen[id] {
			return fmt.Errorf("html report: section id %q is used twice", id)
		}
		seen[id] = true
		sv := sectionView{ID: id, Title: s.Title, Note: s.Note}
		if s.Summary != nil {
			sv.Run = newRunView(s.Summary)
		}
		if s.Report != nil {
			sv.Report = newReportView(s.Report, page.Categories)
		}
		page.Sections = append(page.Sections, sv)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := htmlTemplate.Execute(bw, page); err != nil {
		return fmt.Errorf("render html report: %w", err)
	}
	return bw.Flush()
}

type pageView struct {
	// Title heads the page; DocTitle is its <title>.
	Title, DocTitle string
	Categories      []catView
	Sections        []sectionView
}

type catView struct {
	Name Category
	categoryStyle
}

type sectionView struct {
	ID, Title, Note string
	Run             *runView
	Report          *reportView
}

type runView struct {
	RunID, Trigger, Mode, Status string
	Duration                     string
	Actions                      []countView
	APICalls                     int64
	Mutating, Throttled          int64
	StateWrites                  int
	Errors                       []string
	// Events says what the run sent to its event bus, "" for none.
	Events string
}

type countView struct {
	Name  string
	Count int
}

func newRunView(s *Summary) *runView {
	v := &runView{
		RunID: s.RunID, Trigger: s.Trigger, Mode: s.Mode, Status: s.Status,
		Duration: fmt.Sprintf("%.1fs", s.DurationSeconds), Mutating: s.MutatingCalls,
		Throttled: s.ThrottledCalls, StateWrites: s.StateWrites, Errors: s.Errors,
		Events: strings.TrimPrefix(eventsLine(s.Events, s.Mode), "Events to "),
	}
	for _, n := range s.APICalls {
		v.APICalls += n
	}
	for _, k := range slices.Sorted(maps.Keys(s.Actions)) {
		v.Actions = append(v.Actions, countView{k, s.Actions[k]})
	}
	return v
}

type reportView struct {
	GeneratedAt, GeneratedISO string
	Mode, SourceAccount       string
	Regions, Scope            string
	Pairs, Drift              int
	// Cell is the side of a matrix cell in pixels: roomy for a small
	// organisation, compact for a large one.
	Cell int
	// RowHead is the width of the row headers in pixels; HeadH the
	// height of the account headers, tall enough for the longest name.
	RowHead, HeadH int
	// Keys lists the KMS keys of the copies, space-separated: cells name
	// a copy's key by its index here (data-copies), so that a key ARN
	// is not repeated in each of 200,000 cells.
	Keys  string
	Tiles []tileView
	// Unlisted counts pairs the report counts but does not list (ok
	// pairs of a report built without IncludeOK): they have no cell.
	Unlisted int
	OUs      []*ouView
	Cols     []*colView
	Groups   []*groupView
	// Drifted lists drifted items under the matrix, at most
	// driftListLimit of DriftListed.
	Drifted     []*Item
	DriftListed int
	// Params is the grid of SSM parameters (parameters_html.go); nil
	// when the report has none.
	Params *paramsView
}

type tileView struct {
	Cat   catView
	Count int
}

type ouView struct {
	Name         string
	Span, Drift  int
	Other, NoOU  bool
	firstAccount int
}

type colView struct {
	ID, Name, OU, State string
	Other               bool
	Pairs, Drift        int
}

// Label is what the column header shows.
func (c *colView) Label() string { return cmp.Or(c.Name, c.ID) }

type groupView struct {
	Name         string
	Gone         bool
	Rows         []*rowView
	Pairs, Drift int
}

type rowView struct {
	ID, Name, Region, Recipe string
	Created                  string
	Gone                     bool
	// Regions are the target Regions the row's pairs are in; with more
	// than one, every cell is split into one sub-cell per Region.
	Regions      []string
	Pairs, Drift int
	Cells        []cellView
	created      time.Time
}

// Label is what the row header shows.
func (r *rowView) Label() string { return cmp.Or(r.Name, r.ID) }

// CellRegion is the Region of every cell of a row with one Region only.
func (r *rowView) CellRegion() string {
	if len(r.Regions) == 1 {
		return r.Regions[0]
	}
	return ""
}

// attrEscaper escapes a value for a double-quoted attribute the way
// html/template does. The cells are the page's hot loop (200,000 of them at
// 1,000 accounts x 200 AMIs): written here instead of by the template
// engine, which spends ~13µs a cell on reflection, they render ~30 times
// faster, and every value is still escaped.
var attrEscaper = strings.NewReplacer(`&`, "&amp;", `<`, "&lt;", `>`, "&gt;", `"`, "&#34;", `'`, "&#39;", "\x00", "\uFFFD")

// keyIndex numbers the distinct KMS keys of a report's copies.
type keyIndex struct {
	index map[string]int
	keys  []string
}

func (k *keyIndex) of(key string) int {
	if i, ok := k.index[key]; ok {
		return i
	}
	if k.index == nil {
		k.index = map[string]int{}
	}
	k.index[key] = len(k.keys)
	k.keys = append(k.keys, key)
	return len(k.keys) - 1
}

// copiesAttr is a pair's copies for data-copies: space-separated
// "id|state|key", key being an index into the report's Keys, "d" the
// account's default EBS key, empty when not known. Reports without copy
// details (CopyImages only) give the ids alone.
func copiesAttr(it *Item, keys *keyIndex) string {
	if len(it.Copies) == 0 {
		return strings.Join(it.CopyImages, " ")
	}
	var b strings.Builder
	for i, c := range it.Copies {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.ImageID)
		b.WriteByte('|')
		b.WriteString(c.State)
		b.WriteByte('|')
		switch {
		case c.KMSKey != "" && !strings.ContainsAny(c.KMSKey, " |"):
			b.WriteString(strconv.Itoa(keys.of(c.KMSKey)))
		case c.KMSKeyFrom == KeyAccountDefault:
			b.WriteByte('d')
		}
	}
	return b.String()
}

// CellsHTML renders the row's cells: one span carrying data-cat per pair
// (an i per Region inside a split position), the pair's details in data-*
// attributes (read by the page's script for the tooltip and the details
// panel), and an empty span where a source and an account have no pair.
func (r *rowView) CellsHTML() template.HTML {
	var b strings.Builder
	b.Grow(len(r.Cells) * 192)
	for _, c := range r.Cells {
		switch {
		case c.One != nil:
			b.WriteString("<span")
			writeCellAttrs(&b, c.One, c.oneCopies, len(r.Regions) > 1)
			b.WriteString("></span>")
		case len(c.Sub) > 0:
			b.WriteString(`<span class="m" style="--n:`)
			b.WriteString(strconv.Itoa(len(c.Sub)))
			b.WriteString(`">`)
			for i, it := range c.Sub {
				if it == nil {
					b.WriteString(`<i class="e"></i>`)
					continue
				}
				b.WriteString("<i")
				writeCellAttrs(&b, it, c.subCopies[i], true)
				b.WriteString("></i>")
			}
			b.WriteString("</span>")
		default:
			b.WriteString("<span></span>")
		}
	}
	return template.HTML(b.String())
}

// writeCellAttrs writes a pair's attributes. The Region is left to the
// row header (its data-r) when the row has one Region only: at 200,000
// cells every attribute costs the browser parse time.
func writeCellAttrs(b *strings.Builder, it *Item, copies string, region bool) {
	writeAttr(b, "data-cat", string(it.Category))
	if region {
		writeAttr(b, "data-r", it.Region)
	}
	if it.Reason != "" {
		writeAttr(b, "data-why", it.Reason)
	}
	if it.Action != "" {
		writeAttr(b, "data-act", it.Action)
	}
	if copies != "" {
		writeAttr(b, "data-copies", copies)
	}
	if it.Attempts != 0 {
		writeAttr(b, "data-n", strconv.Itoa(it.Attempts))
	}
	if it.LastError != "" {
		writeAttr(b, "data-err", it.LastError)
	}
}

func writeAttr(b *strings.Builder, name, value string) {
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString(`="`)
	if strings.ContainsAny(value, "&<>\"'\x00") {
		_, _ = attrEscaper.WriteString(b, value)
	} else {
		b.WriteString(value)
	}
	b.WriteByte('"')
}

// cellView is one (source, account) position of the matrix: nothing, one
// pair (One), or several pairs, one per Region, drawn as sub-cells (Sub;
// nil entries hold the place of a Region without a pair).
type cellView struct {
	One *Item
	Sub []*Item
	// oneCopies and subCopies are the data-copies of One and of Sub.
	oneCopies string
	subCopies []string
}

func newReportView(r *Report, cats []catView) *reportView {
	v := &reportView{
		GeneratedAt:   r.GeneratedAt.UTC().Format("2006-01-02 15:04 UTC"),
		GeneratedISO:  r.GeneratedAt.UTC().Format(time.RFC3339),
		Mode:          r.Mode,
		SourceAccount: r.SourceAccount,
		Regions:       strings.Join(r.Regions, ", "),
		Scope:         scopeLine(r.Scope),
		Pairs:         r.Pairs,
		Drift:         r.Drift(),
		Unlisted:      max(0, r.Pairs-len(r.Items)),
		Params:        newParamsView(r),
	}
	for _, c := range cats {
		v.Tiles = append(v.Tiles, tileView{Cat: c, Count: r.Counts[c.Name]})
	}
	rows, rowList, colList := matrixAxes(r)
	v.Cols, v.OUs = orderColumns(colList)
	v.Cell, v.RowHead = 24, 320
	if len(v.Cols) <= 60 {
		v.Cell, v.RowHead = 32, 340
	}
	v.HeadH = headerHeight(v.Cols)
	v.placeItems(r, rows, rowList)
	v.Groups = groupRows(rowList)
	v.Keys = v.copiesAttrs()
	return v
}

// matrixAxes makes the matrix's rows (the report's sources, then sources
// only items name: copies whose source is gone) and columns (the report's
// accounts, then targets only items name: non-members, invalid tag
// values).
func matrixAxes(r *Report) (map[string]*rowView, []*rowView, []*colView) {
	rows := map[string]*rowView{}
	var rowList []*rowView
	for _, s := range r.Sources {
		if _, dup := rows[s.ID]; dup {
			continue
		}
		row := &rowView{ID: s.ID, Name: s.Name, Region: s.Region, Recipe: cmp.Or(s.Recipe, s.Name, s.ID), created: s.Created}
		if !s.Created.IsZero() {
			row.Created = s.Created.UTC().Format("2006-01-02")
		}
		rows[s.ID] = row
		rowList = append(rowList, row)
	}
	cols := map[string]*colView{}
	var colList []*colView
	for _, a := range r.Accounts {
		if _, dup := cols[a.ID]; dup {
			continue
		}
		c := &colView{ID: a.ID, Name: a.Name, OU: cmp.Or(a.OU, noOU), State: a.State}
		cols[a.ID] = c
		colList = append(colList, c)
	}
	for i := range r.Items {
		it := &r.Items[i]
		if _, ok := rows[it.SourceImage]; !ok {
			row := &rowView{ID: it.SourceImage, Name: it.SourceName, Region: it.SourceRegion, Gone: true, Recipe: goneSources}
			rows[it.SourceImage] = row
			rowList = append(rowList, row)
		}
		if _, ok := cols[it.Account]; !ok {
			c := &colView{ID: it.Account, Name: it.AccountName, OU: otherOU, Other: true}
			cols[it.Account] = c
			colList = append(colList, c)
		}
	}
	return rows, rowList, colList
}

// placeItems puts each pair in its (source, account) cell, split by
// Region where a source has pairs in several, and counts the drift of
// rows, columns and OUs.
func (v *reportView) placeItems(r *Report, rows map[string]*rowView, rowList []*rowView) {
	colIndex := make(map[string]int, len(v.Cols))
	for i, c := range v.Cols {
		colIndex[c.ID] = i
	}
	for _, row := range rowList {
		row.Cells = make([]cellView, len(v.Cols))
	}
	for i := range r.Items {
		it := &r.Items[i]
		row, j := rows[it.SourceImage], colIndex[it.Account]
		c := &row.Cells[j]
		switch {
		case c.One == nil && c.Sub == nil:
			c.One = it
		case c.One != nil:
			c.Sub, c.One = []*Item{c.One, it}, nil
		default:
			c.Sub = append(c.Sub, it)
		}
		if !slices.Contains(row.Regions, it.Region) {
			row.Regions = append(row.Regions, it.Region)
		}
		row.Pairs++
		v.Cols[j].Pairs++
		if it.Category.IsDrift() {
			row.Drift++
			v.Cols[j].Drift++
			v.DriftListed++
			if len(v.Drifted) < driftListLimit {
				v.Drifted = append(v.Drifted, it)
			}
		}
	}
	for _, ou := range v.OUs {
		for _, c := range v.Cols[ou.firstAccount : ou.firstAccount+ou.Span] {
			ou.Drift += c.Drift
		}
	}
	for _, row := range rowList {
		slices.Sort(row.Regions)
		if len(row.Regions) > 1 {
			for j := range row.Cells {
				row.Cells[j] = splitByRegion(row.Cells[j], row.Regions)
			}
		}
	}
}

// copiesAttrs renders every cell's data-copies, in the page's order, and
// returns the keys they refer to by index.
func (v *reportView) copiesAttrs() string {
	var keys keyIndex
	for _, g := range v.Groups {
		for _, row := range g.Rows {
			for j := range row.Cells {
				c := &row.Cells[j]
				if c.One != nil {
					c.oneCopies = copiesAttr(c.One, &keys)
				}
				if len(c.Sub) > 0 {
					c.subCopies = make([]string, len(c.Sub))
					for k, it := range c.Sub {
						if it != nil {
							c.subCopies[k] = copiesAttr(it, &keys)
						}
					}
				}
			}
		}
	}
	return strings.Join(keys.keys, " ")
}

// Account header heights in pixels: the names are written vertically,
// so the header is as tall as the longest name needs (about 7 px a
// character at the matrix's 12 px font, plus padding and the drift mark),
// within bounds; a name longer than the bound is cut with an ellipsis
// and shown in full on hover.
const (
	minHeaderHeight  = 90
	maxHeaderHeight  = 240
	headerCharPixels = 7
	headerPadding    = 26
)

func headerHeight(cols []*colView) int {
	longest := 0
	for _, c := range cols {
		longest = max(longest, utf8.RuneCountInString(c.Label()))
	}
	return min(max(longest*headerCharPixels+headerPadding, minHeaderHeight), maxHeaderHeight)
}

// splitByRegion lays a position's pairs out in the row's Region order,
// leaving a hole where a Region has no pair, so sub-cells line up down a
// column.
func splitByRegion(c cellView, regions []string) cellView {
	items := c.Sub
	if c.One != nil {
		items = []*Item{c.One}
	}
	if len(items) == 0 {
		return c
	}
	sub := make([]*Item, 0, len(regions))
	for _, region := range regions {
		n := 0
		for _, it := range items {
			if it.Region == region {
				sub = append(sub, it)
				n++
			}
		}
		if n == 0 {
			sub = append(sub, nil)
		}
	}
	return cellView{Sub: sub}
}

// orderColumns groups accounts by OU: named OUs in natural order
// ("team-2" before "team-10"), then accounts without an OU, then targets
// that are not accounts; by name, naturally, within a group.
func orderColumns(cols []*colView) ([]*colView, []*ouView) {
	rank := func(c *colView) int {
		switch {
		case c.Other:
			return 2
		case c.OU == noOU:
			return 1
		}
		return 0
	}
	slices.SortFunc(cols, func(a, b *colView) int {
		return cmp.Or(
			cmp.Compare(rank(a), rank(b)),
			NaturalCompare(a.OU, b.OU),
			NaturalCompare(a.Label(), b.Label()),
			cmp.Compare(a.ID, b.ID),
		)
	})
	var ous []*ouView
	for i, c := range cols {
		if len(ous) == 0 || ous[len(ous)-1].Name != c.OU || ous[len(ous)-1].Other != c.Other {
			ous = append(ous, &ouView{Name: c.OU, Other: c.Other, NoOU: !c.Other && c.OU == noOU, firstAccount: i})
		}
		ous[len(ous)-1].Span++
	}
	return cols, ous
}

// groupRows groups sources by recipe (in natural order, "golden-2"
// before "golden-10"; sources that no longer exist last), newest source
// first within a group, then by name naturally.
func groupRows(rows []*rowView) []*groupView {
	groups := map[string]*groupView{}
	var list []*groupView
	for _, row := range rows {
		key := row.Recipe
		if row.Gone {
			key = "\x00gone"
		}
		g, ok := groups[key]
		if !ok {
			g = &groupView{Name: row.Recipe, Gone: row.Gone}
			groups[key] = g
			list = append(list, g)
		}
		g.Rows = append(g.Rows, row)
		g.Pairs += row.Pairs
		g.Drift += row.Drift
	}
	for _, g := range list {
		slices.SortFunc(g.Rows, func(a, b *rowView) int {
			return cmp.Or(b.created.Compare(a.created), NaturalCompare(a.Label(), b.Label()), cmp.Compare(a.ID, b.ID))
		})
	}
	slices.SortFunc(list, func(a, b *groupView) int {
		if a.Gone != b.Gone {
			if a.Gone {
				return 1
			}
			return -1
		}
		return NaturalCompare(a.Name, b.Name)
	})
	return list
}

func scopeLine(s Scope) string {
	var parts []string
	if len(s.Images) > 0 {
		parts = append(parts, "images "+strings.Join(s.Images, ", "))
	}
	if len(s.Accounts) > 0 {
		parts = append(parts, "accounts "+strings.Join(s.Accounts, ", "))
	}
	if s.Shard != "" {
		parts = append(parts, "shard "+s.Shard)
	}
	if len(parts) == 0 {
		return "every source AMI and account"
	}
	return strings.Join(parts, "; ")
}

// thousands groups digits by three ("200,000"): the summary's numbers are
// read at a glance.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
