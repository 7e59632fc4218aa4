package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
)

func runPlan(ctx context.Context, args []string, env Env) int {
	fs := newFlags("plan", usageDoc{
		description: "Dry run: discover the source AMIs, resolve their targets against the organisation, observe\n" +
			"every target account's copies and print the drift report, with the copies whose deprecation\n" +
			"time differs from their source's (Deprecation). Makes no mutating AWS call (no share, copy,\n" +
			"tag, deprecation, deregister, parameter write or event: the AWS clients refuse them) and\n" +
			"writes nothing to the state store. --include-ok lists every pair with its copy (id, state, KMS\n" +
			"key, deprecation time): the inventory. With publish.ssm the report shows each SSM parameter's\n" +
			"drift (missing, stale, pointing elsewhere, foreign...) and what run would write; with\n" +
			"events.bus, the events run would send.",
		examples: []string{
			"amicopier plan --config config.yaml",
			"amicopier plan --config config.yaml --include-ok --output json > inventory.json",
			"amicopier plan --config config.yaml --detailed-exitcode      # exit 2 when there is drift",
			"amicopier plan --config config.yaml --output html > drift.html",
			"amicopier plan --config config.yaml --output json --only-ami ami-0123456789abcdef0",
		},
		exits: []exitDoc{
			{ExitOK, "no drift (or drift without --detailed-exitcode)"},
			{ExitError, "error: the plan could not be made (configuration, state store, AWS, a scope naming nothing)"},
			{ExitDrift, "drift, with --detailed-exitcode"},
			{ExitPartial, "the report is incomplete: some accounts unreachable (see the unreachable items)"},
		},
		epilogue: widthHelp + "\n\n" + awsHelp + "\n\n" + envHelp(),
	}, env)
	cfgPath := configFlag(fs)
	output := outputFlag(fs)
	detailed := fs.Bool("detailed-exitcode", false, "exit 2 when the report shows drift, 0 when it shows none")
	var view viewFlags
	view.register(fs, true)
	var scope scopeFlags
	scope.register(fs)
	var lf logFlags
	lf.register(fs, "warn")
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	if err := errors.Join(scope.check(), checkOutput(*output)); err != nil {
		fmt.Fprintf(env.Stderr, "amicopier plan: %v\n", err)
		return ExitUsage
	}
	log, err := lf.logger(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "amicopier plan: %v\n", err)
		return ExitUsage
	}
	cfg, err := loadConfig(ctx, *cfgPath, env)
	if err != nil {
		return fail(env, "plan", err)
	}
	format := reportFormat(*output, cfg)
	progress := newProgress(env, log, lf.quiet)
	rec, err := newReconciler(ctx, cfg, env, log, true, scope.shard.Shard, progress)
	if err != nil {
		if rec != nil {
			rec.close(log)
		}
		return fail(env, "plan", err)
	}
	defer rec.close(log)
	res, err := rec.engine.Run(ctx, reconcile.Request{
		Mode: reconcile.ModePlan, Trigger: "cli", RunID: rec.runID,
		OnlyImages: scope.images.ids, OnlyAccounts: scope.accounts.ids, Shard: scope.shard.Shard,
		IncludeOK: view.includeOK || format == report.FormatHTML, RequireScopeMatch: true,
	})
	progress.Done()
	if in, stopped := interruption(ctx); stopped {
		// Half an observation would read as less drift than there is.
		fmt.Fprintf(env.Stderr, "amicopier plan: %v: no report (it would be incomplete).\n", in)
		return in.ExitCode()
	}
	if err != nil {
		return failRun(env, "plan", err)
	}
	if err := report.Write(env.Stdout, res.Report, format, view.options(env)); err != nil {
		return fail(env, "plan", err)
	}
	warnUnmatched(env, "plan", res.Report)
	warnErrors(env, "plan", res.Summary)
	code := ExitOK
	if *detailed && res.Report.Drift() > 0 {
		code = ExitDrift
	}
	return statusExit(res.Summary.Status, code)
}
