package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sameSettings compares two configurations, ignoring where values came
// from.
func sameSettings(a, b *Config) bool {
	x, y := *a, *b
	x.origin, y.origin = nil, nil
	return reflect.DeepEqual(x, y)
}

func TestParseEmptyIsDefault(t *testing.T) {
	for _, doc := range []string{"", "\n", "# only a comment\n", "---\n", "~\n", "null\n", "{}\n", "source:\n", "source: {}\nlimits:\n"} {
		c, err := Parse([]byte(doc), "config.yaml")
		if err != nil {
			t.Errorf("%q: %v", doc, err)
			continue
		}
		if !sameSettings(c, Default()) {
			t.Errorf("%q: got %+v, want the defaults", doc, *c)
		}
	}
}

func TestParseOverDefaults(t *testing.T) {
	doc := `source:
  account_id: 111111111111
  regions: [eu-west-1]
  filters:
    Recipe: [a, b]
limits:
  concurrency: 4
  retry_backoff: 2h
targets:
  tag_key:
  rules:
    - name: r
      match: {Recipe: "ubuntu-*"}
      accounts: ["222222222222"]
prune:
  enabled: true
`
	c := mustParse(t, doc)
	want := Default()
	want.Source.AccountID = "111111111111"
	want.Source.Regions = []string{"eu-west-1"}
	want.Source.Filters = map[string][]string{"Recipe": {"a", "b"}}
	want.Limits.Concurrency = 4
	want.Limits.RetryBackoff = Duration(2 * time.Hour)
	want.Targets.Rules = []Rule{{Name: "r", Match: map[string]string{"Recipe": "ubuntu-*"}, Accounts: []string{"222222222222"}}}
	want.Prune.Enabled = true
	if !sameSettings(c, want) {
		t.Errorf("got\n%+v\nwant\n%+v", *c, *want)
	}
}

func TestParseUnknownKeys(t *testing.T) {
	doc := `source:
  account_id: "111111111111"
  regionz: [eu-west-1]
  Filters: {}
targets:
  rules:
    - name: a
      match: {Recipe: x}
      accounts: ["222222222222"]
    - name: b
      acounts: ["333333333333"]
      zzz: 1
  kms_key: alias/x
statee:
  backend: file
aws:
  endpoints:
    ec3: http://localhost
"rules": []
`
	_, err := Parse([]byte(doc), "config.yaml")
	errs := validationErrors(t, err)
	want := []string{
		`source.regionz (config.yaml:3): unknown key; did you mean "regions"?`,
		`source.Filters (config.yaml:4): unknown key; did you mean "filters"?`,
		`targets.rules[1].acounts (config.yaml:11): unknown key; did you mean "accounts"?`,
		`targets.rules[1].zzz (config.yaml:12): unknown key; expected one of: accounts, match, name, ous, regions`,
		`targets.kms_key (config.yaml:13): unknown key; expected one of:`,
		`statee (config.yaml:14): unknown key; did you mean "state"?`,
		`aws.endpoints.ec3 (config.yaml:18): unknown key; did you mean "ec2"?`,
		`rules (config.yaml:19): unknown key; expected one of: aws, check, copy,`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if got := errs[i].format("config.yaml"); !strings.HasPrefix(got, w) {
			t.Errorf("error %d:\n got %s\nwant %s", i, got, w)
		}
	}
}

