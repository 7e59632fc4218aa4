package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
)

// FieldError is one problem with one configuration value.
type FieldError struct {
	// Path of the value, as in "targets.rules[1].accounts[0]"; empty for
	// problems with the document as a whole. A value set from the
	// environment reads "state.backend (from AMICOPIER_STATE_BACKEND)";
	// a variable of the environment that nothing reads (UnknownEnv) reads
	// its name and "(environment)".
	Path string
	// Line in the file, 0 when unknown (defaults, environment, code).
	Line int
	// Message says what is wrong and what is expected.
	Message string
}

// ValidationError lists every problem found in a configuration, so that
// one run of `amicopier validate` shows them all.
type ValidationError struct {
	// File is the configuration file's name as given to Parse or Load.
	File   string
	Errors []FieldError
}

// Error prints one problem per line as "path (file:line): message".
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		lines[i] = fe.format(e.File)
	}
	return strings.Join(lines, "\n")
}

func (fe FieldError) format(file string) string {
	loc := ""
	switch {
	case fe.Line > 0 && file != "":
		loc = file + ":" + strconv.Itoa(fe.Line)
	case fe.Line > 0:
		loc = "line " + strconv.Itoa(fe.Line)
	case fe.Path == "":
		loc = file
	}
	msg := fe.Message
	if msg == "" {
		msg = "invalid"
	}
	switch {
	case fe.Path != "" && loc != "":
		return fe.Path + " (" + loc + "): " + msg
	case fe.Path != "":
		return fe.Path + ": " + msg
	case loc != "":
		return loc + ": " + msg
	}
	return msg
}

// Validate checks every value and returns a *ValidationError listing all
// problems, or nil. After Parse the problems carry the file's lines.
func (c *Config) Validate() error {
	if c == nil {
		return errors.New("validate config: no configuration")
	}
	errs := c.problems()
	if len(errs) == 0 {
		return nil
	}
	file := ""
	if c.origin != nil {
		file = c.origin.file
	}
	return &ValidationError{File: file, Errors: errs}
}

// problems checks every value, leaving out those whose file value could
// not be read (Parse reported them).
func (c *Config) problems() []FieldError {
	v := &validator{origin: c.origin}
	v.source(&c.Source)
	v.targets(&c.Targets)
	v.roleARN("organization.role_arn", c.Organization.RoleARN)
	v.encryption(c)
	v.copy(&c.Copy)
	v.state(&c.State)
	v.limits(&c.Limits)
	v.prune(&c.Prune)
	if c.Sharing.RevokeForeign && !c.Sharing.Audit {
		v.add("sharing.revoke_foreign", "needs sharing.audit: true (amicopier only sees the grants of other tools when it reads every source's permissions)")
	}
	v.report(&c.Report)
	v.check(&c.Check)
	v.publish(&c.Publish) // publish.go
	v.events(&c.Events)
	v.aws(&c.AWS)
	return v.errs
}

type validator struct {
	origin *origin
	errs   []FieldError
}

func (v *validator) add(path, format string, args ...any) {
	if v.origin.reported(path) {
		return
	}
	p, line := v.origin.locate(path)
	v.errs = append(v.errs, FieldError{Path: p, Line: line, Message: fmt.Sprintf(format, args...)})
}

// required reports a missing value, naming its environment variable when
// it has one.
func (v *validator) required(path, what string) {
	msg := "required: " + what
	if name, ok := envVarFor(path); ok {
		msg += " (or set " + name + ")"
	}
	v.add(path, "%s", msg)
}

func (v *validator) source(s *Source) {
	switch {
	case s.AccountID == "":
		v.required("source.account_id", "the 12-digit id of the account where the AMIs are baked")
	case !cloud.IsAccountID(s.AccountID):
		v.add("source.account_id", "%q is not a 12-digit AWS account id", s.AccountID)
	}
	v.roleARN("source.role_arn", s.RoleARN)
	if len(s.Regions) == 0 {
		v.required("source.regions", "at least one Region to discover AMIs in, for example [eu-west-1]")
	}
	v.regions("source.regions", s.Regions)
	for _, k := range sortedMapKeys(s.Filters) {
		p := childPath("source.filters", k)
		v.tagKey(p, k)
		if len(s.Filters[k]) == 0 {
			v.add(p, "needs at least one tag value to match")
		}
		for i, val := range s.Filters[k] {
			if len(val) > 256 {
				v.add(indexPath(p, i), "tag values are at most 256 characters (got %d)", len(val))
			}
		}
	}
	v.keepLatest(s.KeepLatest)
}

