package state

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/amicopier/amicopier/state/dynamotest"
)

// newDynamoTable creates a fresh state table on the test server and
// returns the options that reach it.
func newDynamoTable(t *testing.T) DynamoDBOptions {
	t.Helper()
	o := DynamoDBOptions{Table: dynamotest.TableName(t), Endpoint: dynamotest.Endpoint(t), Region: "us-east-1"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := CreateDynamoDBTable(ctx, o); err != nil {
		t.Fatalf("CreateDynamoDBTable(%s): %v", o.Table, err)
	}
	return o
}

func openDynamoDBOn(t *testing.T, o DynamoDBOptions, clock func() time.Time) *DynamoDB {
	t.Helper()
	s, err := OpenDynamoDB(context.Background(), o, WithClock(clock))
	if err != nil {
		t.Fatalf("OpenDynamoDB(%s): %v", o.Table, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openDynamoDBForTest(t *testing.T, clock func() time.Time) Store {
	return openDynamoDBOn(t, newDynamoTable(t), clock)
}

// hookedAPI wraps the real client so a test can change answers.
type hookedAPI struct {
	dynamoAPI
	queries   atomic.Int64
	batchGets atomic.Int64
	getItems  atomic.Int64
	batchGet  func(ctx context.Context, in *dynamodb.BatchGetItemInput, call int64) (*dynamodb.BatchGetItemOutput, error)
	putItem   func(ctx context.Context, in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error)
}

func (h *hookedAPI) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	h.queries.Add(1)
	return h.dynamoAPI.Query(ctx, in, o...)
}

func (h *hookedAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	h.getItems.Add(1)
	return h.dynamoAPI.GetItem(ctx, in, o...)
}

func (h *hookedAPI) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	n := h.batchGets.Add(1)
	if h.batchGet != nil {
		return h.batchGet(ctx, in, n)
	}
	return h.dynamoAPI.BatchGetItem(ctx, in, o...)
}

func (h *hookedAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if h.putItem != nil {
		return h.putItem(ctx, in)
	}
	return h.dynamoAPI.PutItem(ctx, in, o...)
}

func hook(t *testing.T, s *DynamoDB) *hookedAPI {
	t.Helper()
	h := &hookedAPI{dynamoAPI: s.api}
	s.api = h
	return h
}

func TestDynamoDBTableDefinition(t *testing.T) {
	def := DynamoDBTableDefinition("amicopier-state")
	if aws.ToString(def.TableName) != "amicopier-state" || def.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("table %s billing %s, want amicopier-state on demand", aws.ToString(def.TableName), def.BillingMode)
	}
	if got := keyString(def.KeySchema, attrTypes(def.AttributeDefinitions)); got != "pk(S) HASH, sk(S) RANGE" {
		t.Errorf("table keys = %s", got)
	}
	if len(def.GlobalSecondaryIndexes) != 1 || len(def.LocalSecondaryIndexes) != 1 {
		t.Fatalf("indexes: %d global, %d local; want 1 and 1", len(def.GlobalSecondaryIndexes), len(def.LocalSecondaryIndexes))
	}
	gsi := def.GlobalSecondaryIndexes[0]
	if aws.ToString(gsi.IndexName) != DynamoDBUnsettledIndex ||
		keyString(gsi.KeySchema, attrTypes(def.AttributeDefinitions)) != "unsettled_source(S) HASH, pk(S) RANGE" {
		t.Errorf("unsettled index = %s %s", aws.ToString(gsi.IndexName), keyString(gsi.KeySchema, attrTypes(def.AttributeDefinitions)))
	}
	lsi := def.LocalSecondaryIndexes[0]
	if aws.ToString(lsi.IndexName) != DynamoDBRunsIndex ||
		keyString(lsi.KeySchema, attrTypes(def.AttributeDefinitions)) != "pk(S) HASH, run_order(S) RANGE" {
		t.Errorf("runs index = %s %s", aws.ToString(lsi.IndexName), keyString(lsi.KeySchema, attrTypes(def.AttributeDefinitions)))
	}
	// Every attribute definition is a key of the table or an index:
	// DynamoDB refuses others.
	for _, a := range def.AttributeDefinitions {
		name := aws.ToString(a.AttributeName)
		if !slices.Contains([]string{"pk", "sk", "unsettled_source", "run_order"}, name) {
			t.Errorf("attribute definition %s is not a key", name)
		}
	}
	// Callers may modify what they get.
	def.TableName = aws.String("changed")
	if aws.ToString(DynamoDBTableDefinition("x").TableName) != "x" {
		t.Error("definitions share state")
	}
}

func TestDynamoDBOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		o    DynamoDBOptions
		want string
	}{
		{"no table", DynamoDBOptions{}, "table name is empty"},
		{"bad table", DynamoDBOptions{Table: "my table"}, `"my table"`},
		{"short table", DynamoDBOptions{Table: "ab"}, `"ab"`},
		{"bad endpoint", DynamoDBOptions{Table: "state", Endpoint: "localhost:8000"}, `"localhost:8000"`},
		{"ftp endpoint", DynamoDBOptions{Table: "state", Endpoint: "ftp://127.0.0.1"}, `"ftp://127.0.0.1"`},
		{"negative page", DynamoDBOptions{Table: "state", PageSize: -1}, "-1"},
		{"negative attempts", DynamoDBOptions{Table: "state", MaxAttempts: -2}, "-2"},
	}
	for _, tc := range tests {
		_, err := OpenDynamoDB(context.Background(), tc.o)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrInvalid naming %s", tc.name, err, tc.want)
		}
	}
}

