package state

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// The functions in this file are the behaviour every backend shares:
// validation, the version condition, lease decisions, run order and
// expiry. Backends only load and store; deciding here keeps them
// identical, which the contract suite checks.

func validatePairKey(k PairKey) error {
	fields := []struct{ name, value string }{
		{"source image", k.SourceImage},
		{"account", k.Account},
		{"region", k.Region},
	}
	for _, f := range fields {
		if f.value == "" {
			return fmt.Errorf("%w: pair key %q: %s is empty", ErrInvalid, k.String(), f.name)
		}
		// PairKey.String is the stored identity, so a '/' inside a field
		// would let two different keys collide.
		if strings.Contains(f.value, "/") {
			return fmt.Errorf("%w: pair key %q: %s %q contains '/'", ErrInvalid, k.String(), f.name, f.value)
		}
	}
	return nil
}

func validatePair(p Pair) error {
	if err := validatePairKey(p.Key); err != nil {
		return err
	}
	switch {
	case p.Source == "":
		return fmt.Errorf("%w: pair %s: source account is empty", ErrInvalid, p.Key)
	case !p.Status.Valid():
		return fmt.Errorf("%w: pair %s: unknown status %q", ErrInvalid, p.Key, p.Status)
	case p.Version < 0:
		return fmt.Errorf("%w: pair %s: negative version %d", ErrInvalid, p.Key, p.Version)
	case p.Attempts < 0:
		return fmt.Errorf("%w: pair %s: negative attempts %d", ErrInvalid, p.Key, p.Attempts)
	case p.Failures < 0:
		return fmt.Errorf("%w: pair %s: negative failures %d", ErrInvalid, p.Key, p.Failures)
	}
	return nil
}

func validateSource(source string) error {
	if source == "" {
		return fmt.Errorf("%w: source account is empty", ErrInvalid)
	}
	return nil
}

func validateRun(r Run) error {
	switch {
	case r.ID == "":
		return fmt.Errorf("%w: run in scope %q: id is empty", ErrInvalid, r.Scope)
	case r.Scope == "":
		return fmt.Errorf("%w: run %q: scope is empty", ErrInvalid, r.ID)
	}
	return nil
}

func validateRecent(scope string, limit int) error {
	switch {
	case scope == "":
		return fmt.Errorf("%w: runs: scope is empty", ErrInvalid)
	case limit <= 0:
		return fmt.Errorf("%w: runs of scope %q: limit must be positive, got %d", ErrInvalid, scope, limit)
	}
	return nil
}

func validateLease(scope, holder string, ttl time.Duration) error {
	switch {
	case scope == "":
		return fmt.Errorf("%w: lease: scope is empty", ErrInvalid)
	case holder == "":
		return fmt.Errorf("%w: lease for scope %q: holder is empty", ErrInvalid, scope)
	case ttl <= 0:
		return fmt.Errorf("%w: lease for scope %q: ttl must be positive, got %s", ErrInvalid, scope, ttl)
	}
	return nil
}

func validateRelease(l Lease) error {
	switch {
	case l.Scope == "":
		return fmt.Errorf("%w: lease: scope is empty", ErrInvalid)
	case l.Holder == "":
		return fmt.Errorf("%w: lease for scope %q: holder is empty", ErrInvalid, l.Scope)
	}
	return nil
}

// nextPair applies the version condition of PutPair: stored is the current
// record (found false when there is none) and p the write. It returns the
// record to store.
func nextPair(stored Pair, found bool, p Pair, now time.Time) (Pair, error) {
	var have int64
	if found {
		have = stored.Version
	}
	if p.Version != have {
		return Pair{}, conflictError(p.Key, have, p.Version)
	}
	p = normPair(p)
	p.Version = have + 1
	p.UpdatedAt = now
	return p, nil
}

// conflictError names the pair and both versions so a log line explains
// the race without a second look at the store. Stored version 0 means the
// pair does not exist.
func conflictError(k PairKey, stored, expected int64) error {
	return fmt.Errorf("put pair %s: stored version %d, writer expected version %d: %w", k, stored, expected, ErrConflict)
}

func normPair(p Pair) Pair {
	p.NextRetry = normTime(p.NextRetry)
	p.UpdatedAt = normTime(p.UpdatedAt)
	p.Snapshots = sortedSet(p.Snapshots)
	return p
}

// cloneRun returns a deep copy in canonical form (UTC times, empty
// collections as nil), which is also what a JSON round trip yields.
func cloneRun(r Run) Run {
	r.Started = normTime(r.Started)
	r.Finished = normTime(r.Finished)
	r.ExpiresAt = normTime(r.ExpiresAt)
	r.Counts = cloneCounts(r.Counts)
	r.Actions = cloneCounts(r.Actions)
	if len(r.Errors) == 0 {
		r.Errors = nil
	} else {
		r.Errors = slices.Clone(r.Errors)
	}
	if len(r.Unreachable) == 0 {
		r.Unreachable = nil
	} else {
		r.Unreachable = slices.Clone(r.Unreachable)
		for i := range r.Unreachable {
			r.Unreachable[i].Regions = slices.Clone(r.Unreachable[i].Regions)
		}
	}
	return r
}

func cloneCounts(m map[string]int) map[string]int {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// runExpired mirrors DynamoDB TTL semantics with the lease rule: a record
// is gone from the moment the clock reaches its expiry. A zero ExpiresAt
// never expires.
func runExpired(r Run, now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)
}

// compareRunsNewestFirst orders runs by Started, newest first, and runs
// started at the same instant by id, descending: the reverse of the
// (started, id) sort key a table or file keeps.
func compareRunsNewestFirst(a, b Run) int {
	if c := b.Started.Compare(a.Started); c != 0 {
		return c
	}
	return strings.Compare(b.ID, a.ID)
}

// acquireLease decides AcquireLease given the stored lease (found false
// when there is none).
func acquireLease(cur Lease, found bool, scope, holder string, ttl time.Duration, now time.Time) (Lease, error) {
	if found && cur.Holder != holder && now.Before(cur.Expires) {
		return Lease{}, &LeaseHeldError{Scope: cur.Scope, Holder: cur.Holder, Expires: cur.Expires}
	}
	return Lease{Scope: scope, Holder: holder, Expires: now.Add(ttl)}, nil
}

// renewLease decides RenewLease. An expired lease nobody took over is still
// the caller's: refusing it would fail a run that merely paused.
func renewLease(cur Lease, found bool, l Lease, ttl time.Duration, now time.Time) (Lease, error) {
	if !found {
		return Lease{}, fmt.Errorf("renew lease for scope %q as %s: no lease is stored any more: %w", l.Scope, l.Holder, ErrLeaseLost)
	}
	if cur.Holder != l.Holder {
		return Lease{}, fmt.Errorf("renew lease for scope %q as %s: now held by %s until %s: %w",
			l.Scope, l.Holder, cur.Holder, cur.Expires.Format(time.RFC3339), ErrLeaseLost)
	}
	return Lease{Scope: l.Scope, Holder: l.Holder, Expires: now.Add(ttl)}, nil
}

// releaseLease reports whether ReleaseLease may delete the stored lease:
// only while it is still the caller's, so a late release never frees a
// lease another run took over.
func releaseLease(cur Lease, found bool, l Lease) bool {
	return found && cur.Holder == l.Holder
}
