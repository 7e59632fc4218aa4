package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/reconcile/report"
)

// base is the smallest valid document; cases append to it. A case marks
// the line its error must point at with "# <-".
const base = `source:
  account_id: "111111111111"
  regions: [eu-west-1]
`

func markerLine(doc string) int {
	for i, l := range strings.Split(doc, "\n") {
		if strings.Contains(l, "# <-") {
			return i + 1
		}
	}
	return 0
}

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := Parse([]byte(doc), "config.yaml")
	if err != nil {
		t.Fatalf("Parse: %v\n--- doc:\n%s", err, doc)
	}
	return c
}

func validationErrors(t *testing.T, err error) []FieldError {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	for _, fe := range ve.Errors {
		if fe.Message == "" {
			t.Errorf("empty message in %+v", fe)
		}
	}
	return ve.Errors
}

func TestValidateRules(t *testing.T) {
	long := strings.Repeat("x", 129)
	cases := []struct {
		name    string
		doc     string
		path    string
		message string
	}{
		// source
		{"account id missing", "source: # <-\n  regions: [eu-west-1]\n", "source.account_id", "required: the 12-digit id"},
		{"account id missing names env", "source: # <-\n  regions: [eu-west-1]\n", "source.account_id", "AMICOPIER_SOURCE_ACCOUNT_ID"},
		{"account id short", "source:\n  account_id: \"12345\" # <-\n  regions: [eu-west-1]\n", "source.account_id", `"12345" is not a 12-digit AWS account id`},
		{"account id letters", "source:\n  account_id: 11111111111a # <-\n  regions: [eu-west-1]\n", "source.account_id", "12-digit"},
		{"source role arn", base + "  role_arn: arn:aws:iam::111111111111:user/bob # <-\n", "source.role_arn", "not an IAM role ARN"},
		{"no source regions", "source: # <-\n  account_id: \"111111111111\"\n", "source.regions", "at least one Region"},
		{"empty source regions", "source:\n  account_id: \"111111111111\"\n  regions: [] # <-\n", "source.regions", "at least one Region"},
		{"bad source region", "source:\n  account_id: \"111111111111\"\n  regions:\n    - eu-west-1\n    - Europe # <-\n", "source.regions[1]", `"Europe" is not an AWS Region`},
		{"duplicate source region", "source:\n  account_id: \"111111111111\"\n  regions:\n    - eu-west-1\n    - eu-west-1 # <-\n", "source.regions[1]", "listed twice (also source.regions[0])"},
		{"empty filter key", base + "  filters:\n    \"\": [x] # <-\n", `source.filters[""]`, "tag key must not be empty"},
		{"aws filter key", base + "  filters:\n    aws:cloudformation:stack-name: [x] # <-\n", `source.filters["aws:cloudformation:stack-name"]`, "reserved by AWS"},
		{"filter without values", base + "  filters:\n    Recipe: [] # <-\n", "source.filters.Recipe", "at least one tag value"},
		{"filter null values", base + "  filters:\n    Recipe: # <-\n", "source.filters.Recipe", "at least one tag value"},

		// targets
		{"tag key too long", base + "targets:\n  tag_key: " + long + " # <-\n", "targets.tag_key", "at most 128 characters (got 129)"},
		{"tag key aws prefix", base + "targets:\n  tag_key: AWS:targets # <-\n", "targets.tag_key", `starting with "aws:"`},
		{"rule without name", base + "targets:\n  rules:\n    - match: {Recipe: x} # <-\n      accounts: [\"222222222222\"]\n", "targets.rules[0].name", "required"},
		{"duplicate rule name", base + "targets:\n  rules:\n    - name: a\n      match: {Recipe: x}\n      accounts: [\"*\"]\n    - name: a # <-\n      match: {Recipe: y}\n      accounts: [\"*\"]\n", "targets.rules[1].name", `duplicate rule name "a" (also targets.rules[0])`},
		{"rule without match", base + "targets:\n  rules:\n    - name: a # <-\n      accounts: [\"*\"]\n", "targets.rules[0].match", "required: the tags"},
		{"rule with empty match", base + "targets:\n  rules:\n    - name: a\n      match: {} # <-\n      accounts: [\"*\"]\n", "targets.rules[0].match", "required: the tags"},
		{"rule match empty key", base + "targets:\n  rules:\n    - name: a\n      match:\n        \"\": x # <-\n      accounts: [\"*\"]\n", `targets.rules[0].match[""]`, "tag key must not be empty"},
		{"rule bad glob", base + "targets:\n  rules:\n    - name: a\n      match:\n        Recipe: \"ubuntu-[\" # <-\n      accounts: [\"*\"]\n", "targets.rules[0].match.Recipe", `"ubuntu-[" is not a valid glob`},
		{"rule without targets", base + "targets:\n  rules:\n    - name: a # <-\n      match: {Recipe: x}\n      regions: [eu-west-2]\n", "targets.rules[0]", "needs accounts or ous"},
		{"rule bad account", base + "targets:\n  rules:\n    - name: a\n      match: {Recipe: x}\n      accounts:\n        - \"*\"\n        - all # <-\n", "targets.rules[0].accounts[1]", `"all" is not a 12-digit account id or "*"`},
		{"rule bad ou", base + "targets:\n  rules:\n    - name: a\n      match: {Recipe: x}\n      ous:\n        - ou-ab12-34cd56ef\n        - OU-Prod # <-\n", "targets.rules[0].ous[1]", `"OU-Prod" is not an OU id`},
		{"rule bad region", base + "targets:\n  rules:\n    - name: a\n      match: {Recipe: x}\n      ous: [r-ab12]\n      regions:\n        - frankfurt # <-\n", "targets.rules[0].regions[0]", `"frankfurt" is not an AWS Region`},
		{"amigo table", base + "targets:\n  amigo_recipes_table: \"amigo PROD\" # <-\n", "targets.amigo_recipes_table", "not a DynamoDB table name"},
		{"targets region", base + "targets:\n  regions: [eu-west-1, \"\"] # <-\n", "targets.regions[1]", `"" is not an AWS Region`},
		{"exclude star", base + "targets:\n  exclude_accounts:\n    - \"*\" # <-\n", "targets.exclude_accounts[0]", `"*" is not a 12-digit account id`},
		{"role name with path", base + "targets:\n  role_name: ops/amicopier # <-\n", "targets.role_name", "not an IAM role name"},
		{"role name too long", base + "targets:\n  role_name: " + strings.Repeat("r", 65) + " # <-\n", "targets.role_name", "not an IAM role name"},
		{"no role at all", base + "targets:\n  role_name: \"\" # <-\n", "targets.role_name", "role_arn_template"},
		{"template without account", base + "targets:\n  role_arn_template: arn:aws:iam::222222222222:role/x # <-\n", "targets.role_arn_template", "must contain {account}"},
		{"template not arn", base + "targets:\n  role_arn_template: \"{account}/amicopier\" # <-\n", "targets.role_arn_template", "must start with arn:aws"},
		{"template not a role", base + "targets:\n  role_arn_template: \"arn:aws:iam::{account}:user/amicopier\" # <-\n", "targets.role_arn_template", "does not give an IAM role ARN"},
		{"external id short", base + "targets:\n  external_id: x # <-\n", "targets.external_id", "2-1224 characters"},
		{"external id chars", base + "targets:\n  external_id: \"has space\" # <-\n", "targets.external_id", "not a valid external id"},
		{"external id long", base + "targets:\n  external_id: " + strings.Repeat("e", 1225) + " # <-\n", "targets.external_id", "got 1225 characters"},

		// organization
		{"org role", base + "organization:\n  role_arn: amicopier-org # <-\n", "organization.role_arn", `"amicopier-org" is not an IAM role ARN`},

		// encryption
		{"bad kms key", base + "encryption:\n  kms_key: amicopier # <-\n", "encryption.kms_key", `"amicopier" is not a KMS key`},
		{"kms key arn other service", base + "encryption:\n  kms_key: arn:aws:kms:eu-west-1:111111111111:grant/x # <-\n", "encryption.kms_key", "not a KMS key"},
		{"pinned default key", base + "targets:\n  regions: [us-east-1]\nencryption:\n  kms_key: arn:aws:kms:eu-west-1:111111111111:alias/amicopier # <-\n", "encryption.kms_key", "exists only in eu-west-1 but copies are also made in us-east-1"},
		{"override without scope", base + "encryption:\n  overrides:\n    - kms_key: alias/x # <-\n", "encryption.overrides[0]", "needs account or region"},
		{"override bad account", base + "encryption:\n  overrides:\n    - account: \"123\" # <-\n      kms_key: alias/x\n", "encryption.overrides[0].account", `"123" is not a 12-digit`},
		{"override bad region", base + "encryption:\n  overrides:\n    - region: EU # <-\n      kms_key: alias/x\n", "encryption.overrides[0].region", `"EU" is not an AWS Region`},
		{"override without key", base + "encryption:\n  overrides:\n    - region: eu-west-1 # <-\n", "encryption.overrides[0].kms_key", "required"},
		{"override bad key", base + "encryption:\n  overrides:\n    - region: eu-west-1\n      kms_key: \"alias/\" # <-\n", "encryption.overrides[0].kms_key", "not a KMS key"},
		{"override key in other region", base + "encryption:\n  overrides:\n    - region: eu-west-1\n      kms_key: arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab # <-\n", "encryption.overrides[0].kms_key", "in us-east-1 but the override is for eu-west-1"},
		{"override pinned for account", base + "targets:\n  regions: [us-east-1]\nencryption:\n  overrides:\n    - account: \"222222222222\"\n      kms_key: arn:aws:kms:eu-west-1:222222222222:key/mrk-1234abcd12ab34cd56ef1234567890ab # <-\n", "encryption.overrides[0].kms_key", "also made in us-east-1"},
		{"duplicate override", base + "encryption:\n  overrides:\n    - region: eu-west-1\n      kms_key: alias/a\n    - region: eu-west-1 # <-\n      kms_key: alias/b\n", "encryption.overrides[1]", "same account and region as encryption.overrides[0]"},

		// copy
		{"empty name template", base + "copy:\n  name_template: \"\" # <-\n", "copy.name_template", "required"},
		{"name template syntax", base + "copy:\n  name_template: \"{{.Name\" # <-\n", "copy.name_template", "invalid template"},
		{"name template unknown function", base + "copy:\n  name_template: \"{{lower .Name}}-{{.ID}}\" # <-\n", "copy.name_template", `function "lower" not defined`},
		{"name template without id", base + "copy:\n  name_template: \"{{.Name}}-encrypted\" # <-\n", "copy.name_template", "must use {{.ID}}"},
		{"name template bad characters", base + "copy:\n  name_template: \"{{.Name}}:{{.ID}}\" # <-\n", "copy.name_template", "not a valid AMI name"},
		{"name template too long", base + "copy:\n  name_template: \"{{.ID}}-" + strings.Repeat("n", 110) + "\" # <-\n", "copy.name_template", "3-128 characters"},
		{"name template unknown field", base + "copy:\n  name_template: \"{{.Recipe}}-{{.ID}}\" # <-\n", "copy.name_template", "cannot render"},
		{"name template missing tag", base + "copy:\n  name_template: \"{{.Tags.Team}}-{{.ID}}\" # <-\n", "copy.name_template", `map has no entry for key "Team"`},
		{"description syntax", base + "copy:\n  description_template: \"{{end}}\" # <-\n", "copy.description_template", "invalid template"},
		{"description too long", base + "copy:\n  description_template: \"" + strings.Repeat("d", 256) + "\" # <-\n", "copy.description_template", "renders to 256 characters"},
		{"include bad glob", base + "copy:\n  include_tags:\n    - \"[\" # <-\n", "copy.include_tags[0]", "not a valid glob"},
		{"exclude empty pattern", base + "copy:\n  exclude_tags:\n    - Owner\n    - \"\" # <-\n", "copy.exclude_tags[1]", "empty pattern"},
		{"encrypted tag value", base + "copy:\n  encrypted_tag_value: " + strings.Repeat("v", 257) + " # <-\n", "copy.encrypted_tag_value", "at most 256 characters"},
		{"deprecate after too short", base + "copy:\n  deprecate_after: 30m # <-\n", "copy.deprecate_after", "at least 1h0m0s (got 30m0s), or 0 for none"},
		{"deprecate after beyond EC2's limit", base + "copy:\n  deprecate_after: 3651d # <-\n", "copy.deprecate_after", "at most 3650d (got 3651d): EC2 takes a deprecation time at most 10 years ahead"},
		{"keep latest without group", base + "  keep_latest: # <-\n    count: 2\n", "source.keep_latest.group_by", "required: the tag key"},
		{"keep latest without count", base + "  keep_latest: # <-\n    group_by: Recipe\n", "source.keep_latest.count", "between 1 and 1000 builds per group (got 0)"},
		{"keep latest zero", base + "  keep_latest:\n    group_by: Recipe\n    count: 0 # <-\n", "source.keep_latest.count", "(got 0)"},
		{"keep latest too many", base + "  keep_latest:\n    group_by: Recipe\n    count: 1001 # <-\n", "source.keep_latest.count", "(got 1001)"},
		{"keep latest aws tag", base + "  keep_latest:\n    group_by: aws:recipe # <-\n    count: 2\n", "source.keep_latest.group_by", "reserved by AWS"},
		{"keep latest long tag", base + "  keep_latest:\n    group_by: " + long + " # <-\n    count: 2\n", "source.keep_latest.group_by", "at most 128 characters"},

		// state
		{"bad backend", base + "state:\n  backend: sqlite # <-\n", "state.backend", `"sqlite" is not a state backend`},
		{"empty backend", base + "state:\n  backend: \"\" # <-\n", "state.backend", "required"},
		{"file without path", base + "state:\n  path: \"\" # <-\n", "state.path", "AMICOPIER_STATE_PATH"},
		{"dynamodb without table", base + "state: # <-\n  backend: dynamodb\n", "state.table", "AMICOPIER_STATE_TABLE"},
		{"bad table", base + "state:\n  backend: dynamodb\n  table: ab # <-\n", "state.table", "not a DynamoDB table name"},
		{"bad state region", base + "state:\n  region: local # <-\n", "state.region", `"local" is not an AWS Region`},
		{"bad state endpoint", base + "state:\n  endpoint: localhost:8000 # <-\n", "state.endpoint", "not an http:// or https:// URL"},
		{"zero lease", base + "state:\n  lease_ttl: 0s # <-\n", "state.lease_ttl", "must be at least 30s (got 0s)"},

		// limits
		{"zero concurrency", base + "limits:\n  concurrency: 0 # <-\n", "limits.concurrency", "between 1 and 1000 (got 0)"},
		{"huge concurrency", base + "limits:\n  concurrency: 1001 # <-\n", "limits.concurrency", "between 1 and 1000 (got 1001)"},
		{"zero in flight", base + "limits:\n  in_flight_copies: 0 # <-\n", "limits.in_flight_copies", "between 1 and 1000"},
		{"too many attempts", base + "limits:\n  max_attempts: 101 # <-\n", "limits.max_attempts", "between 1 and 100"},
		{"negative call retries", base + "limits:\n  call_retries: -1 # <-\n", "limits.call_retries", "between 0 and 20 (got -1)"},
		{"too many call retries", base + "limits:\n  call_retries: 21 # <-\n", "limits.call_retries", "between 0 and 20"},
		{"zero backoff", base + "limits:\n  retry_backoff: 0 # <-\n", "limits.retry_backoff", "must be positive"},
		{"zero describe rate", base + "limits:\n  describe_rate: 0 # <-\n", "limits.describe_rate", "above 0 and at most 1000 (got 0)"},
		{"zero describe burst", base + "limits:\n  describe_burst: 0 # <-\n", "limits.describe_burst", "between 1 and 1000 (got 0)"},
		{"negative mutating rate", base + "limits:\n  mutating_rate: -5 # <-\n", "limits.mutating_rate", "(got -5)"},
		{"huge mutating burst", base + "limits:\n  mutating_burst: 5000 # <-\n", "limits.mutating_burst", "between 1 and 1000"},
		{"huge assume role rate", base + "limits:\n  assume_role_rate: 1e6 # <-\n", "limits.assume_role_rate", "at most 10000"},
		{"margin over budget", base + "limits:\n  time_budget: 1m\n  deadline_margin: 1m # <-\n", "limits.deadline_margin", "leaves no time within limits.time_budget (1m0s)"},

		// prune, report, aws
		{"short grace", base + "prune:\n  enabled: true\n  grace_period: 30m # <-\n", "prune.grace_period", "at least 1h when pruning is enabled (got 30m0s)"},
		{"bad format", base + "report:\n  format: pdf # <-\n", "report.format", `"pdf" is not a report format`},
		{"bad aws region", base + "aws:\n  region: us-east # <-\n", "aws.region", `"us-east" is not an AWS Region`},
		{"bad endpoint scheme", base + "aws:\n  endpoints:\n    ec2: ftp://localhost:4566 # <-\n", "aws.endpoints.ec2", "not an http:// or https:// URL"},
		{"endpoint without host", base + "aws:\n  endpoints:\n    sts: \"http://\" # <-\n", "aws.endpoints.sts", "has no host"},
		{"endpoint unparsable", base + "aws:\n  endpoints:\n    organizations: \"http://[::1\" # <-\n", "aws.endpoints.organizations", "not a URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.doc)
			errs := validationErrors(t, c.Validate())
			if len(errs) != 1 {
				t.Fatalf("want exactly one error, got %d:\n%v", len(errs), (&ValidationError{File: "config.yaml", Errors: errs}).Error())
			}
			got := errs[0]
			if got.Path != tc.path {
				t.Errorf("path = %q, want %q (%s)", got.Path, tc.path, got.Message)
			}
			if want := markerLine(tc.doc); got.Line != want {
				t.Errorf("line = %d, want %d (%s)", got.Line, want, got.Message)
			}
			if !strings.Contains(got.Message, tc.message) {
				t.Errorf("message = %q, want it to contain %q", got.Message, tc.message)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	cases := []struct{ name, doc string }{
		{"minimal", base},
		{"root id and star", base + "targets:\n  rules:\n    - name: all\n      match: {BuiltBy: amigo}\n      accounts: [\"*\"]\n      ous: [r-ab12]\n"},
		{"aws-managed alias", base + "encryption:\n  kms_key: alias/aws/ebs\n"},
		{"key id", base + "encryption:\n  kms_key: 1234abcd-12ab-34cd-56ef-1234567890ab\n"},
		{"multi-region key id", base + "encryption:\n  kms_key: mrk-1234abcd12ab34cd56ef1234567890ab\n"},
		{"key arn in the only region", base + "encryption:\n  kms_key: arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab\n"},
		{"key arn with region overrides", base + "targets:\n  regions: [us-east-1]\nencryption:\n  kms_key: arn:aws:kms:eu-west-1:111111111111:alias/a\n  overrides:\n    - region: us-east-1\n      kms_key: arn:aws:kms:us-east-1:111111111111:alias/a\n"},
		{"account key arn with account+region override", base + "targets:\n  regions: [us-east-1]\nencryption:\n  overrides:\n    - account: \"222222222222\"\n      kms_key: arn:aws:kms:eu-west-1:222222222222:alias/a\n    - account: \"222222222222\"\n      region: us-east-1\n      kms_key: alias/a\n"},
		{"china partition template", base + "targets:\n  role_name: \"\"\n  role_arn_template: \"arn:aws-cn:iam::{account}:role/ops/amicopier\"\n"},
		{"gov partition role", base + "  role_arn: arn:aws-us-gov:iam::111111111111:role/amicopier\n"},
		{"index of missing tag", base + "copy:\n  name_template: '{{index .Tags \"Team\"}}{{.Name}} [{{.ID}}] @{{.TargetRegion}}'\n"},
		{"empty description", base + "copy:\n  description_template: \"\"\n"},
		{"deprecate after a week", base + "copy:\n  deprecate_after: 7d\n"},
		{"deprecate after the limit", base + "copy:\n  deprecate_after: 3650d\n"},
		{"keep the latest build", base + "  keep_latest:\n    group_by: Recipe\n    count: 1\n"},
		{"keep latest empty", base + "  keep_latest: {}\n"},
		{"tag source disabled", base + "targets:\n  tag_key: \"\"\n"},
		{"memory backend", base + "state:\n  backend: memory\n  path: \"\"\n"},
		{"dynamodb backend", base + "state:\n  backend: dynamodb\n  table: amicopier-state\n  region: eu-west-1\n  endpoint: http://localhost:8000\n"},
		{"budget with margin", base + "limits:\n  time_budget: 14m\n  deadline_margin: 90s\n  call_retries: 0\n"},
		{"fractional pacing", base + "limits:\n  mutating_rate: 2.5\n  describe_rate: 10\n"},
		{"prune", base + "prune:\n  enabled: true\n  grace_period: 1h\n"},
		{"markdown format", base + "report:\n  format: markdown\n"},
		{"html format", base + "report:\n  format: html\n"},
		{"all endpoints", base + "aws:\n  region: us-gov-west-1\n  endpoints:\n    ec2: http://localhost:4566\n    organizations: https://organizations.example\n    sts: http://127.0.0.1:4566/\n    dynamodb: http://[::1]:8000\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := mustParse(t, tc.doc).Validate(); err != nil {
				t.Errorf("Validate:\n%v", err)
			}
		})
	}
}

func TestValidateReportsEverythingAtOnce(t *testing.T) {
	doc := `source:
  account_id: "1"
  regions: [mars-1]
limits:
  concurrency: 0
report:
  format: pdf
`
	errs := validationErrors(t, mustParse(t, doc).Validate())
	want := []FieldError{
		{Path: "source.account_id", Line: 2},
		{Path: "source.regions[0]", Line: 3},
		{Path: "limits.concurrency", Line: 5},
		{Path: "report.format", Line: 7},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d: %+v", len(errs), len(want), errs)
	}
	for i, w := range want {
		if errs[i].Path != w.Path || errs[i].Line != w.Line {
			t.Errorf("error %d = %s:%d, want %s:%d", i, errs[i].Path, errs[i].Line, w.Path, w.Line)
		}
	}
}

func TestValidateCodeBuiltConfig(t *testing.T) {
	c := Default()
	c.Source.AccountID = "111111111111"
	c.Source.Regions = []string{"eu-west-1"}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults plus account and region: %v", err)
	}
	c.Limits.TimeBudget = Duration(-time.Second)
	c.State.RunRetention = -1
	c.Prune.GracePeriod = -1
	errs := validationErrors(t, c.Validate())
	got := map[string]string{}
	for _, fe := range errs {
		if fe.Line != 0 {
			t.Errorf("%s: line %d for a config built in code", fe.Path, fe.Line)
		}
		got[fe.Path] = fe.Message
	}
	for _, p := range []string{"limits.time_budget", "state.run_retention", "prune.grace_period"} {
		if !strings.Contains(got[p], "must not be negative") {
			t.Errorf("%s: got %q, want a negative-duration error", p, got[p])
		}
	}
	var nilConfig *Config
	if err := nilConfig.Validate(); err == nil || err.Error() == "" {
		t.Errorf("nil config: %v", err)
	}
}

