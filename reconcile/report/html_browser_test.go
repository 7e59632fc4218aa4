package report

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"
)

// TestHTMLInBrowser checks the demo's page as headless Chromium rendered
// it (the DOM after the page's script ran), against the demo's JSON
// output: one cell per pair, cells per category equal to the counts, the
// legend, and the summary numbers. scripts/render-html.sh renders the page
// and runs this test; scripts/test.sh calls that script.
func TestHTMLInBrowser(t *testing.T) {
	domPath := os.Getenv("AMICOPIER_HTML_DOM")
	if domPath == "" {
		t.Skip("SKIPPED: no browser-rendered DOM (AMICOPIER_HTML_DOM is unset); run scripts/render-html.sh for the browser test of the HTML report")
	}
	jsonPath := os.Getenv("AMICOPIER_HTML_JSON")
	if jsonPath == "" {
		t.Fatal("AMICOPIER_HTML_DOM is set but AMICOPIER_HTML_JSON (the demo's --output json) is not")
	}
	dom, err := os.ReadFile(domPath)
	if err != nil {
		t.Fatalf("read the dumped DOM: %v", err)
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatalf("read the demo's JSON report: %v", err)
	}
	var outcome struct {
		Before *Report `json:"before"`
		After  *Report `json:"after"`
	}
	if err := json.Unmarshal(raw, &outcome); err != nil {
		t.Fatalf("decode %s: %v", jsonPath, err)
	}
	if outcome.Before == nil || outcome.After == nil {
		t.Fatalf("%s has no before or after report", jsonPath)
	}
	page := string(dom)
	for _, s := range []struct {
		id string
		r  *Report
	}{{"before", outcome.Before}, {"after", outcome.After}} {
		t.Run(s.id, func(t *testing.T) {
			section := sectionHTML(t, page, s.id)
			// The JSON report lists drift only; the page lists every pair,
			// so its cells must match the counts.
			checkCells(t, section, s.r.Counts)
			checkSummary(t, section, s.r)
			// The inline script ran and filled the matrix's status line.
			if !scriptRan.MatchString(section) {
				t.Error("the matrix status line is empty: the page's script did not run")
			}
		})
	}
}

var scriptRan = regexp.MustCompile(`class="status"[^>]*>\d+ of \d+ source AMIs`)
