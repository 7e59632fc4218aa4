package report

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"
)

// countCells counts the cells per category in rendered (or browser
// dumped) HTML: span and i elements carrying data-cat. It reads tags with
// their quoted attribute values, so a '<' or '>' inside a reason (which a
// browser's DOM dump leaves unescaped in attributes) is not taken for
// markup; style and script bodies are skipped.
func countCells(page string) map[Category]int {
	counts := map[Category]int{}
	for i := 0; ; {
		j := strings.IndexByte(page[i:], '<')
		if j < 0 {
			return counts
		}
		i += j + 1
		rest := page[i:]
		if raw := rawTextElement(rest); raw != "" {
			k := strings.Index(rest, "</"+raw)
			if k < 0 {
				return counts
			}
			i += k
			continue
		}
		name, cat, n, ok := readTag(rest)
		if !ok {
			continue
		}
		i += n
		if (name == "span" || name == "i") && cat != nil {
			counts[Category(*cat)]++
		}
	}
}

func rawTextElement(s string) string {
	for _, name := range []string{"style", "script"} {
		if strings.HasPrefix(s, name) && len(s) > len(name) && (s[len(name)] == '>' || s[len(name)] == ' ') {
			return name
		}
	}
	return ""
}

// readTag reads a start tag after its '<': its name, its data-cat value
// if any, and how many bytes it spans.
func readTag(s string) (name string, cat *string, n int, ok bool) {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= '0' && s[i] <= '9') {
		i++
	}
	if i == 0 {
		return "", nil, 0, false
	}
	name = s[:i]
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r', '\f':
			i++
			continue
		case '>':
			return name, cat, i + 1, true
		}
		start := i
		for i < len(s) && !strings.ContainsRune(" \t\n\r\f=>/", rune(s[i])) {
			i++
		}
		attr := s[start:i]
		if attr == "" {
			return "", nil, 0, false
		}
		if i < len(s) && s[i] == '=' {
			if i+1 >= len(s) || s[i+1] != '"' {
				return "", nil, 0, false
			}
			end := strings.IndexByte(s[i+2:], '"')
			if end < 0 {
				return "", nil, 0, false
			}
			if attr == "data-cat" {
				v := s[i+2 : i+2+end]
				cat = &v
			}
			i += 2 + end + 1
		}
	}
	return "", nil, 0, false
}

// sectionHTML returns the part of a page that renders the section id.
func sectionHTML(t *testing.T, page, id string) string {
	t.Helper()
	start := strings.Index(page, `<section class="report" id="`+id+`"`)
	if start < 0 {
		t.Fatalf("no section %q in the page", id)
	}
	end := strings.Index(page[start:], "</section>")
	if end < 0 {
		t.Fatalf("section %q is not closed", id)
	}
	return page[start : start+end]
}

// summaryNumber reads a number the summary shows: data-count="missing" or
// data-total="pairs".
func summaryNumber(t *testing.T, section, attr, value string) int {
	t.Helper()
	key := " " + attr + `="` + value + `"`
	if n := strings.Count(section, key); n != 1 {
		t.Fatalf("%s appears %d times in the summary, want once", key, n)
	}
	rest := section[strings.Index(section, key)+len(key):]
	rest = rest[strings.IndexByte(rest, '>')+1:]
	n, err := strconv.Atoi(strings.ReplaceAll(rest[:strings.IndexByte(rest, '<')], ",", ""))
	if err != nil {
		t.Fatalf("%s does not show a number: %v", key, err)
	}
	return n
}

// checkMatrix checks that a rendered section agrees with its report: one
// cell per listed pair, per-category cell counts, the legend and the
// summary numbers.
func checkMatrix(t *testing.T, section string, r *Report) {
	t.Helper()
	listed := map[Category]int{}
	for _, it := range r.Items {
		listed[it.Category]++
	}
	checkCells(t, section, listed)
	if len(r.Items) == r.Pairs {
		checkCells(t, section, r.Counts)
	}
	checkSummary(t, section, r)
}

