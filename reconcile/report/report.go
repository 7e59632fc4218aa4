// Package report holds the drift report and run summary models and renders
// them as a terminal table, JSON (a stable, versioned schema), Markdown and
// a self-contained HTML drift matrix.
// Every renderer works from the same model, so the formats never disagree.
package report

import (
	"cmp"
	"slices"
	"time"
)

// Schema identifies the JSON report format; it changes only with a
// breaking change of the fields below.
const Schema = "amicopier.report/v1"

// Category is a drift category. The names are part of the JSON schema.
type Category string

// Drift categories (docs/design.md, pairs and drift).
const (
	Missing        Category = "missing"
	InProgress     Category = "in_progress"
	Failed         Category = "failed"
	Stuck          Category = "stuck"
	Unencrypted    Category = "unencrypted"
	WrongKey       Category = "wrong_key"
	Duplicate      Category = "duplicate"
	Orphaned       Category = "orphaned"
	Superseded     Category = "superseded"
	RejectedTarget Category = "rejected_target"
	Unreachable    Category = "unreachable"
	OK             Category = "ok"
)

// Categories lists every category in report order: what needs a human
// first, healthy last.
var Categories = []Category{
	Missing, InProgress, Failed, Stuck, Unencrypted, WrongKey, Duplicate,
	Orphaned, Superseded, RejectedTarget, Unreachable, OK,
}

// IsDrift reports whether a category is drift (anything but ok).
func (c Category) IsDrift() bool { return c != OK }