func (v *validator) targets(t *Targets) {
	if t.TagKey != "" {
		v.tagKey("targets.tag_key", t.TagKey)
	}
	names := map[string]int{}
	for i := range t.Rules {
		v.rule(indexPath("targets.rules", i), &t.Rules[i], names, i)
	}
	if t.AmigoRecipesTable != "" && !isTableName(t.AmigoRecipesTable) {
		v.add("targets.amigo_recipes_table", "%q is not a DynamoDB table name (3-255 characters of letters, digits, _ . -)", t.AmigoRecipesTable)
	}
	v.regions("targets.regions", t.Regions)
	v.accounts("targets.exclude_accounts", t.ExcludeAccounts, false)

	switch {
	case t.RoleName == "" && t.RoleARNTemplate == "":
		v.required("targets.role_name", "the copier role's name in each target account, or set targets.role_arn_template")
	case t.RoleName != "" && !isRoleName(t.RoleName):
		v.add("targets.role_name", "%q is not an IAM role name (1-64 characters of letters, digits and + = , . @ _ -; for a role with a path use role_arn_template)", t.RoleName)
	}
	if tpl := t.RoleARNTemplate; tpl != "" {
		switch {
		case !strings.Contains(tpl, AccountPlaceholder):
			v.add("targets.role_arn_template", "%q must contain %s, which is replaced by each target account id", tpl, AccountPlaceholder)
		case !strings.HasPrefix(tpl, "arn:aws"):
			v.add("targets.role_arn_template", "%q must start with arn:aws (or arn:aws-cn, arn:aws-us-gov)", tpl)
		case !isRoleARN(strings.ReplaceAll(tpl, AccountPlaceholder, "123456789012")):
			v.add("targets.role_arn_template", "%q does not give an IAM role ARN such as arn:aws:iam::{account}:role/amicopier-copier", tpl)
		}
	}
	if t.ExternalID != "" && !isExternalID(t.ExternalID) {
		v.add("targets.external_id", "not a valid external id: 2-1224 characters of letters, digits and + = , . @ : / - _ (got %d characters)", len(t.ExternalID))
	}
}

func (v *validator) rule(p string, r *Rule, names map[string]int, i int) {
	switch first, dup := names[r.Name]; {
	case r.Name == "":
		v.required(p+".name", "a name for the rule, shown in reports and errors")
	case dup:
		v.add(p+".name", "duplicate rule name %q (also targets.rules[%d])", r.Name, first)
	default:
		names[r.Name] = i
	}
	if len(r.Match) == 0 {
		v.required(p+".match", "the tags an AMI must have, as key: glob (for example Recipe: ubuntu-*)")
	}
	for _, k := range sortedMapKeys(r.Match) {
		kp := childPath(p+".match", k)
		if k == "" {
			v.add(kp, "tag key must not be empty")
		}
		if err := checkGlob(r.Match[k]); err != nil {
			v.add(kp, "%v", err)
		}
	}
	if len(r.Accounts) == 0 && len(r.OUs) == 0 {
		v.add(p, "needs accounts or ous (or both): a rule without targets does nothing")
	}
	v.accounts(p+".accounts", r.Accounts, true)
	for j, ou := range r.OUs {
		if !cloud.IsOUID(ou) && !cloud.IsRootID(ou) {
			v.add(indexPath(p+".ous", j), "%q is not an OU id (ou-abcd-12345678) or a root id (r-abcd)", ou)
		}
	}
	v.regions(p+".regions", r.Regions)
}

