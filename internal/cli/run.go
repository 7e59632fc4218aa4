package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/pause"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
)

// leasePoll bounds one pause while waiting for another run's lease.
const leasePoll = 15 * time.Second

func runRun(ctx context.Context, args []string, env Env) int {
	fs := newFlags("run", usageDoc{
		description: "Reconcile: share the source AMIs with the target accounts that miss a copy, start the missing\n" +
			"encrypted copies (CopyImage in each target account), retry failed ones, give the copies their\n" +
			"source's deprecation time (or copy.deprecate_after's, when earlier), prune orphaned and\n" +
			"superseded copies (with prune.enabled), record progress in the state store, and print the\n" +
			"drift report and the run summary. With publish.ssm, point each target account's SSM\n" +
			"parameters at the newest available copy of their group (writing only what changes, never\n" +
			"backwards, never a parameter amicopier did not create); with events.bus, send the run's events\n" +
			"(Run Finished, Copy Available, Pair Stuck). Copies take minutes to hours; the run does not wait\n" +
			"for them unless --wait is given. One run at a time per source account: when another run holds\n" +
			"the lease, run says so and exits 0 (or waits, with --wait-lease).\n\n" +
			"A progress bar is drawn on an interactive terminal; otherwise progress goes to the log.\n" +
			"A run that fails outright (no credentials, an endpoint that does not answer) is recorded as\n" +
			"failed, with its error, for `amicopier status`. --include-ok lists every pair with its copy\n" +
			"(id, state, KMS key): the inventory.",
		examples: []string{
			"amicopier run --config config.yaml",
			"amicopier run --config config.yaml --only-account 222222222222 --wait     # one account, wait for its copies",
			"amicopier run --config config.yaml --only-ami ami-0123456789abcdef0 --output json",
			"amicopier run --config config.yaml --wait-lease 10m --time-budget 30m",
			"amicopier run --config config.yaml --shard 2/8                            # one of 8 parallel runs",
		},
		exits: []exitDoc{
			{ExitOK, "success, or another run holds the lease (nothing was changed)"},
			{ExitError, "error: the run could not do its job (configuration, state store, AWS, a scope naming nothing)"},
			{ExitPartial, "partial: some accounts unreachable, some actions failed, or with --wait some copies failed or did not finish in time"},
		},
		epilogue: widthHelp + "\n\n" + awsHelp + "\n\n" + envHelp(),
	}, env)
	cfgPath := configFlag(fs)
	output := outputFlag(fs)
	var view viewFlags
	view.register(fs, true)
	var scope scopeFlags
	scope.register(fs)
	wait := fs.Bool("wait", false, "after the run, wait until the copies it started are available, failed or deregistered (polls DescribeImages)")
	waitTimeout := fs.Duration("wait-timeout", 2*time.Hour, "with --wait, give up waiting after this `DURATION` (the copies go on; the next run sees them)")
	waitLease := fs.Duration("wait-lease", 0, "when another run holds the lease, retry for up to this `DURATION` (0: exit at once)")
	budget := fs.Duration("time-budget", 0, "stop starting new work limits.deadline_margin before this `DURATION` has passed (so it must exceed\nthe margin) and leave the rest to the next run; 0 means none (default: limits.time_budget)")
	var lf logFlags
	defaultLevel := "info"
	if env.Interactive {
		// On a terminal the bar shows the progress: only what needs
		// attention is logged (above the bar).
		defaultLevel = "warn"
	}
	lf.register(fs, defaultLevel)
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	var usageErrs []error
	usageErrs = append(usageErrs, scope.check(), checkOutput(*output))
	if *waitTimeout <= 0 {
		usageErrs = append(usageErrs, fmt.Errorf("--wait-timeout %s: must be positive", *waitTimeout))
	}
	if *waitLease < 0 {
		usageErrs = append(usageErrs, fmt.Errorf("--wait-lease %s: must not be negative", *waitLease))
	}
	budgetSet := false
	fs.Visit(func(f *flag.Flag) { budgetSet = budgetSet || f.Name == "time-budget" })
	if *budget < 0 {
		usageErrs = append(usageErrs, fmt.Errorf("--time-budget %s: must not be negative", *budget))
	}
	if err := errors.Join(usageErrs...); err != nil {
		fmt.Fprintf(env.Stderr, "amicopier run: %v\n", err)
		return ExitUsage
	}
	log, err := lf.logger(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "amicopier run: %v\n", err)
		return ExitUsage
	}
	cfg, err := loadConfig(ctx, *cfgPath, env)
	if err != nil {
		return fail(env, "run", err)
	}
	if budgetSet {
		// The engine stops starting work limits.deadline_margin before
		// the budget ends: a budget within the margin would silently
		// defer everything (validation refuses the same in the file).
		if margin := cfg.Limits.DeadlineMargin.D(); *budget > 0 && *budget <= margin {
			fmt.Fprintf(env.Stderr, "amicopier run: --time-budget %s: must exceed limits.deadline_margin (%s)\n", *budget, margin)
			return ExitUsage
		}
		cfg.Limits.TimeBudget = config.Duration(*budget)
	}
	format := reportFormat(*output, cfg)
	progress := newProgress(env, log, lf.quiet)
	req := reconcile.Request{
		Mode: reconcile.ModeRun, Trigger: "cli",
		OnlyImages: scope.images.ids, OnlyAccounts: scope.accounts.ids, Shard: scope.shard.Shard,
		IncludeOK: view.includeOK || format == report.FormatHTML, RequireScopeMatch: true,
		TrackCopies: *wait,
	}
	rec, err := newReconciler(ctx, cfg, env, log, false, scope.shard.Shard, progress)
	if err != nil {
		if rec != nil {
			rec.recordFailure(ctx, req, err, env, "run")
			rec.close(log)
		}
		return fail(env, "run", err)
	}
	defer rec.close(log)
	req.RunID = rec.runID
	res, err := runWithLease(ctx, rec, req, *waitLease, log)
	progress.Done()
	if in, stopped := interruption(ctx); stopped && err != nil {
		// Stopped while waiting for another run's lease (the engine
		// returns a stopped run's result, not an error).
		fmt.Fprintf(env.Stderr, "amicopier run: %v before the run could start: nothing was changed.\n", in)
		return in.ExitCode()
	}
	if held, ok := reconcile.LeaseHeld(err); ok {
		fmt.Fprintf(env.Stderr, "amicopier run: %v. Nothing was changed; that run, or the next one, does the work. "+
			"Pass --wait-lease DURATION to wait for it.\n", held)
		return ExitOK
	}
	if err != nil {
		var scopeErr *reconcile.ScopeError
		if !errors.As(err, &scopeErr) {
			// A scope that names nothing changed nothing and is the
			// command line's mistake, not a failed run.
			rec.recordFailure(ctx, req, err, env, "run")
		}
		return failRun(env, "run", err)
	}

	var outcomes []reconcile.CopyOutcome
	waitFailed := false
	if _, stopped := interruption(ctx); !stopped && *wait && len(res.Started) > 0 {
		started := res.Started
		if !lf.quiet {
			fmt.Fprintf(env.Stderr, "amicopier run: waiting up to %s for %d copies to finish...\n", *waitTimeout, len(started))
		}
		// Copies done out of total, as they finish: a wait can last hours.
		progress.Phase("wait", reconcile.DistinctCopies(started))
		var werr error
		outcomes, werr = reconcile.WaitForCopies(ctx, rec.conn, started, rec.settings.Concurrency,
			reconcile.WaitOptions{Timeout: *waitTimeout, Finished: progress.Step})
		progress.Done()
		if in, stopped := interruption(ctx); stopped {
			recordWaitInterrupted(ctx, rec, res, in, outcomes, log)
		} else if werr != nil {
			fmt.Fprintf(env.Stderr, "amicopier run: warning: %v\n", werr)
			waitFailed = true
		}
		for _, o := range outcomes {
			if o.State != cloud.ImageAvailable {
				waitFailed = true
			}
		}
	}
	if err := writeRun(env.Stdout, format, view.options(env), res, outcomes, *wait); err != nil {
		return fail(env, "run", err)
	}
	warnUnmatched(env, "run", res.Report)
	warnErrors(env, "run", res.Summary)
	if in, stopped := interruption(ctx); stopped {
		fmt.Fprintf(env.Stderr, "amicopier run: %v: run %s is recorded as %s; the next run goes on from there.\n", in, res.Summary.RunID, res.Summary.Status)
		return in.ExitCode()
	}
	code := statusExit(res.Summary.Status, ExitOK)
	if waitFailed && code == ExitOK {
		code = ExitPartial
	}
	return code
}