// Item is one pair (source AMI, target account, target Region) and what
// the engine found and does about it.
type Item struct {
	SourceImage  string   `json:"source_image"`
	SourceName   string   `json:"source_name,omitempty"`
	SourceRegion string   `json:"source_region,omitempty"`
	Account      string   `json:"account"`
	AccountName  string   `json:"account_name,omitempty"`
	Region       string   `json:"region"`
	Category     Category `json:"category"`
	// Reason says, in words a person can act on, why the pair is in its
	// category.
	Reason string `json:"reason"`
	// Action is what run does (plan) or did (run): "copy",
	// "deregister_failed+copy", "deferred", "none", ...
	Action string `json:"action,omitempty"`
	// CopyImages are the ids of the copies found for the pair (and of a
	// copy the run started); Copies describes each of them.
	CopyImages []string `json:"copy_images,omitempty"`
	// Copies is the inventory: which copy AMI serves the source in the
	// account and Region, its state and its KMS key.
	Copies    []Copy `json:"copies,omitempty"`
	Attempts  int    `json:"attempts,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// KMSProblem, set by plan, is the key problem the preflight check
	// finds for the pair: its copy would fail (the reason starts with
	// "kms_problem:").
	KMSProblem string `json:"kms_problem,omitempty"`
}

// How a copy's KMS key is known (Copy.KMSKeyFrom).
const (
	// KeyRequested: amicopier made the copy and asked CopyImage for this
	// key, as configured (an id, ARN or alias); its amicopier:kms-key tag
	// records it.
	KeyRequested = "requested"
	// KeyAccountDefault: amicopier made the copy without naming a key,
	// so EC2 encrypted it with the account's default EBS key in that
	// Region (KMSKey is empty).
	KeyAccountDefault = "account_default"
	// KeySnapshots: the keys the copy's snapshots report
	// (DescribeSnapshots), read for copies made by other tools.
	KeySnapshots = "snapshots"
)

// Copy is one copy AMI of a pair as observed (or as just started).
type Copy struct {
	ImageID string `json:"image_id"`
	// State is the image state EC2 reports: pending, available, failed,
	// disabled, ...; empty when not known (an orphaned copy).
	State string `json:"state,omitempty"`
	// Encrypted: every EBS volume of the copy is encrypted.
	Encrypted bool `json:"encrypted"`
	// KMSKey is the copy's key as far as it is known, KMSKeyFrom how it
	// is known (KeyRequested, KeyAccountDefault or KeySnapshots). Both
	// are empty when it is not known: DescribeImages does not report
	// keys, and the snapshots of a copy made by another tool are only
	// read when a key id or ARN is configured to judge it by. Several
	// keys (volumes under different keys) are separated by commas.
	KMSKey     string `json:"kms_key,omitempty"`
	KMSKeyFrom string `json:"kms_key_from,omitempty"`
	// Managed: the copy carries amicopier's marker (amicopier made it).
	Managed bool `json:"managed"`
	// DeprecationTime is the copy's deprecation time as EC2 reports it;
	// absent when it has none (or it was not read).
	DeprecationTime time.Time `json:"deprecation_time,omitzero"`
}

// Source describes a source AMI of the report.
type Source struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Region  string    `json:"region"`
	Recipe  string    `json:"recipe,omitempty"`
	Created time.Time `json:"created,omitzero"`
	Targets int       `json:"targets"`
	// Superseded: a build source.keep_latest no longer keeps; it is no
	// source (no pair, no target), listed for the superseded copies made
	// of it.
	Superseded bool `json:"superseded,omitempty"`
}

// Account describes a target account of the report.
type Account struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	State string `json:"state,omitempty"`
	// OU is the name of the organisational unit the account sits in,
	// when the run had to read it.
	OU string `json:"ou,omitempty"`
}

// Scope is what a run was limited to.
type Scope struct {
	Images   []string `json:"images,omitempty"`
	Accounts []string `json:"accounts,omitempty"`
	Shard    string   `json:"shard,omitempty"`
}

// Report is the drift report of one observation.
type Report struct {
	Schema        string    `json:"schema"`
	GeneratedAt   time.Time `json:"generated_at"`
	Mode          string    `json:"mode"`
	SourceAccount string    `json:"source_account"`
	Regions       []string  `json:"regions"`
	Scope         Scope     `json:"scope"`
	// Pairs is the number of pairs observed, ok ones included.
	Pairs  int              `json:"pairs"`
	Counts map[Category]int `json:"counts"`
	// IncludesOK says Items lists every pair, ok ones included (the
	// inventory: plan and run --include-ok, and the drift matrix); without
	// it Items lists the drifted pairs only and ok pairs are only counted.
	IncludesOK bool `json:"includes_ok"`
	// Items holds one entry per pair that is not ok, and per ok pair too
	// when IncludesOK.
	Items    []Item    `json:"items"`
	Sources  []Source  `json:"sources"`
	Accounts []Account `json:"accounts"`
	// Skipped lists the images of the source account discovery did not
	// take for sources, with why (a deprecated AMI); copies found there
	// (CopiedFromAMI or amicopier's marker) are only counted, in
	// CopiesInSource.
	Skipped        []Skipped `json:"skipped_sources,omitempty"`
	CopiesInSource int       `json:"copies_in_source,omitempty"`
	// Sharing says, per source image, what the run granted and took back
	// (or, in a dry run, would), and the grants of other tools it found
	// to accounts and OUs that are not targets.
	Sharing []ImageSharing `json:"sharing,omitempty"`
	// Unmatched names what the run was asked for and found nothing for
	// (unmatched.go); absent when everything matched.
	Unmatched *Unmatched `json:"unmatched,omitempty"`
	// Deprecations lists the copies amicopier made whose deprecation time
	// is not the one they should have, and what the run does (or did)
	// about it.
	Deprecations []Deprecation `json:"deprecations,omitempty"`
	// Parameters are the SSM parameters the copies are published in
	// (publish.ssm), one per target account, Region and parameter name:
	// those in drift or waiting, and ok ones too when IncludesOK (or the
	// run asked for every parameter); ParameterCounts counts them all by
	// state (parameters.go).
	Parameters      []Parameter            `json:"parameters,omitempty"`
	ParameterCounts map[ParameterState]int `json:"parameter_counts,omitempty"`
	// Events, in a dry run, are the events run would publish
	// (events.bus).
	Events *EventCounts `json:"events,omitempty"`
}

// Skipped is an image of the source account that is not a source.
type Skipped struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Region string `json:"region"`
	Reason string `json:"reason"`
}

// ImageSharing is the sharing of one source image in one run.
type ImageSharing struct {
	Image  string `json:"image"`
	Region string `json:"region"`
	// Granted counts the grants added: accounts, OUs and organisations
	// to the launch permission, accounts to the snapshots' create-volume
	// permission.
	GrantedAccounts int `json:"granted_accounts,omitempty"`
	GrantedOUs      int `json:"granted_ous,omitempty"`
	GrantedVolume   int `json:"granted_volume,omitempty"`
	// Revoked lists the grantees (account ids, OU and organisation ARNs)
	// whose grants amicopier made and took back: no longer targets, or
	// their copies are done.
	Revoked []string `json:"revoked,omitempty"`
	// Foreign lists grantees another tool granted that are not targets;
	// reported, not touched (unless sharing.revoke_foreign).
	Foreign []string `json:"foreign,omitempty"`
	// Deferred counts the accounts whose copies wait for room in the
	// AMI's sharing quota.
	Deferred int `json:"deferred_for_quota,omitempty"`
	// Entities is how many entities the launch permission holds after the
	// run (when it was read), against the quota of 1,000.
	Entities int `json:"entities,omitempty"`
}

// New returns an empty report with every category counted as zero.
func New(mode, sourceAccount string, regions []string, at time.Time) *Report {
	r := &Report{
		Schema:        Schema,
		GeneratedAt:   at.UTC(),
		Mode:          mode,
		SourceAccount: sourceAccount,
		Regions:       slices.Clone(regions),
		Counts:        make(map[Category]int, len(Categories)),
		Items:         []Item{},
		Sources:       []Source{},
		Accounts:      []Account{},
	}
	for _, c := range Categories {
		r.Counts[c] = 0
	}
	return r
}

// Drift is the number of pairs in a drift category.
func (r *Report) Drift() int {
	n := 0
	for c, k := range r.Counts {
		if c.IsDrift() {
			n += k
		}
	}
	return n
}

// Sort puts items, sources and accounts in their canonical order, so
// two observations of the same world render identically.
func (r *Report) Sort() {
	slices.SortFunc(r.Items, func(a, b Item) int {
		return cmp.Or(
			cmp.Compare(a.SourceRegion, b.SourceRegion),
			cmp.Compare(a.SourceImage, b.SourceImage),
			cmp.Compare(a.Account, b.Account),
			cmp.Compare(a.Region, b.Region),
			cmp.Compare(a.Category, b.Category),
		)
	})
	slices.SortFunc(r.Sources, func(a, b Source) int {
		return cmp.Or(cmp.Compare(a.Region, b.Region), cmp.Compare(a.ID, b.ID))
	})
	slices.SortFunc(r.Accounts, func(a, b Account) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(r.Skipped, func(a, b Skipped) int { return cmp.Or(cmp.Compare(a.Region, b.Region), cmp.Compare(a.ID, b.ID)) })
	slices.SortFunc(r.Sharing, func(a, b ImageSharing) int {
		return cmp.Or(cmp.Compare(a.Region, b.Region), cmp.Compare(a.Image, b.Image))
	})
	slices.SortFunc(r.Deprecations, func(a, b Deprecation) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region), cmp.Compare(a.Image, b.Image))
	})
	sortParameters(r.Parameters)
}

// Summary is what a run did.
type Summary struct {
	RunID    string    `json:"run_id"`
	Trigger  string    `json:"trigger"`
	Mode     string    `json:"mode"`
	Status   string    `json:"status"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// DurationSeconds is wall time (real time, not simulated).
	DurationSeconds float64 `json:"duration_seconds"`
	// Actions counts actions by kind ("copy", "share_launch_permission",
	// "share_snapshot", "deregister_failed", "deferred", ...).
	Actions map[string]int `json:"actions"`
	// APICalls counts AWS calls by operation name.
	APICalls map[string]int64 `json:"api_calls"`
	// MutatingCalls is the number of calls that changed anything in AWS.
	MutatingCalls int64 `json:"mutating_calls"`
	// ThrottledCalls counts calls AWS throttled (and the run retried).
	ThrottledCalls int64 `json:"throttled_calls"`
	// ThrottleErrors counts throttled calls that were still throttled
	// after every retry and failed what they were for.
	ThrottleErrors int64 `json:"throttle_errors"`
	// StateWrites counts writes to the state store.
	StateWrites int              `json:"state_writes"`
	Counts      map[Category]int `json:"counts"`
	// Errors lists the first errors (a bounded number, then one line
	// counting the rest by AWS error code); ErrorCount counts them all.
	Errors     []string `json:"errors,omitempty"`
	ErrorCount int      `json:"error_count"`
	// Unreachable lists the target accounts the run could not work in
	// (at most MaxUnreachable, most Regions first), UnreachableCount
	// counts them all: with the errors, they say why a run is partial.
	Unreachable      []UnreachableAccount `json:"unreachable,omitempty"`
	UnreachableCount int                  `json:"unreachable_count,omitempty"`
	// Events says what the run published to its event bus (events.bus).
	Events *EventCounts `json:"events,omitempty"`
}

