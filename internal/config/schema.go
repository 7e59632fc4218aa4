// Package config holds amicopier's configuration: the schema of
// config.yaml, its defaults, loading with line-accurate errors, validation
// and the environment overrides.
//
// A configuration is resolved in three steps, and callers should keep the
// order so that errors point at the right place:
//
//	cfg, err := config.Load("config.yaml") // defaults, then the file
//	err = config.ApplyEnv(cfg, os.Getenv)  // then the environment
//	err = cfg.Validate()                   // then every check at once
//
// LoadWithEnv does the three, and lists the problems of all three at
// once. Errors from Load and Validate are *ValidationError values listing
// every problem as "path (file:line): message". Check, which `amicopier
// validate` runs, also reports the AMICOPIER_* variables that nothing
// reads. A file is at most MaxFileSize bytes, and Region names are those
// the AWS SDK's partition metadata lists (internal/cloud).
//
// # Environment overrides
//
// A few values differ per deployment (the same file is shipped to a test
// and a production account); these environment variables override them
// when set to a non-empty value:
//
//	AMICOPIER_SOURCE_ACCOUNT_ID      source.account_id
//	AMICOPIER_STATE_BACKEND          state.backend
//	AMICOPIER_STATE_PATH             state.path
//	AMICOPIER_STATE_TABLE            state.table
//	AMICOPIER_STATE_REGION           state.region
//	AMICOPIER_STATE_ENDPOINT         state.endpoint
//	AMICOPIER_EXTERNAL_ID            targets.external_id
//	AMICOPIER_KMS_KEY                encryption.kms_key
//	AMICOPIER_TARGET_ROLE_NAME       targets.role_name
//	AMICOPIER_SOURCE_ROLE_ARN        source.role_arn
//	AMICOPIER_ORGANIZATION_ROLE_ARN  organization.role_arn
//
// EnvOverrides holds the same list for --help.
package config

