package state

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Item layout of the DynamoDB table. One table holds three kinds of item,
// told apart by the prefix of the partition key (and the kind attribute,
// for people reading the table in the console):
//
//	kind   pk                             sk         indexed in
//	pair   pair#<image>/<account>/<region>  pair       unsettled (only while unsettled)
//	run    run#<scope>                    run#<id>   runs_by_start
//	lease  lease#<scope>                  lease      -
//
// Pair items carry unsettled_source only while their status is unsettled,
// which makes the unsettled GSI sparse: settling a pair rewrites its item
// without the attribute and DynamoDB drops it from the index.
const (
	pkPairPrefix  = "pair#"
	pkRunPrefix   = "run#"
	pkLeasePrefix = "lease#"
	skPair        = "pair"
	skRunPrefix   = "run#"
	skLease       = "lease"

	kindPair  = "pair"
	kindRun   = "run"
	kindLease = "lease"

	// Attribute names the code builds expressions with.
	attrPK              = DynamoDBPartitionKey
	attrSK              = DynamoDBSortKey
	attrVersion         = "version"
	attrHolder          = "holder"
	attrExpiresNS       = "expires_ns"
	attrUnsettledSource = "unsettled_source"
	attrRunOrder        = "run_order"
)

// leaseItemTTLGrace is how long after its expiry DynamoDB may delete a
// lease item. An expired lease is as good as none, so deleting it is
// harmless; the grace only keeps a fresh one readable for a post-mortem.
const leaseItemTTLGrace = 24 * time.Hour

// fixedTime formats times with a fixed width so that string order is time
// order (for the run_order sort key), within years 0001-9999.
const fixedTime = "2006-01-02T15:04:05.000000000Z"

type pairItem struct {
	PK              string   `dynamodbav:"pk"`
	SK              string   `dynamodbav:"sk"`
	Kind            string   `dynamodbav:"kind"`
	SourceImage     string   `dynamodbav:"source_image"`
	Account         string   `dynamodbav:"account"`
	Region          string   `dynamodbav:"region"`
	Source          string   `dynamodbav:"source"`
	Status          string   `dynamodbav:"status"`
	Attempts        int      `dynamodbav:"attempts"`
	Failures        int      `dynamodbav:"failures"`
	Fingerprint     string   `dynamodbav:"fingerprint,omitempty"`
	CopyImageID     string   `dynamodbav:"copy_image_id,omitempty"`
	ClientToken     string   `dynamodbav:"client_token,omitempty"`
	LastErrorCode   string   `dynamodbav:"last_error_code,omitempty"`
	LastError       string   `dynamodbav:"last_error,omitempty"`
	Snapshots       []string `dynamodbav:"snapshots,omitempty,stringset"`
	NextRetry       string   `dynamodbav:"next_retry,omitempty"`
	UpdatedAt       string   `dynamodbav:"updated_at"`
	RunID           string   `dynamodbav:"run_id,omitempty"`
	Version         int64    `dynamodbav:"version"`
	UnsettledSource string   `dynamodbav:"unsettled_source,omitempty"`
}

type runItem struct {
	PK       string         `dynamodbav:"pk"`
	SK       string         `dynamodbav:"sk"`
	Kind     string         `dynamodbav:"kind"`
	Scope    string         `dynamodbav:"scope"`
	ID       string         `dynamodbav:"id"`
	Trigger  string         `dynamodbav:"trigger,omitempty"`
	Shard    string         `dynamodbav:"shard,omitempty"`
	Mode     string         `dynamodbav:"mode,omitempty"`
	Status   string         `dynamodbav:"status,omitempty"`
	Started  string         `dynamodbav:"started"`
	Finished string         `dynamodbav:"finished,omitempty"`
	Counts   map[string]int `dynamodbav:"counts,omitempty"`
	Actions  map[string]int `dynamodbav:"actions,omitempty"`
	Errors   []string       `dynamodbav:"errors,omitempty"`
	// Unreachable and UnreachableCount: Run's.
	Unreachable      []UnreachableAccount `dynamodbav:"unreachable,omitempty"`
	UnreachableCount int                  `dynamodbav:"unreachable_count,omitempty"`
	ExpiresAt        string               `dynamodbav:"expires_at,omitempty"`
	// TTL is DynamoDBTTLAttribute: whole seconds, rounded up so the
	// server never deletes a run before ExpiresAt.
	TTL      int64  `dynamodbav:"expires_at_epoch,omitempty"`
	RunOrder string `dynamodbav:"run_order"`
}

type leaseItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Kind      string `dynamodbav:"kind"`
	Scope     string `dynamodbav:"scope"`
	Holder    string `dynamodbav:"holder"`
	Expires   string `dynamodbav:"expires"`
	ExpiresNS int64  `dynamodbav:"expires_ns"`
	TTL       int64  `dynamodbav:"expires_at_epoch"`
}

func pairPK(k PairKey) string     { return pkPairPrefix + k.String() }
func runPK(scope string) string   { return pkRunPrefix + scope }
func leasePK(scope string) string { return pkLeasePrefix + scope }

func pairKeyAttrs(k PairKey) map[string]types.AttributeValue {
	return keyAttrs(pairPK(k), skPair)
}

func leaseKeyAttrs(scope string) map[string]types.AttributeValue {
	return keyAttrs(leasePK(scope), skLease)
}

func keyAttrs(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: pk},
		attrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("attribute %s: %w", field, err)
	}
	return normTime(t), nil
}

