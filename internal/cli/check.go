package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi"
	"github.com/amicopier/amicopier/internal/engineconfig"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

func runCheck(ctx context.Context, args []string, env Env) int {
	fs := newFlags("check", usageDoc{
		description: "Preflight: find, per target account and Region, what would make copies fail later, each with\n" +
			"the fix: the copier role cannot be assumed; the configured KMS key does not exist in the Region,\n" +
			"is disabled, pending deletion or not a symmetric encryption key; the role may not use it; the\n" +
			"account may not use the customer managed key of the source snapshots; the key does not let the\n" +
			"Auto Scaling service-linked role use it (check.auto_scaling_role); IAM refuses the CopyImage,\n" +
			"its tags included (a CopyImage dry run, check.copy_dry_run).\n\n" +
			"Read-only: the AWS clients refuse every mutating call; the only requests that would change\n" +
			"something are EC2 and KMS dry runs (DryRun=true), which AWS answers without doing anything.\n" +
			"It reads no state store and writes nothing.",
		examples: []string{
			"amicopier check --config config.yaml",
			"amicopier check --config config.yaml --detailed-exitcode        # exit 2 when there is a finding",
			"amicopier check --config config.yaml --only-account 222222222222 --output json",
		},
		exits: []exitDoc{
			{ExitOK, "no finding (or findings without --detailed-exitcode)"},
			{ExitError, "error: the check could not be made"},
			{ExitDrift, "findings, with --detailed-exitcode"},
			{ExitPartial, "incomplete: some checks could not be made (see the notes)"},
		},
		epilogue: "The table fits the terminal's width (on a terminal), else $COLUMNS, else 100 columns: account\n" +
			"names are clipped and each problem and its fix wrap, under its row when the table is narrow;\n" +
			"--wide prints one line per finding.\n\n" + awsHelp + "\n\n" + envHelp(),
	}, env)
	cfgPath := configFlag(fs)
	output := outputFlag(fs)
	detailed := fs.Bool("detailed-exitcode", false, "exit 2 when the check finds a problem, 0 when it finds none")
	var scope scopeFlags
	scope.register(fs)
	var view viewFlags
	view.register(fs, false)
	var lf logFlags
	lf.register(fs, "warn")
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	if err := errors.Join(scope.check(), checkOutput(*output)); err != nil {
		fmt.Fprintf(env.Stderr, "amicopier check: %v\n", err)
		return ExitUsage
	}
	log, err := lf.logger(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "amicopier check: %v\n", err)
		return ExitUsage
	}
	cfg, err := loadConfig(ctx, *cfgPath, env)
	if err != nil {
		return fail(env, "check", err)
	}
	format := reportFormat(*output, cfg)
	settings, err := engineconfig.Settings(cfg)
	if err != nil {
		return fail(env, "check", err)
	}
	sess, err := awsapi.NewSession(ctx, cfg, awsapi.Options{Logger: log})
	if err == nil {
		err = sess.CheckCredentials(ctx, env.Getenv)
	}
	if err != nil {
		return fail(env, "check", err)
	}
	runID := reconcile.NewRunID(time.Now())
	conn := sess.Connect(runID, awsapi.ConnectOptions{ReadOnly: true, Shards: scope.shard.Count})
	// The check keeps no state: an in-memory store satisfies the engine.
	eng, err := reconcile.New(reconcile.Options{
		Settings: settings, Connect: conn.ConnectFunc(), Store: state.NewMemory(), Logger: log,
		TargetSources: conn.TargetSources(),
	})
	if err != nil {
		return fail(env, "check", err)
	}
	rep, err := eng.Check(ctx, reconcile.CheckRequest{
		Trigger: "cli", RunID: runID, OnlyImages: scope.images.ids, OnlyAccounts: scope.accounts.ids, Shard: scope.shard.Shard,
	})
	if err != nil {
		return fail(env, "check", err)
	}
	if err := report.WriteCheck(env.Stdout, rep, format, view.options(env)); err != nil {
		return fail(env, "check", err)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(env.Stderr, "amicopier check: note: %s\n", n)
	}
	return checkExit(rep, *detailed)
}

// checkExit is the check's exit code: partial beats findings.
func checkExit(rep *report.CheckReport, detailed bool) int {
	code := ExitOK
	if detailed && len(rep.Findings) > 0 {
		code = ExitDrift
	}
	return statusExit(rep.Status, code)
}