func TestDefaultNeedsOnlyAccountAndRegion(t *testing.T) {
	errs := validationErrors(t, Default().Validate())
	if len(errs) != 2 || errs[0].Path != "source.account_id" || errs[1].Path != "source.regions" {
		t.Fatalf("Default().Validate() = %+v, want account id and regions required", errs)
	}
}

func TestValidationErrorFormat(t *testing.T) {
	cases := []struct {
		file string
		fe   FieldError
		want string
	}{
		{"config.yaml", FieldError{Path: "a.b", Line: 3, Message: "bad"}, "a.b (config.yaml:3): bad"},
		{"config.yaml", FieldError{Path: "a.b", Message: "bad"}, "a.b: bad"},
		{"", FieldError{Path: "a.b", Line: 3, Message: "bad"}, "a.b (line 3): bad"},
		{"config.yaml", FieldError{Line: 3, Message: "bad"}, "config.yaml:3: bad"},
		{"config.yaml", FieldError{Message: "bad"}, "config.yaml: bad"},
		{"", FieldError{Message: "bad"}, "bad"},
		{"", FieldError{Path: "x"}, "x: invalid"},
	}
	for _, tc := range cases {
		if got := (&ValidationError{File: tc.file, Errors: []FieldError{tc.fe}}).Error(); got != tc.want {
			t.Errorf("%+v in %q: got %q, want %q", tc.fe, tc.file, got, tc.want)
		}
	}
	two := &ValidationError{File: "c.yaml", Errors: []FieldError{{Path: "a", Line: 1, Message: "x"}, {Path: "b", Message: "y"}}}
	if got, want := two.Error(), "a (c.yaml:1): x\nb: y"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestReportFormatsAreTheRenderers: report.format accepts exactly the
// formats reconcile/report renders.
func TestReportFormatsAreTheRenderers(t *testing.T) {
	for _, f := range report.Formats {
		c := mustParse(t, base+"report:\n  format: "+f+"\n")
		if err := c.Validate(); err != nil {
			t.Errorf("format %s: %v", f, err)
		}
	}
	c := mustParse(t, base+"report:\n  format: pdf\n")
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), strings.Join(report.Formats, ", ")) {
		t.Errorf("format pdf: %v, want an error listing %v", err, report.Formats)
	}
	if d := Default().Report.Format; !slices.Contains(report.Formats, d) {
		t.Errorf("default format %q is not one of %v", d, report.Formats)
	}
}

