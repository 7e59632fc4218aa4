package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/state"
)

// OpenStore opens the state backend the configuration names. The Lambda
// entrypoint uses it too (main passes it on), so both open the same
// backends the same way.
func OpenStore(ctx context.Context, cfg *config.Config) (state.Store, error) {
	switch cfg.State.Backend {
	case config.BackendFile:
		s, err := state.OpenFile(cfg.State.Path)
		if err != nil {
			return nil, fmt.Errorf("open the state file: %w", err)
		}
		return s, nil
	case config.BackendMemory:
		return state.NewMemory(), nil
	case config.BackendDynamoDB:
		// Where the table is and how credentials are found: dynamoDBOptions.
		s, err := state.OpenDynamoDB(ctx, dynamoDBOptions(cfg))
		if err != nil {
			return nil, fmt.Errorf("open the state table: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("state.backend %q is not supported by this build", cfg.State.Backend)
}

// describeStore names the state store for people: its backend and where
// it is. s is the opened store when there is one, whose Region and
// endpoint are the resolved ones; nil describes what the configuration
// says (validate opens nothing).
func describeStore(cfg *config.Config, s state.Store) string {
	switch st := s.(type) {
	case *state.DynamoDB:
		parts := []string{"region " + st.Region()}
		if st.Endpoint() != "" {
			parts = append(parts, "endpoint "+st.Endpoint())
		}
		return fmt.Sprintf("dynamodb table %s (%s)", st.Table(), strings.Join(parts, ", "))
	case *state.File:
		return "file " + st.Path()
	}
	switch cfg.State.Backend {
	case config.BackendFile:
		return "file " + cfg.State.Path
	case config.BackendDynamoDB:
		o := dynamoDBOptions(cfg)
		var parts []string
		if o.Region != "" {
			parts = append(parts, "region "+o.Region)
		}
		if o.Endpoint != "" {
			parts = append(parts, "endpoint "+o.Endpoint)
		}
		if len(parts) == 0 {
			return "dynamodb table " + o.Table
		}
		return fmt.Sprintf("dynamodb table %s (%s)", o.Table, strings.Join(parts, ", "))
	}
	return cfg.State.Backend
}
