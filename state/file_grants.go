package state

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketGrants holds the Grants records: grants/<source account> ->
// GrantsKey.String() -> Grants (JSON). Made on the first write, so files of
// earlier builds need no migration.
var bucketGrants = []byte("grants")

// GrantsOf implements Store. Records come ordered by key.
func (f *File) GrantsOf(ctx context.Context, source string) ([]Grants, error) {
	if err := validateSource(source); err != nil {
		return nil, err
	}
	op := "read grants of " + source
	var out []Grants
	err := f.view(ctx, op, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGrants)
		if b == nil {
			return nil
		}
		if b = b.Bucket([]byte(source)); b == nil {
			return nil
		}
		return b.ForEach(func(k, raw []byte) error {
			var g Grants
			if err := json.Unmarshal(raw, &g); err != nil {
				return f.storageErr(op, fmt.Errorf("decode grants %s: %w", k, err))
			}
			out = append(out, g)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutGrants implements Store.
func (f *File) PutGrants(ctx context.Context, g Grants) (Grants, error) {
	if err := validateGrants(g); err != nil {
		return Grants{}, err
	}
	op := "put grants " + g.Key.String()
	var next Grants
	err := f.update(ctx, op, func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketGrants)
		if err != nil {
			return f.storageErr(op, err)
		}
		b, err := root.CreateBucketIfNotExists([]byte(g.Source))
		if err != nil {
			return f.storageErr(op, err)
		}
		k := []byte(g.Key.String())
		var stored Grants
		raw := b.Get(k)
		if raw != nil {
			if err := json.Unmarshal(raw, &stored); err != nil {
				return f.storageErr(op, fmt.Errorf("decode stored grants: %w", err))
			}
		}
		if next, err = nextGrants(stored, raw != nil, g, f.opts.now()); err != nil {
			return err
		}
		if next.Key == (GrantsKey{}) {
			if err := b.Delete(k); err != nil {
				return f.storageErr(op, err)
			}
			return nil
		}
		data, err := json.Marshal(next)
		if err != nil {
			return f.storageErr(op, err)
		}
		if err := b.Put(k, data); err != nil {
			return f.storageErr(op, err)
		}
		return nil
	})
	if err != nil {
		return Grants{}, err
	}
	return next, nil
}
