package report

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWriteHTMLNaturalOrder: recipes, OUs, accounts and sources sort the
// way people count: golden-2 before golden-10.
func TestWriteHTMLNaturalOrder(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := New("plan", "111111111111", []string{"eu-west-1"}, at)
	for _, n := range []string{"10", "2", "1"} {
		r.Sources = append(r.Sources, Source{ID: "ami-g" + n, Name: "golden-" + n, Region: "eu-west-1", Recipe: "golden-" + n})
		r.Accounts = append(r.Accounts, Account{ID: "20000000000" + strconv.Itoa(len(r.Accounts)), Name: "team-" + n, OU: "ou-" + n})
	}
	// Two sources of one recipe created at the same time: by name.
	r.Sources = append(r.Sources, Source{ID: "ami-w10", Name: "web-10", Region: "eu-west-1", Recipe: "web"},
		Source{ID: "ami-w9", Name: "web-9", Region: "eu-west-1", Recipe: "web"})
	for _, s := range r.Sources {
		for _, a := range r.Accounts {
			r.Items = append(r.Items, Item{SourceImage: s.ID, Account: a.ID, Region: "eu-west-1", Category: OK})
			r.Counts[OK]++
			r.Pairs++
		}
	}
	r.Sort()
	page := render(t, r)
	assertOrder(t, page, `data-recipe="golden-1"`, `data-recipe="golden-2"`, `data-recipe="golden-10"`, `data-recipe="web"`)
	assertOrder(t, page, `data-ou="ou-1"`, `data-ou="ou-2"`, `data-ou="ou-10"`)
	assertOrder(t, page, `data-name="team-1"`, `data-name="team-2"`, `data-name="team-10"`)
	assertOrder(t, page, `data-src="ami-w9"`, `data-src="ami-w10"`)
}

var headH = regexp.MustCompile(`--headh:(\d+)px`)

// TestWriteHTMLHeadersFit: the account headers are as tall as the
// longest name needs, and every header can show its whole name on hover.
func TestWriteHTMLHeadersFit(t *testing.T) {
	height := func(name string) int {
		r := sampleReport(true)
		r.Accounts[0].Name = name
		page := render(t, r)
		m := headH.FindStringSubmatch(page)
		if m == nil {
			t.Fatal("the matrix sets no header height")
		}
		if !strings.Contains(page, `data-label="`+name+`"`) {
			t.Errorf("the header of %q carries no data-label for the hover", name)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	// The sample's longest label is "not-an-account", 14 letters.
	short, long := height("ab"), height("security-tooling-production")
	if short != 14*headerCharPixels+headerPadding || long != 27*headerCharPixels+headerPadding {
		t.Errorf("header heights %d (longest label 14 letters) and %d (27 letters), want %d and %d",
			short, long, 14*headerCharPixels+headerPadding, 27*headerCharPixels+headerPadding)
	}
	if h := headerHeight([]*colView{{ID: "1", Name: "a"}}); h != minHeaderHeight {
		t.Errorf("header height %d for a one-letter name, want the floor %d", h, minHeaderHeight)
	}
	if h := height(strings.Repeat("x", 200)); h != maxHeaderHeight {
		t.Errorf("header height %d for a 200-letter name, want the cap %d", h, maxHeaderHeight)
	}
	page := render(t, sampleReport(true))
	if !strings.Contains(page, ".mx .acct:hover::after") || !strings.Contains(page, "content: attr(data-label)") {
		t.Error("no hover rule shows a header's whole name")
	}
}

// TestWriteHTMLTitleNamesAccountAndTime: the <title> (what a browser tab
// or an attachment list shows) names the source account and the time.
func TestWriteHTMLTitleNamesAccountAndTime(t *testing.T) {
	page := render(t, sampleReport(true))
	want := "<title>amicopier drift report: source account 111111111111, 2026-01-02 03:04 UTC</title>"
	if !strings.Contains(page, want) {
		t.Errorf("page lacks %s", want)
	}
}

// TestWriteHTMLCarriesCopies: a pair's copies, their state and key, are
// in the page (keys once, in a dictionary), as the footer says.
func TestWriteHTMLCarriesCopies(t *testing.T) {
	r := sampleReport(true)
	const arn = "arn:aws:kms:eu-west-1:200000000002:key/0000aaaa-1111-2222-3333-444455556666"
	n := 0
	for i := range r.Items {
		if r.Items[i].Category == OK {
			id := "ami-ok" + strconv.Itoa(n)
			r.Items[i].CopyImages = []string{id}
			r.Items[i].Copies = []Copy{{ImageID: id, State: "available", Encrypted: true, KMSKey: arn, KMSKeyFrom: KeySnapshots}}
			n++
		}
	}
	page := render(t, r)
	if strings.Count(page, arn) != 1 || !strings.Contains(page, `data-keys="`+arn+`"`) {
		t.Errorf("the key ARN appears %d times, want once, in data-keys", strings.Count(page, arn))
	}
	for i := range n {
		if want := `data-copies="ami-ok` + strconv.Itoa(i) + `|available|0"`; !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if !strings.Contains(page, "--output json --include-ok</code>, carries the same data") {
		t.Error("the footer does not name the JSON that carries the page's data")
	}
}
