package report

// Unmatched says what a run was asked to cover and found nothing for:
// the scope values that name no source AMI or no target account, and
// source filters that matched no image at all. A scope value that names
// nothing is a typo more often than not, and "0 pairs, no drift" must not
// read as success.
type Unmatched struct {
	// Filters is set when no source image was discovered at all: what
	// was looked for (source.filters, account, Regions).
	Filters string `json:"filters,omitempty"`
	// Images are the scope's source AMI ids that matched no source.
	Images []UnmatchedValue `json:"images,omitempty"`
	// Accounts are the scope's account ids that no pair of the run
	// concerns.
	Accounts []UnmatchedValue `json:"accounts,omitempty"`
}

// UnmatchedValue is one value that matched nothing, and why.
type UnmatchedValue struct {
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

// Scoped reports whether a scope value (not the filters) matched nothing.
func (u *Unmatched) Scoped() bool {
	return u != nil && (len(u.Images) > 0 || len(u.Accounts) > 0)
}
