package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/amicopier/amicopier/internal/config"
)

const defaultConfigPath = "config.yaml"

func envHelp() string {
	return envTable("Environment overrides (applied after the file, before validation):", config.EnvOverrides,
		func(e config.EnvVar) string { return e.Path })
}

// otherEnvHelp lists the variables validate knows that override nothing,
// so that the list of what amicopier reads is complete.
func otherEnvHelp() string {
	return envTable("Other variables amicopier reads (the Lambda function, logs, tests):", config.OtherEnvVars,
		func(e config.EnvVar) string { return e.Description })
}

// envTable prints a title and a line per variable: its name and what
// about says of it.
func envTable(title string, vars []config.EnvVar, about func(config.EnvVar) string) string {
	var b strings.Builder
	b.WriteString(title + "\n")
	for _, e := range vars {
		fmt.Fprintf(&b, "  %-32s %s\n", e.Name, about(e))
	}
	return strings.TrimRight(b.String(), "\n")
}

func runValidate(ctx context.Context, args []string, env Env) int {
	fs := newFlags("validate", usageDoc{
		description: "Check a configuration file offline (no AWS call) and explain every problem at once: unknown\n" +
			"keys, wrong types and invalid values, each with its key path and line (or the environment\n" +
			"variable it came from), and AMICOPIER_* variables that nothing reads (a misspelt override).\n" +
			"Region names must be Regions the AWS SDK in this build knows.",
		examples: []string{
			"amicopier validate --config config.yaml",
			"amicopier validate --config config.yaml --no-env     # the file alone, without AMICOPIER_* variables",
		},
		exits: []exitDoc{
			{ExitOK, "the configuration is valid"},
			{ExitError, "it is not (every problem is listed), or it cannot be read"},
		},
		epilogue: envHelp() + "\n\n" + otherEnvHelp(),
	}, env)
	path := fs.String("config", defaultConfigPath, "the configuration `FILE` to check; - reads it from standard input")
	noEnv := fs.Bool("no-env", false, "ignore the AMICOPIER_* environment variables")
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	getenv := env.Getenv
	var environ []string
	switch {
	case *noEnv:
		getenv = func(string) string { return "" }
	case env.Environ != nil:
		environ = env.Environ()
	}
	cfg, err := readConfig(ctx, *path, func(file string) (*config.Config, error) { return config.CheckFile(file, getenv, environ) })
	if err != nil {
		var verr *config.ValidationError
		if errors.As(err, &verr) {
			fmt.Fprintf(env.Stderr, "%s is not valid (%d problem(s)):\n%s\n", configName(*path), len(verr.Errors), verr.Error())
			return ExitError
		}
		return fail(env, "validate", err)
	}
	fmt.Fprintf(env.Stdout, "%s is valid.\n", configName(*path))
	fmt.Fprintf(env.Stdout, "  source account %s, regions %s\n", cfg.Source.AccountID, strings.Join(cfg.Source.Regions, ", "))
	var sources []string
	if cfg.Targets.TagKey != "" {
		sources = append(sources, "tag "+cfg.Targets.TagKey)
	}
	if n := len(cfg.Targets.Rules); n > 0 {
		sources = append(sources, fmt.Sprintf("%d rule(s)", n))
	}
	if cfg.Targets.AmigoRecipesTable != "" {
		sources = append(sources, "AMIgo table "+cfg.Targets.AmigoRecipesTable)
	}
	if len(sources) == 0 {
		sources = append(sources, "none (no AMI will have targets)")
	}
	fmt.Fprintf(env.Stdout, "  target metadata: %s\n", strings.Join(sources, ", "))
	fmt.Fprintf(env.Stdout, "  state backend: %s\n", describeStore(cfg, nil))
	printFromEnvironment(env, cfg)
	return ExitOK
}

// printFromEnvironment lists the values the environment set, so that
// nobody takes them for the file's; secrets show their length only.
func printFromEnvironment(env Env, cfg *config.Config) {
	set := cfg.FromEnvironment()
	if len(set) == 0 {
		return
	}
	fmt.Fprintln(env.Stdout, "  from the environment (overriding the file):")
	for _, e := range set {
		raw := strings.TrimSpace(env.Getenv(e.Name)) // as ApplyEnv took it
		value := strconv.Quote(raw)
		if e.Secret {
			value = fmt.Sprintf("(%d characters, not shown)", len(raw))
		}
		fmt.Fprintf(env.Stdout, "    %s = %s  (%s)\n", e.Path, value, e.Name)
	}
}
