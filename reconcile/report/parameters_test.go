package report

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// parameterReport is a small report with parameters in several states and
// the events a dry run would send.
func parameterReport(includeOK bool) *Report {
	r := New("plan", "111111111111", []string{"eu-west-1"}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	r.IncludesOK = includeOK
	r.Parameters = []Parameter{
		{Account: "200000000002", AccountName: "prod-api", Region: "eu-west-1", Name: "/golden/web/latest", State: ParamStale, Action: "update",
			Value: "ami-0000000000000000a", Want: "ami-0000000000000000b", Reason: "names ami-0000000000000000a, a copy of the older build <x>"},
		{Account: "200000000001", AccountName: "prod-web", Region: "eu-west-1", Name: "/golden/web/latest", State: ParamForeign, Action: "none", Reason: "amicopier did not create it"},
		{Account: "200000000001", AccountName: "prod-web", Region: "eu-west-1", Name: "/golden/base/latest", State: ParamMissing, Action: "create", Reason: "no parameter"},
	}
	r.ParameterCounts = map[ParameterState]int{ParamStale: 1, ParamForeign: 1, ParamMissing: 1, ParamOK: 4}
	if includeOK {
		r.Parameters = append(r.Parameters, Parameter{Account: "200000000002", Region: "eu-west-1", Name: "/golden/base/latest", State: ParamOK, Action: "none", Reason: "names the newest"})
		r.ParameterCounts[ParamOK] = 1
	}
	r.Events = &EventCounts{Bus: "images", WouldPublish: map[string]int{"amicopier Run Finished": 1, "amicopier Copy Available": 2}}
	r.Sort()
	return r
}

func TestParametersInTextReports(t *testing.T) {
	r := parameterReport(false)
	var b bytes.Buffer
	if err := WriteTable(&b, r, Options{Width: 200}); err != nil {
		t.Fatal(err)
	}
	table := b.String()
	for _, want := range []string{
		"Parameters (SSM):", "7 SSM parameter(s): missing 1, stale 1, foreign 1, ok 4.",
		"200000000002 (prod-api) eu-west-1 /golden/web/latest: stale [update]: names ami-0000000000000000a",
		"200000000001 (prod-web) eu-west-1 /golden/web/latest: foreign: amicopier did not create it",
		"Events to images: would publish amicopier Copy Available 2, amicopier Run Finished 1",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// Parameters are listed account by account.
	if strings.Index(table, "200000000001 (prod-web) eu-west-1 /golden/base") > strings.Index(table, "200000000002") {
		t.Errorf("parameters out of order:\n%s", table)
	}
	b.Reset()
	if err := WriteMarkdown(&b, r, Options{MarkdownItems: 1}); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{"### SSM parameters", "**stale** (1)", "**foreign** (1)", "older build &lt;x&gt;", "Events to images"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "**ok**") {
		t.Errorf("markdown lists ok parameters the report does not:\n%s", md)
	}
	// A report without parameters says nothing of them.
	b.Reset()
	if err := WriteTable(&b, New("plan", "111111111111", []string{"eu-west-1"}, time.Now()), Options{}); err != nil || strings.Contains(b.String(), "Parameters") {
		t.Errorf("an empty report: %v\n%s", err, b.String())
	}
}

func TestParametersInTheMatrix(t *testing.T) {
	for _, includeOK := range []bool{false, true} {
		r := parameterReport(includeOK)
		var b bytes.Buffer
		if err := WriteHTML(&b, r); err != nil {
			t.Fatal(err)
		}
		page := b.String()
		if n := strings.Count(page, "<td data-param="); n != len(r.Parameters) {
			t.Errorf("include ok %v: %d parameter cells, want %d", includeOK, n, len(r.Parameters))
		}
		if n := strings.Count(page, `<td data-param="stale"`); n != 1 {
			t.Errorf("%d stale cells", n)
		}
		if cats := countCells(page); len(cats) != 0 {
			t.Errorf("parameter cells carry data-cat: %v", cats)
		}
		if !strings.Contains(page, "older build &lt;x&gt;") || strings.Contains(page, "older build <x>") {
			t.Error("a reason is not escaped")
		}
		if unlisted := strings.Contains(page, "ok parameter(s) are counted but not listed"); unlisted == includeOK {
			t.Errorf("include ok %v: the note on unlisted ok parameters is wrong", includeOK)
		}
		// Two rows (base, web) and two account columns.
		if strings.Count(page, "<tr><th><code>/golden/") != 2 || strings.Count(page, `<th class="acct"`) != 2 {
			t.Errorf("the grid's rows or columns are wrong")
		}
	}
}
