package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/state"
)

// dynamoDBOptions says where the DynamoDB state table is.
//
// Region: state.region, else aws.region, else (inside the state package)
// AWS_REGION or the shared config profile, else us-east-1.
// Endpoint: state.endpoint (AMICOPIER_STATE_ENDPOINT overrides it through
// the configuration), else aws.endpoints.dynamodb, else AWS's endpoint.
// The test variable AMICOPIER_DYNAMODB_ENDPOINT is deliberately not read
// here: a variable left over from a test session must never redirect a
// real run's state.
// Credentials come from the default chain; only a loopback endpoint
// without any falls back to dummy ones (see state.DynamoDBOptions).
func dynamoDBOptions(cfg *config.Config) state.DynamoDBOptions {
	o := state.DynamoDBOptions{Table: cfg.State.Table, Region: cfg.State.Region, Endpoint: cfg.State.Endpoint}
	if o.Region == "" {
		o.Region = cfg.AWS.Region
	}
	if o.Endpoint == "" {
		o.Endpoint = cfg.AWS.Endpoints.DynamoDB
	}
	return o
}

func runState(ctx context.Context, args []string, env Env) int {
	help := func(code int) int {
		out := env.Stdout
		if code != ExitOK {
			out = env.Stderr
		}
		fmt.Fprintln(out, "Usage: amicopier state <subcommand> [flags]")
		fmt.Fprintln(out, "\nManage the state store the configuration names (state.backend).")
		fmt.Fprintln(out, "\nSubcommands:")
		fmt.Fprintln(out, "  init       create the DynamoDB table (keys, index, time to live) or the state file; idempotent")
		fmt.Fprintln(out, "\nRun 'amicopier help state <subcommand>' for its flags.")
		fmt.Fprintln(out, "\nExamples:\n  amicopier state init --config config.yaml")
		writeExitCodes(out, (usageDoc{exits: []exitDoc{{ExitOK, "the subcommand did its job"}, {ExitError, "it could not"}}}).exitCodes())
		return code
	}
	if len(args) == 0 {
		return help(ExitUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return help(ExitOK)
	case "init":
		return runStateInit(ctx, args[1:], env)
	}
	fmt.Fprintf(env.Stderr, "amicopier state: unknown subcommand %q\n", args[0])
	fmt.Fprintln(env.Stderr, "The subcommand is init; 'amicopier help state' explains it.")
	return ExitUsage
}

func runStateInit(ctx context.Context, args []string, env Env) int {
	fs := newFlags("state init", usageDoc{
		description: "Create the state store the configuration names, if it does not exist yet:\n" +
			"  dynamodb  the table (on-demand billing), its unsettled-pairs index and runs index, and time to\n" +
			"            live on " + state.DynamoDBTTLAttribute + "; waits until the table is ACTIVE. An existing table\n" +
			"            with the same definition is fine; one with another definition is an error.\n" +
			"            Production tables come from the deployment template, with the same definition.\n" +
			"  file      the state file and its parent directories.\n" +
			"  memory    nothing (it keeps nothing between runs).",
		examples: []string{
			"amicopier state init --config config.yaml",
			"AMICOPIER_STATE_TABLE=amicopier-test amicopier state init --config config.yaml --timeout 10m",
		},
		exits: []exitDoc{
			{ExitOK, "the store exists (created now or already there)"},
			{ExitError, "it could not be created, or a table with another definition exists"},
		},
		epilogue: envHelp(),
	}, env)
	path := fs.String("config", defaultConfigPath, "the configuration `FILE` naming the state backend; - reads it from standard input")
	wait := fs.Duration("timeout", 5*time.Minute, "how long (`DURATION`) to wait for the table to become ACTIVE")
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	if *wait <= 0 {
		fmt.Fprintf(env.Stderr, "amicopier state init: --timeout %s: want a positive duration\n", *wait)
		return ExitUsage
	}
	cfg, err := loadConfig(ctx, *path, env)
	if err != nil {
		return fail(env, "state init", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	switch cfg.State.Backend {
	case config.BackendDynamoDB:
		o := dynamoDBOptions(cfg)
		// Everything worth saying is printed below, notes included.
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		o.ClientOptions = append(o.ClientOptions, dynamoDBClient(o.Logger))
		setup, err := state.CreateDynamoDBTable(ctx, o)
		if err != nil {
			return fail(env, "state init", err)
		}
		where := "region " + setup.Region
		if setup.Endpoint != "" {
			where += ", endpoint " + setup.Endpoint
		}
		verb := "Table %s already exists with amicopier's definition (%s).\n"
		if setup.Created {
			verb = "Created DynamoDB table %s (%s).\n"
		}
		fmt.Fprintf(env.Stdout, verb, setup.Table, where)
		fmt.Fprintf(env.Stdout, "  keys %s/%s, index %s (unsettled pairs by source account), index %s (runs by start), on-demand billing\n",
			state.DynamoDBPartitionKey, state.DynamoDBSortKey, state.DynamoDBUnsettledIndex, state.DynamoDBRunsIndex)
		fmt.Fprintf(env.Stdout, "  time to live on %s: %s\n", state.DynamoDBTTLAttribute, setup.TTL)
		for _, n := range setup.Notes {
			fmt.Fprintf(env.Stdout, "  note: %s\n", n)
		}
	case config.BackendFile:
		_, statErr := os.Stat(cfg.State.Path)
		existed := statErr == nil
		if statErr != nil && !errors.Is(statErr, os.ErrNotExist) {
			return fail(env, "state init", fmt.Errorf("state file %s: %w", cfg.State.Path, statErr))
		}
		s, err := state.OpenFile(cfg.State.Path)
		if err != nil {
			return fail(env, "state init", err)
		}
		if err := s.Close(); err != nil {
			return fail(env, "state init", err)
		}
		if existed {
			fmt.Fprintf(env.Stdout, "State file %s already exists (schema version %d).\n", cfg.State.Path, state.FileSchemaVersion)
		} else {
			fmt.Fprintf(env.Stdout, "Created state file %s (schema version %d).\n", cfg.State.Path, state.FileSchemaVersion)
		}
	case config.BackendMemory:
		fmt.Fprintln(env.Stdout, "state.backend is memory: it keeps nothing between runs, so there is nothing to create.")
	default:
		return fail(env, "state init", fmt.Errorf("state.backend %q is not supported by this build", cfg.State.Backend))
	}
	return ExitOK
}