func TestIsLoopbackEndpoint(t *testing.T) {
	tests := map[string]bool{
		"http://127.0.0.1:8000":                    true,
		"http://127.1.2.3:8000":                    true,
		"http://localhost:4567":                    true,
		"http://[::1]:8000/":                       true,
		"https://dynamodb.eu-west-1.amazonaws.com": false,
		"http://10.0.0.1:8000":                     false,
		"http://localhost.example.com":             false,
		"127.0.0.1:8000":                           false,
		"":                                         false,
	}
	for ep, want := range tests {
		if got := IsLoopbackEndpoint(ep); got != want {
			t.Errorf("IsLoopbackEndpoint(%q) = %v, want %v", ep, got, want)
		}
	}
}

// TestDynamoDBUnreachableEndpoint needs no server: it points at a
// loopback port nobody listens on.
func TestDynamoDBUnreachableEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = OpenDynamoDB(ctx, DynamoDBOptions{Table: "amicopier-state", Endpoint: endpoint, MaxAttempts: 1})
	if !errors.Is(err, ErrEndpointUnreachable) {
		t.Fatalf("err = %v, want ErrEndpointUnreachable", err)
	}
	for _, want := range []string{endpoint, "amicopier-state"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestDynamoDBMissingTable(t *testing.T) {
	o := DynamoDBOptions{Table: dynamotest.TableName(t), Endpoint: dynamotest.Endpoint(t)}
	_, err := OpenDynamoDB(context.Background(), o)
	if !errors.Is(err, ErrTableNotFound) {
		t.Fatalf("err = %v, want ErrTableNotFound", err)
	}
	for _, want := range []string{o.Table, "amicopier state init", o.Endpoint} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestCreateDynamoDBTableIdempotent(t *testing.T) {
	ctx := context.Background()
	o := DynamoDBOptions{Table: dynamotest.TableName(t), Endpoint: dynamotest.Endpoint(t)}
	first, err := CreateDynamoDBTable(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created || first.Table != o.Table || first.Region == "" {
		t.Errorf("first setup = %+v, want created", first)
	}
	switch first.TTL {
	case TTLEnabled, TTLAlreadyEnabled:
	case TTLUnsupported:
		// dynalite: the note must say so, naming the endpoint.
		if len(first.Notes) == 0 || !strings.Contains(strings.Join(first.Notes, " "), o.Endpoint) {
			t.Errorf("TTL unsupported without a note naming the endpoint: %v", first.Notes)
		}
	default:
		t.Errorf("TTL = %q", first.TTL)
	}
	second, err := CreateDynamoDBTable(ctx, o)
	if err != nil {
		t.Fatalf("second create: %v", err)
	}
	if second.Created {
		t.Error("second create says it created the table")
	}
	desc, err := dynamotest.Client(o.Endpoint).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(o.Table)})
	if err != nil {
		t.Fatal(err)
	}
	if desc.Table.TableStatus != types.TableStatusActive {
		t.Errorf("status after create = %s, want ACTIVE", desc.Table.TableStatus)
	}
	if diffs := tableDiff(DynamoDBTableDefinition(o.Table), desc.Table); len(diffs) > 0 {
		t.Errorf("created table differs from the definition: %v", diffs)
	}
}

func TestCreateDynamoDBTableOtherDefinition(t *testing.T) {
	ctx := context.Background()
	o := DynamoDBOptions{Table: dynamotest.TableName(t), Endpoint: dynamotest.Endpoint(t)}
	_, err := dynamotest.Client(o.Endpoint).CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(o.Table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = CreateDynamoDBTable(ctx, o)
	if err == nil {
		t.Fatal("CreateDynamoDBTable accepted a table with other keys")
	}
	for _, want := range []string{o.Table, "another definition", "id(S) HASH", "pk(S) HASH, sk(S) RANGE", "unsettled is missing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := OpenDynamoDB(ctx, o); err == nil || !strings.Contains(err.Error(), "not an amicopier state table") {
		t.Errorf("OpenDynamoDB of a foreign table: err = %v", err)
	}
}

// TestDynamoDBSparseIndex looks into the index itself: settled pairs
// must not be in it, however many there are.
func TestDynamoDBSparseIndex(t *testing.T) {
	ctx := context.Background()
	o := newDynamoTable(t)
	s := openDynamoDBOn(t, o, time.Now)
	const source = "999988887777"
	for i := range 30 {
		status := PairSettled
		if i%10 == 0 {
			status = PairFailed
		}
		mustPut(t, s, newPair(key(fmt.Sprintf("ami-%03d", i), "111122223333", "eu-west-1"), source, status))
	}
	client := dynamotest.Client(o.Endpoint)
	indexed := func() []string {
		t.Helper()
		// A Scan is fine in a test: it proves what the index holds.
		out, err := client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(o.Table), IndexName: aws.String(DynamoDBUnsettledIndex)})
		if err != nil {
			t.Fatal(err)
		}
		var pks []string
		for _, it := range out.Items {
			pks = append(pks, it["pk"].(*types.AttributeValueMemberS).Value)
		}
		slices.Sort(pks)
		return pks
	}
	want := []string{"pair#ami-000/111122223333/eu-west-1", "pair#ami-010/111122223333/eu-west-1", "pair#ami-020/111122223333/eu-west-1"}
	if got := indexed(); !slices.Equal(got, want) {
		t.Errorf("index holds %v, want %v", got, want)
	}
	// Settled items lack the index key; the audit trail stays readable.
	raw, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(o.Table), Key: pairKeyAttrs(key("ami-001", "111122223333", "eu-west-1"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := raw.Item[attrUnsettledSource]; ok {
		t.Error("a settled pair item carries unsettled_source")
	}
	if kind := raw.Item["kind"].(*types.AttributeValueMemberS).Value; kind != "pair" {
		t.Errorf("kind = %q", kind)
	}
	for i := 0; i < 30; i += 10 {
		p := mustGet(t, s, key(fmt.Sprintf("ami-%03d", i), "111122223333", "eu-west-1"))
		p.Status = PairSettled
		mustPut(t, s, p)
	}
	if got := indexed(); len(got) != 0 {
		t.Errorf("after settling every pair the index holds %v", got)
	}
}

func TestDynamoDBUnsettledPaginates(t *testing.T) {
	o := newDynamoTable(t)
	o.PageSize = 3
	s := openDynamoDBOn(t, o, time.Now)
	h := hook(t, s)
	const source = "999988887777"
	var want []string
	for i := range 10 {
		k := key(fmt.Sprintf("ami-%02d", i), "111122223333", "eu-west-1")
		mustPut(t, s, newPair(k, source, PairCopying))
		want = append(want, k.String())
	}
	mustPut(t, s, newPair(key("ami-settled", "111122223333", "eu-west-1"), source, PairSettled))
	got := unsettledKeys(t, s, source)
	if !slices.Equal(got, want) {
		t.Errorf("unsettled = %v, want %v", got, want)
	}
	// 10 items in pages of 3: 4 pages, and a fifth may confirm the end.
	if n := h.queries.Load(); n < 4 || n > 5 {
		t.Errorf("UnsettledPairs made %d Query calls, want 4 or 5 pages of 3", n)
	}
}

func TestDynamoDBRecentRunsPaginatesPastExpired(t *testing.T) {
	clock := newTestClock()
	o := newDynamoTable(t)
	o.PageSize = 2
	s := openDynamoDBOn(t, o, clock.Now)
	base := clock.Now()
	// The newest five runs expire first; the live ones are further down
	// the index than a first page reaches.
	for i := range 8 {
		r := Run{ID: fmt.Sprintf("r%d", i), Scope: "org", Started: base.Add(time.Duration(i) * time.Minute)}
		if i >= 3 {
			r.ExpiresAt = base.Add(time.Hour)
		}
		mustPutRun(t, s, r)
	}
	clock.Advance(2 * time.Hour)
	if got := runIDs(t, s, "org", 2); !slices.Equal(got, []string{"r2", "r1"}) {
		t.Errorf("RecentRuns past expired ones = %v, want [r2 r1]", got)
	}
}

func TestDynamoDBRunItem(t *testing.T) {
	ctx := context.Background()
	o := newDynamoTable(t)
	s := openDynamoDBOn(t, o, time.Now)
	exp := time.Date(2025, 6, 1, 12, 0, 0, 500, time.UTC)
	mustPutRun(t, s, Run{ID: "r1", Scope: "111111111111", Started: exp.Add(-time.Hour), ExpiresAt: exp})
	mustPutRun(t, s, Run{ID: "r2", Scope: "111111111111", Started: exp.Add(-time.Hour)})
	get := func(id string) map[string]types.AttributeValue {
		out, err := dynamotest.Client(o.Endpoint).GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(o.Table), Key: keyAttrs("run#111111111111", "run#"+id),
		})
		if err != nil || len(out.Item) == 0 {
			t.Fatalf("get run item %s: %v", id, err)
		}
		return out.Item
	}
	var ttl int64
	if err := attributevalue.Unmarshal(get("r1")[DynamoDBTTLAttribute], &ttl); err != nil {
		t.Fatal(err)
	}
	if ttl != exp.Unix()+1 {
		t.Errorf("TTL attribute = %d, want %d (expiry rounded up to the second)", ttl, exp.Unix()+1)
	}
	if _, ok := get("r2")[DynamoDBTTLAttribute]; ok {
		t.Error("a run without expiry has a TTL attribute")
	}
}

