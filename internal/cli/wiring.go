package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/engineconfig"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// scopeFlags are --only-ami and --only-account.
type scopeFlags struct {
	images, accounts listFlag
	shard            shardFlag // --shard I/N (shard.go)
}

func (s *scopeFlags) register(fs *flag.FlagSet) {
	s.images = listFlag{name: "only-ami", what: "AMI id"}
	s.accounts = listFlag{name: "only-account", what: "account id"}
	fs.Var(&s.images, "only-ami", "reconcile only the source AMI with this `ID` (ami-...); repeat or separate with commas for several.\n"+
		"The organisation is then read only as far as their targets name it (each account looked up,\n"+
		"each OU listed), unless a target is * (or with --include-ok or --output html, which show every OU)")
	fs.Var(&s.accounts, "only-account", "reconcile only the target account with this 12-digit `ID`; repeat or separate with commas for several")
	fs.Var(&s.shard, "shard", "reconcile only shard I of N of the target accounts (`I/N`, e.g. 2/8); N such runs in parallel cover\nthe organisation")
}

// check validates the scope values; they end up in AWS filters, so a
// typo must fail here, naming the value, rather than match nothing.
func (s *scopeFlags) check() error {
	var errs []error
	for _, id := range s.images.ids {
		if !cloud.IsImageID(id) {
			errs = append(errs, fmt.Errorf("--only-ami %q: not an AMI id (ami- and 8 or 17 hexadecimal digits)", id))
		}
	}
	for _, id := range s.accounts.ids {
		if !cloud.IsAccountID(id) {
			errs = append(errs, fmt.Errorf("--only-account %q: not a 12-digit AWS account id", id))
		}
	}
	return errors.Join(errs...)
}

// outputFlag is --output: a report format, defaulting to report.format.
func outputFlag(fs *flag.FlagSet) *string {
	return fs.String("output", "", "report `FORMAT`: "+strings.Join(report.Formats, ", ")+" (default: report.format of the configuration)")
}

func checkOutput(format string) error {
	if format != "" && !slices.Contains(report.Formats, format) {
		return fmt.Errorf("--output %q: want one of %s", format, strings.Join(report.Formats, ", "))
	}
	return nil
}

// configFlag is --config.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", defaultConfigPath, "the configuration `FILE`; - reads it from standard input")
}

// configStdin is the --config value that reads standard input.
const configStdin = "-"

// configName names a --config value in messages.
func configName(path string) string {
	if path == configStdin {
		return "standard input"
	}
	return path
}

// readConfig loads a configuration (load: read, override and validate
// the file it is given) so that a signal interrupts the read: a FIFO with no writer yet, or a
// terminal, can block a read for as long as it likes, and Ctrl-C must
// still stop the command. The read runs in a goroutine of its own, left
// behind when ctx ends first: a read system call on a pipe or a terminal
// cannot be cancelled, and the process exits as soon as the command
// returns.
func readConfig(ctx context.Context, path string, load func(file string) (*config.Config, error)) (*config.Config, error) {
	file := path
	if path == configStdin {
		file = "/dev/stdin"
	}
	type loaded struct {
		cfg *config.Config
		err error
	}
	done := make(chan loaded, 1)
	go func() {
		cfg, err := load(file)
		done <- loaded{cfg, err}
	}()
	select {
	case l := <-done:
		return l.cfg, l.err
	case <-ctx.Done():
		return nil, fmt.Errorf("read the configuration from %s: %w", configName(path), context.Cause(ctx))
	}
}

// loadConfig reads a configuration, applies the environment overrides
// and validates it, explaining every problem at once. Every command that
// works from a configuration file (plan, run, status, state init) loads
// it here.
func loadConfig(ctx context.Context, path string, env Env) (*config.Config, error) {
	cfg, err := readConfig(ctx, path, func(file string) (*config.Config, error) { return config.LoadWithEnv(file, env.Getenv) })
	if err != nil {
		var verr *config.ValidationError
		if errors.As(err, &verr) {
			name, check := configName(path), "amicopier validate --config "+path
			if path == configStdin {
				check = "amicopier validate --config - < FILE"
			}
			return nil, fmt.Errorf("%s is not valid (%d problem(s); `%s` explains them):\n%s", name, len(verr.Errors), check, verr.Error())
		}
		return nil, err
	}
	return cfg, nil
}

// awsHelp is the part of --help that says how plan and run reach AWS.
const awsHelp = `AWS access: credentials come from the default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
AWS_PROFILE and the shared files, SSO, web identity, container and instance roles). The home
Region is aws.region, else AWS_REGION or the profile's, else us-east-1. Target accounts are
reached through targets.role_name or targets.role_arn_template (with targets.external_id);
source.role_arn and organization.role_arn are assumed when set. aws.endpoints overrides the
service endpoints (local emulators only).`

// reconciler is everything one plan or run works with.
type reconciler struct {
	cfg *config.Config
	// settings are cfg's for the engine (and the record of a failed run).
	settings reconcile.Settings
	store    state.Store
	conn     *awsapi.Connector
	engine   *reconcile.Engine
	runID    string
	// started is when the run began, for the record of a failed one.
	started time.Time
}

