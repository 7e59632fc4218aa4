package cli

import (
	"fmt"

	"github.com/amicopier/amicopier/reconcile"
)

// shardFlag is --shard I/N: reconcile only shard I of N of the target
// accounts (see reconcile.Shard), so N runs in parallel (a Step Functions
// Distributed Map, docs/sharding.md) cover an organisation too large for
// one Lambda invocation.
type shardFlag struct {
	reconcile.Shard
}

func (f *shardFlag) String() string { return f.Shard.String() }

// Set implements flag.Value.
func (f *shardFlag) Set(s string) error {
	sh, err := parseShard(s)
	if err != nil {
		return err
	}
	f.Shard = sh
	return nil
}

// parseShard parses the value of --shard ("2/8": shard 2 of 8); errors
// name the value.
func parseShard(s string) (reconcile.Shard, error) {
	if s == "" {
		return reconcile.Shard{}, fmt.Errorf("--shard %q: want I/N, for example 2/8 (shard 2 of 8)", s)
	}
	sh, err := reconcile.ParseShard(s)
	if err != nil {
		return reconcile.Shard{}, fmt.Errorf("--%w", err)
	}
	return sh, nil
}
