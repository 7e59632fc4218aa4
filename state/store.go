// Package state records the progress and memory of reconciliation runs.
//
// EC2 is the truth; the store only remembers what EC2 cannot tell: how many
// times a pair was attempted and why it failed, which copy belongs to which
// source (the audit trail), what each run did, and who holds the run lease.
// Three backends implement Store with the same behaviour (memory for
// tests, an embedded bbolt file for local runs, DynamoDB in production),
// proved by one contract suite.
package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// PairKey names a pair: one source AMI, one target account, one target
// Region.
type PairKey struct {
	SourceImage string `json:"source_image"`
	Account     string `json:"account"`
	Region      string `json:"region"`
}

func (k PairKey) String() string { return k.SourceImage + "/" + k.Account + "/" + k.Region }

// PairStatus is where a pair stands in the store's memory.
type PairStatus string

// Pair statuses. Every status but PairSettled is unsettled: the store keeps
// such pairs in a sparse index that a normal run reads in full.
const (
	// PairCopying: CopyImage was (or is about to be) called with the
	// recorded attempt's ClientToken; the copy is not yet seen available.
	PairCopying PairStatus = "copying"
	// PairFailed: the last attempt failed; the next is due at NextRetry.
	PairFailed PairStatus = "failed"
	// PairDeferred: the recorded attempt did not start a copy, and nothing
	// failed: EC2's quota of concurrent copies refused it, the grant it
	// needs had not propagated yet, or its outcome is unknown (the call
	// was cut off by the deadline, or failed on the way). The next run
	// makes the same request again, with the same ClientToken, so a copy
	// the lost call did start is returned, not made twice.
	PairDeferred PairStatus = "deferred"
	// PairStuck: attempts are exhausted; nothing happens until the source
	// or the pair's configuration (its fingerprint) changes.
	PairStuck PairStatus = "stuck"
	// PairRejected: the target may not receive the image.
	PairRejected PairStatus = "rejected"
	// PairOrphaned: amicopier's copy outlived its source; NextRetry is when
	// the grace period ends and the copy may be pruned.
	PairOrphaned PairStatus = "orphaned"
	// PairSuperseded: amicopier's copy is of a build source.keep_latest
	// no longer keeps; NextRetry is when the grace period ends and the
	// copy may be pruned.
	PairSuperseded PairStatus = "superseded"
	// PairSettled: a good copy exists; the record is the audit trail.
	PairSettled PairStatus = "settled"
)

// Settled reports whether the status leaves the unsettled index.
func (s PairStatus) Settled() bool { return s == PairSettled }

// Valid reports whether s is a known status.
func (s PairStatus) Valid() bool {
	switch s {
	case PairCopying, PairFailed, PairDeferred, PairStuck, PairRejected, PairOrphaned, PairSuperseded, PairSettled:
		return true
	}
	return false
}

// Pair is the stored memory of one pair.
type Pair struct {
	Key PairKey `json:"key"`
	// Source is the source account id; the unsettled index is partitioned
	// by it.
	Source string     `json:"source"`
	Status PairStatus `json:"status"`
	// Attempts counts copy attempts started under the current Fingerprint,
	// each with its own ClientToken.
	Attempts int `json:"attempts"`
	// Failures counts the attempts that failed (the copy turned failed or
	// CopyImage refused the request); at the limit the pair is stuck.
	Failures int `json:"failures"`
	// Fingerprint identifies what the attempts were made with (the copy
	// settings of the pair); a different fingerprint resets the count.
	Fingerprint   string `json:"fingerprint,omitempty"`
	CopyImageID   string `json:"copy_image_id,omitempty"`
	ClientToken   string `json:"client_token,omitempty"`
	LastErrorCode string `json:"last_error_code,omitempty"`
	LastError     string `json:"last_error,omitempty"`
	// Snapshots lists snapshots of a copy amicopier removed (a failed or
	// pruned one) that EC2 could not delete with it: later runs delete
	// them, so no removed copy leaves a snapshot behind.
	Snapshots []string  `json:"snapshots,omitempty"`
	NextRetry time.Time `json:"next_retry,omitzero"`
	UpdatedAt time.Time `json:"updated_at"`
	RunID     string    `json:"run_id,omitempty"`
	// Version is the store's optimistic-concurrency counter: 0 for a pair
	// that is not stored yet. PutPair succeeds only if the stored version
	// still equals it.
	Version int64 `json:"version"`
}

