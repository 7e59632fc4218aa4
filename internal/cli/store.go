package cli

import (
	"context"
	"fmt"

	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/state"
)

// openStore opens the state backend the configuration names.
func openStore(ctx context.Context, cfg *config.Config) (state.Store, error) {
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
