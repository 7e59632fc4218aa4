package reconcile

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/amicopier/amicopier/reconcile/report"
)

// ScopeError is returned, before anything is observed or changed, by a
// run whose Request.RequireScopeMatch is set and whose scope names a
// source AMI or an account that matches nothing.
type ScopeError struct {
	Unmatched *report.Unmatched
}

// Error lists every value that matched nothing, with why.
func (e *ScopeError) Error() string {
	var parts []string
	for _, v := range e.Unmatched.Images {
		parts = append(parts, fmt.Sprintf("source AMI %s: %s", v.Value, v.Reason))
	}
	for _, v := range e.Unmatched.Accounts {
		parts = append(parts, fmt.Sprintf("account %s: %s", v.Value, v.Reason))
	}
	return "the scope names nothing to reconcile (" + strings.Join(parts, "; ") + "); nothing was observed or changed"
}

// unmatched works out, once discovery has resolved every source's
// targets, what the request asked for and found nothing for; nil when
// everything matched. It is the one place that decides it: the report
// carries it, and a strict request fails with it.
func (r *run) unmatched() *report.Unmatched {
	set := r.e.set
	u := &report.Unmatched{}
	where := fmt.Sprintf("account %s, Region(s) %s", set.SourceAccount, strings.Join(set.SourceRegions, ", "))
	filters := "no source.filters"
	if len(set.SourceFilters) > 0 {
		var f []string
		for _, k := range slices.Sorted(maps.Keys(set.SourceFilters)) {
			f = append(f, k+"="+strings.Join(set.SourceFilters[k], "|"))
		}
		filters = "source.filters " + strings.Join(f, ", ")
	}
	if len(r.found.sources) == 0 && len(r.req.OnlyImages) == 0 {
		u.Filters = fmt.Sprintf("no available image in %s matches %s", where, filters)
	}
	for _, id := range uniq(r.req.OnlyImages) {
		if r.found.byID[id] == nil {
			u.Images = append(u.Images, report.UnmatchedValue{Value: id,
				Reason: fmt.Sprintf("no available image with this id in %s matches %s", where, filters)})
		}
	}
	targeted := map[string]bool{}
	for _, src := range r.found.sources {
		for _, a := range src.targets.Accounts {
			targeted[a] = true
		}
		for _, rej := range src.targets.Rejected {
			targeted[rej.Target] = true
		}
	}
	for _, id := range uniq(r.req.OnlyAccounts) {
		if targeted[id] {
			continue
		}
		a, member := r.found.org.accounts[id]
		var reason string
		lookup := r.found.org.lookups[id]
		switch {
		case !member && lookup != nil && !errors.Is(lookup, errNotMember):
			reason = fmt.Sprintf("could not be checked against the organisation: %v", lookup)
		case !member:
			reason = "not an account of the organisation"
		case !r.shard.Contains(id):
			reason = fmt.Sprintf("belongs to another shard than %s", r.shard)
		default:
			reason = fmt.Sprintf("an account of the organisation (%s), but no source AMI in scope targets it", a.State)
		}
		u.Accounts = append(u.Accounts, report.UnmatchedValue{Value: id, Reason: reason})
	}
	if u.Filters == "" && !u.Scoped() {
		return nil
	}
	return u
}

func uniq(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