// SameContent reports whether p and q would store the same record, ignoring
// bookkeeping (version, update time, run id). The engine writes only when
// this is false.
func (p Pair) SameContent(q Pair) bool {
	return p.Key == q.Key && p.Source == q.Source && p.Status == q.Status &&
		p.Attempts == q.Attempts && p.Failures == q.Failures && p.Fingerprint == q.Fingerprint &&
		p.CopyImageID == q.CopyImageID && p.ClientToken == q.ClientToken &&
		p.LastErrorCode == q.LastErrorCode && p.LastError == q.LastError &&
		p.NextRetry.Equal(q.NextRetry) && slices.Equal(p.Snapshots, q.Snapshots)
}

// Run is the record of one reconciliation run.
type Run struct {
	ID      string `json:"id"`
	Scope   string `json:"scope"`
	Trigger string `json:"trigger"`
	Mode    string `json:"mode"`
	// Shard is "I/N" for one shard of a sharded run, empty otherwise.
	Shard string `json:"shard,omitempty"`
	// Status is "running", "succeeded", "partial" or "failed".
	Status   string    `json:"status"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Counts holds pairs per drift category.
	Counts map[string]int `json:"counts,omitempty"`
	// Actions holds actions taken per kind.
	Actions map[string]int `json:"actions,omitempty"`
	Errors  []string       `json:"errors,omitempty"`
	// Unreachable lists target accounts the run could not work in (a
	// bounded number of them); UnreachableCount counts them all.
	Unreachable      []UnreachableAccount `json:"unreachable,omitempty"`
	UnreachableCount int                  `json:"unreachable_count,omitempty"`
	// ExpiresAt is when the backend may forget the run (DynamoDB TTL).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// UnreachableAccount is a target account a run could not observe or work
// in, the Regions concerned and why.
type UnreachableAccount struct {
	Account string   `json:"account" dynamodbav:"account"`
	Regions []string `json:"regions,omitempty" dynamodbav:"regions,omitempty"`
	Reason  string   `json:"reason,omitempty" dynamodbav:"reason,omitempty"`
}

// Lease is the right to run in a scope until Expires.
type Lease struct {
	Scope   string    `json:"scope"`
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// Store is the progress store. Every method is safe for concurrent use.
type Store interface {
	// UnsettledPairs returns every unsettled pair of a source account,
	// without reading settled ones.
	UnsettledPairs(ctx context.Context, source string) ([]Pair, error)
	// GetPair returns a stored pair (settled or not); ok is false when the
	// pair was never stored.
	GetPair(ctx context.Context, key PairKey) (p Pair, ok bool, err error)
	// PutPair writes p if the stored version equals p.Version (0: the pair
	// must not exist) and returns the record as stored, with its new
	// version. A lost condition returns an error wrapping ErrConflict.
	PutPair(ctx context.Context, p Pair) (Pair, error)

	// GrantsOf returns every Grants record of a source account (each
	// image, each scope), ordered by key.
	GrantsOf(ctx context.Context, source string) ([]Grants, error)
	// PutGrants writes g if the stored version equals g.Version (0: the
	// record must not exist) and returns the record as stored; a record
	// that lists nothing is deleted (the zero Grants comes back). A lost
	// condition returns an error wrapping ErrConflict.
	PutGrants(ctx context.Context, g Grants) (Grants, error)

	// PutRun creates or replaces a run record.
	PutRun(ctx context.Context, r Run) error
	// RecentRuns returns up to limit runs of a scope, newest first.
	RecentRuns(ctx context.Context, scope string, limit int) ([]Run, error)

	// AcquireLease takes the scope's lease for holder until now+ttl if it
	// is free, expired, or already held by holder. Otherwise it returns a
	// *LeaseHeldError.
	AcquireLease(ctx context.Context, scope, holder string, ttl time.Duration) (Lease, error)
	// RenewLease extends a lease the caller holds; ErrLeaseLost if another
	// holder took it over.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// ReleaseLease gives the lease up if the caller still holds it.
	ReleaseLease(ctx context.Context, l Lease) error

	Close() error
}

// ErrConflict is returned when a conditional write lost to another writer.
var ErrConflict = errors.New("conditional write conflict: the record changed since it was read")

// ErrLeaseLost is returned when renewing a lease someone else now holds.
var ErrLeaseLost = errors.New("run lease lost to another holder")

// LeaseHeldError says who holds a lease and until when.
type LeaseHeldError struct {
	Scope   string
	Holder  string
	Expires time.Time
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("another run holds the lease for scope %q: holder %s, expires %s",
		e.Scope, e.Holder, e.Expires.UTC().Format(time.RFC3339))
}