func TestParseTypeErrors(t *testing.T) {
	cases := []struct {
		name, doc, path, message string
	}{
		{"string for list", "source:\n  regions: eu-west-1 # <-\n", "source.regions", `expected a list of strings, got "eu-west-1"`},
		{"mapping for list", "source:\n  regions: {a: b} # <-\n", "source.regions", "expected a list of strings, got a mapping"},
		{"list for string", "source:\n  account_id: [1] # <-\n", "source.account_id", "expected a string, got a list"},
		{"list in list", "source:\n  regions:\n    - [eu-west-1] # <-\n", "source.regions[0]", "expected a string, got a list"},
		{"scalar for section", "limits: 5 # <-\n", "limits", "expected a mapping of concurrency, in_flight_copies"},
		{"list for section", "source: # <-\n  - a\n", "source", "got a list"},
		{"string for int", "limits:\n  concurrency: many # <-\n", "limits.concurrency", `expected a whole number, got "many"`},
		{"float for int", "limits:\n  max_attempts: 2.5 # <-\n", "limits.max_attempts", `got "2.5"`},
		{"int overflow", "limits:\n  max_attempts: 99999999999999999999999 # <-\n", "limits.max_attempts", "expected a whole number"},
		{"string for bool", "prune:\n  enabled: sometimes # <-\n", "prune.enabled", `expected true or false, got "sometimes"`},
		{"duration without unit", "limits:\n  retry_backoff: 3600 # <-\n", "limits.retry_backoff", `invalid duration "3600"`},
		{"negative duration", "state:\n  lease_ttl: -1m # <-\n", "state.lease_ttl", "must not be negative"},
		{"list for duration", "prune:\n  grace_period: [7d] # <-\n", "prune.grace_period", "expected a duration"},
		{"string for map", "source:\n  filters: Recipe # <-\n", "source.filters", "expected a mapping of keys to lists of strings"},
		{"scalar for filter values", "source:\n  filters:\n    Recipe: ubuntu # <-\n", "source.filters.Recipe", "expected a list of strings"},
		{"list for match", "targets:\n  rules:\n    - match: [Recipe] # <-\n", "targets.rules[0].match", "expected a mapping of keys to strings"},
		{"scalar rule", "targets:\n  rules:\n    - ubuntu # <-\n", "targets.rules[0]", "expected a mapping of name, match, accounts, ous, regions"},
		{"mapping for rules", "targets:\n  rules: # <-\n    name: a\n", "targets.rules", "expected a list of mappings, got a mapping"},
		{"non-string key", "source:\n  [a]: b # <-\n", "source", "keys must be plain strings"},
		{"non-string map key", "source:\n  filters:\n    {a: b}: [c] # <-\n", "source.filters", "keys must be plain strings"},
		{"duplicate key", "report:\n  format: json\n  format: table # <-\n", "report.format", "key given twice (first at line 2)"},
		{"duplicate map key", "source:\n  filters:\n    Recipe: [a]\n    Recipe: [b] # <-\n", "source.filters.Recipe", "key given twice (first at line 3)"},
		{"merge in map", "source:\n  filters:\n    <<: {a: [b]} # <-\n", "source.filters", "merge keys (<<) are not supported inside source.filters"},
		{"merge of scalar", "report:\n  <<: x # <-\n", "report", "merge (<<) needs a mapping"},
		{"root scalar", "hello # <-\n", "", `expected a mapping of source, targets`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "config.yaml")
			errs := validationErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("want exactly one error, got %d:\n%v", len(errs), err)
			}
			got := errs[0]
			if got.Path != tc.path {
				t.Errorf("path = %q, want %q (%s)", got.Path, tc.path, got.Message)
			}
			if want := markerLine(tc.doc); want != 0 && got.Line != want {
				t.Errorf("line = %d, want %d (%s)", got.Line, want, got.Message)
			}
			if !strings.Contains(got.Message, tc.message) {
				t.Errorf("message = %q, want it to contain %q", got.Message, tc.message)
			}
		})
	}
}

func TestParseSyntaxErrors(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"unclosed flow", "source:\n  regions: [eu-west-1\n", "invalid YAML: did not find expected ',' or ']'"},
		{"tab indent", "source:\n\taccount_id: x\n", "config.yaml:2: invalid YAML: found character that cannot start any token (YAML does not allow tabs for indentation: use spaces)"},
		{"two documents", "report: {format: json}\n---\nreport: {format: table}\n", "config.yaml:2: a second YAML document"},
		{"bad second document", "report: {format: json}\n---\n[\n", "invalid YAML"},
		{"unknown anchor", "source: *nope\n", "invalid YAML"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "config.yaml")
			validationErrors(t, err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseAnchorsAndMerges(t *testing.T) {
	doc := `source:
  account_id: "111111111111"
  regions: &regions [eu-west-1, us-east-1]
targets:
  regions: *regions
  rules:
    - &ubuntu
      name: ubuntu
      match: {Recipe: "ubuntu-*"}
      accounts: &apps ["222222222222", "333333333333"]
    - <<: *ubuntu
      name: debian
      match: {Recipe: "debian-*"}
    - name: windows
      <<: [{ous: [ou-ab12-34cd56ef]}, {ous: [r-ab12], accounts: *apps}]
      match: {Recipe: "windows-*"}
`
	c := mustParse(t, doc)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := c.Targets.Regions; !reflect.DeepEqual(got, []string{"eu-west-1", "us-east-1"}) {
		t.Errorf("targets.regions = %v", got)
	}
	rules := c.Targets.Rules
	if len(rules) != 3 {
		t.Fatalf("got %d rules", len(rules))
	}
	if rules[1].Name != "debian" || rules[1].Match["Recipe"] != "debian-*" || len(rules[1].Accounts) != 2 {
		t.Errorf("merged rule = %+v", rules[1])
	}
	if !reflect.DeepEqual(rules[2].OUs, []string{"ou-ab12-34cd56ef"}) || len(rules[2].Accounts) != 2 {
		t.Errorf("earlier merge must win: %+v", rules[2])
	}
}

func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("targets:\n  rules: [&a {name: x, match: {k: v}, accounts: [\"*\"]}")
	for range maxAliases + 5 {
		b.WriteString(", *a")
	}
	b.WriteString("]\n")
	_, err := Parse([]byte(b.String()), "bomb.yaml")
	errs := validationErrors(t, err)
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "too many YAML aliases") {
		t.Fatalf("got %v", err)
	}
}

