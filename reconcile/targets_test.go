package reconcile

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/amicopier/amicopier/internal/cloud"
)

func TestParseTargetList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		refs    []cloud.TargetRef
		invalid []string // tokens, as displayed
	}{
		{name: "empty", in: ""},
		{name: "comma separated", in: "111111111111,222222222222", refs: []cloud.TargetRef{
			{Kind: cloud.TargetAccount, ID: "111111111111"}, {Kind: cloud.TargetAccount, ID: "222222222222"}}},
		{name: "spaces, commas and duplicates", in: " 111111111111 ,, 111111111111\t ou-ab12-cdefghij ", refs: []cloud.TargetRef{
			{Kind: cloud.TargetAccount, ID: "111111111111"}, {Kind: cloud.TargetOU, ID: "ou-ab12-cdefghij"}}},
		{name: "whole organisation", in: "*", refs: []cloud.TargetRef{{Kind: cloud.TargetOrganization}}},
		{name: "root id", in: "r-ab12", refs: []cloud.TargetRef{{Kind: cloud.TargetOU, ID: "r-ab12"}}},
		{name: "short account id", in: "12345", invalid: []string{`"12345"`}},
		{name: "thirteen digits", in: "1234567890123", invalid: []string{`"1234567890123"`}},
		{name: "arn is not an id", in: "arn:aws:iam::111111111111:root", invalid: []string{`"arn:aws:iam::111111111111:root"`}},
		{name: "markup is quoted", in: "<script>alert(1)</script>", invalid: []string{`"<script>alert(1)</script>"`}},
		{name: "mixed", in: "111111111111 bogus", refs: []cloud.TargetRef{{Kind: cloud.TargetAccount, ID: "111111111111"}}, invalid: []string{`"bogus"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refs, invalid := cloud.ParseTargetList(tt.in, "tag T")
			if len(refs) != len(tt.refs) {
				t.Fatalf("refs = %+v, want %+v", refs, tt.refs)
			}
			for i := range refs {
				if refs[i].Kind != tt.refs[i].Kind || refs[i].ID != tt.refs[i].ID || refs[i].Origin != "tag T" {
					t.Errorf("ref %d = %+v, want %+v", i, refs[i], tt.refs[i])
				}
			}
			if len(invalid) != len(tt.invalid) {
				t.Fatalf("invalid = %+v, want %v", invalid, tt.invalid)
			}
			for i := range invalid {
				if invalid[i].Token != tt.invalid[i] || invalid[i].Reason == "" {
					t.Errorf("invalid %d = %+v, want token %s", i, invalid[i], tt.invalid[i])
				}
			}
		})
	}
}

func TestParseTargetListBoundsUntrustedInput(t *testing.T) {
	long := strings.Repeat("111111111111,", 200)
	refs, invalid := cloud.ParseTargetList(long, "tag T")
	if len(refs) != 1 {
		t.Fatalf("duplicates not folded: %d refs", len(refs))
	}
	if len(invalid) != 1 || !strings.Contains(invalid[0].Reason, "more than") {
		t.Fatalf("excess tokens not reported: %+v", invalid)
	}
	if len(invalid[0].Token) > 80 {
		t.Fatalf("displayed token not shortened: %d bytes", len(invalid[0].Token))
	}
	_, invalid = cloud.ParseTargetList(strings.Repeat("é", 100), "tag T")
	if len(invalid) != 1 || !utf8.ValidString(invalid[0].Token) {
		t.Fatalf("shortened token is not valid UTF-8: %q", invalid[0].Token)
	}
}

func FuzzParseTargetList(f *testing.F) {
	for _, s := range []string{"", "*", "111111111111", "ou-ab12-cdefghij,r-ab12", "a,b c\td", "111111111111 1111111111112", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		refs, invalid := cloud.ParseTargetList(s, "tag T")
		for _, r := range refs {
			switch r.Kind {
			case cloud.TargetAccount:
				if !cloud.IsAccountID(r.ID) {
					t.Fatalf("accepted account id %q is not 12 digits", r.ID)
				}
			case cloud.TargetOU:
				if !cloud.IsOUID(r.ID) && !cloud.IsRootID(r.ID) {
					t.Fatalf("accepted OU id %q is malformed", r.ID)
				}
			case cloud.TargetOrganization:
			default:
				t.Fatalf("unknown kind %v", r.Kind)
			}
		}
		for _, bad := range invalid {
			if bad.Token == "" || bad.Reason == "" || !strings.HasPrefix(bad.Token, `"`) {
				t.Fatalf("rejection does not name the value: %+v", bad)
			}
		}
	})
}

func TestRuleMatches(t *testing.T) {
	tags := map[string]string{"Recipe": "ubuntu-jammy", "Stage": "PROD"}
	tests := []struct {
		match map[string]string
		want  bool
	}{
		{map[string]string{"Recipe": "ubuntu-*"}, true},
		{map[string]string{"Recipe": "ubuntu-*", "Stage": "PROD"}, true},
		{map[string]string{"Recipe": "ubuntu-*", "Stage": "CODE"}, false},
		{map[string]string{"Missing": "*"}, false},
		{map[string]string{"Recipe": "[bad"}, false},
		{map[string]string{}, false},
	}
	for _, tt := range tests {
		if got := RuleMatches(Rule{Name: "r", Match: tt.match}, tags); got != tt.want {
			t.Errorf("RuleMatches(%v) = %v, want %v", tt.match, got, tt.want)
		}
	}
}