func (v *validator) encryption(c *Config) {
	e := &c.Encryption
	if e.KMSKey != "" {
		if region, ok := v.kmsKey("encryption.kms_key", e.KMSKey); ok && region != "" {
			v.pinnedKey("encryption.kms_key", e.KMSKey, region, c, func(o KeyOverride) bool {
				return o.Account == ""
			})
		}
	}
	type scope struct{ account, region string }
	seen := map[scope]int{}
	for i, o := range e.Overrides {
		p := indexPath("encryption.overrides", i)
		if o.Account == "" && o.Region == "" {
			v.add(p, "needs account or region (or both) to say where the key applies")
		}
		if o.Account != "" && !cloud.IsAccountID(o.Account) {
			v.add(p+".account", "%q is not a 12-digit AWS account id", o.Account)
		}
		if o.Region != "" {
			v.region(p+".region", o.Region)
		}
		if first, dup := seen[scope{o.Account, o.Region}]; dup && (o.Account != "" || o.Region != "") {
			v.add(p, "same account and region as encryption.overrides[%d]; keep one", first)
		} else {
			seen[scope{o.Account, o.Region}] = i
		}
		if o.KMSKey == "" {
			v.required(p+".kms_key", "the KMS key for this account and/or Region")
			continue
		}
		region, ok := v.kmsKey(p+".kms_key", o.KMSKey)
		switch {
		case !ok || region == "":
		case o.Region != "":
			if region != o.Region {
				v.add(p+".kms_key", "the key ARN is in %s but the override is for %s: a copy can only use a key of its own Region", region, o.Region)
			}
		default:
			account := o.Account
			v.pinnedKey(p+".kms_key", o.KMSKey, region, c, func(o KeyOverride) bool {
				return o.Account == account && o.Region != ""
			})
		}
	}
}

// kmsKey checks a key reference and returns the Region an ARN pins it to.
func (v *validator) kmsKey(path, key string) (string, bool) {
	region, ok := kmsKeyRegion(key)
	switch {
	case !ok:
		v.add(path, "%q is not a KMS key: use a key id (1234abcd-12ab-34cd-56ef-1234567890ab), an alias name (alias/amicopier), a key ARN or an alias ARN", key)
	case region != "" && !isKnownRegion(region):
		v.add(path, "the key ARN's Region: %s", regionProblem(region))
		return "", false
	}
	return region, ok
}

// pinnedKey reports a key ARN (which exists in one Region only) used where
// copies are made in other Regions too, unless overrides matching covers
// take over in those Regions.
func (v *validator) pinnedKey(path, key, keyRegion string, c *Config, covers func(KeyOverride) bool) {
	var other []string
	for _, r := range c.copyRegions() {
		if r == keyRegion {
			continue
		}
		covered := false
		for _, o := range c.Encryption.Overrides {
			if o.Region == r && covers(o) {
				covered = true
				break
			}
		}
		if !covered {
			other = append(other, r)
		}
	}
	if len(other) > 0 {
		v.add(path, "the key ARN %q exists only in %s but copies are also made in %s: use an alias name (alias/...) created in every Region, or add overrides for those Regions", key, keyRegion, strings.Join(other, ", "))
	}
}

// copyRegions lists every Region the configuration makes copies in:
// source Regions (a copy's default Region is its source's) and the
// Regions targets and rules add.
func (c *Config) copyRegions() []string {
	var all []string
	all = append(all, c.Source.Regions...)
	all = append(all, c.Targets.Regions...)
	for _, r := range c.Targets.Rules {
		all = append(all, r.Regions...)
	}
	all = slices.DeleteFunc(all, func(r string) bool { return !isKnownRegion(r) })
	sort.Strings(all)
	return slices.Compact(all)
}

func (v *validator) copy(c *Copy) {
	sample := sampleCopyNameData()
	if c.NameTemplate == "" {
		v.required("copy.name_template", "a template for the copies' AMI names, for example "+DefaultNameTemplate)
	} else if t, err := newTemplate("copy.name_template", c.NameTemplate); err != nil {
		v.add("copy.name_template", "invalid template: %s", templateError(err))
	} else if name, err := render(t, sample); err != nil {
		v.add("copy.name_template", "cannot render with a sample image: %s (refer to tags an image may lack as {{index .Tags \"Key\"}})", templateError(err))
	} else if !strings.Contains(name, sample.ID) {
		v.add("copy.name_template", "must use {{.ID}}: AMI names are unique per account and Region, and only the source id keeps copies of different sources apart (renders to %q)", name)
	} else if !IsAMIName(name) {
		v.add("copy.name_template", "renders to %q with a sample image, which is not a valid AMI name: 3-128 characters of letters, digits, spaces and ( ) [ ] . / - ' @ _", name)
	}
	if t, err := newTemplate("copy.description_template", c.DescriptionTemplate); err != nil {
		v.add("copy.description_template", "invalid template: %s", templateError(err))
	} else if desc, err := render(t, sample); err != nil {
		v.add("copy.description_template", "cannot render with a sample image: %s (refer to tags an image may lack as {{index .Tags \"Key\"}})", templateError(err))
	} else if len(desc) > 255 {
		v.add("copy.description_template", "renders to %d characters with a sample image; AMI descriptions are at most 255", len(desc))
	}
	v.globs("copy.include_tags", c.IncludeTags)
	v.globs("copy.exclude_tags", c.ExcludeTags)
	if len(c.EncryptedTagValue) > 256 {
		v.add("copy.encrypted_tag_value", "tag values are at most 256 characters (got %d)", len(c.EncryptedTagValue))
	}
	v.deprecateAfter(c.DeprecateAfter)
}