// checkCells checks the number of cells per category, and so the total.
func checkCells(t *testing.T, section string, want map[Category]int) {
	t.Helper()
	cells := countCells(section)
	if !maps.Equal(cells, nonZero(want)) {
		t.Errorf("cells per category = %v, want %v", cells, nonZero(want))
	}
	total, wantTotal := 0, 0
	for _, n := range cells {
		total += n
	}
	for _, n := range want {
		wantTotal += n
	}
	if total != wantTotal {
		t.Errorf("%d cells, want one per pair (%d)", total, wantTotal)
	}
}

// checkSummary checks the legend and the numbers of the summary bar.
func checkSummary(t *testing.T, section string, r *Report) {
	t.Helper()
	for _, c := range Categories {
		if n := strings.Count(section, `data-legend="`+string(c)+`"`); n != 1 {
			t.Errorf("legend entry for %s appears %d times, want once", c, n)
		}
		if got := summaryNumber(t, section, "data-count", string(c)); got != r.Counts[c] {
			t.Errorf("summary shows %s %d, want %d", c, got, r.Counts[c])
		}
	}
	if got := summaryNumber(t, section, "data-total", "pairs"); got != r.Pairs {
		t.Errorf("summary shows %d pairs, want %d", got, r.Pairs)
	}
	if got := summaryNumber(t, section, "data-total", "drift"); got != r.Drift() {
		t.Errorf("summary shows %d drifted, want %d", got, r.Drift())
	}
}

func nonZero(m map[Category]int) map[Category]int {
	out := map[Category]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// sampleReport has a pair of every category, a source with two target
// Regions, a copy whose source is gone, and a rejected target that is not
// an account.
func sampleReport(listOK bool) *Report {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := New("plan", "111111111111", []string{"eu-west-1", "us-east-1"}, at)
	r.Sources = []Source{
		{ID: "ami-web1", Name: "web-1", Region: "eu-west-1", Recipe: "web", Created: at.Add(-48 * time.Hour)},
		{ID: "ami-web2", Name: "web-2", Region: "eu-west-1", Recipe: "web", Created: at.Add(-24 * time.Hour)},
		{ID: "ami-base", Name: "base-7", Region: "us-east-1", Created: at.Add(-72 * time.Hour)},
	}
	r.Accounts = []Account{
		{ID: "200000000001", Name: "prod-web", State: "ACTIVE", OU: "Production"},
		{ID: "200000000002", Name: "dev", State: "ACTIVE", OU: "Dev"},
		{ID: "200000000003", Name: "loose", State: "ACTIVE"},
		{ID: "200000000004", Name: "old", State: "SUSPENDED", OU: "Dev"},
	}
	add := func(src, acct, region string, c Category, reason string) *Item {
		r.Items = append(r.Items, Item{SourceImage: src, Account: acct, Region: region, Category: c, Reason: reason})
		return &r.Items[len(r.Items)-1]
	}
	add("ami-web1", "200000000001", "eu-west-1", Missing, "no copy")
	add("ami-web1", "200000000002", "eu-west-1", InProgress, "pending")
	it := add("ami-web1", "200000000003", "eu-west-1", Failed, "copy failed")
	it.Attempts, it.LastError, it.CopyImages = 2, "KMS key disabled", []string{"ami-c1"}
	add("ami-web2", "200000000001", "eu-west-1", Stuck, "gave up")
	add("ami-web2", "200000000002", "eu-west-1", Unencrypted, "volume not encrypted")
	add("ami-web2", "200000000003", "eu-west-1", WrongKey, "other key")
	add("ami-web2", "200000000004", "eu-west-1", RejectedTarget, "suspended")
	add("ami-base", "200000000001", "us-east-1", Duplicate, "two copies")
	add("ami-base", "200000000001", "eu-west-1", Unreachable, "access denied")
	add("ami-base", "200000000002", "us-east-1", OK, "good copy")
	add("ami-base", "200000000002", "eu-west-1", OK, "good copy")
	add("ami-base", "not-an-account", "us-east-1", RejectedTarget, "not an account id")
	add("ami-gone", "200000000002", "eu-west-1", Orphaned, "source gone")
	add("ami-gone", "200000000002", "eu-west-1", Orphaned, "source gone, second copy")
	for _, it := range r.Items {
		r.Counts[it.Category]++
		r.Pairs++
	}
	if !listOK {
		items := r.Items[:0]
		for _, it := range r.Items {
			if it.Category != OK {
				items = append(items, it)
			}
		}
		r.Items = items
	}
	r.Sort()
	return r
}

func render(t *testing.T, r *Report, opts ...HTMLOption) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, r, opts...); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	return b.String()
}

