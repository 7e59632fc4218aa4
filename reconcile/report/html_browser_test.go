package report

import (
	"encoding/json"
	"html"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestHTMLInBrowser checks the demo's page as headless Chromium rendered
// it (the DOM after the page's script ran), against the demo's JSON
// output with --include-ok: one cell per listed pair, cells per category
// equal to the counts, every copy of the JSON in the page, the legend, and
// the summary numbers. scripts/render-html.sh renders the page and runs
// this test; scripts/test.sh calls that script.
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
			// The page lists every pair, so its cells must match the
			// counts; the JSON, with --include-ok, lists them too.
			checkCells(t, section, s.r.Counts)
			if !s.r.IncludesOK || len(s.r.Items) != s.r.Pairs {
				t.Fatalf("the JSON report lists %d of %d pairs (includes_ok %v): run demo --output json --include-ok", len(s.r.Items), s.r.Pairs, s.r.IncludesOK)
			}
			// The footer's claim: the page carries the JSON's data, the
			// copies of each pair with their state included.
			for _, it := range s.r.Items {
				for _, c := range it.Copies {
					if !strings.Contains(section, c.ImageID+"|"+c.State+"|") {
						t.Errorf("copy %s (%s) of %s/%s/%s is not in the page", c.ImageID, c.State, it.SourceImage, it.Account, it.Region)
					}
				}
			}
			checkSummary(t, section, s.r)
			// The inline script ran and filled the matrix's status line.
			if !scriptRan.MatchString(section) {
				t.Error("the matrix status line is empty: the page's script did not run")
			}
		})
	}
}

var scriptRan = regexp.MustCompile(`class="status"[^>]*>\d+ of \d+ source AMIs`)

// layoutProbe is what testdata/layout-probe.js measured in the browser.
type layoutProbe struct {
	Viewport    int      `json:"viewport"`
	ScrollWidth int      `json:"scrollWidth"`
	Overflowing []string `json:"overflowing"`
	Headers     int      `json:"headers"`
	CutHeaders  []string `json:"cutHeaders"`
	Title       string   `json:"title"`
}

var (
	probeJSON  = regexp.MustCompile(`(?s)<pre id="layout-probe">(.*?)</pre>`)
	observedAt = regexp.MustCompile(`<time datetime="([^"]+)"`)
)

// TestHTMLLayoutInBrowser checks the demo's page laid out by headless
// Chromium in a 700-pixel-wide window, as the layout probe measured it:
// no page-wide horizontal scroll (only the matrix and the list scroll,
// inside their boxes), every account header shown in full, and a <title>
// naming the source account and the time of the observation.
// scripts/render-html.sh runs it.
func TestHTMLLayoutInBrowser(t *testing.T) {
	path := os.Getenv("AMICOPIER_HTML_LAYOUT")
	if path == "" {
		t.Skip("SKIPPED: no browser-measured layout (AMICOPIER_HTML_LAYOUT is unset); run scripts/render-html.sh for the browser test of the HTML report")
	}
	dom, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := probeJSON.FindSubmatch(dom)
	if m == nil {
		t.Fatalf("%s has no layout probe output: the probe script did not run", path)
	}
	var p layoutProbe
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &p); err != nil {
		t.Fatalf("layout probe output %q: %v", m[1], err)
	}
	if p.Viewport != 700 {
		t.Fatalf("the window was %d pixels wide, want 700", p.Viewport)
	}
	if p.ScrollWidth > p.Viewport || len(p.Overflowing) > 0 {
		t.Errorf("the page scrolls sideways at %d px: %d px wide; elements past the right edge: %v", p.Viewport, p.ScrollWidth, p.Overflowing)
	}
	if p.Headers == 0 {
		t.Error("no account header was measured")
	}
	if len(p.CutHeaders) > 0 {
		t.Errorf("account headers cut off: %q", p.CutHeaders)
	}
	// The title names the source account and the time the page's first
	// report says it observed (the page's own, not another demo run's).
	obs := observedAt.FindSubmatch(dom)
	if obs == nil {
		t.Fatal("the page shows no observation time")
	}
	at, err := time.Parse(time.RFC3339, string(obs[1]))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"source account 111111111111", at.UTC().Format("2006-01-02 15:04 UTC")} {
		if !strings.Contains(p.Title, want) {
			t.Errorf("the page title %q does not name %q", p.Title, want)
		}
	}
}
