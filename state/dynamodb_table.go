package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/pause"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The table's schema. DynamoDBTableDefinition is the one place it is
// written; `amicopier state init` creates it and the deployment templates
// are tested against it.
const (
	// DynamoDBPartitionKey is the table's partition (HASH) key, a string
	// whose prefix names the item kind: pair#, run# or lease#.
	DynamoDBPartitionKey = "pk"
	// DynamoDBSortKey is the table's sort (RANGE) key.
	DynamoDBSortKey = "sk"
	// DynamoDBUnsettledIndex is the sparse global secondary index holding
	// only unsettled pairs, partitioned by source account
	// (unsettled_source) and sorted by pk.
	DynamoDBUnsettledIndex = "unsettled"
	// DynamoDBRunsIndex is the local secondary index ordering a scope's
	// runs by start time (run_order = started#id).
	DynamoDBRunsIndex = "runs_by_start"
	// DynamoDBTTLAttribute is the table's time-to-live attribute (Unix
	// seconds): set on runs from Run.ExpiresAt, on leases a day after they
	// expire, never on pairs.
	DynamoDBTTLAttribute = "expires_at_epoch"
)

// DynamoDBTableDefinition returns the CreateTable request of a state table
// named table: keys, indexes and on-demand billing. Time to live is not
// part of CreateTable; enable it on DynamoDBTTLAttribute (CreateDynamoDBTable
// does). Each call returns a fresh value the caller may modify.
func DynamoDBTableDefinition(table string) *dynamodb.CreateTableInput {
	str := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	key := func(name string, kt types.KeyType) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: kt}
	}
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			str(attrPK), str(attrSK), str(attrUnsettledSource), str(attrRunOrder),
		},
		KeySchema: []types.KeySchemaElement{key(attrPK, types.KeyTypeHash), key(attrSK, types.KeyTypeRange)},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(DynamoDBUnsettledIndex),
			KeySchema: []types.KeySchemaElement{key(attrUnsettledSource, types.KeyTypeHash), key(attrPK, types.KeyTypeRange)},
			// ALL: the index holds only unsettled pairs, so projecting
			// everything costs little and saves a read per pair.
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
		LocalSecondaryIndexes: []types.LocalSecondaryIndex{{
			IndexName:  aws.String(DynamoDBRunsIndex),
			KeySchema:  []types.KeySchemaElement{key(attrPK, types.KeyTypeHash), key(attrRunOrder, types.KeyTypeRange)},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	}
}

// TTLState says what CreateDynamoDBTable found or did about time to live.
type TTLState string

// TTL states.
const (
	// TTLEnabled: time to live was enabled by this call.
	TTLEnabled TTLState = "enabled"
	// TTLAlreadyEnabled: it was already on, on DynamoDBTTLAttribute.
	TTLAlreadyEnabled TTLState = "already enabled"
	// TTLUnsupported: the endpoint answered that it does not know the
	// time-to-live operations (dynalite, some emulators). Expired runs
	// then stay in the table; RecentRuns still hides them.
	TTLUnsupported TTLState = "not supported by the endpoint"
)

// TableSetup reports what CreateDynamoDBTable did.
type TableSetup struct {
	Table    string
	Region   string
	Endpoint string
	// Created is false when the table already existed with the right
	// definition.
	Created bool
	TTL     TTLState
	// Notes are harmless differences worth telling the operator (another
	// billing mode, extra indexes, TTL unsupported).
	Notes []string
}

// DefaultTableWait bounds how long CreateDynamoDBTable waits for a table
// to become ACTIVE when the context has no deadline.
const DefaultTableWait = 5 * time.Minute

// CreateDynamoDBTable creates the state table described by
// DynamoDBTableDefinition, waits until it and its index are ACTIVE, and
// enables time to live. It is idempotent: a table that already exists with
// the same keys and indexes is accepted; one with a different definition
// is an error saying what differs.
func CreateDynamoDBTable(ctx context.Context, o DynamoDBOptions) (*TableSetup, error) {
	d, err := connectDynamoDB(ctx, o, nil)
	if err != nil {
		return nil, err
	}
	return d.createTable(ctx)
}