func TestParseRecordsLines(t *testing.T) {
	doc := "source:\n  account_id: \"111111111111\"\n  regions:\n    - eu-west-1\n    - us-east-1\ntargets:\n  rules:\n    - name: a\n      match:\n        Recipe: x\n"
	c := mustParse(t, doc)
	for path, want := range map[string]int{
		"source":                        1,
		"source.account_id":             2,
		"source.regions":                3,
		"source.regions[1]":             5,
		"targets.rules[0]":              8,
		"targets.rules[0].name":         8,
		"targets.rules[0].match.Recipe": 10,
		// Absent values borrow their closest ancestor's line.
		"targets.rules[0].accounts": 8,
		"limits.concurrency":        0,
	} {
		if _, got := c.origin.locate(path); got != want {
			t.Errorf("%s: line %d, want %d", path, got, want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("source:\n  acount_id: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), "source.acount_id ("+bad+":2): unknown key") {
		t.Errorf("got %v", err)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadWithEnv(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("source:\n  regions: [eu-west-1]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AMICOPIER_SOURCE_ACCOUNT_ID": "111111111111"}
	c, err := LoadWithEnv(file, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Source.AccountID != "111111111111" {
		t.Errorf("account id = %q", c.Source.AccountID)
	}
	env["AMICOPIER_SOURCE_ACCOUNT_ID"] = "nope"
	_, err = LoadWithEnv(file, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "source.account_id (from AMICOPIER_SOURCE_ACCOUNT_ID)") {
		t.Errorf("got %v", err)
	}
	if _, err := LoadWithEnv(filepath.Join(dir, "none.yaml"), nil); err == nil {
		t.Error("missing file accepted")
	}
}

func TestSuggest(t *testing.T) {
	rule := reflect.TypeFor[Rule]()
	cases := map[string]string{
		"acounts":  `did you mean "accounts"?`,
		"Name":     `did you mean "name"?`,
		"region":   `did you mean "regions"?`,
		"matches":  `did you mean "match"?`,
		"ou":       `did you mean "ous"?`,
		"targets":  "expected one of: accounts, match, name, ous, regions",
		"x":        "expected one of:",
		"accnts":   `did you mean "accounts"?`,
		"regiosn":  `did you mean "regions"?`,
		"tag_keys": "expected one of:",
	}
	for key, want := range cases {
		if got := suggest(key, rule); !strings.HasPrefix(got, want) {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestParentPath(t *testing.T) {
	for in, want := range map[string]string{
		"a":                   "",
		"a.b":                 "a",
		"a.b[2]":              "a.b",
		"a.b[2].c":            "a.b[2]",
		`a.filters["x.y"]`:    "a.filters",
		`a.filters["x.y"][0]`: `a.filters["x.y"]`,
	} {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseWithEnv(t *testing.T) {
	env := map[string]string{"AMICOPIER_SOURCE_ACCOUNT_ID": "111111111111", "AMICOPIER_STATE_TABLE": "t-prod"}
	getenv := func(k string) string { return env[k] }
	c, err := ParseWithEnv([]byte("source:\n  regions: [eu-west-1]\nstate:\n  backend: dynamodb\n"), "AMICOPIER_CONFIG_YAML", getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source.AccountID != "111111111111" || c.State.Table != "t-prod" {
		t.Errorf("overrides not applied: %+v %+v", c.Source, c.State)
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"syntax", "source: [", "AMICOPIER_CONFIG_YAML"},
		{"unknown key", "source:\n  regionz: [eu-west-1]\n", "AMICOPIER_CONFIG_YAML:2"},
		{"invalid value", "source:\n  regions: [moon-1]\n", "source.regions[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseWithEnv([]byte(tc.doc), "AMICOPIER_CONFIG_YAML", getenv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
	// The same document from a file and from memory gives the same result.
	file := filepath.Join(t.TempDir(), "c.yaml")
	doc := []byte("source:\n  regions: [eu-west-1]\n")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err1 := LoadWithEnv(file, getenv)
	fromMemory, err2 := ParseWithEnv(doc, file, getenv)
	if err1 != nil || err2 != nil || !sameSettings(fromFile, fromMemory) {
		t.Errorf("file %+v (%v) and memory %+v (%v) differ", fromFile, err1, fromMemory, err2)
	}
}

// TestParseSyntaxErrorLines: a syntax error points at the line that is
// wrong, not at the line where the enclosing block began (yaml.v3 reports
// the latter, counted from 0), and bytes that are not UTF-8 are located.
func TestParseSyntaxErrorLines(t *testing.T) {
	cases := []struct {
		name, doc string
		line      int
		message   string
	}{
		{"indented too far", "source:\n  account_id: \"111111111111\"\n   regions: [eu-west-1]\n", 3, "did not find expected key"},
		{"indented too little", "source:\n  account_id: \"111111111111\"\n regions: [eu-west-1]\n", 3, "did not find expected key"},
		{"deep in a long block", "source:\n  account_id: \"111111111111\"\n  regions:\n    - eu-west-1\n    - us-east-1\n    - us-west-2\n   - eu-west-2\n", 7, "did not find expected"},
		{"key without name", "report:\n  format: json\nprune:\n  enabled: false\n: x\n", 5, "did not find expected key"},
		{"list item in a mapping", "source:\n  account_id: \"111111111111\"\n  regions: [eu-west-1]\n  - us-east-1\n", 4, "did not find expected key"},
		{"key after list items", "targets:\n  regions:\n    - eu-west-1\n    - us-east-1\n    tag_key: x\n", 5, ""},
		{"unclosed flow", "source:\n  account_id: \"111111111111\"\n  regions: [eu-west-1\nstate:\n  backend: file\n", 3, "did not find expected ',' or ']'"},
		{"unclosed quote", "report:\n  format: json\ncopy:\n  name_template: \"{{.ID}}\n  encrypted_tag_value: x\n", 4, "found unexpected end of stream"},
		{"tab", "source:\n  account_id: \"111111111111\"\n\tregions: [eu-west-1]\n", 3, "YAML does not allow tabs"},
		{"unknown anchor", "report:\n  format: json\nsource: *nope\n", 3, "unknown anchor 'nope'"},
		{"control character", "report:\n  format: json\ncopy:\n  encrypted_tag_value: a\x00b\n", 4, "control characters are not allowed"},
		{"broken second document", "report: {format: json}\n---\nsource:\n  - [\n", 4, ""},
		{"latin-1 value", "source:\n  account_id: \"111111111111\"\n  regions: [eu-west-1]\ntargets:\n  tag_key: caf\xe9\n", 5, "byte 0xE9 at column 15 is not UTF-8"},
		{"latin-1 comment", "# r\xe9gions\nsource: {}\n", 1, "byte 0xE9 at column 4 is not UTF-8"},
		{"stray continuation byte", "report:\n  format: \x80json\n", 2, "byte 0x80 at column 11 is not UTF-8"},
		{"utf-8 before the bad byte", "copy:\n  encrypted_tag_value: \"é\xff\"\n", 2, "byte 0xFF at column 26 is not UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "config.yaml")
			errs := validationErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("want one error, got %v", err)
			}
			if errs[0].Line != tc.line || !strings.Contains(errs[0].Message, tc.message) || !strings.HasPrefix(errs[0].Message, "invalid YAML: ") {
				t.Errorf("got line %d: %q\nwant line %d: %q", errs[0].Line, errs[0].Message, tc.line, tc.message)
			}
		})
	}
}

// TestParseWithEnvReportsEverythingAtOnce: unknown keys and values of the
// wrong type do not hide invalid values: one pass lists them all, in the
// order of the file, and a value that could not be read is not reported a
// second time as missing or invalid.
func TestParseWithEnvReportsEverythingAtOnce(t *testing.T) {
	doc := `source:
  account_id: "12345"
  regionz: [eu-west-1]
limits:
  concurrency: 0
  retry_backoff: 1 hour
targets:
  rules:
    - ubuntu
state:
  backend: sqlite
`
	env := map[string]string{"AMICOPIER_STATE_TABLE": "x"}
	_, err := ParseWithEnv([]byte(doc), "config.yaml", func(k string) string { return env[k] })
	errs := validationErrors(t, err)
	want := []string{
		`source.regions (config.yaml:1): required`,
		`source.account_id (config.yaml:2): "12345" is not a 12-digit AWS account id`,
		`source.regionz (config.yaml:3): unknown key; did you mean "regions"?`,
		`limits.concurrency (config.yaml:5): must be between 1 and 1000 (got 0)`,
		`limits.retry_backoff (config.yaml:6): invalid duration "1 hour"`,
		`targets.rules[0] (config.yaml:9): expected a mapping`,
		`state.backend (config.yaml:11): "sqlite" is not a state backend`,
		`state.table (from AMICOPIER_STATE_TABLE): "x" is not a DynamoDB table name`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if got := errs[i].format("config.yaml"); !strings.HasPrefix(got, w) {
			t.Errorf("problem %d:\n got %s\nwant %s...", i, got, w)
		}
	}
	// The same through LoadWithEnv.
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadWithEnv(file, func(k string) string { return env[k] })
	if got := len(validationErrors(t, err)); got != len(want) {
		t.Errorf("LoadWithEnv: %d problems, want %d:\n%v", got, len(want), err)
	}
}

// TestParseWithEnvDoesNotRepeatUnreadValues: a value the file gives in a
// form that cannot be read is reported once, for what it is, not again
// as a missing or invalid value of its own or of what it holds.
func TestParseWithEnvDoesNotRepeatUnreadValues(t *testing.T) {
	for name, doc := range map[string]string{
		"string for a list":  "source:\n  account_id: \"111111111111\"\n  regions: eu-west-1\n",
		"list in a list":     base + "targets:\n  regions:\n    - [eu-west-1]\n",
		"scalar for a rule":  base + "targets:\n  rules:\n    - windows\n",
		"scalar for section": base + "state: dynamodb\n",
		"string for a map":   base + "targets:\n  rules:\n    - name: a\n      match: Recipe\n      accounts: [\"*\"]\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseWithEnv([]byte(doc), "config.yaml", func(string) string { return "" })
			if errs := validationErrors(t, err); len(errs) != 1 {
				t.Errorf("want the one problem, got:\n%v", err)
			}
		})
	}
}

// TestParseStrictBooleans: a boolean key takes true or false and nothing
// else; YAML 1.1's yes, on, y... and a quoted "true" are errors that name
// the key, the line and the value.
func TestParseStrictBooleans(t *testing.T) {
	for value, want := range map[string]bool{"true": true, "false": false, "true # comment": true} {
		c := mustParse(t, base+"prune:\n  enabled: "+value+"\n")
		if c.Prune.Enabled != want {
			t.Errorf("enabled: %s gives %v", value, c.Prune.Enabled)
		}
	}
	for value, message := range map[string]string{
		"yes":          `expected true or false, got "yes" (YAML 1.1 words such as yes, on and y are not booleans here)`,
		"on":           `got "on" (YAML 1.1 words`,
		"y":            `got "y" (YAML 1.1 words`,
		"Y":            `got "Y" (YAML 1.1 words`,
		"no":           `got "no" (YAML 1.1 words`,
		"off":          `got "off" (YAML 1.1 words`,
		`"true"`:       `got the quoted string "true": write true without quotes`,
		`'false'`:      `got the quoted string "false": write false without quotes`,
		"True":         `got "True": write true in lower case`,
		"FALSE":        `got "FALSE": write false in lower case`,
		"1":            `expected true or false, got "1"`,
		"!!bool yes":   `expected true or false, got "yes"`,
		"!!str true":   `got the string "true"`,
		"[true]":       `expected true or false, got a list`,
		"sometimes":    `expected true or false, got "sometimes"`,
		`"yes please"`: `expected true or false, got "yes please"`,
	} {
		t.Run(value, func(t *testing.T) {
			_, err := Parse([]byte(base+"prune:\n  enabled: "+value+"\n"), "config.yaml")
			errs := validationErrors(t, err)
			if len(errs) != 1 || errs[0].Path != "prune.enabled" || errs[0].Line != 5 || !strings.Contains(errs[0].Message, message) {
				t.Errorf("got %v\nwant prune.enabled (config.yaml:5): ...%s", err, message)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"regions", "regions", 0},
		{"regoins", "regions", 1}, {"eu-wset-1", "eu-west-1", 1}, {"ab", "ba", 1},
		{"acounts", "accounts", 1}, {"kitten", "sitting", 3}, {"ca", "abc", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