// TestValidateRegionsAgainstTheSDK: a Region must be one the AWS SDK's
// partition metadata lists, wherever the configuration names one, and a
// near miss gets the closest names.
func TestValidateRegionsAgainstTheSDK(t *testing.T) {
	const src = "source:\n  account_id: \"111111111111\"\n  regions:\n    - "
	cases := []struct{ name, doc, path, message string }{
		{"transposed letters", src + "eu-wset-1 # <-\n", "source.regions[0]", `"eu-wset-1" is not an AWS Region; did you mean "eu-west-1"?`},
		{"no such number", src + "us-east-3 # <-\n", "source.regions[0]", `"us-east-3" is not an AWS Region; did you mean "us-east-1" or "us-east-2"? (amicopier knows the Regions of github.com/aws/aws-sdk-go-v2 v1.48.0: if AWS opened us-east-3 since, a newer amicopier will know it)`},
		{"typo is not new", src + "us-est-1 # <-\n", "source.regions[0]", `"us-est-1" is not an AWS Region; did you mean "us-east-1" or "us-west-1"?`},
		{"upper case", src + "EU-WEST-1 # <-\n", "source.regions[0]", `did you mean "eu-west-1"?`},
		{"a city", src + "frankfurt # <-\n", "source.regions[0]", `"frankfurt" is not an AWS Region; did you mean "eu-central-1" (Europe (Frankfurt))?`},
		{"far off", src + "moon-1 # <-\n", "source.regions[0]", `"moon-1" is not an AWS Region name (like eu-west-1 or us-east-1)`},
		{"new in a known partition", src + "ap-southeast-19 # <-\n", "source.regions[0]", `did you mean "ap-southeast-1"? (amicopier knows the Regions of github.com/aws/aws-sdk-go-v2 v1.48.0: if AWS opened ap-southeast-19 since, a newer amicopier will know it)`},
		{"targets", base + "targets:\n  regions: [eu-wset-2] # <-\n", "targets.regions[0]", `did you mean "eu-west-2"?`},
		{"rule", base + "targets:\n  rules:\n    - name: a\n      match: {Recipe: x}\n      accounts: [\"*\"]\n      regions: [us-wset-2] # <-\n", "targets.rules[0].regions[0]", `did you mean "us-west-2"?`},
		{"override", base + "encryption:\n  overrides:\n    - region: eu-centrl-1 # <-\n      kms_key: alias/x\n", "encryption.overrides[0].region", `did you mean "eu-central-1"?`},
		{"state", base + "state:\n  region: eu-wset-3 # <-\n", "state.region", `did you mean "eu-west-3"?`},
		{"aws", base + "aws:\n  region: us-est-1 # <-\n", "aws.region", `"us-est-1" is not an AWS Region; did you mean "us-east-1" or "us-west-1"?`},
		{"key arn", base + "encryption:\n  kms_key: arn:aws:kms:eu-wset-1:111111111111:alias/a # <-\n", "encryption.kms_key", `the key ARN's Region: "eu-wset-1" is not an AWS Region; did you mean "eu-west-1"?`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := validationErrors(t, mustParse(t, tc.doc).Validate())
			if len(errs) != 1 || errs[0].Path != tc.path || errs[0].Line != markerLine(tc.doc) || !strings.Contains(errs[0].Message, tc.message) {
				t.Fatalf("got %+v\nwant %s at line %d: %s", errs, tc.path, markerLine(tc.doc), tc.message)
			}
			if strings.Contains(errs[0].Message, "newer") != strings.Contains(tc.message, "newer") {
				t.Errorf("note on new Regions: got %q, want %q", errs[0].Message, tc.message)
			}
		})
	}
	for _, r := range []string{"eusc-de-east-1", "cn-north-1", "us-gov-west-1", "il-central-1", "mx-central-1"} {
		if err := mustParse(t, src+r+"\n").Validate(); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
}

