package config

// Sharing says how amicopier shares source AMIs with their targets.
type Sharing struct {
	// OrganizationalUnits grants an OU (or the whole organisation) instead
	// of its accounts one by one, where the metadata names the OU (or *,
	// or a root) and every ACTIVE account under it is a target: an AMI
	// may be shared with at most 1,000 entities per Region, an OU
	// counting once.
	OrganizationalUnits bool `yaml:"organizational_units"`
	// Audit reads every source AMI's launch and create-volume permissions
	// each run and reports the grants other tools made to accounts and
	// OUs that are not targets.
	Audit bool `yaml:"audit"`
	// RevokeForeign takes such grants back too (it needs Audit).
	RevokeForeign bool `yaml:"revoke_foreign"`
}