func TestDynamoDBConflictBetweenInstances(t *testing.T) {
	ctx := context.Background()
	o := newDynamoTable(t)
	a := openDynamoDBOn(t, o, time.Now)
	b := openDynamoDBOn(t, o, time.Now)
	k := key("ami-1", "111122223333", "eu-west-1")

	created := mustPut(t, a, newPair(k, "999988887777", PairCopying))
	_, err := b.PutPair(ctx, newPair(k, "999988887777", PairCopying))
	assertConflict(t, "second create from another instance", err, k, 1, 0)

	readByB := mustGet(t, b, k)
	next := created
	next.Attempts = 1
	mustPut(t, a, next) // version 2
	readByB.Status = PairSettled
	_, err = b.PutPair(ctx, readByB)
	assertConflict(t, "stale write from another instance", err, k, 2, 1)
	if got := mustGet(t, a, k); got.Status != PairCopying || got.Attempts != 1 || got.Version != 2 {
		t.Errorf("after the lost write the table holds %+v", got)
	}
}

// TestDynamoDBConflictUsesReturnedItem covers servers that honour
// ReturnValuesOnConditionCheckFailure (DynamoDB does, dynalite does not):
// the stored version comes from the failed request, without a read.
func TestDynamoDBConflictUsesReturnedItem(t *testing.T) {
	stored, err := marshalPair(Pair{Key: key("ami-1", "111122223333", "eu-west-1"), Source: "999988887777", Status: PairFailed, Version: 7})
	if err != nil {
		t.Fatal(err)
	}
	h := &hookedAPI{putItem: func(_ context.Context, in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
		if in.ReturnValuesOnConditionCheckFailure != types.ReturnValuesOnConditionCheckFailureAllOld {
			t.Errorf("PutItem asks for %q on a lost condition, want ALL_OLD", in.ReturnValuesOnConditionCheckFailure)
		}
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed"), Item: stored}
	}}
	s := newDynamoDB(h, DynamoDBOptions{Table: "amicopier-state"}, nil)
	p := newPair(key("ami-1", "111122223333", "eu-west-1"), "999988887777", PairCopying)
	p.Version = 3
	_, err = s.PutPair(context.Background(), p)
	assertConflict(t, "conflict with the returned item", err, p.Key, 7, 3)
	if n := h.getItems.Load(); n != 0 {
		t.Errorf("made %d GetItem calls; the failed request had the item", n)
	}
}