func (d *DynamoDB) createTable(ctx context.Context) (*TableSetup, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTableWait)
		defer cancel()
	}
	setup := &TableSetup{Table: d.table, Region: d.region, Endpoint: d.endpoint}
	want := DynamoDBTableDefinition(d.table)
	desc, err := d.describeTable(ctx)
	switch {
	case errors.Is(err, ErrTableNotFound):
		_, err = d.api.CreateTable(ctx, want)
		var inUse *types.ResourceInUseException
		switch {
		case errors.As(err, &inUse):
			// Another `state init` won the race: check what it made.
			d.log.Info("state table is being created by someone else", "table", d.table)
		case err != nil:
			return nil, d.apiError("create table", err)
		default:
			setup.Created = true
			d.log.Info("creating state table", "table", d.table, "region", d.region)
		}
		if desc, err = d.waitActive(ctx); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	if diffs := tableDiff(want, desc); len(diffs) > 0 {
		return nil, fmt.Errorf("DynamoDB table %s exists with another definition than amicopier's state table (%s): "+
			"choose another state.table or delete that table", d.table, strings.Join(diffs, "; "))
	}
	setup.Notes = append(setup.Notes, tableNotes(want, desc)...)
	if desc.TableStatus != types.TableStatusActive || !indexesActive(desc) {
		if _, err = d.waitActive(ctx); err != nil {
			return nil, err
		}
	}
	if setup.TTL, err = d.enableTTL(ctx); err != nil {
		return nil, err
	}
	if setup.TTL == TTLUnsupported {
		note := fmt.Sprintf("%s does not support time to live: expired run records stay in the table (status hides them)", d.endpointName())
		setup.Notes = append(setup.Notes, note)
		d.log.Warn("time to live not supported; expired runs will not be deleted", "where", d.endpointName(), "table", d.table)
	}
	return setup, nil
}

func (d *DynamoDB) describeTable(ctx context.Context) (*types.TableDescription, error) {
	out, err := d.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(d.table)})
	if err != nil {
		return nil, d.apiError("describe table", err)
	}
	if out.Table == nil {
		return nil, fmt.Errorf("DynamoDB table %s: describe table: empty answer from %s", d.table, d.endpointName())
	}
	return out.Table, nil
}

// waitActive polls until the table and its global index are ACTIVE. The
// SDK's waiter starts at 20 seconds between polls; a new on-demand table
// is usually ready in a few, and an emulator at once.
func (d *DynamoDB) waitActive(ctx context.Context) (*types.TableDescription, error) {
	delay := 50 * time.Millisecond
	for {
		desc, err := d.describeTable(ctx)
		if err != nil && !errors.Is(err, ErrTableNotFound) { // not visible yet right after create
			return nil, err
		}
		if err == nil && desc.TableStatus == types.TableStatusActive && indexesActive(desc) {
			return desc, nil
		}
		if err := pause.For(ctx, delay); err != nil {
			status := "not found"
			if desc != nil {
				status = string(desc.TableStatus)
			}
			return nil, fmt.Errorf("DynamoDB table %s: still %s when giving up waiting for ACTIVE: %w", d.table, status, err)
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func indexesActive(desc *types.TableDescription) bool {
	for _, g := range desc.GlobalSecondaryIndexes {
		if g.IndexStatus != "" && g.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}

// enableTTL turns time to live on for DynamoDBTTLAttribute unless it
// already is. Only an endpoint answering that it does not know the
// operation is tolerated; any other refusal is an error.
func (d *DynamoDB) enableTTL(ctx context.Context) (TTLState, error) {
	desc, err := d.api.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(d.table)})
	if isUnknownOperation(err) {
		return TTLUnsupported, nil
	}
	if err != nil {
		return "", d.apiError("describe time to live", err)
	}
	if ttl := desc.TimeToLiveDescription; ttl != nil {
		attr := aws.ToString(ttl.AttributeName)
		switch ttl.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if attr != DynamoDBTTLAttribute {
				return "", fmt.Errorf("DynamoDB table %s has time to live on attribute %q; amicopier's state table needs it on %q",
					d.table, attr, DynamoDBTTLAttribute)
			}
			return TTLAlreadyEnabled, nil
		}
	}
	_, err = d.api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(d.table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(DynamoDBTTLAttribute), Enabled: aws.Bool(true),
		},
	})
	switch {
	case isUnknownOperation(err):
		return TTLUnsupported, nil
	case err != nil:
		return "", d.apiError("enable time to live on "+DynamoDBTTLAttribute, err)
	}
	return TTLEnabled, nil
}

