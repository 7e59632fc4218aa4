package report

import (
	"bufio"
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"
)

// The check page is one self-contained HTML document like the drift
// matrix: inline CSS, no script, font or image fetched from anywhere.
// Accounts run down the side and Regions across; each checked account and
// Region is one cell (an element carrying data-check: "ok" or the kind of
// its worst finding), coloured and lettered by that finding, and the
// findings follow with their fixes. html/template escapes every value
// taken from AWS.

//go:embed check.tmpl
var checkTemplateText string

var checkTemplate = template.Must(template.New("check.tmpl").Funcs(template.FuncMap{
	"thousands": thousands,
}).Parse(checkTemplateText))

// findingStyle is how a finding kind looks: a glyph (so the page reads in
// greyscale) and colours from the drift matrix's colour-blind-safe
// palette. The colours are constants of this file, never report data.
type findingStyle struct {
	Glyph, Label           string
	Background, Foreground template.CSS
}

var findingStyles = map[FindingKind]findingStyle{
	RoleNotAssumable:        {"?", "role not assumable", "#f1e88f", "#4f4800"},
	KeyNotFound:             {"N", "key not found", "#d55e00", "#ffffff"},
	KeyDisabled:             {"X", "key disabled", "#a34a7c", "#ffffff"},
	KeyPendingDeletion:      {"D", "key pending deletion", "#a34a7c", "#ffffff"},
	KeyUnavailable:          {"U", "key unavailable", "#a34a7c", "#ffffff"},
	KeyNotSymmetric:         {"S", "key not symmetric", "#2b2b2b", "#ffffff"},
	KeyUseDenied:            {"K", "key use denied", "#0072b2", "#ffffff"},
	SourceKeyUnusable:       {"Z", "source key unusable", "#e69f00", "#2b2b2b"},
	AutoScalingGrantMissing: {"A", "Auto Scaling grant missing", "#cde5f5", "#0b4a75"},
	CopyNotAuthorized:       {"C", "CopyImage not authorised", "#f6d8a0", "#5e3b00"},
}

var okStyle = findingStyle{"✓", "no problem", "#cfe9de", "#0b5a41"}

type checkTile struct {
	Kind  FindingKind
	Style findingStyle
	Count int
}

type checkCell struct {
	// Kind is "ok", a finding kind, or "" where the account has no pair.
	Kind  string
	Style findingStyle
	Title string
}

type checkRow struct {
	Account, Name string
	Cells         []checkCell
}

type checkPage struct {
	Title, Headline, Generated, GeneratedISO string
	R                                        *CheckReport
	Tiles                                    []checkTile
	Regions                                  []string
	Rows                                     []checkRow
	OK                                       findingStyle
	Calls                                    int
}

// WriteCheckHTML renders a check report as one self-contained HTML page.
func WriteCheckHTML(w io.Writer, r *CheckReport) error {
	p := checkPage{
		Title: "amicopier preflight check", Headline: checkHeadline(r), R: r, OK: okStyle,
		Generated: r.GeneratedAt.UTC().Format("2006-01-02 15:04 UTC"), GeneratedISO: r.GeneratedAt.UTC().Format(time.RFC3339),
		Calls: int(sumCalls(r.APICalls)),
	}
	for _, k := range FindingKinds {
		p.Tiles = append(p.Tiles, checkTile{Kind: k, Style: findingStyles[k], Count: r.Counts[k]})
	}
	rows := map[string]*checkRow{}
	var order []string
	for _, t := range r.Checked {
		if !slices.Contains(p.Regions, t.Region) {
			p.Regions = append(p.Regions, t.Region)
		}
		if rows[t.Account] == nil {
			rows[t.Account] = &checkRow{Account: t.Account, Name: t.AccountName}
			order = append(order, t.Account)
		}
	}
	slices.Sort(p.Regions)
	for _, a := range order {
		row := rows[a]
		row.Cells = make([]checkCell, len(p.Regions))
		for i, region := range p.Regions {
			row.Cells[i] = r.cell(a, region)
		}
		p.Rows = append(p.Rows, *row)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := checkTemplate.Execute(bw, p); err != nil {
		return fmt.Errorf("render html check report: %w", err)
	}
	return bw.Flush()
}

// cell is the matrix cell of an account and Region: its worst finding,
// with every finding's problem in the title.
func (r *CheckReport) cell(account, region string) checkCell {
	checked := slices.ContainsFunc(r.Checked, func(t CheckedTarget) bool { return t.Account == account && t.Region == region })
	if !checked {
		return checkCell{}
	}
	var worst *Finding
	var titles []string
	for i := range r.Findings {
		f := &r.Findings[i]
		if f.Account != account || (f.Region != "" && f.Region != region) {
			continue
		}
		titles = append(titles, string(f.Kind)+": "+f.Problem)
		if worst == nil || kindRank(f.Kind) < kindRank(worst.Kind) {
			worst = f
		}
	}
	if worst == nil {
		return checkCell{Kind: "ok", Style: okStyle, Title: account + " " + region + ": no problem found"}
	}
	return checkCell{Kind: string(worst.Kind), Style: findingStyles[worst.Kind], Title: cmp.Or(strings.Join(titles, "\n"), string(worst.Kind))}
}
