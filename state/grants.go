package state

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Grants is amicopier's memory of the permissions it added to one source
// image and has not taken back, for one scope of runs (the scope of their
// lease: the source account, or one shard of it). EC2 tells who holds a
// permission, never who gave it: this record is how amicopier tells its
// own grants, which it revokes once they are no longer needed, from those
// of other tools, which it only reports.
//
// A record is written before the permissions it lists are added (so a
// crash never leaves a grant nobody remembers) and after they are taken
// back; one that lists nothing is deleted. Every stored record is read by
// each run of its source account (GrantsOf), like the unsettled pairs.
type Grants struct {
	Key GrantsKey `json:"key"`
	// Source is the source account id; Region the image's Region.
	Source string `json:"source"`
	Region string `json:"region"`
	// Launch lists the image's launch permission entities amicopier
	// added: account ids, OU ARNs and organisation ARNs.
	Launch []string `json:"launch,omitempty"`
	// Volume lists the accounts amicopier granted create-volume
	// permission on the image's snapshots, Snapshots those snapshots
	// (kept so the grants can be taken back even once the image is gone).
	Volume    []string  `json:"volume,omitempty"`
	Snapshots []string  `json:"snapshots,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	RunID     string    `json:"run_id,omitempty"`
	// Version is the optimistic-concurrency counter, as for pairs: 0 for
	// a record not stored yet.
	Version int64 `json:"version"`
}

// GrantsKey names a Grants record: the image and the scope of the runs
// that keep it.
type GrantsKey struct {
	Image string `json:"image"`
	Scope string `json:"scope"`
}

func (k GrantsKey) String() string { return k.Image + "#" + k.Scope }

// Empty reports whether the record lists no permission (writing it deletes
// it).
func (g Grants) Empty() bool { return len(g.Launch) == 0 && len(g.Volume) == 0 }

// SameContent reports whether g and h would store the same permissions,
// ignoring bookkeeping.
func (g Grants) SameContent(h Grants) bool {
	return g.Key == h.Key && g.Source == h.Source && g.Region == h.Region &&
		slices.Equal(g.Launch, h.Launch) && slices.Equal(g.Volume, h.Volume) && slices.Equal(g.Snapshots, h.Snapshots)
}

func validateGrants(g Grants) error {
	switch {
	case g.Key.Image == "":
		return fmt.Errorf("%w: grants %q: image is empty", ErrInvalid, g.Key)
	case g.Key.Scope == "":
		return fmt.Errorf("%w: grants %q: scope is empty", ErrInvalid, g.Key)
	case strings.Contains(g.Key.Image, "#"):
		return fmt.Errorf("%w: grants %q: image %q contains '#'", ErrInvalid, g.Key, g.Key.Image)
	case g.Source == "":
		return fmt.Errorf("%w: grants %s: source account is empty", ErrInvalid, g.Key)
	case g.Version < 0:
		return fmt.Errorf("%w: grants %s: negative version %d", ErrInvalid, g.Key, g.Version)
	}
	return nil
}

// nextGrants applies the version condition of PutGrants and returns the
// record to store (sorted lists, the next version), or, for an empty
// record, the zero Grants: delete.
func nextGrants(stored Grants, found bool, g Grants, now time.Time) (Grants, error) {
	var have int64
	if found {
		have = stored.Version
	}
	if g.Version != have {
		return Grants{}, fmt.Errorf("put grants %s: stored version %d, writer expected version %d: %w", g.Key, have, g.Version, ErrConflict)
	}
	if g.Empty() {
		return Grants{}, nil
	}
	g.Launch = sortedSet(g.Launch)
	g.Volume = sortedSet(g.Volume)
	g.Snapshots = sortedSet(g.Snapshots)
	g.Version = have + 1
	g.UpdatedAt = normTime(now)
	return g, nil
}

func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func sortGrants(gs []Grants) {
	slices.SortFunc(gs, func(a, b Grants) int { return strings.Compare(a.Key.String(), b.Key.String()) })
}
