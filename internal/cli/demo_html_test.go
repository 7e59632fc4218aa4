package cli_test

import (
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cli"
	"github.com/amicopier/amicopier/reconcile/report"
)

// cellAttr finds the matrix cells of the rendered page: the renderer
// writes data-cat first on every cell (span, or i for a per-Region
// sub-cell), and nowhere else on a span or an i.
var cellAttr = regexp.MustCompile(`<(?:span|i) data-cat="([a-z_]+)"`)

// TestDemoHTMLMatchesJSON is the "must show": demo --output html
// is one self-contained page whose after section has one cell per pair of
// demo --output json's after report, category by category.
func TestDemoHTMLMatchesJSON(t *testing.T) {
	code, page, errOut := run(t, "demo", "--output", "html")
	if code != cli.ExitOK {
		t.Fatalf("demo html exit %d: %s", code, errOut)
	}
	code, out, errOut := run(t, "demo", "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("demo json exit %d: %s", code, errOut)
	}
	var outcome struct {
		Before, After *report.Report
	}
	if err := json.Unmarshal([]byte(out), &outcome); err != nil {
		t.Fatalf("demo json: %v", err)
	}

	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.Contains(page, "</html>") {
		t.Fatalf("not one HTML page: %.60q ... %.60q", page, page[max(0, len(page)-60):])
	}
	for _, ref := range []string{"http://", "https://", " src=", "@import", "url("} {
		if strings.Contains(page, ref) {
			t.Errorf("page refers to something outside itself: %q", ref)
		}
	}
	for _, s := range []struct {
		id string
		r  *report.Report
	}{{"before", outcome.Before}, {"after", outcome.After}} {
		start := strings.Index(page, `<section class="report" id="`+s.id+`"`)
		if start < 0 {
			t.Fatalf("no %s section", s.id)
		}
		section := page[start : start+strings.Index(page[start:], "</section>")]
		cells := map[report.Category]int{}
		total := 0
		for _, m := range cellAttr.FindAllStringSubmatch(section, -1) {
			cells[report.Category(m[1])]++
			total++
		}
		want := map[report.Category]int{}
		for c, n := range s.r.Counts {
			if n > 0 {
				want[c] = n
			}
		}
		if total != s.r.Pairs || !maps.Equal(cells, want) {
			t.Errorf("%s: %d cells %v, want %d pairs %v", s.id, total, cells, s.r.Pairs, want)
		}
	}
}