var (
	templatePrefix  = regexp.MustCompile(`^template: [^:]*(:[0-9]+)*: `)
	executingPrefix = regexp.MustCompile(`^executing "[^"]*" `)
)

// templateError drops the "template: name:line:col:" and "executing"
// prefixes text/template adds, since the path already names the template.
func templateError(err error) string {
	msg := templatePrefix.ReplaceAllString(err.Error(), "")
	return executingPrefix.ReplaceAllString(msg, "")
}

func (v *validator) state(s *State) {
	switch s.Backend {
	case BackendFile:
		if s.Path == "" {
			v.required("state.path", "the file of the embedded store when state.backend is file")
		}
	case BackendMemory:
	case BackendDynamoDB:
		if s.Table == "" {
			v.required("state.table", "the DynamoDB table when state.backend is dynamodb")
		}
	case "":
		v.required("state.backend", "file, memory or dynamodb")
	default:
		v.add("state.backend", "%q is not a state backend: use file, memory or dynamodb", s.Backend)
	}
	if s.Table != "" && !isTableName(s.Table) {
		v.add("state.table", "%q is not a DynamoDB table name (3-255 characters of letters, digits, _ . -)", s.Table)
	}
	if s.Region != "" {
		v.region("state.region", s.Region)
	}
	v.endpoint("state.endpoint", s.Endpoint)
	v.nonNegative("state.run_retention", s.RunRetention)
	switch ttl := s.LeaseTTL.D(); {
	case ttl < minLeaseTTL:
		v.add("state.lease_ttl", "must be at least %s (got %s): the run renews its lease every third of this time (and never more often than once a second), and each renewal needs room to finish before the lease runs out, or another run takes it over mid-run",
			Duration(minLeaseTTL), s.LeaseTTL)
	case ttl > maxLeaseTTL:
		v.add("state.lease_ttl", "must be at most %s (got %s): a crashed run's lease is only taken over when it expires, and until then every run finds it held",
			Duration(maxLeaseTTL), s.LeaseTTL)
	}
}

// Bounds of state.lease_ttl. The engine renews the lease every third of
// its lifetime, but never more often than once a second, and stops work
// when a renewal fails and less than a third is left. Below 3s the lease
// would expire between two renewals. A renewal is a conditional DynamoDB
// write, which with the SDK's retries and backoff can take seconds, and
// the clocks of two runs' hosts may disagree by a second or two: 30s
// gives each third (10s) room for a slow renewal and for that skew. A day
// is far beyond any need (the lease is renewed while the run lives) and
// bounds how long a crashed run blocks the next ones.
const (
	minLeaseTTL = 30 * time.Second
	maxLeaseTTL = 24 * time.Hour
)

func (v *validator) limits(l *Limits) {
	v.between("limits.concurrency", l.Concurrency, 1, 1000)
	v.between("limits.in_flight_copies", l.InFlightCopies, 1, 1000)
	v.between("limits.max_attempts", l.MaxAttempts, 1, 100)
	v.between("limits.call_retries", l.CallRetries, 0, 20)
	v.rate("limits.describe_rate", l.DescribeRate, 1000)
	v.between("limits.describe_burst", l.DescribeBurst, 1, 1000)
	v.rate("limits.mutating_rate", l.MutatingRate, 1000)
	v.between("limits.mutating_burst", l.MutatingBurst, 1, 1000)
	v.rate("limits.assume_role_rate", l.AssumeRoleRate, 10000)
	v.rate("limits.parameter_read_rate", l.ParameterReadRate, 1000)
	v.rate("limits.parameter_write_rate", l.ParameterWriteRate, 1000)
	if l.RetryBackoff <= 0 {
		v.add("limits.retry_backoff", "must be positive (got %s)", l.RetryBackoff)
	}
	v.nonNegative("limits.time_budget", l.TimeBudget)
	v.nonNegative("limits.deadline_margin", l.DeadlineMargin)
	if l.TimeBudget > 0 && l.DeadlineMargin >= l.TimeBudget {
		v.add("limits.deadline_margin", "%s leaves no time within limits.time_budget (%s): make it smaller than the budget", l.DeadlineMargin, l.TimeBudget)
	}
}

