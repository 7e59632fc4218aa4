package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/amicopier/amicopier/internal/awsapi"

	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/state"
)

// OpenStore opens the state backend the configuration names. The Lambda
// entrypoint uses it too (main passes it on), so both open the same
// backends the same way.
func OpenStore(ctx context.Context, cfg *config.Config) (state.Store, error) {
	return openStore(ctx, cfg, slog.Default())
}

// openStore is OpenStore logging the state store's AWS calls to log.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (state.Store, error) {
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
		o := dynamoDBOptions(cfg)
		o.ClientOptions = append(o.ClientOptions, dynamoDBClient(log))
		s, err := state.OpenDynamoDB(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("open the state table: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("state.backend %q is not supported by this build", cfg.State.Backend)
}

// openReadOnlyStore opens the state backend for a command that only reads
// it (status). A state file is opened read-only: nothing is created (a
// typo in state.path shows as a missing file, not as an empty new one),
// and a file the user may only read serves.
func openReadOnlyStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (state.Store, error) {
	if cfg.State.Backend != config.BackendFile {
		return openStore(ctx, cfg, log)
	}
	s, err := state.OpenFileReadOnly(cfg.State.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w; check state.path, or create the file with `amicopier state init` (the first `amicopier run` creates it too)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("open the state file: %w", err)
	}
	return s, nil
}

// openPlanStore opens the state backend for plan, which reads the store
// and writes nothing. A state file that does not exist yet (no run has
// made it, or state.path has a typo) is not an error for a dry run: plan
// warns, naming the file, and plans from EC2 alone.
func openPlanStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (state.Store, error) {
	s, err := openReadOnlyStore(ctx, cfg, log)
	if errors.Is(err, fs.ErrNotExist) {
		log.Warn("the state file does not exist: planning from what EC2 shows, with no memory of earlier runs "+
			"(`amicopier run` creates the file: check state.path if one should exist)", "path", cfg.State.Path)
		return state.NewMemory(), nil
	}
	return s, err
}

// dynamoDBClient gives the state store's DynamoDB client the bounds
// every AWS call of amicopier has (awsapi.NewHTTPClient: no call hangs
// on an endpoint that never answers) and the call log.
func dynamoDBClient(log *slog.Logger) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.HTTPClient = awsapi.NewHTTPClient(awsapi.Timeouts{})
		o.APIOptions = append(o.APIOptions, awsapi.CallLog(log))
	}
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
