// Package engineconfig turns a validated configuration file into the
// engine's settings. It is the one place that knows both shapes: the
// configuration stays the file's schema and its validation, the engine
// takes its own reconcile.Settings and never sees the file.
package engineconfig

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/reconcile"
)

// Settings translates the configuration into the engine's settings. Call
// it on a validated configuration; it fails only on templates that do not
// parse (which Validate reports first, with their lines).
func Settings(c *config.Config) (reconcile.Settings, error) {
	name, desc, err := c.Copy.Templates()
	if err != nil {
		return reconcile.Settings{}, fmt.Errorf("copy templates: %w", err)
	}
	publish, err := publishSettings(c)
	if err != nil {
		return reconcile.Settings{}, fmt.Errorf("publish.ssm.name_template: %w", err)
	}
	filters := make(map[string][]string, len(c.Source.Filters))
	for k, v := range c.Source.Filters {
		filters[k] = slices.Clone(v)
	}
	return reconcile.Settings{
		SourceAccount:     c.Source.AccountID,
		SourceRegions:     slices.Clone(c.Source.Regions),
		SourceFilters:     filters,
		IncludeDeprecated: c.Source.IncludeDeprecated,
		KeepLatest:        reconcile.KeepLatest{GroupBy: c.Source.KeepLatest.GroupBy, Count: c.Source.KeepLatest.Count},
		TargetTagKey:      c.Targets.TagKey,
		Rules:             rules(c.Targets.Rules),
		TargetRegions:     slices.Clone(c.Targets.Regions),
		ExcludeAccounts:   slices.Clone(c.Targets.ExcludeAccounts),
		Keys:              keyPolicy(c.Encryption),
		Copy: reconcile.CopySettings{
			Name: name, Description: desc,
			EncryptedTagValue: c.Copy.EncryptedTagValue,
			KeepTag:           c.Copy.KeepTag,
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
		Check: reconcile.CheckSettings{
			AutoScalingRole: c.Check.AutoScalingRole, SkipCopyDryRun: !c.Check.CopyDryRun, InPlan: c.Check.InPlan,
		},
		Publish:      publish,
		Events:       eventSettings(c),
		LeaseTTL:     c.State.LeaseTTL.D(),
		RunRetention: c.State.RunRetention.D(),
	}, nil
}

// rules are targets.rules in the engine's terms.
func rules(in []config.Rule) []reconcile.Rule {
	out := make([]reconcile.Rule, len(in))
	for i, r := range in {
		out[i] = reconcile.Rule{
			Name: r.Name, Match: maps.Clone(r.Match),
			Accounts: slices.Clone(r.Accounts), OUs: slices.Clone(r.OUs), Regions: slices.Clone(r.Regions),
		}
	}
	return out
}

// keyPolicy is encryption.kms_key and its overrides in the engine's terms.
func keyPolicy(e config.Encryption) reconcile.KeyPolicy {
	p := reconcile.KeyPolicy{Default: e.KMSKey}
	for _, o := range e.Overrides {
		p.Overrides = append(p.Overrides, reconcile.KeyOverride{Account: o.Account, Region: o.Region, Key: o.KMSKey})
	}
	return p
}

// publishSettings is publish.ssm in the engine's terms.
func publishSettings(c *config.Config) (reconcile.PublishSettings, error) {
	s := c.Publish.SSM
	t, err := s.ParameterTemplate()
	if err != nil {
		return reconcile.PublishSettings{}, err
	}
	return reconcile.PublishSettings{ParameterName: t, DataType: s.DataType, OverwriteForeign: s.OverwriteForeign, VerifyFor: s.VerifyTimeout.D()}, nil
}

// eventSettings is events in the engine's terms: a bus named by its ARN
// is in the ARN's Region, one named by name in aws.region (else the
// session's home Region).
func eventSettings(c *config.Config) reconcile.EventSettings {
	s := reconcile.EventSettings{Bus: c.Events.Bus, Source: c.Events.Source}
	if s.Bus != "" {
		s.Region = cmp.Or(cloud.BusRegion(s.Bus), c.AWS.Region)
	}
	return s
}
