package cli

import (
	"path/filepath"
	"testing"

	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/state"
)

// TestDescribeStore: validate describes the configured store, status the
// opened one; one function serves both.
func TestDescribeStore(t *testing.T) {
	cfgWith := func(edit func(*config.Config)) *config.Config {
		c := config.Default()
		edit(c)
		return c
	}
	path := filepath.Join(t.TempDir(), "state.db")
	file, err := state.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, tc := range []struct {
		name  string
		cfg   *config.Config
		store state.Store
		want  string
	}{
		{"file, configured", cfgWith(func(c *config.Config) { c.State.Path = "x.db" }), nil, "file x.db"},
		{"file, opened", cfgWith(func(c *config.Config) { c.State.Path = path }), file, "file " + path},
		{"memory", cfgWith(func(c *config.Config) { c.State.Backend = config.BackendMemory }), state.NewMemory(), "memory"},
		{"dynamodb, table only", cfgWith(func(c *config.Config) {
			c.State.Backend, c.State.Table = config.BackendDynamoDB, "amicopier-state"
		}), nil, "dynamodb table amicopier-state"},
		{"dynamodb, region from aws.region", cfgWith(func(c *config.Config) {
			c.State.Backend, c.State.Table, c.AWS.Region = config.BackendDynamoDB, "t1", "eu-west-1"
		}), nil, "dynamodb table t1 (region eu-west-1)"},
		{"dynamodb, endpoint", cfgWith(func(c *config.Config) {
			c.State.Backend, c.State.Table, c.State.Region, c.State.Endpoint = config.BackendDynamoDB, "t2", "us-east-1", "http://127.0.0.1:4567"
		}), nil, "dynamodb table t2 (region us-east-1, endpoint http://127.0.0.1:4567)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeStore(tc.cfg, tc.store); got != tc.want {
				t.Errorf("describeStore = %q, want %q", got, tc.want)
			}
		})
	}
}