// epochCeil is t in whole Unix seconds, rounded up.
func epochCeil(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

func marshalPair(p Pair) (map[string]types.AttributeValue, error) {
	it := pairItem{
		PK: pairPK(p.Key), SK: skPair, Kind: kindPair,
		SourceImage: p.Key.SourceImage, Account: p.Key.Account, Region: p.Key.Region,
		Source: p.Source, Status: string(p.Status), Attempts: p.Attempts, Failures: p.Failures,
		Fingerprint: p.Fingerprint, CopyImageID: p.CopyImageID, ClientToken: p.ClientToken,
		LastErrorCode: p.LastErrorCode, LastError: p.LastError, Snapshots: p.Snapshots,
		NextRetry: formatTime(p.NextRetry), UpdatedAt: formatTime(p.UpdatedAt),
		RunID: p.RunID, Version: p.Version,
	}
	if !p.Status.Settled() {
		it.UnsettledSource = p.Source
	}
	return attributevalue.MarshalMap(it)
}

func unmarshalPair(av map[string]types.AttributeValue) (Pair, error) {
	var it pairItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return Pair{}, err
	}
	if it.Kind != kindPair {
		return Pair{}, fmt.Errorf("item %s is a %q item, not a pair", it.PK, it.Kind)
	}
	p := Pair{
		Key:    PairKey{SourceImage: it.SourceImage, Account: it.Account, Region: it.Region},
		Source: it.Source, Status: PairStatus(it.Status), Attempts: it.Attempts, Failures: it.Failures,
		Fingerprint: it.Fingerprint, CopyImageID: it.CopyImageID, ClientToken: it.ClientToken,
		LastErrorCode: it.LastErrorCode, LastError: it.LastError, RunID: it.RunID, Version: it.Version,
		Snapshots: sortedSet(it.Snapshots),
	}
	var err error
	if p.NextRetry, err = parseTime("next_retry", it.NextRetry); err != nil {
		return Pair{}, fmt.Errorf("item %s: %w", it.PK, err)
	}
	if p.UpdatedAt, err = parseTime("updated_at", it.UpdatedAt); err != nil {
		return Pair{}, fmt.Errorf("item %s: %w", it.PK, err)
	}
	return p, nil
}

// runOrder is the runs_by_start sort key: started time, then the id, so a
// descending query returns runs newest first and ties by id descending,
// as compareRunsNewestFirst orders them.
func runOrder(r Run) string { return r.Started.UTC().Format(fixedTime) + "#" + r.ID }

func marshalRun(r Run) (map[string]types.AttributeValue, error) {
	it := runItem{
		PK: runPK(r.Scope), SK: skRunPrefix + r.ID, Kind: kindRun,
		Scope: r.Scope, ID: r.ID, Trigger: r.Trigger, Shard: r.Shard, Mode: r.Mode, Status: r.Status,
		Started: r.Started.UTC().Format(time.RFC3339Nano), Finished: formatTime(r.Finished),
		Counts: r.Counts, Actions: r.Actions, Errors: r.Errors,
		Unreachable: r.Unreachable, UnreachableCount: r.UnreachableCount,
		ExpiresAt: formatTime(r.ExpiresAt), RunOrder: runOrder(r),
	}
	if !r.ExpiresAt.IsZero() {
		it.TTL = epochCeil(r.ExpiresAt)
	}
	return attributevalue.MarshalMap(it)
}

func unmarshalRun(av map[string]types.AttributeValue) (Run, error) {
	var it runItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return Run{}, err
	}
	if it.Kind != kindRun {
		return Run{}, fmt.Errorf("item %s is a %q item, not a run", it.PK, it.Kind)
	}
	r := Run{
		ID: it.ID, Scope: it.Scope, Trigger: it.Trigger, Shard: it.Shard, Mode: it.Mode, Status: it.Status,
		Counts: it.Counts, Actions: it.Actions, Errors: it.Errors,
		Unreachable: it.Unreachable, UnreachableCount: it.UnreachableCount,
	}
	var err error
	for _, f := range []struct {
		name string
		raw  string
		dst  *time.Time
	}{
		{"started", it.Started, &r.Started},
		{"finished", it.Finished, &r.Finished},
		{"expires_at", it.ExpiresAt, &r.ExpiresAt},
	} {
		if *f.dst, err = parseTime(f.name, f.raw); err != nil {
			return Run{}, fmt.Errorf("item %s/%s: %w", it.PK, it.SK, err)
		}
	}
	return cloneRun(r), nil
}

func marshalLease(l Lease) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(leaseItem{
		PK: leasePK(l.Scope), SK: skLease, Kind: kindLease,
		Scope: l.Scope, Holder: l.Holder,
		Expires: formatTime(l.Expires), ExpiresNS: l.Expires.UnixNano(),
		TTL: epochCeil(l.Expires.Add(leaseItemTTLGrace)),
	})
}

func unmarshalLease(av map[string]types.AttributeValue) (Lease, error) {
	var it leaseItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return Lease{}, err
	}
	if it.Kind != kindLease {
		return Lease{}, fmt.Errorf("item %s is a %q item, not a lease", it.PK, it.Kind)
	}
	// expires_ns is what the conditions compare; the readable copy is for
	// people, so the number wins.
	return Lease{Scope: it.Scope, Holder: it.Holder, Expires: time.Unix(0, it.ExpiresNS).UTC()}, nil
}
