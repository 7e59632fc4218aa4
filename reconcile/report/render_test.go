package report

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/amicopier/amicopier/internal/golden"
)

// textReport is what a plan of a small organisation reports: every kind
// of row a text renderer must lay out, with names, long reasons, an action
// that is two actions, a copy with its key, and two sources of one name.
func textReport(includeOK bool) *Report {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	r := New("plan", "111111111111", []string{"eu-west-1", "us-east-1"}, at)
	add := func(src, name, region, acct, acctName, targetRegion string, c Category, action, reason string) *Item {
		r.Items = append(r.Items, Item{SourceImage: src, SourceName: name, SourceRegion: region, Account: acct, AccountName: acctName,
			Region: targetRegion, Category: c, Action: action, Reason: reason})
		r.Counts[c]++
		r.Pairs++
		return &r.Items[len(r.Items)-1]
	}
	add("ami-00000010000000000", "ubuntu-jammy-web-412", "eu-west-1", "200000000002", "prod-api", "eu-west-1", Missing, "copy",
		"no encrypted copy in the account and Region")
	it := add("ami-00000010000000000", "ubuntu-jammy-web-412", "eu-west-1", "200000000004", "staging-web", "eu-west-1", Failed,
		"deregister_failed+copy", "copy ami-00000090000000000 failed (Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state); attempt 2 of 3 is due")
	it.Attempts, it.LastError, it.CopyImages = 1, "Client.InvalidKMSKey.InvalidState", []string{"ami-00000090000000000"}
	it.Copies = []Copy{{ImageID: "ami-00000090000000000", State: "failed", Encrypted: true, KMSKey: "alias/amicopier", KMSKeyFrom: KeyRequested, Managed: true}}
	add("ami-00000010000000000", "ubuntu-jammy-web-412", "eu-west-1", "200000000010", "legacy-batch", "eu-west-1", RejectedTarget, "none",
		"account 200000000010 (from rule ubuntu-to-workloads via ou-sim0-00000001) is SUSPENDED, not ACTIVE")
	add("ami-00000020000000000", "windows-2022-base-31", "us-east-1", "200000000007", "security-tooling", "us-east-1", Missing, "copy",
		"no encrypted copy in the account and Region")
	add("ami-00000020000000000", "windows-2022-base-31", "us-east-1", "200000000009", "", "us-east-1", Unreachable, "none",
		"cannot work in account 200000000009 (us-east-1): AccessDenied: not authorized to perform sts:AssumeRole; check the copier role and its trust policy")
	// Two sources named alike (one per Region): the short label tells
	// them apart by the end of the id.
	add("ami-0aaaaaaaaaaa11111", "golden-base", "eu-west-1", "200000000002", "prod-api", "eu-west-1", Unencrypted, "none",
		"copy ami-000000d0000000000: volume /dev/xvda (snap-000000d0000000000) is not encrypted; amicopier never deletes such a copy, remove it by hand to get an encrypted one")
	add("ami-0bbbbbbbbbbb22222", "golden-base", "us-east-1", "200000000002", "prod-api", "us-east-1", WrongKey, "none",
		"volume /dev/xvda is encrypted with arn:aws:kms:us-east-1:200000000002:key/0000aaaa-1111-2222-3333-444455556666, configured key is alias/amicopier")
	ok := add("ami-00000020000000000", "windows-2022-base-31", "us-east-1", "200000000008", "sandbox-alice", "us-east-1", OK, "none",
		"encrypted copy ami-00000150000000000 is available")
	ok.CopyImages = []string{"ami-00000150000000000"}
	ok.Copies = []Copy{{ImageID: "ami-00000150000000000", State: "available", Encrypted: true, KMSKey: "alias/amicopier", KMSKeyFrom: KeyRequested, Managed: true}}
	if !includeOK {
		r.Items = r.Items[:len(r.Items)-1]
	}
	r.IncludesOK = includeOK
	r.Sort()
	return r
}

func renderText(t *testing.T, format string, r *Report, o Options) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, r, format, o); err != nil {
		t.Fatalf("Write(%s): %v", format, err)
	}
	return b.String()
}

// TestWriteTableFits renders the table at the widths people use: every
// line fits, and the layout is the golden one.
func TestWriteTableFits(t *testing.T) {
	tests := []struct {
		golden    string
		width     int
		includeOK bool
	}{
		{"table-wide.golden", 0, false},
		{"table-160.golden", 160, false},
		{"table-100.golden", 100, false},
		{"table-60.golden", 60, false},
		{"table-inventory-100.golden", 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got := renderText(t, FormatTable, textReport(tt.includeOK), Options{Width: tt.width})
			for i, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				if n := utf8.RuneCountInString(line); tt.width > 0 && n > tt.width {
					t.Errorf("line %d is %d columns wide, more than %d: %q", i+1, n, tt.width, line)
				}
			}
			golden.Check(t, tt.golden, got)
		})
	}
}