import (
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// Config is the whole of config.yaml. Every field has a default (see
// Default), so an almost empty file is a valid configuration.
type Config struct {
	Source       Source       `yaml:"source"`
	Targets      Targets      `yaml:"targets"`
	Organization Organization `yaml:"organization"`
	Encryption   Encryption   `yaml:"encryption"`
	Copy         Copy         `yaml:"copy"`
	State        State        `yaml:"state"`
	Limits       Limits       `yaml:"limits"`
	Prune        Prune        `yaml:"prune"`
	Sharing      Sharing      `yaml:"sharing"`
	Report       Report       `yaml:"report"`
	Check        Check        `yaml:"check"`
	Publish      Publish      `yaml:"publish"`
	Events       Events       `yaml:"events"`
	AWS          AWS          `yaml:"aws"`

	// origin remembers where values came from (file lines, environment
	// variables) so that Validate can point at them. It is not part of the
	// YAML schema (yaml.v3 ignores unexported fields). Nil for a Config
	// built in code until ApplyEnv sets something; shallow copies share it.
	origin *origin
}

// Source is the account where golden AMIs are baked.
type Source struct {
	// AccountID is the 12-digit source account id (required).
	AccountID string `yaml:"account_id"`
	// RoleARN is assumed to describe and share source images; empty means
	// the job's own credentials are already in the source account.
	RoleARN string `yaml:"role_arn"`
	// Regions where source AMIs are discovered (at least one).
	Regions []string `yaml:"regions"`
	// Filters keeps only source images whose tag K matches one of the
	// values (exact values, as the EC2 "tag:K" filter).
	Filters map[string][]string `yaml:"filters"`
	// IncludeDeprecated keeps copying images whose DeprecationTime has
	// passed; by default they are skipped (and listed as skipped).
	IncludeDeprecated bool `yaml:"include_deprecated"`
	// KeepLatest keeps only the newest builds of each group as sources;
	// the older ones are superseded. The zero value keeps every build.
	KeepLatest KeepLatest `yaml:"keep_latest"`
}

// KeepLatest groups the source AMIs of each source Region by the value of
// one tag and keeps the Count newest of each group (by creation date) as
// sources. An AMI without the tag is in no group and always a source.
type KeepLatest struct {
	// GroupBy is the tag key that names an AMI's group (Recipe, say).
	GroupBy string `yaml:"group_by"`
	// Count is how many builds of a group are sources (at least 1).
	Count int `yaml:"count"`
}

// Enabled reports whether keep_latest is set.
func (k KeepLatest) Enabled() bool { return k.GroupBy != "" || k.Count != 0 }

// Targets says which accounts and Regions should hold copies, and how to
// reach them.
type Targets struct {
	// TagKey is the AMI tag listing targets: account ids, OU ids or "*",
	// separated by commas or spaces. Empty disables the tag source.
	TagKey string `yaml:"tag_key"`
	// Rules map AMI tags to targets.
	Rules []Rule `yaml:"rules"`
	// AmigoRecipesTable is the AMIgo recipes DynamoDB table
	// (amigo-<STAGE>-recipes); empty disables that source.
	AmigoRecipesTable string `yaml:"amigo_recipes_table"`
	// Regions are added to every AMI's target Regions (the source AMI's
	// own Region always is one).
	Regions []string `yaml:"regions"`
	// ExcludeAccounts never receive copies, whatever the metadata says.
	ExcludeAccounts []string `yaml:"exclude_accounts"`
	// RoleName is the copier role in each target account.
	RoleName string `yaml:"role_name"`
	// RoleARNTemplate overrides RoleName; "{account}" is replaced by the
	// account id.
	RoleARNTemplate string `yaml:"role_arn_template"`
	// ExternalID is passed to AssumeRole when set.
	ExternalID string `yaml:"external_id"`
}

// Rule maps AMIs whose tags match to target accounts, OUs and Regions.
type Rule struct {
	// Name identifies the rule in reports and errors.
	Name string `yaml:"name"`
	// Match: every key must be present with a value matching the glob
	// (path.Match syntax, e.g. "ubuntu-*").
	Match map[string]string `yaml:"match"`
	// Accounts are 12-digit account ids; "*" means every ACTIVE account.
	Accounts []string `yaml:"accounts"`
	// OUs are OU ids (or root ids), expanded recursively.
	OUs []string `yaml:"ous"`
	// Regions are extra target Regions for the matched AMIs.
	Regions []string `yaml:"regions"`
}

// Organization says how to read the AWS Organization.
type Organization struct {
	// RoleARN is assumed to call Organizations (the management account or
	// a delegated administrator); empty uses the job's own credentials.
	RoleARN string `yaml:"role_arn"`
}

// Encryption chooses the KMS key of each copy.
type Encryption struct {
	// KMSKey is the default key (key id, alias, key ARN or alias ARN);
	// empty means each account's default EBS encryption key. An alias
	// name like "alias/amicopier" resolves in every account and Region.
	KMSKey string `yaml:"kms_key"`
	// Overrides pick another key for an account, a Region or both; the
	// most specific match wins (account+region, then account, then region).
	Overrides []KeyOverride `yaml:"overrides"`
}

// KeyOverride is the key for copies in an account and/or Region.
type KeyOverride struct {
	Account string `yaml:"account"`
	Region  string `yaml:"region"`
	KMSKey  string `yaml:"kms_key"`
}

// Copy shapes the copies: name and tags.
type Copy struct {
	// NameTemplate is a Go text/template for the copy's AMI name over
	// CopyNameData (.Name, .ID, .Region, .Account, .TargetRegion, .Tags).
	// It must use .ID so names stay unique per account and Region.
	NameTemplate string `yaml:"name_template"`
	// DescriptionTemplate is the same for the description (at most 255
	// characters once rendered).
	DescriptionTemplate string `yaml:"description_template"`
	// IncludeTags are glob patterns of source tag keys to copy; empty
	// means all.
	IncludeTags []string `yaml:"include_tags"`
	// ExcludeTags are glob patterns of source tag keys never copied
	// (keys starting with "aws:" never are).
	ExcludeTags []string `yaml:"exclude_tags"`
	// EncryptedTagValue is the value of the "Encrypted" tag (AMIgo: "true").
	EncryptedTagValue string `yaml:"encrypted_tag_value"`
	// DeprecateAfter deprecates each copy this long after it was made; a
	// copy also follows its source's deprecation time, and the earlier
	// of the two applies. 0 means the source's alone.
	DeprecateAfter Duration `yaml:"deprecate_after"`
}

// State chooses where progress is recorded.
type State struct {
	// Backend is "file" (default), "memory" or "dynamodb".
	Backend string `yaml:"backend"`
	// Path of the embedded file store.
	Path string `yaml:"path"`
	// Table, Region and Endpoint of the DynamoDB store.
	Table    string `yaml:"table"`
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
	// RunRetention is how long run records are kept.
	RunRetention Duration `yaml:"run_retention"`
	// LeaseTTL is how long a run lease lives without renewal.
	LeaseTTL Duration `yaml:"lease_ttl"`
}

// Limits bound what a run does and how fast.
type Limits struct {
	// Concurrency is the number of accounts worked on at once.
	Concurrency int `yaml:"concurrency"`
	// InFlightCopies caps pending copies per account and Region, counting
	// copies already pending.
	InFlightCopies int `yaml:"in_flight_copies"`
	// MaxAttempts is how many copies of a pair may fail before it is stuck.
	MaxAttempts int `yaml:"max_attempts"`
	// RetryBackoff is the wait after the first failed attempt; it doubles
	// with each further attempt.
	RetryBackoff Duration `yaml:"retry_backoff"`
	// TimeBudget stops starting new work after this long; 0 means no
	// budget (the Lambda deadline applies on its own).
	TimeBudget Duration `yaml:"time_budget"`
	// DeadlineMargin is kept free before a deadline for recording results.
	DeadlineMargin Duration `yaml:"deadline_margin"`
	// CallRetries is how many times the SDK's retryer retries a throttled
	// or transient call (it makes CallRetries+1 attempts) before the error
	// reaches the engine.
	CallRetries int `yaml:"call_retries"`
	// DescribeRate and DescribeBurst pace the run's calls of each
	// non-mutating EC2 API per account and Region (a token bucket on the
	// client side) so they stay within EC2's bucket of that API (100
	// burst, 20 per second).
	DescribeRate  float64 `yaml:"describe_rate"`
	DescribeBurst int     `yaml:"describe_burst"`
	// MutatingRate and MutatingBurst pace the calls of each mutating EC2
	// API (CopyImage, ModifyImageAttribute, ...) per account and Region,
	// within EC2's bucket of that API. The source account's buckets are
	// shared by every target's sharing calls.
	MutatingRate  float64 `yaml:"mutating_rate"`
	MutatingBurst int     `yaml:"mutating_burst"`
	// AssumeRoleRate paces AssumeRole calls per second (and is their
	// burst), within STS's per-account request rate.
	AssumeRoleRate float64 `yaml:"assume_role_rate"`
	// ParameterReadRate and ParameterWriteRate pace each Parameter Store
	// API per target account and Region (reads: GetParameters,
	// ListTagsForResource; writes: PutParameter, AddTagsToResource), in
	// calls per second, which are also the bursts: the account's own
	// launches draw on SSM's throughput quota too.
	ParameterReadRate  float64 `yaml:"parameter_read_rate"`
	ParameterWriteRate float64 `yaml:"parameter_write_rate"`
}

// Prune controls removal of orphaned copies.
type Prune struct {
	// Enabled turns pruning on; off by default.
	Enabled bool `yaml:"enabled"`
	// GracePeriod after the source disappeared before a copy is pruned.
	GracePeriod Duration `yaml:"grace_period"`
}

// Report chooses the default output.
type Report struct {
	// Format is "table", "json", "markdown" or "html".
	Format string `yaml:"format"`
}

// AWS holds endpoint overrides, for local emulators only.
type AWS struct {
	// Region is the home Region for Organizations and STS calls.
	Region    string    `yaml:"region"`
	Endpoints Endpoints `yaml:"endpoints"`
}

// Endpoints override the service endpoints (URLs).
type Endpoints struct {
	EC2           string `yaml:"ec2"`
	Organizations string `yaml:"organizations"`
	STS           string `yaml:"sts"`
	DynamoDB      string `yaml:"dynamodb"`
	KMS           string `yaml:"kms"`
	SSM           string `yaml:"ssm"`
	Events        string `yaml:"events"`
}

// Duration is a time.Duration written as "90s", "15m", "24h" or "7d".
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// CopyNameData is what the copy name and description templates see: the
// engine's own type, so a template validated here renders the same there.
type CopyNameData = cloud.CopyNameData
