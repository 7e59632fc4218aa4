package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/amicopier/amicopier/internal/config"
)

const defaultConfigPath = "config.yaml"

func envHelp() string {
	var b strings.Builder
	b.WriteString("Environment overrides (applied after the file, before validation):\n")
	for _, e := range config.EnvOverrides {
		fmt.Fprintf(&b, "  %-32s %s\n", e.Name, e.Path)
	}
	return strings.TrimRight(b.String(), "\n")
}

func runValidate(_ context.Context, args []string, env Env) int {
	fs := newFlags("validate", "[--config FILE]",
		"Check a configuration file offline (no AWS call) and explain every problem: unknown keys,\n"+
			"wrong types and invalid values, each with its key path and line.\n\n"+envHelp(), env)
	path := fs.String("config", defaultConfigPath, "configuration file to check")
	noEnv := fs.Bool("no-env", false, "ignore the AMICOPIER_* environment overrides")
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	getenv := env.Getenv
	if *noEnv {
		getenv = func(string) string { return "" }
	}
	cfg, err := config.LoadWithEnv(*path, getenv)
	if err != nil {
		var verr *config.ValidationError
		if errors.As(err, &verr) {
			fmt.Fprintf(env.Stderr, "%s is not valid (%d problem(s)):\n%s\n", *path, len(verr.Errors), verr.Error())
			return ExitError
		}
		return fail(env, "validate", err)
	}
	fmt.Fprintf(env.Stdout, "%s is valid.\n", *path)
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
	return ExitOK
}
