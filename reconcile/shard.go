package reconcile

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// MaxShards is the largest number of shards a run may be split into.
const MaxShards = 1000

// Shard is one of Count disjoint parts of the target accounts, numbered
// from 1. An organisation too large for one run within the Lambda limit of
// 15 minutes is reconciled by Count runs in parallel, one per shard (a Step
// Functions Distributed Map over the shard numbers). The zero Shard is the
// whole organisation.
//
// An account belongs to shard FNV-1a(account id) mod Count + 1: stable
// across runs, machines and versions, and independent of the order or
// number of accounts, so a new account moves no other account to another
// shard. Each shard takes its own lease, shares each source only with its
// own accounts (launch and create-volume permissions are added, never
// replaced, so parallel shards cannot undo each other's grants), and
// reports only its own pairs; the union of the shards' reports is the
// report of an unsharded run.
type Shard struct {
	Index int
	Count int
}

// ParseShard parses "I/N" (for example "2/8"): shard I of N, 1 <= I <= N.
// The empty string is the whole organisation.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	i, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want I/N, for example 2/8 (shard 2 of 8)", s)
	}
	index, err1 := strconv.Atoi(strings.TrimSpace(i))
	count, err2 := strconv.Atoi(strings.TrimSpace(n))
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: I and N must be whole numbers, as in 2/8", s)
	}
	sh := Shard{Index: index, Count: count}
	if err := sh.Validate(); err != nil {
		return Shard{}, fmt.Errorf("shard %q: %w", s, err)
	}
	return sh, nil
}

// Validate checks that the shard is the zero Shard or 1 <= Index <= Count
// <= MaxShards.
func (s Shard) Validate() error {
	if s == (Shard{}) {
		return nil
	}
	if s.Count < 1 || s.Count > MaxShards {
		return fmt.Errorf("the number of shards must be between 1 and %d (got %d)", MaxShards, s.Count)
	}
	if s.Index < 1 || s.Index > s.Count {
		return fmt.Errorf("the shard number must be between 1 and %d (got %d)", s.Count, s.Index)
	}
	return nil
}

// Sharded reports whether s splits the organisation (more than one shard).
func (s Shard) Sharded() bool { return s.Count > 1 }

// String returns "I/N", or "" for the whole organisation.
func (s Shard) String() string {
	if s == (Shard{}) {
		return ""
	}
	return strconv.Itoa(s.Index) + "/" + strconv.Itoa(s.Count)
}

// Contains reports whether the shard covers key: an account id, or the
// token of a rejected target (so each rejection is reported by exactly one
// shard).
func (s Shard) Contains(key string) bool {
	if s.Count <= 1 {
		return true
	}
	return ShardOf(key, s.Count) == s.Index
}

// ShardOf returns the shard (1..n) that key belongs to when the
// organisation is split into n shards.
func ShardOf(key string, n int) int {
	if n <= 1 {
		return 1
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32()%uint32(n)) + 1
}

// ScopeFor names the lease of a run over shard s: the source account, and
// for a sharded run "/shard-I-of-N" after it, so shards run in parallel
// while two runs of the same shard still exclude each other.
func (e *Engine) ScopeFor(s Shard) string {
	if !s.Sharded() {
		return e.Scope()
	}
	return fmt.Sprintf("%s/shard-%d-of-%d", e.Scope(), s.Index, s.Count)
}
