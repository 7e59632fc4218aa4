package reconcile

import (
	"errors"
	"fmt"
	"text/template"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// Settings is everything the engine takes from the configuration, in the
// engine's own terms: the wiring builds it once (engineconfig.Settings,
// from config.yaml) and the engine never sees the shape of config.yaml.
type Settings struct {
	// SourceAccount owns the golden AMIs; SourceRegions are where they
	// are discovered; SourceFilters keep only images whose tag K has one
	// of the listed values. IncludeDeprecated keeps images whose
	// DeprecationTime has passed (skipped otherwise).
	SourceAccount     string
	SourceRegions     []string
	SourceFilters     map[string][]string
	IncludeDeprecated bool
	// KeepLatest keeps only the newest builds of each group as sources
	// (the zero value: every build).
	KeepLatest KeepLatest

	// TargetTagKey is the AMI tag naming targets ("" disables it); Rules
	// give targets by the AMI's tags. TargetRegions are added to every
	// image's target Regions; ExcludeAccounts never receive copies.
	TargetTagKey    string
	Rules           []Rule
	TargetRegions   []string
	ExcludeAccounts []string

	// Keys chooses the KMS key of each copy; Copy shapes its name, tags
	// and description.
	Keys KeyPolicy
	Copy CopySettings

	// Pairs and Prune are the planner's policies; their Now is set by
	// each run.
	Pairs PairPolicy
	Prune PrunePolicy
	// Sharing says how sources are shared.
	Sharing SharingPolicy

	// Concurrency is how many accounts are worked on at once;
	// InFlightCopies caps pending copies per account and Region.
	Concurrency    int
	InFlightCopies int
	// TimeBudget stops new work after this long (0: none);
	// DeadlineMargin is kept free before any deadline.
	TimeBudget     time.Duration
	DeadlineMargin time.Duration
	// Check tunes the preflight check (check.go).
	Check CheckSettings
	// Publish says where the copies are published (publish.go); Events
	// where a run reports what it did (events.go).
	Publish PublishSettings
	Events  EventSettings
	// LeaseTTL is the lifetime of the run lease without renewal;
	// RunRetention how long run records are kept (0: for ever).
	LeaseTTL     time.Duration
	RunRetention time.Duration
}

// SharingPolicy says how sources are shared (grants.go).
type SharingPolicy struct {
	// OUGrants grants an OU (or the organisation) whole where the
	// metadata names it and every ACTIVE account under it is a target,
	// instead of its accounts one by one.
	OUGrants bool
	// Audit reads every source's launch and create-volume permissions
	// each run, to report grants other tools made to accounts and OUs
	// that are not targets; RevokeForeign also takes those back.
	Audit, RevokeForeign bool
}

// Rule gives targets to the images whose tags match.
type Rule struct {
	Name string
	// Match: every key must be a tag whose value matches the glob
	// (path.Match syntax).
	Match map[string]string
	// Accounts are account ids, "*" for the whole organisation; OUs are
	// OU or root ids; Regions are extra target Regions.
	Accounts []string
	OUs      []string
	Regions  []string
}

// KeyPolicy chooses the KMS key of copies.
type KeyPolicy struct {
	// Default is the key of every copy an override does not cover; ""
	// means each account's default EBS key.
	Default   string
	Overrides []KeyOverride
}

// KeyOverride picks Key for an account, a Region or both.
type KeyOverride struct {
	Account, Region, Key string
}

// For returns the key for copies in account and region: the most specific
// override wins (account and region, then account, then region), the first
// listed among equals, else Default.
func (p KeyPolicy) For(account, region string) string {
	best, bestRank := p.Default, 0
	for _, o := range p.Overrides {
		rank := 0
		switch {
		case o.Account != "" && o.Region != "":
			if o.Account == account && o.Region == region {
				rank = 3
			}
		case o.Account != "":
			if o.Account == account {
				rank = 2
			}
		case o.Region != "":
			if o.Region == region {
				rank = 1
			}
		}
		if rank > bestRank {
			best, bestRank = o.Key, rank
		}
	}
	return best
}

// CopySettings shape the copies.
type CopySettings struct {
	// Name and Description are executed with a CopyNameData.
	Name, Description *template.Template
	// EncryptedTagValue is the value of the Encrypted tag (AMIgo: "true").
	EncryptedTagValue string
	// KeepTag says whether a source tag with this key is copied; nil
	// keeps every tag AWS accepts.
	KeepTag func(key string) bool
	// DeprecateAfter deprecates a copy this long after its creation, or
	// at its source's deprecation time if that is earlier (0: the
	// source's alone).
	DeprecateAfter time.Duration
}

// KeepLatest keeps, of the source AMIs of each source Region that carry
// the tag GroupBy, the Count newest of each value as sources; the older
// ones are superseded. A zero Count keeps every build.
type KeepLatest struct {
	GroupBy string
	Count   int
}

// CopyNameData is what the copy name and description templates see.
type CopyNameData = cloud.CopyNameData

// Validate checks what the engine cannot run without; the configuration's
// own validation explains the same problems in the file's terms first.
func (s *Settings) Validate() error {
	var errs []error
	if !cloud.IsAccountID(s.SourceAccount) {
		errs = append(errs, fmt.Errorf("source account %q is not a 12-digit account id", s.SourceAccount))
	}
	if len(s.SourceRegions) == 0 {
		errs = append(errs, errors.New("no source Region"))
	}
	if s.Copy.Name == nil || s.Copy.Description == nil {
		errs = append(errs, errors.New("no copy name or description template"))
	}
	if s.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d: want at least 1", s.Concurrency))
	}
	if s.InFlightCopies < 1 {
		errs = append(errs, fmt.Errorf("in-flight copies %d: want at least 1", s.InFlightCopies))
	}
	if s.LeaseTTL <= 0 {
		errs = append(errs, fmt.Errorf("lease lifetime %s: want more than 0", s.LeaseTTL))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("engine settings: %w", err)
	}
	return nil
}