// recordWaitInterrupted records a run whose --wait a signal stopped: the
// engine recorded it when the reconcile ended, as it ended; the run as a
// whole was interrupted, so its record says so, with how far the copies
// had come. The write has a context of its own: ctx is over.
func recordWaitInterrupted(ctx context.Context, rec *reconciler, res *reconcile.Result, in *Interrupted, outcomes []reconcile.CopyOutcome, log *slog.Logger) {
	finished := 0
	for _, o := range outcomes {
		if o.State != "" && o.State != cloud.ImagePending {
			finished++
		}
	}
	line := fmt.Sprintf("%v while waiting for the %d copies it started (%d had finished); the copies go on and the next run sees them",
		in, len(res.Started), finished)
	res.Summary.Status = report.StatusInterrupted
	res.Summary.Errors = append(res.Summary.Errors, line)
	res.Summary.ErrorCount++
	if res.Record == nil {
		return // the engine could not record the run: it said so
	}
	r := *res.Record
	r.Status = report.StatusInterrupted
	r.Errors = append(slices.Clone(r.Errors), line)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := rec.store.PutRun(wctx, r); err != nil {
		log.Error("record the interrupted run", "run_id", r.ID, "error", err)
		res.Summary.Errors = append(res.Summary.Errors, fmt.Sprintf("record run %s as interrupted: %v", r.ID, err))
		res.Summary.ErrorCount++
		return
	}
	res.Record = &r
}