func TestWriteHTMLMatrix(t *testing.T) {
	empty := New("run", "111111111111", []string{"eu-west-1"}, time.Unix(0, 0))
	tests := []struct {
		name string
		r    *Report
		want []string
		not  []string
	}{
		{"every category, ok listed", sampleReport(true),
			[]string{"(not in the organisation)", "(source AMIs that no longer exist)", "(no OU)", `style="--n:2"`, `<i class="e">`},
			[]string{"counted but not listed"}},
		{"ok pairs counted only", sampleReport(false),
			[]string{"2 pair(s) are counted but not listed"}, nil},
		{"empty report", empty,
			[]string{"No source AMI matched"}, []string{`<div class="mx"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := render(t, tt.r)
			checkMatrix(t, sectionHTML(t, page, "report"), tt.r)
			for _, s := range tt.want {
				if !strings.Contains(page, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(page, s) {
					t.Errorf("page has %q", s)
				}
			}
		})
	}
}

func TestWriteHTMLOrder(t *testing.T) {
	page := render(t, sampleReport(true))
	// Recipes alphabetically (base-7 has no recipe: its name is its
	// group), newest source first within a recipe, gone sources last.
	assertOrder(t, page, `data-src="ami-base"`, `data-src="ami-web2"`, `data-src="ami-web1"`, `data-src="ami-gone"`)
	// OUs alphabetically, then accounts without an OU, then targets that
	// are not accounts; by name within an OU.
	assertOrder(t, page, `data-acct="200000000002"`, `data-acct="200000000004"`, `data-acct="200000000001"`,
		`data-acct="200000000003"`, `data-acct="not-an-account"`)
}

func assertOrder(t *testing.T, page string, parts ...string) {
	t.Helper()
	last := -1
	for _, p := range parts {
		i := strings.Index(page, p)
		if i < 0 {
			t.Fatalf("page lacks %q", p)
		}
		if i < last {
			t.Errorf("%q comes before the previous entry, want %v in order", p, parts)
		}
		last = i
	}
}

func TestWriteHTMLEscapes(t *testing.T) {
	const evil = `<script>alert(1)</script>"' onmouseover="alert(2)`
	r := sampleReport(true)
	r.Sources[0].Name = evil
	r.Sources[0].Recipe = evil
	r.Accounts[0].Name = evil
	r.Accounts[0].OU = evil
	r.Items[0].Reason = evil
	r.Items[0].LastError = evil
	r.Items[0].SourceName = evil
	r.Items = append(r.Items, Item{SourceImage: "ami-web1", Account: evil, Region: "eu-west-1", Category: RejectedTarget, Reason: "tag token " + evil})
	r.Counts, r.Pairs = recount(r), len(r.Items)
	page := render(t, r, HTMLTitle(evil))

	if n := strings.Count(strings.ToLower(page), "<script"); n != 1 {
		t.Errorf("page has %d <script> tags, want only its own", n)
	}
	for _, bad := range []string{"<script>alert", `" onmouseover=`, `' onmouseover=`, "onmouseover=\"alert"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the AMI name is not shown escaped")
	}
	// Every attribute value the matrix carries is a well-formed quoted
	// string: the cell count still equals the pairs.
	checkMatrix(t, sectionHTML(t, page, "report"), r)
}

func recount(r *Report) map[Category]int {
	c := map[Category]int{}
	for _, k := range Categories {
		c[k] = 0
	}
	for _, it := range r.Items {
		c[it.Category]++
	}
	return c
}

func TestWriteHTMLSelfContained(t *testing.T) {
	page := render(t, sampleReport(true), HTMLRunSummary(&Summary{RunID: "r1", Mode: "run", Status: StatusSucceeded,
		Actions: map[string]int{"copy": 3}, APICalls: map[string]int64{"CopyImage": 3}}))
	for _, ref := range []string{"http://", "https://", " src=", "@import", "url(", `rel="stylesheet"`} {
		if strings.Contains(page, ref) {
			t.Errorf("page refers to something outside itself: %q", ref)
		}
	}
	for _, want := range []string{"<style>", "<script>", "copy 3", "succeeded"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestWriteHTMLPage(t *testing.T) {
	before, after := sampleReport(true), sampleReport(true)
	after.Items = after.Items[:3]
	after.Counts, after.Pairs = recount(after), 3
	var b bytes.Buffer
	err := WriteHTMLPage(&b, "demo", []Section{
		{ID: "before", Title: "Before", Report: before},
		{ID: "run", Title: "Run", Summary: &Summary{RunID: "r1", Status: StatusPartial, Errors: []string{"account 2 unreachable"}}},
		{ID: "after", Title: "After", Report: after},
	})
	if err != nil {
		t.Fatal(err)
	}
	page := b.String()
	checkMatrix(t, sectionHTML(t, page, "before"), before)
	checkMatrix(t, sectionHTML(t, page, "after"), after)
	if run := sectionHTML(t, page, "run"); len(countCells(run)) != 0 || !strings.Contains(run, "account 2 unreachable") {
		t.Errorf("run section: want the summary and no cell, got %q", run)
	}

	err = WriteHTMLPage(io.Discard, "demo", []Section{{ID: "x", Report: before}, {ID: "x", Report: after}})
	if err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("two sections with one id: err = %v, want it named", err)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 200000: "200,000", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestWriteFormatHTML(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, sampleReport(true), FormatHTML, Options{}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "<!DOCTYPE html>") {
		t.Errorf("Write(html) does not start a page: %.40q", b.String())
	}
}

// syntheticReport is an organisation at the scale the matrix must stay
// usable at: accounts x sources pairs, in 20 OUs and 40 recipes, with a
// sprinkle of drift.
func syntheticReport(accounts, sources int) *Report {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := New("plan", "111111111111", []string{"eu-west-1"}, at)
	for a := range accounts {
		r.Accounts = append(r.Accounts, Account{ID: fmt.Sprintf("2%011d", a), Name: fmt.Sprintf("team-%04d", a),
			State: "ACTIVE", OU: fmt.Sprintf("ou-%02d", a%20)})
	}
	r.Items = make([]Item, 0, accounts*sources)
	for s := range sources {
		src := Source{ID: fmt.Sprintf("ami-%017x", s), Name: fmt.Sprintf("recipe-%02d-%d", s%40, s), Region: "eu-west-1",
			Recipe: fmt.Sprintf("recipe-%02d", s%40), Created: at.Add(-time.Duration(s) * time.Hour), Targets: accounts}
		r.Sources = append(r.Sources, src)
		for a := range accounts {
			it := Item{SourceImage: src.ID, SourceName: src.Name, SourceRegion: src.Region, Account: r.Accounts[a].ID,
				AccountName: r.Accounts[a].Name, Region: "eu-west-1", Category: OK, Action: "none"}
			switch (a*7 + s*13) % 50 {
			case 0:
				it.Category, it.Reason, it.Action, it.Attempts = Missing, "no encrypted copy in the account and Region", "copy", 1
			case 1:
				it.Category, it.Reason, it.Attempts, it.LastError = Failed, "copy ami-0123 failed", 2, "KMS key disabled"
			default:
				copyID := fmt.Sprintf("ami-%08x%08x", s, a)
				it.Reason, it.CopyImages = "encrypted copy "+copyID+" is available", []string{copyID}
			}
			r.Items = append(r.Items, it)
			r.Counts[it.Category]++
			r.Pairs++
		}
	}
	r.Sort()
	return r
}

func TestWriteHTMLLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large matrix")
	}
	r := syntheticReport(1000, 200)
	page := render(t, r)
	checkMatrix(t, sectionHTML(t, page, "report"), r)
}

// BenchmarkWriteHTML renders a 1,000 accounts x 200 AMIs matrix (200,000
// cells). Run: go test -run '^$' -bench WriteHTML -benchmem ./reconcile/report/
func BenchmarkWriteHTML(b *testing.B) {
	r := syntheticReport(1000, 200)
	var size int
	for b.Loop() {
		var cw countingWriter
		if err := WriteHTML(&cw, r); err != nil {
			b.Fatal(err)
		}
		size = int(cw)
	}
	b.ReportMetric(float64(size), "page-bytes")
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