// checkTable verifies that the table exists and is an amicopier state
// table, so a wrong name fails at open with advice rather than at the
// first write.
func (d *DynamoDB) checkTable(ctx context.Context) error {
	desc, err := d.describeTable(ctx)
	if err != nil {
		return err
	}
	if diffs := tableDiff(DynamoDBTableDefinition(d.table), desc); len(diffs) > 0 {
		return fmt.Errorf("DynamoDB table %s is not an amicopier state table (%s): check state.table",
			d.table, strings.Join(diffs, "; "))
	}
	return nil
}

// tableDiff lists what makes an existing table unusable: other keys, or
// missing or different indexes. Billing and extra indexes do not.
func tableDiff(want *dynamodb.CreateTableInput, got *types.TableDescription) []string {
	var diffs []string
	gotTypes := attrTypes(got.AttributeDefinitions)
	wantTypes := attrTypes(want.AttributeDefinitions)
	checkKeys := func(what string, wantKeys, gotKeys []types.KeySchemaElement) {
		w, g := keyString(wantKeys, wantTypes), keyString(gotKeys, gotTypes)
		if w != g {
			diffs = append(diffs, fmt.Sprintf("%s keys are %s, want %s", what, g, w))
		}
	}
	checkKeys("table", want.KeySchema, got.KeySchema)
	// Global and local indexes are judged alike: present, same keys, same
	// projection.
	type index struct {
		name string
		keys []types.KeySchemaElement
		proj *types.Projection
	}
	check := func(kind string, wants, gots []index) {
		for _, wi := range wants {
			i := slices.IndexFunc(gots, func(g index) bool { return g.name == wi.name })
			if i < 0 {
				diffs = append(diffs, fmt.Sprintf("%s secondary index %s is missing", kind, wi.name))
				continue
			}
			checkKeys("index "+wi.name, wi.keys, gots[i].keys)
			if p := projection(gots[i].proj); p != projection(wi.proj) {
				diffs = append(diffs, fmt.Sprintf("index %s projects %s, want %s", wi.name, p, projection(wi.proj)))
			}
		}
	}
	var wantG, gotG, wantL, gotL []index
	for _, i := range want.GlobalSecondaryIndexes {
		wantG = append(wantG, index{aws.ToString(i.IndexName), i.KeySchema, i.Projection})
	}
	for _, i := range got.GlobalSecondaryIndexes {
		gotG = append(gotG, index{aws.ToString(i.IndexName), i.KeySchema, i.Projection})
	}
	for _, i := range want.LocalSecondaryIndexes {
		wantL = append(wantL, index{aws.ToString(i.IndexName), i.KeySchema, i.Projection})
	}
	for _, i := range got.LocalSecondaryIndexes {
		gotL = append(gotL, index{aws.ToString(i.IndexName), i.KeySchema, i.Projection})
	}
	check("global", wantG, gotG)
	check("local", wantL, gotL)
	return diffs
}

// tableNotes lists differences that do not stop amicopier.
func tableNotes(want *dynamodb.CreateTableInput, got *types.TableDescription) []string {
	var notes []string
	if bm := got.BillingModeSummary; bm != nil && bm.BillingMode != "" && bm.BillingMode != want.BillingMode {
		notes = append(notes, fmt.Sprintf("billing mode is %s (amicopier's definition uses %s)", bm.BillingMode, want.BillingMode))
	}
	for _, g := range got.GlobalSecondaryIndexes {
		name := aws.ToString(g.IndexName)
		if !slices.ContainsFunc(want.GlobalSecondaryIndexes, func(w types.GlobalSecondaryIndex) bool { return aws.ToString(w.IndexName) == name }) {
			notes = append(notes, fmt.Sprintf("extra global secondary index %s (not used by amicopier)", name))
		}
	}
	return notes
}

func attrTypes(defs []types.AttributeDefinition) map[string]types.ScalarAttributeType {
	m := make(map[string]types.ScalarAttributeType, len(defs))
	for _, d := range defs {
		m[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	return m
}

// keyString renders a key schema as "pk(S) HASH, sk(S) RANGE".
func keyString(keys []types.KeySchemaElement, attrTypes map[string]types.ScalarAttributeType) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		name := aws.ToString(k.AttributeName)
		parts = append(parts, fmt.Sprintf("%s(%s) %s", name, attrTypes[name], k.KeyType))
	}
	return strings.Join(parts, ", ")
}

func projection(p *types.Projection) types.ProjectionType {
	if p == nil {
		return ""
	}
	return p.ProjectionType
}