// UnreachableAccount is a target account a run could not observe or work in.
type UnreachableAccount struct {
	Account string   `json:"account"`
	Regions []string `json:"regions,omitempty"`
	// Reason is the reason of its first unreachable pair.
	Reason string `json:"reason"`
}

// MaxUnreachable bounds the unreachable accounts a summary lists.
const MaxUnreachable = 50

// UnreachableAccounts gathers the report's unreachable pairs by account:
// at most limit accounts (those unreachable in the most Regions first,
// then by id) and how many there are in all.
func UnreachableAccounts(r *Report, limit int) ([]UnreachableAccount, int) {
	byID := map[string]*UnreachableAccount{}
	var list []*UnreachableAccount
	for _, it := range r.Items {
		if it.Category != Unreachable {
			continue
		}
		u := byID[it.Account]
		if u == nil {
			u = &UnreachableAccount{Account: it.Account, Reason: it.Reason}
			byID[it.Account] = u
			list = append(list, u)
		}
		if it.Region != "" && !slices.Contains(u.Regions, it.Region) {
			u.Regions = append(u.Regions, it.Region)
		}
	}
	slices.SortFunc(list, func(a, b *UnreachableAccount) int {
		return cmp.Or(cmp.Compare(len(b.Regions), len(a.Regions)), cmp.Compare(a.Account, b.Account))
	})
	out := make([]UnreachableAccount, 0, min(len(list), max(limit, 0)))
	for _, u := range list {
		if len(out) == limit {
			break
		}
		slices.Sort(u.Regions)
		out = append(out, *u)
	}
	if len(out) == 0 {
		out = nil
	}
	return out, len(list)
}

// Run statuses.
const (
	StatusSucceeded = "succeeded"
	// StatusPartial: some accounts were unreachable or some actions failed;
	// the others were reconciled.
	StatusPartial = "partial"
	StatusFailed  = "failed"
	// StatusSkipped: another run held the lease.
	StatusSkipped = "skipped"
	// StatusInterrupted: the run's caller stopped it (a signal, an
	// invocation's deadline); it stopped starting work and the next run
	// goes on.
	StatusInterrupted = "interrupted"
)