// TestValidateLeaseTTLAgainstRenewal: the lease must outlive the renewals
// that keep it (every third of its lifetime, never more than once a second).
func TestValidateLeaseTTLAgainstRenewal(t *testing.T) {
	for value, message := range map[string]string{
		"1ns": "must be at least 30s (got 1ns)",
		"3s":  "must be at least 30s (got 3s)",
		"29s": "must be at least 30s (got 29s)",
		"2d":  "must be at most 1d (got 2d)",
	} {
		doc := base + "state:\n  lease_ttl: " + value + " # <-\n"
		errs := validationErrors(t, mustParse(t, doc).Validate())
		if len(errs) != 1 || errs[0].Path != "state.lease_ttl" || errs[0].Line != markerLine(doc) || !strings.Contains(errs[0].Message, message) {
			t.Errorf("lease_ttl %s: got %+v, want %q", value, errs, message)
		}
	}
	for _, value := range []string{"30s", "10m", "1h", "1d"} {
		if err := mustParse(t, base+"state:\n  lease_ttl: "+value+"\n").Validate(); err != nil {
			t.Errorf("lease_ttl %s: %v", value, err)
		}
	}
}

// TestValidateEndpointsAreLoopbackOrHTTPS: plain http goes to a local
// emulator only; anything else must be https.
func TestValidateEndpointsAreLoopbackOrHTTPS(t *testing.T) {
	for _, path := range []string{"aws.endpoints.ec2", "aws.endpoints.organizations", "aws.endpoints.sts", "aws.endpoints.dynamodb", "state.endpoint"} {
		section, key, _ := strings.Cut(path, ".")
		yamlOf := func(url string) string {
			if section == "state" {
				return base + "state:\n  endpoint: " + url + " # <-\n"
			}
			return base + "aws:\n  endpoints:\n    " + strings.TrimPrefix(key, "endpoints.") + ": " + url + " # <-\n"
		}
		for _, url := range []string{"http://dynamodb.example.com", "http://10.0.0.1:8000", "http://192.168.1.10", "http://localhost.example.com:4566", "http://127.0.0.1.nip.io", "http://LOCALHOST:4566"} {
			doc := yamlOf(url)
			errs := validationErrors(t, mustParse(t, doc).Validate())
			want := `"` + url + `" is plain http to a host that is not this machine: use https, or http to localhost, 127.0.0.1 or [::1] (a local emulator)`
			if len(errs) != 1 || errs[0].Path != path || errs[0].Line != markerLine(doc) || errs[0].Message != want {
				t.Errorf("%s: %s: got %+v, want %q", path, url, errs, want)
			}
		}
		for _, url := range []string{"https://dynamodb.eu-west-1.amazonaws.com", "https://10.0.0.1:8443", "http://localhost:4566", "http://127.0.0.1:4566", "http://127.1.2.3", "http://[::1]:8000"} {
			if err := mustParse(t, yamlOf(url)).Validate(); err != nil {
				t.Errorf("%s: %s: %v", path, url, err)
			}
		}
	}
}
