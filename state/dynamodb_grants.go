package state

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Grants items: pk "grants#<image>#<scope>", sk "grants". Each carries
// unsettled_source = its source account for as long as it exists (an item
// that lists nothing is deleted), so the sparse unsettled index holds it
// beside the unsettled pairs, and GrantsOf reads every record of a source
// account with one Query of that index (begins_with on its sort key, pk),
// never a scan.
const (
	pkGrantsPrefix = "grants#"
	skGrants       = "grants"
	kindGrants     = "grants"
)

type grantsItem struct {
	PK              string   `dynamodbav:"pk"`
	SK              string   `dynamodbav:"sk"`
	Kind            string   `dynamodbav:"kind"`
	Image           string   `dynamodbav:"image"`
	Scope           string   `dynamodbav:"scope"`
	Source          string   `dynamodbav:"source"`
	Region          string   `dynamodbav:"region,omitempty"`
	Launch          []string `dynamodbav:"launch,omitempty,stringset"`
	Volume          []string `dynamodbav:"volume,omitempty,stringset"`
	Snapshots       []string `dynamodbav:"snapshots,omitempty,stringset"`
	UpdatedAt       string   `dynamodbav:"updated_at"`
	RunID           string   `dynamodbav:"run_id,omitempty"`
	Version         int64    `dynamodbav:"version"`
	UnsettledSource string   `dynamodbav:"unsettled_source"`
}

func grantsPK(k GrantsKey) string { return pkGrantsPrefix + k.Image + "#" + k.Scope }

func grantsKeyAttrs(k GrantsKey) map[string]types.AttributeValue {
	return keyAttrs(grantsPK(k), skGrants)
}

func marshalGrants(g Grants) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(grantsItem{
		PK: grantsPK(g.Key), SK: skGrants, Kind: kindGrants,
		Image: g.Key.Image, Scope: g.Key.Scope, Source: g.Source, Region: g.Region,
		Launch: g.Launch, Volume: g.Volume, Snapshots: g.Snapshots,
		UpdatedAt: formatTime(g.UpdatedAt), RunID: g.RunID, Version: g.Version,
		UnsettledSource: g.Source,
	})
}

func unmarshalGrants(item map[string]types.AttributeValue) (Grants, error) {
	var it grantsItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return Grants{}, err
	}
	g := Grants{
		Key: GrantsKey{Image: it.Image, Scope: it.Scope}, Source: it.Source, Region: it.Region,
		Launch: sortedSet(it.Launch), Volume: sortedSet(it.Volume), Snapshots: sortedSet(it.Snapshots), RunID: it.RunID, Version: it.Version,
	}
	t, err := parseTime("updated_at", it.UpdatedAt)
	if err != nil {
		return Grants{}, fmt.Errorf("item %s: %w", it.PK, err)
	}
	g.UpdatedAt = t
	return g, nil
}

// GrantsOf implements Store with one paginated Query of the unsettled
// index, limited to grants items.
func (d *DynamoDB) GrantsOf(ctx context.Context, source string) ([]Grants, error) {
	if err := validateSource(source); err != nil {
		return nil, err
	}
	op := "read grants of source " + source
	if err := d.ready(ctx, op); err != nil {
		return nil, err
	}
	out, err := queryUnsettled(ctx, d, op, source, pkGrantsPrefix, unmarshalGrants)
	if err != nil {
		return nil, err
	}
	sortGrants(out)
	return out, nil
}

// PutGrants implements Store with one conditional PutItem (or, for a record
// that lists nothing, one conditional DeleteItem): the stored version must
// equal g.Version (0: no item).
func (d *DynamoDB) PutGrants(ctx context.Context, g Grants) (Grants, error) {
	if err := validateGrants(g); err != nil {
		return Grants{}, err
	}
	op := "put grants " + g.Key.String()
	if err := d.ready(ctx, op); err != nil {
		return Grants{}, err
	}
	cond := expression.AttributeNotExists(expression.Name(attrPK))
	if g.Version > 0 {
		cond = expression.Name(attrVersion).Equal(expression.Value(g.Version))
	}
	if g.Empty() {
		if g.Version == 0 {
			return Grants{}, nil // nothing stored, nothing to store
		}
		expr, err := expression.NewBuilder().WithCondition(cond).Build()
		if err != nil {
			return Grants{}, fmt.Errorf("DynamoDB table %s: %s: build condition: %w", d.table, op, err)
		}
		_, err = d.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: aws.String(d.table), Key: grantsKeyAttrs(g.Key),
			ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		})
		if _, lost := conditionFailed(err); lost {
			return Grants{}, fmt.Errorf("put grants %s: writer expected version %d: %w", g.Key, g.Version, ErrConflict)
		}
		if err != nil {
			return Grants{}, d.apiError(op, err)
		}
		return Grants{}, nil
	}
	next := g
	next.Launch, next.Volume, next.Snapshots = sortedSet(g.Launch), sortedSet(g.Volume), sortedSet(g.Snapshots)
	next.Version = g.Version + 1
	next.UpdatedAt = normTime(d.opts.now())
	item, err := marshalGrants(next)
	if err != nil {
		return Grants{}, fmt.Errorf("DynamoDB table %s: %s: encode: %w", d.table, op, err)
	}
	old, lost, err := d.conditionalPut(ctx, op, item, cond)
	if err != nil {
		return Grants{}, err
	}
	if lost {
		have := int64(0)
		if len(old) > 0 {
			if stored, err := unmarshalGrants(old); err == nil {
				if stored.Version == next.Version && stored.SameContent(next) && stored.RunID == next.RunID {
					return next, nil // an earlier attempt of this very write landed
				}
				have = stored.Version
			}
		}
		return Grants{}, fmt.Errorf("put grants %s: stored version %d, writer expected version %d: %w", g.Key, have, g.Version, ErrConflict)
	}
	return next, nil
}