// newReconciler opens the state store and AWS for one run and builds the
// engine. The run id is chosen here, so the AWS role sessions, the state
// records and the report all carry the same one. When the store opened
// but AWS could not be set up (no credentials, among others), it returns
// the reconciler without an engine along with the error: the caller
// records the failed run in that store (recordFailure) and closes it.
func newReconciler(ctx context.Context, cfg *config.Config, env Env, log *slog.Logger, readOnly bool, shard reconcile.Shard, progress reconcile.Progress) (*reconciler, error) {
	settings, err := engineconfig.Settings(cfg)
	if err != nil {
		return nil, err
	}
	// Credentials first: without them the state table would be the
	// first to fail, in the SDK chain's words.
	sess, awsErr := awsapi.NewSession(ctx, cfg, awsapi.Options{Logger: log})
	if awsErr == nil {
		awsErr = sess.CheckCredentials(ctx, env.Getenv)
	}
	open := func(ctx context.Context, cfg *config.Config) (state.Store, error) { return openStore(ctx, cfg, log) }
	if readOnly {
		open = func(ctx context.Context, cfg *config.Config) (state.Store, error) {
			return openPlanStore(ctx, cfg, log)
		}
	}
	store, err := open(ctx, cfg)
	if err != nil {
		if awsErr != nil {
			return nil, awsErr // the cause, most likely of this too
		}
		return nil, err
	}
	rec := &reconciler{cfg: cfg, settings: settings, store: store, runID: reconcile.NewRunID(time.Now()), started: time.Now()}
	if awsErr != nil {
		return rec, awsErr
	}
	rec.conn = sess.Connect(rec.runID, awsapi.ConnectOptions{ReadOnly: readOnly, Shards: shard.Count})
	rec.engine, err = reconcile.New(reconcile.Options{
		Settings: settings, Connect: rec.conn.ConnectFunc(), Store: store, Logger: log,
		TargetSources: rec.conn.TargetSources(), Progress: progress,
	})
	if err != nil {
		return rec, err
	}
	return rec, nil
}

// recordFailure records a run that failed outright in the state store,
// so `status` lists it with its error (reconcile.RecordFailure); a
// failure to record is a warning: the run's own error is what the user
// must see.
func (r *reconciler) recordFailure(ctx context.Context, req reconcile.Request, runErr error, env Env, cmd string) {
	req.RunID = r.runID
	err := reconcile.RecordFailure(ctx, r.store, r.settings, reconcile.Failure{Request: req, Started: r.started, Finished: time.Now(), Err: runErr})
	if err != nil {
		fmt.Fprintf(env.Stderr, "amicopier %s: warning: %v\n", cmd, err)
	}
}

func (r *reconciler) close(log *slog.Logger) {
	if err := r.store.Close(); err != nil {
		log.Warn("close the state store", "error", err)
	}
}

// reportFormat is --output, else the configuration's report.format.
func reportFormat(flagValue string, cfg *config.Config) string {
	if flagValue != "" {
		return flagValue
	}
	return cfg.Report.Format
}

// failRun reports a run that could not do its job; a scope that names
// nothing gets one line per value, in the flags' words.
func failRun(env Env, cmd string, err error) int {
	var scope *reconcile.ScopeError
	if !errors.As(err, &scope) {
		return fail(env, cmd, err)
	}
	for _, v := range scope.Unmatched.Images {
		fmt.Fprintf(env.Stderr, "amicopier %s: --only-ami %s matches no source AMI: %s\n", cmd, v.Value, v.Reason)
	}
	for _, v := range scope.Unmatched.Accounts {
		fmt.Fprintf(env.Stderr, "amicopier %s: --only-account %s matches no target account: %s\n", cmd, v.Value, v.Reason)
	}
	fmt.Fprintf(env.Stderr, "amicopier %s: nothing was observed or changed; check the ids ('amicopier plan' without them lists every pair).\n", cmd)
	return ExitError
}

// warnUnmatched says loudly, on stderr, that the source filters matched
// no image: the run is not wrong (an organisation may have no golden AMI
// yet, or have retired them all, and a scheduled job must not fail for
// it), but a typo in source.filters looks just like that.
func warnUnmatched(env Env, cmd string, rep *report.Report) {
	if rep.Unmatched != nil && rep.Unmatched.Filters != "" {
		fmt.Fprintf(env.Stderr, "amicopier %s: warning: no source AMI at all: %s. Check source.filters and source.regions "+
			"if that is not expected.\n", cmd, rep.Unmatched.Filters)
	}
}

// warnErrors repeats a run's errors on stderr, where they are seen even
// when stdout goes to a file or a pipe.
func warnErrors(env Env, cmd string, sum *report.Summary) {
	for _, e := range sum.Errors {
		fmt.Fprintf(env.Stderr, "amicopier %s: warning: %s\n", cmd, e)
	}
}

// statusExit maps a run status to an exit code; ok is the code for a
// complete run.
func statusExit(status string, ok int) int {
	switch status {
	case report.StatusPartial:
		return ExitPartial
	case report.StatusFailed:
		return ExitError
	}
	return ok
}
