package state

import (
	"context"
	"slices"
)

// PairBatchReader is implemented by stores that read many pairs in few
// requests (DynamoDB's BatchGetItem).
type PairBatchReader interface {
	// GetPairs returns the stored pairs among keys; keys never stored are
	// absent from the map.
	GetPairs(ctx context.Context, keys []PairKey) (map[PairKey]Pair, error)
}

// GetPairs reads many pairs from s: in batches when s is a
// PairBatchReader, else one GetPair per key. Keys never stored are absent
// from the map; duplicate keys are read once.
func GetPairs(ctx context.Context, s Store, keys []PairKey) (map[PairKey]Pair, error) {
	if b, ok := s.(PairBatchReader); ok {
		return b.GetPairs(ctx, keys)
	}
	keys, err := uniqueKeys(keys)
	if err != nil {
		return nil, err
	}
	out := make(map[PairKey]Pair, len(keys))
	for _, k := range keys {
		p, found, err := s.GetPair(ctx, k)
		if err != nil {
			return nil, err
		}
		if found {
			out[k] = p
		}
	}
	return out, nil
}

// uniqueKeys validates keys and drops duplicates, keeping the first
// occurrence's order; a batch request with a key twice is refused by
// DynamoDB.
func uniqueKeys(keys []PairKey) ([]PairKey, error) {
	seen := make(map[PairKey]bool, len(keys))
	out := make([]PairKey, 0, len(keys))
	for _, k := range keys {
		if err := validatePairKey(k); err != nil {
			return nil, err
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return slices.Clip(out), nil
}