// runWithLease runs, and while another run holds the lease and the
// --wait-lease budget lasts, pauses until that lease should have expired
// and tries again. The last lease error is returned when waiting is over.
func runWithLease(ctx context.Context, rec *reconciler, req reconcile.Request, waitLease time.Duration, log *slog.Logger) (*reconcile.Result, error) {
	until := time.Now().Add(waitLease)
	for {
		res, err := rec.engine.Run(ctx, req)
		held, ok := reconcile.LeaseHeld(err)
		if !ok {
			return res, err
		}
		remaining := time.Until(until)
		if remaining <= 0 {
			return nil, err
		}
		// Until the lease should have expired; a stale observation (no
		// expiry) is retried at once, with fresh observations.
		wait := min(remaining, leasePoll, max(time.Until(held.Expires)+250*time.Millisecond, 250*time.Millisecond))
		log.Info("another run holds the lease; waiting", "holder", held.Run, "expires", held.Expires.UTC(), "retry_in", wait.Round(time.Millisecond))
		if pause.For(ctx, wait) != nil {
			return nil, err
		}
	}
}

// runOutput is run's JSON output.
type runOutput struct {
	Report  *report.Report          `json:"report"`
	Summary *report.Summary         `json:"summary"`
	Copies  []reconcile.CopyOutcome `json:"copies,omitempty"`
}

func writeRun(w io.Writer, format string, o report.Options, res *reconcile.Result, outcomes []reconcile.CopyOutcome, waited bool) error {
	switch format {
	case report.FormatJSON:
		return report.WriteJSON(w, runOutput{Report: res.Report, Summary: res.Summary, Copies: outcomes})
	case report.FormatHTML:
		return report.WriteHTML(w, res.Report, report.HTMLRunSummary(res.Summary))
	case report.FormatMarkdown:
		if err := report.WriteMarkdown(w, res.Report, o); err != nil {
			return err
		}
		fmt.Fprint(w, "\n### Run summary\n\n")
		if err := report.WriteSummaryMarkdown(w, res.Summary); err != nil {
			return err
		}
		if waited {
			fmt.Fprint(w, "\n### Copies\n\n| account | region | copy | source | state | reason |\n|---|---|---|---|---|---|\n")
			for _, o := range outcomes {
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", o.Account, o.Region, o.ImageID, o.SourceImageID, stateOrUnknown(o.State), o.Reason)
			}
		}
		return nil
	}
	if res.Summary.Status == report.StatusInterrupted && res.Report.Pairs == 0 {
		// Stopped before observing a pair: "0 pair(s), no drift" would
		// read as a clean organisation.
		fmt.Fprintln(w, "No drift report: the run was interrupted before it observed any pair.")
	} else if err := report.WriteTable(w, res.Report, o); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := report.WriteSummaryTable(w, res.Summary, o); err != nil {
		return err
	}
	if waited {
		fmt.Fprintf(w, "\nCopies started by this run:\n")
		for _, o := range outcomes {
			line := fmt.Sprintf("  %s in %s/%s (from %s): %s", o.ImageID, o.Account, o.Region, o.SourceImageID, stateOrUnknown(o.State))
			if o.Reason != "" {
				line += ": " + o.Reason
			}
			fmt.Fprintln(w, line)
		}
	}
	return nil
}

func stateOrUnknown(s cloud.ImageState) string {
	if s == "" {
		return "not visible yet"
	}
	return string(s)
}