// TestWriteTableKeepsEverything: fitting shortens labels, but every id
// is still printed (in the legend), and the wide layout prints every pair
// on one line.
func TestWriteTableKeepsEverything(t *testing.T) {
	r := textReport(false)
	narrow := renderText(t, FormatTable, r, Options{Width: 100})
	for _, it := range r.Items {
		for _, s := range []string{it.SourceImage, it.Account} {
			if !strings.Contains(narrow, s) {
				t.Errorf("the fitted table lost %q", s)
			}
		}
	}
	if !strings.Contains(narrow, "golden-base (…a11111)") || !strings.Contains(narrow, "golden-base (…b22222)") {
		t.Errorf("two sources named golden-base are not told apart:\n%s", narrow)
	}
	wide := renderText(t, FormatTable, r, Options{})
	for _, it := range r.Items {
		found := false
		for l := range strings.Lines(wide) {
			found = found || strings.Contains(l, it.Reason) && strings.Contains(l, it.SourceImage) && strings.Contains(l, it.Account) &&
				strings.Contains(l, it.Region)
		}
		if !found {
			t.Errorf("the wide table has no line with the whole pair %s/%s/%s", it.SourceImage, it.Account, it.Region)
		}
	}
}

func TestWriteMarkdownGolden(t *testing.T) {
	golden.Check(t, "markdown.golden", renderText(t, FormatMarkdown, textReport(false), Options{}))
	golden.Check(t, "markdown-inventory.golden", renderText(t, FormatMarkdown, textReport(true), Options{HeadingLevel: 3, Title: "Inventory"}))
}

// TestWriteMarkdownSummarises: a ticket gets a summary, not 20,000 rows:
// at most MarkdownItems pairs per category and as many accounts, and the
// rest counted; every pair with a negative MarkdownItems.
func TestWriteMarkdownSummarises(t *testing.T) {
	r := bigReport(20000)
	got := renderText(t, FormatMarkdown, r, Options{})
	if len(got) > 64<<10 {
		t.Errorf("the Markdown summary of %d pairs is %d bytes, want at most 64 KiB", r.Pairs, len(got))
	}
	rows := strings.Count(got, "\n| ami-")
	if want := 2 * DefaultMarkdownItems; rows != want {
		t.Errorf("%d pair rows, want %d (the first %d of each of the two categories)", rows, want, DefaultMarkdownItems)
	}
	for _, s := range []string{
		"**20,000 of 20,000 pair(s) drifted.**",
		"_… and 9,980 more `missing` pair(s)",
		"_… and 9,980 more `failed` pair(s)",
		"### Drift per account",
		"_… and 980 more account(s) with 19,600 drifted pair(s)._",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("summary lacks %q", s)
		}
	}
	all := renderText(t, FormatMarkdown, r, Options{MarkdownItems: -1})
	if rows := strings.Count(all, "\n| ami-"); rows != r.Pairs {
		t.Errorf("with every pair asked for: %d rows, want %d", rows, r.Pairs)
	}
}

// bigReport has n drifted pairs over 1,000 accounts, half missing and
// half failed.
func bigReport(n int) *Report {
	r := New("plan", "111111111111", []string{"eu-west-1"}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := range n {
		c := Missing
		if i%2 == 1 {
			c = Failed
		}
		r.Items = append(r.Items, Item{SourceImage: fmt.Sprintf("ami-%017x", i/1000), SourceName: fmt.Sprintf("golden-%d", i/1000),
			Account: fmt.Sprintf("2%011d", i%1000), AccountName: fmt.Sprintf("team-%d", i%1000), Region: "eu-west-1",
			Category: c, Action: "copy", Reason: "no encrypted copy in the account and Region"})
		r.Counts[c]++
		r.Pairs++
	}
	r.Sort()
	return r
}

func TestWriteSummaryTableFits(t *testing.T) {
	s := &Summary{RunID: "20260101T000000Z-0123abcd", Trigger: "cli", Mode: "run", Status: StatusPartial, DurationSeconds: 12.3,
		Actions:  map[string]int{"copy": 16, "deregister_failed": 1, "share_launch_permission": 4, "share_snapshot": 5},
		APICalls: map[string]int64{"AssumeRole": 9, "CopyImage": 16, "DescribeImages": 12, "ListOrganizationalUnitsForParent": 4, "ModifySnapshotAttribute": 5},
		Errors:   []string{"pair ami-0123/200000000004/eu-west-1: not copied: InvalidParameterValue: the KMS key alias/amicopier does not exist in 200000000004"},
		Unreachable: []UnreachableAccount{{Account: "200000000009", Regions: []string{"eu-west-1", "us-east-1"},
			Reason: "cannot work in account 200000000009 (eu-west-1): AccessDenied"}},
		UnreachableCount: 1, ErrorCount: 1,
	}
	var b bytes.Buffer
	if err := WriteSummaryTable(&b, s, Options{Width: 80}); err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(b.String()) {
		if n := utf8.RuneCountInString(strings.TrimSuffix(line, "\n")); n > 80 {
			t.Errorf("line of %d columns: %q", n, line)
		}
	}
	golden.Check(t, "summary-80.golden", b.String())
	b.Reset()
	if err := WriteSummaryMarkdown(&b, s); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "summary.md.golden", b.String())
}
