package config

import (
	"fmt"
	"maps"
	"slices"

	"github.com/amicopier/amicopier/internal/pacing"
	"github.com/amicopier/amicopier/reconcile"
)

// EngineSettings translates the configuration into the engine's settings.
// Call it on a validated configuration; it fails only on templates that do
// not parse (which Validate reports first).
func (c *Config) EngineSettings() (reconcile.Settings, error) {
	name, desc, err := c.Copy.Templates()
	if err != nil {
		return reconcile.Settings{}, fmt.Errorf("copy templates: %w", err)
	}
	rules := make([]reconcile.Rule, len(c.Targets.Rules))
	for i, r := range c.Targets.Rules {
		rules[i] = reconcile.Rule{
			Name: r.Name, Match: maps.Clone(r.Match),
			Accounts: slices.Clone(r.Accounts), OUs: slices.Clone(r.OUs), Regions: slices.Clone(r.Regions),
		}
	}
	filters := make(map[string][]string, len(c.Source.Filters))
	for k, v := range c.Source.Filters {
		filters[k] = slices.Clone(v)
	}
	copyCfg := c.Copy
	publish, err := c.publishSettings() // publish.go
	if err != nil {
		return reconcile.Settings{}, fmt.Errorf("publish.ssm.name_template: %w", err)
	}
	return reconcile.Settings{
		SourceAccount:     c.Source.AccountID,
		SourceRegions:     slices.Clone(c.Source.Regions),
		SourceFilters:     filters,
		IncludeDeprecated: c.Source.IncludeDeprecated,
		KeepLatest:        reconcile.KeepLatest{GroupBy: c.Source.KeepLatest.GroupBy, Count: c.Source.KeepLatest.Count},
		TargetTagKey:      c.Targets.TagKey,
		Rules:             rules,
		TargetRegions:     slices.Clone(c.Targets.Regions),
		ExcludeAccounts:   slices.Clone(c.Targets.ExcludeAccounts),
		Keys:              c.keyPolicy(),
		Copy: reconcile.CopySettings{
			Name: name, Description: desc,
			EncryptedTagValue: c.Copy.EncryptedTagValue,
			KeepTag:           copyCfg.KeepTag,
			DeprecateAfter:    c.Copy.DeprecateAfter.D(),
		},
		Pairs: reconcile.PairPolicy{MaxAttempts: c.Limits.MaxAttempts, RetryBackoff: c.Limits.RetryBackoff.D()},
		Prune: reconcile.PrunePolicy{Enabled: c.Prune.Enabled, Grace: c.Prune.GracePeriod.D()},
		Sharing: reconcile.SharingPolicy{
			OUGrants: c.Sharing.OrganizationalUnits, Audit: c.Sharing.Audit, RevokeForeign: c.Sharing.RevokeForeign,
		},
		Concurrency:    c.Limits.Concurrency,
		InFlightCopies: c.Limits.InFlightCopies,
		TimeBudget:     c.Limits.TimeBudget.D(),
		DeadlineMargin: c.Limits.DeadlineMargin.D(),
		Check:          c.Check.settings(),
		Publish:        publish,
		Events:         c.eventSettings(),
		LeaseTTL:       c.State.LeaseTTL.D(),
		RunRetention:   c.State.RunRetention.D(),
	}, nil
}

// keyPolicy is encryption.kms_key and its overrides in the engine's terms.
func (c *Config) keyPolicy() reconcile.KeyPolicy {
	p := reconcile.KeyPolicy{Default: c.Encryption.KMSKey}
	for _, o := range c.Encryption.Overrides {
		p.Overrides = append(p.Overrides, reconcile.KeyOverride{Account: o.Account, Region: o.Region, Key: o.KMSKey})
	}
	return p
}

// PaceRates sizes the connectors' client-side buckets from limits.*_rate
// and limits.*_burst, where they are set; pacing.DefaultRates elsewhere.
func (l Limits) PaceRates() pacing.Rates {
	r := pacing.DefaultRates
	if l.DescribeRate > 0 && l.DescribeBurst > 0 {
		r.Describe = pacing.Bucket{PerSecond: l.DescribeRate, Burst: l.DescribeBurst}
	}
	if l.MutatingRate > 0 && l.MutatingBurst > 0 {
		r.Mutating = pacing.Bucket{PerSecond: l.MutatingRate, Burst: l.MutatingBurst}
	}
	if l.AssumeRoleRate > 0 {
		r.AssumeRole = pacing.Bucket{PerSecond: l.AssumeRoleRate, Burst: max(1, int(l.AssumeRoleRate))}
	}
	if l.ParameterReadRate > 0 {
		r.ParameterRead = pacing.Bucket{PerSecond: l.ParameterReadRate, Burst: max(1, int(l.ParameterReadRate))}
	}
	if l.ParameterWriteRate > 0 {
		r.ParameterWrite = pacing.Bucket{PerSecond: l.ParameterWriteRate, Burst: max(1, int(l.ParameterWriteRate))}
	}
	return r
}
