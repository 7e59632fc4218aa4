package state

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/amicopier/amicopier/internal/pause"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// batchGetLimit is BatchGetItem's maximum number of keys per request.
const batchGetLimit = 100

// GetPairs implements PairBatchReader with BatchGetItem, 100 keys per
// request, strongly consistent. Keys DynamoDB returns as unprocessed
// (throttling, the 16 MB response limit) are asked again with jittered
// exponential backoff; if some remain after the retries the call fails
// saying how many.
func (d *DynamoDB) GetPairs(ctx context.Context, keys []PairKey) (map[PairKey]Pair, error) {
	keys, err := uniqueKeys(keys)
	if err != nil {
		return nil, err
	}
	op := opGetPairs(len(keys))
	if err := d.ready(ctx, op); err != nil {
		return nil, err
	}
	out := make(map[PairKey]Pair, len(keys))
	for start := 0; start < len(keys); start += batchGetLimit {
		chunk := keys[start:min(start+batchGetLimit, len(keys))]
		attrs := make([]map[string]types.AttributeValue, len(chunk))
		for i, k := range chunk {
			attrs[i] = pairKeyAttrs(k)
		}
		if err := d.batchGet(ctx, op, attrs, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// batchGet reads one request's worth of keys into out, retrying the
// unprocessed ones.
func (d *DynamoDB) batchGet(ctx context.Context, op string, keys []map[string]types.AttributeValue, out map[PairKey]Pair) error {
	pending := map[string]types.KeysAndAttributes{
		d.table: {Keys: keys, ConsistentRead: aws.Bool(true)},
	}
	backoff := d.batchBackoff
	for round := 0; ; round++ {
		res, err := d.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
		if err != nil {
			return d.apiError(op, err)
		}
		for _, item := range res.Responses[d.table] {
			p, err := unmarshalPair(item)
			if err != nil {
				return fmt.Errorf("DynamoDB table %s: %s: decode: %w", d.table, op, err)
			}
			out[p.Key] = p
		}
		left := res.UnprocessedKeys[d.table]
		if len(left.Keys) == 0 {
			return nil
		}
		if round >= d.batchRetries {
			return d.unprocessedError(op, len(left.Keys), d.batchRetries)
		}
		d.log.Debug("retrying unprocessed batch keys", "table", d.table, "keys", len(left.Keys), "round", round+1)
		if err := pause.For(ctx, backoff/2+rand.N(backoff/2+1)); err != nil {
			return fmt.Errorf("DynamoDB table %s: %s: %d keys unprocessed: %w", d.table, op, len(left.Keys), err)
		}
		backoff = min(2*backoff, 2*time.Second)
		pending = map[string]types.KeysAndAttributes{d.table: left}
	}
}