func (v *validator) prune(p *Prune) {
	v.nonNegative("prune.grace_period", p.GracePeriod)
	if p.Enabled && p.GracePeriod.D() < time.Hour {
		v.add("prune.grace_period", "must be at least 1h when pruning is enabled (got %s): a source briefly missing must not cost its copies", p.GracePeriod)
	}
}

func (v *validator) report(r *Report) {
	if !slices.Contains(report.Formats, r.Format) {
		v.add("report.format", "%q is not a report format: use %s", r.Format, strings.Join(report.Formats, ", "))
	}
}

func (v *validator) aws(a *AWS) {
	if a.Region != "" {
		v.region("aws.region", a.Region)
	}
	v.endpoint("aws.endpoints.ec2", a.Endpoints.EC2)
	v.endpoint("aws.endpoints.organizations", a.Endpoints.Organizations)
	v.endpoint("aws.endpoints.sts", a.Endpoints.STS)
	v.endpoint("aws.endpoints.dynamodb", a.Endpoints.DynamoDB)
	v.endpoint("aws.endpoints.kms", a.Endpoints.KMS)
	v.endpoint("aws.endpoints.ssm", a.Endpoints.SSM)
	v.endpoint("aws.endpoints.events", a.Endpoints.Events)
}

// Shared checks.

func (v *validator) roleARN(path, arn string) {
	if arn != "" && !isRoleARN(arn) {
		v.add(path, "%q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", arn)
	}
}

func (v *validator) regions(path string, regions []string) {
	seen := map[string]int{}
	for i, r := range regions {
		p := indexPath(path, i)
		if !v.region(p, r) {
			continue
		}
		if first, dup := seen[r]; dup {
			v.add(p, "%q is listed twice (also %s)", r, indexPath(path, first))
			continue
		}
		seen[r] = i
	}
}

// region checks a Region name against the AWS SDK's partition metadata.
func (v *validator) region(path, name string) bool {
	if isKnownRegion(name) {
		return true
	}
	v.add(path, "%s", regionProblem(name))
	return false
}

func (v *validator) accounts(path string, accounts []string, allowStar bool) {
	for i, a := range accounts {
		switch {
		case cloud.IsAccountID(a):
		case allowStar && a == "*":
		case allowStar:
			v.add(indexPath(path, i), "%q is not a 12-digit account id or \"*\" (every ACTIVE account)", a)
		default:
			v.add(indexPath(path, i), "%q is not a 12-digit account id", a)
		}
	}
}

func (v *validator) tagKey(path, key string) {
	switch {
	case key == "":
		v.add(path, "tag key must not be empty")
	case len(key) > 128:
		v.add(path, "tag keys are at most 128 characters (got %d)", len(key))
	case strings.HasPrefix(strings.ToLower(key), "aws:"):
		v.add(path, "%q: tag keys starting with \"aws:\" are reserved by AWS", key)
	}
}

func (v *validator) globs(path string, patterns []string) {
	for i, p := range patterns {
		if p == "" {
			v.add(indexPath(path, i), "empty pattern: it matches nothing")
			continue
		}
		if err := checkGlob(p); err != nil {
			v.add(indexPath(path, i), "%v", err)
		}
	}
}

func (v *validator) endpoint(path, url string) {
	if url == "" {
		return
	}
	if err := checkEndpoint(url); err != nil {
		v.add(path, "%v", err)
	}
}

func (v *validator) nonNegative(path string, d Duration) {
	if d < 0 {
		v.add(path, "must not be negative (got %s)", d)
	}
}

// rate checks a client-side request rate (calls per second).
func (v *validator) rate(path string, r, hi float64) {
	if !(r > 0 && r <= hi) { // also refuses NaN
		v.add(path, "must be a number of calls per second above 0 and at most %g (got %g)", hi, r)
	}
}

func (v *validator) between(path string, n, lo, hi int) {
	if n < lo || n > hi {
		v.add(path, "must be between %d and %d (got %d)", lo, hi, n)
	}
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
