package termtable

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func render(t *testing.T, width int, cols []Column, rows [][]string) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, width, cols, rows); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestWrite(t *testing.T) {
	cols := []Column{
		{Header: "CATEGORY", Min: 99},
		{Header: "NAME", Min: 6},
		{Header: "ACTION", Min: 8, Wrap: true},
		{Header: "REASON", Min: 20, Wrap: true, Below: true},
	}
	rows := [][]string{
		{"missing", "ubuntu-jammy-web-412", "copy", "no encrypted copy in the account and Region"},
		{"failed", "al2023", "deregister_failed+copy", "copy ami-0123 failed (KMS key disabled), attempt 2 of 3 is due"},
	}
	tests := []struct {
		name  string
		width int
		want  string
	}{
		{"no limit: one line per row, nothing cut", 0, `
CATEGORY  NAME                  ACTION                  REASON
missing   ubuntu-jammy-web-412  copy                    no encrypted copy in the account and Region
failed    al2023                deregister_failed+copy  copy ami-0123 failed (KMS key disabled), attempt 2 of 3 is due
`},
		{"wide enough: the same", 200, `
CATEGORY  NAME                  ACTION                  REASON
missing   ubuntu-jammy-web-412  copy                    no encrypted copy in the account and Region
failed    al2023                deregister_failed+copy  copy ami-0123 failed (KMS key disabled), attempt 2 of 3 is due
`},
		{"reason wraps in its column, the widest shrinks first", 80, `
CATEGORY  NAME                  ACTION                  REASON
missing   ubuntu-jammy-web-412  copy                    no encrypted copy in the
                                                        account and Region
failed    al2023                deregister_failed+copy  copy ami-0123 failed
                                                        (KMS key disabled),
                                                        attempt 2 of 3 is due
`},
		{"action wraps after + rather than cut a word", 72, `
CATEGORY  NAME                  ACTION              REASON
missing   ubuntu-jammy-web-412  copy                no encrypted copy in
                                                    the account and
                                                    Region
failed    al2023                deregister_failed+  copy ami-0123 failed
                                copy                (KMS key disabled),
                                                    attempt 2 of 3 is
                                                    due
`},
		{"too narrow: the reason goes under its row, a name is clipped rather than a word cut", 48, `
CATEGORY  NAME                ACTION
missing   ubuntu-jammy-web-…  copy
    no encrypted copy in the account and Region
failed    al2023              deregister_failed+
                              copy
    copy ami-0123 failed (KMS key disabled),
    attempt 2 of 3 is due
`},
		{"narrower: names are clipped", 30, `
CATEGORY  NAME        ACTION
missing   ubuntu-jam…  copy
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render(t, tt.width, cols, rows)
			want := strings.TrimPrefix(tt.want, "\n")
			if tt.width == 30 {
				// Only the shape matters here: every line fits, the
				// name is clipped, the category never is.
				for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
					if n := utf8.RuneCountInString(line); n > tt.width {
						t.Errorf("line of %d runes, more than %d: %q", n, tt.width, line)
					}
				}
				if !strings.Contains(got, "…") || !strings.Contains(got, "missing") || !strings.Contains(got, "failed ") {
					t.Errorf("want clipped names and whole categories:\n%s", got)
				}
				return
			}
			if got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			if tt.width > 0 {
				for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
					if n := utf8.RuneCountInString(line); n > tt.width {
						t.Errorf("line of %d runes, more than %d: %q", n, tt.width, line)
					}
				}
			}
		})
	}
}

func TestWrapKeepsEveryWord(t *testing.T) {
	tests := []struct {
		text  string
		width int
		want  []string
	}{
		{"a, b and c", 4, []string{"a, b", "and", "c"}},
		{"copy+share", 6, []string{"copy+", "share"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"  spaced\tout\n", 20, []string{"spaced out"}},
		{"x", 0, []string{"x"}},
	}
	for _, tt := range tests {
		if got := Wrap(tt.text, tt.width); !slices.Equal(got, tt.want) {
			t.Errorf("Wrap(%q, %d) = %q, want %q", tt.text, tt.width, got, tt.want)
		}
	}
}

func TestClip(t *testing.T) {
	for _, tt := range []struct {
		s     string
		width int
		want  string
	}{{"security-tooling", 10, "security-…"}, {"short", 10, "short"}, {"abc", 1, "…"}, {"abc", 0, "abc"}} {
		if got := Clip(tt.s, tt.width); got != tt.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tt.s, tt.width, got, tt.want)
		}
	}
}