func TestDynamoDBLeaseTakeoverBetweenInstances(t *testing.T) {
	ctx := context.Background()
	o := newDynamoTable(t)
	clockA, clockB := newTestClock(), newTestClock()
	a := openDynamoDBOn(t, o, clockA.Now)
	b := openDynamoDBOn(t, o, clockB.Now)
	const ttl = 10 * time.Minute

	la, err := a.AcquireLease(ctx, "111111111111", "run-a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	var held *LeaseHeldError
	clockB.Advance(ttl - time.Second)
	if _, err := b.AcquireLease(ctx, "111111111111", "run-b", ttl); !errors.As(err, &held) ||
		held.Holder != "run-a" || !held.Expires.Equal(la.Expires) {
		t.Fatalf("B while A holds: err = %v, want held by run-a until %s", err, la.Expires)
	}
	// B's clock passes A's expiry: B takes over, whatever A's clock says.
	clockB.Advance(time.Second)
	lb, err := b.AcquireLease(ctx, "111111111111", "run-b", ttl)
	if err != nil {
		t.Fatalf("takeover after expiry: %v", err)
	}
	if _, err := a.RenewLease(ctx, la, ttl); !errors.Is(err, ErrLeaseLost) || !strings.Contains(err.Error(), "run-b") {
		t.Errorf("A renews after takeover: err = %v, want ErrLeaseLost naming run-b", err)
	}
	if err := a.ReleaseLease(ctx, la); err != nil {
		t.Errorf("A releases a lost lease: %v", err)
	}
	if _, err := a.AcquireLease(ctx, "111111111111", "run-a", ttl); !errors.As(err, &held) || held.Holder != "run-b" {
		t.Errorf("A after its stale release: err = %v, want held by run-b", err)
	}
	if err := b.ReleaseLease(ctx, lb); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AcquireLease(ctx, "111111111111", "run-a", ttl); err != nil {
		t.Errorf("A after B released: %v", err)
	}
}

func TestDynamoDBGetPairsRetriesUnprocessed(t *testing.T) {
	ctx := context.Background()
	o := newDynamoTable(t)
	s := openDynamoDBOn(t, o, time.Now)
	s.batchBackoff = time.Millisecond
	var keys []PairKey
	want := map[PairKey]bool{}
	for i := range 230 {
		k := key(fmt.Sprintf("ami-%03d", i), "111122223333", "eu-west-1")
		keys = append(keys, k)
		if i%3 == 0 { // two thirds never stored
			mustPut(t, s, newPair(k, "999988887777", PairSettled))
			want[k] = true
		}
	}
	keys = append(keys, keys[0]) // a duplicate is read once

	inner := s.api
	h := hook(t, s)
	// The first answer of every request leaves half its keys unprocessed,
	// as DynamoDB does when throttled.
	h.batchGet = func(ctx context.Context, in *dynamodb.BatchGetItemInput, _ int64) (*dynamodb.BatchGetItemOutput, error) {
		ka := in.RequestItems[o.Table]
		if len(ka.Keys) < 2 {
			return inner.BatchGetItem(ctx, in)
		}
		half := len(ka.Keys) / 2
		first := types.KeysAndAttributes{Keys: ka.Keys[:half], ConsistentRead: ka.ConsistentRead}
		out, err := inner.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{o.Table: first}})
		if err != nil {
			return nil, err
		}
		out.UnprocessedKeys = map[string]types.KeysAndAttributes{o.Table: {Keys: ka.Keys[half:], ConsistentRead: ka.ConsistentRead}}
		return out, nil
	}
	got, err := s.GetPairs(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("GetPairs found %d pairs, want %d", len(got), len(want))
	}
	for k := range want {
		if p, ok := got[k]; !ok || p.Key != k || p.Version != 1 {
			t.Errorf("pair %s = %+v, %v", k, p, ok)
		}
	}
	// 230 keys: chunks of 100, 100, 30, each split until single keys
	// remain: far more than 3 requests.
	if n := h.batchGets.Load(); n <= 3 {
		t.Errorf("%d BatchGetItem calls; the unprocessed keys were not asked again", n)
	}

	// Keys that never get processed end in an error saying how many.
	h.batchGet = func(_ context.Context, in *dynamodb.BatchGetItemInput, _ int64) (*dynamodb.BatchGetItemOutput, error) {
		return &dynamodb.BatchGetItemOutput{UnprocessedKeys: in.RequestItems}, nil
	}
	s.batchRetries = 2
	_, err = s.GetPairs(ctx, keys[:5])
	if !errors.Is(err, ErrBatchUnprocessed) || !strings.Contains(err.Error(), "5 keys still unprocessed after 2 retries") {
		t.Errorf("GetPairs with keys never processed: err = %v", err)
	}
}

// TestGetPairsOnEveryBackend checks the generic helper: batch where the
// store can, one read per key elsewhere, same answer.
func TestGetPairsOnEveryBackend(t *testing.T) {
	for _, b := range []struct {
		name string
		open newStoreFunc
	}{
		{"memory", openMemoryForTest},
		{"file", openFileForTest},
		{"dynamodb", openDynamoDBForTest},
	} {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t, time.Now)
			a := mustPut(t, s, newPair(key("ami-a", "111122223333", "eu-west-1"), "999988887777", PairSettled))
			c := mustPut(t, s, newPair(key("ami-c", "111122223333", "eu-west-1"), "999988887777", PairFailed))
			got, err := GetPairs(context.Background(), s, []PairKey{a.Key, key("ami-b", "111122223333", "eu-west-1"), c.Key, a.Key})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || !samePair(got[a.Key], a) || !samePair(got[c.Key], c) {
				t.Errorf("GetPairs = %+v", got)
			}
			if _, err := GetPairs(context.Background(), s, []PairKey{key("", "1", "r")}); !errors.Is(err, ErrInvalid) {
				t.Errorf("GetPairs of an invalid key: err = %v, want ErrInvalid", err)
			}
		})
	}
}
