// Package lambdafn is amicopier's AWS Lambda entrypoint: the same binary
// as the CLI serves this handler when it runs under the Lambda runtime.
//
// # Events
//
// The handler takes the raw payload and recognises three kinds:
//
//   - A scheduled event: "detail-type": "Scheduled Event". EventBridge
//     schedule rules send it as is; for EventBridge Scheduler set the
//     schedule's input to {"detail-type": "Scheduled Event"}. It runs a
//     full reconcile, or a dry run with "detail": {"mode": "plan"}.
//   - An SNS event carrying AMIgo's message (SPEC 6.3). It reconciles that
//     one AMI for the message's targetAccounts, which are checked against
//     the organisation like any other target; entries that are no target
//     at all are reported as rejected targets.
//   - An EventBridge "EC2 AMI State Change" event. State "available"
//     reconciles that one image; other states are logged and ignored.
//
// The payload {"shard": "I/N"} (optionally with "mode": "plan") is one
// shard of a sharded scheduled run, as the deployment's Step Functions
// map sends it: a scheduled reconcile of that shard of the accounts.
//
// The payload {"mode": "check"} (optionally with "shard": "I/N") runs the
// preflight check: read-only, its findings logged one per line and sent
// as metrics (CheckFindings, CheckFindings.<kind>, Trigger "check").
//
// A malformed payload is refused before anything is done, with an error
// naming the offending field. Events about an image outside the
// configured source account or Regions are ignored with a logged reason.
//
// # Configuration
//
// AMICOPIER_CONFIG_YAML holds the whole config.yaml inline (handy with
// CloudFormation); otherwise AMICOPIER_CONFIG names a file; otherwise
// config.yaml next to the function's code (LAMBDA_TASK_ROOT, else the
// executable's directory) is read. The AMICOPIER_* overrides of package
// config apply on top. The configuration is read once, at cold start: a
// bad one fails the function's initialisation with every problem listed.
//
// # Output
//
// Logs are JSON (log/slog) on stdout, at AMICOPIER_LOG_LEVEL, else
// AWS_LAMBDA_LOG_LEVEL, else info. Each run prints one CloudWatch
// Embedded Metric Format line (namespace "amicopier"), and the handler
// returns a Result holding the run summary. The run's time budget ends at
// the invocation's deadline, less limits.deadline_margin: the engine
// stops starting work then, records what it did, and the next run goes
// on. Calls still in flight are cancelled 25 s before the deadline (the
// reserve in which the run record is written and the lease released), so
// a slow or retried call cannot use up the time those writes need.
package lambdafn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/amicopier/amicopier/internal/awsapi"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// Environment variables the function reads (besides config's overrides).
const (
	EnvConfigYAML = "AMICOPIER_CONFIG_YAML"
	EnvConfigPath = "AMICOPIER_CONFIG"
	EnvLogLevel   = "AMICOPIER_LOG_LEVEL"
)

// InLambda reports whether the process runs under the Lambda runtime.
func InLambda(getenv func(string) string) bool {
	return getenv("AWS_LAMBDA_RUNTIME_API") != "" || getenv("_LAMBDA_SERVER_PORT") != ""
}

// Backend opens the AWS side of one run: the connector (named after
// runID) and the target metadata sources that need AWS. readOnly runs
// refuse mutating calls; shards is how many runs share the source
// account's request buckets (a shard of N: N).
type Backend func(ctx context.Context, runID string, readOnly bool, shards int) (cloud.Connector, []cloud.TargetSource, error)

// AWSBackend is the production Backend: the SDK adapters of package
// awsapi over one session.
func AWSBackend(sess *awsapi.Session) Backend {
	return func(_ context.Context, runID string, readOnly bool, shards int) (cloud.Connector, []cloud.TargetSource, error) {
		conn := sess.Connect(runID, awsapi.ConnectOptions{ReadOnly: readOnly, Shards: shards})
		return conn, conn.TargetSources(), nil
	}
}

// Deps are what the handler is built from. OpenStore is required; the
// rest default to the real process and AWS.
type Deps struct {
	// Getenv reads the environment; default os.Getenv.
	Getenv func(string) string
	// Stdout receives the JSON logs and the metric lines; default
	// os.Stdout.
	Stdout io.Writer
	// OpenStore opens the configured state backend (cli.OpenStore).
	OpenStore func(ctx context.Context, cfg *config.Config) (state.Store, error)
	// Backend defaults to AWSBackend over a session built from the
	// configuration and the default credential chain.
	Backend Backend
	// Clock dates state records; default the system clock.
	Clock reconcile.Clock
	// Config, when set, is used instead of reading the environment's.
	Config *config.Config
	// Version is the build's version, logged at cold start.
	Version string
}

// Handler serves invocations. It keeps the configuration, the state
// store and the AWS session between warm invocations.
type Handler struct {
	cfg      *config.Config
	settings reconcile.Settings
	store    state.Store
	backend  Backend
	clock    reconcile.Clock
	log      *slog.Logger
	out      io.Writer
}

// Result is what an invocation returns.
type Result struct {
	Event Kind `json:"event"`
	// Outcome is "reconciled", "planned", "ignored" (an event that asks
	// for nothing), "lease_held" (another run was working) or "checked"
	// (a preflight check).
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// Summary is the run summary, when a run happened.
	Summary *report.Summary `json:"summary,omitempty"`
	// Check is the preflight check's result ({"mode": "check"}).
	Check *CheckResult `json:"check,omitempty"`
}

// Outcomes of an invocation.
const (
	OutcomeReconciled = "reconciled"
	OutcomePlanned    = "planned"
	OutcomeIgnored    = "ignored"
	OutcomeLeaseHeld  = "lease_held"
)

// lockedWriter serialises whole lines from the logger and the metrics.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// New reads the configuration and opens the state store and AWS: the
// cold start. Its error lists what is wrong.
func New(ctx context.Context, d Deps) (*Handler, error) {
	if d.Getenv == nil {
		d.Getenv = os.Getenv
	}
	if d.Stdout == nil {
		d.Stdout = os.Stdout
	}
	if d.OpenStore == nil {
		return nil, errors.New("lambda handler: no state store opener")
	}
	if d.Clock == nil {
		d.Clock = reconcile.SystemClock{}
	}
	out := &lockedWriter{w: d.Stdout}
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: logLevel(d.Getenv)}))
	cfg := d.Config
	if cfg == nil {
		var err error
		if cfg, err = LoadConfig(d.Getenv); err != nil {
			return nil, err
		}
	}
	settings, err := cfg.EngineSettings()
	if err != nil {
		return nil, fmt.Errorf("lambda handler: %w", err)
	}
	store, err := d.OpenStore(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("lambda handler: %w", err)
	}
	backend := d.Backend
	if backend == nil {
		sess, err := awsapi.NewSession(ctx, cfg, awsapi.Options{Logger: log})
		if err != nil {
			_ = store.Close()
			return nil, fmt.Errorf("lambda handler: %w", err)
		}
		backend = AWSBackend(sess)
	}
	log.Info("amicopier function ready", "version", d.Version, "source_account", cfg.Source.AccountID,
		"regions", cfg.Source.Regions, "state_backend", cfg.State.Backend)
	return &Handler{cfg: cfg, settings: settings, store: store, backend: backend, clock: d.Clock, log: log, out: out}, nil
}

// Close closes the state store.
func (h *Handler) Close() error { return h.store.Close() }

func logLevel(getenv func(string) string) slog.Level {
	for _, name := range []string{EnvLogLevel, "AWS_LAMBDA_LOG_LEVEL"} {
		var l slog.Level
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			continue
		}
		// Lambda spells levels TRACE, DEBUG, INFO, WARN, ERROR, FATAL.
		switch strings.ToUpper(v) {
		case "TRACE":
			return slog.LevelDebug
		case "FATAL":
			return slog.LevelError
		}
		if l.UnmarshalText([]byte(v)) == nil {
			return l
		}
	}
	return slog.LevelInfo
}

// LoadConfig reads the function's configuration: AMICOPIER_CONFIG_YAML
// inline, else the file AMICOPIER_CONFIG names, else config.yaml next to
// the code; then the AMICOPIER_* overrides and validation.
func LoadConfig(getenv func(string) string) (*config.Config, error) {
	if inline := getenv(EnvConfigYAML); strings.TrimSpace(inline) != "" {
		cfg, err := config.ParseWithEnv([]byte(inline), EnvConfigYAML, getenv)
		if err != nil {
			return nil, fmt.Errorf("configuration from %s: %w", EnvConfigYAML, err)
		}
		return cfg, nil
	}
	path := getenv(EnvConfigPath)
	if path == "" {
		dir := getenv("LAMBDA_TASK_ROOT")
		if dir == "" {
			exe, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("find config.yaml next to the executable (set %s or %s): %w", EnvConfigPath, EnvConfigYAML, err)
			}
			dir = filepath.Dir(exe)
		}
		path = filepath.Join(dir, "config.yaml")
	}
	cfg, err := config.LoadWithEnv(path, getenv)
	if err != nil {
		return nil, fmt.Errorf("configuration %s: %w", path, err)
	}
	return cfg, nil
}

// Start serves the handler under the Lambda runtime; it only returns when
// the cold start fails.
func Start(ctx context.Context, d Deps) error {
	h, err := New(ctx, d)
	if err != nil {
		return err
	}
	lambda.Start(h.Handle)
	return nil
}

// Handle serves one invocation.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (*Result, error) {
	log := h.log
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		log = log.With("aws_request_id", lc.AwsRequestID)
	}
	ev, err := ParseEvent(raw)
	if err != nil {
		log.Error("malformed event; nothing done", "error", err)
		return nil, fmt.Errorf("malformed event: %w", err)
	}
	if ev.Kind == KindCheck {
		return h.handleCheck(ctx, ev, log)
	}
	req, extra, reason := h.request(ev)
	if reason != "" {
		log.Info("event ignored", "event", string(ev.Kind), "image", ev.ImageID, "reason", reason)
		return &Result{Event: ev.Kind, Outcome: OutcomeIgnored, Reason: reason}, nil
	}
	ctx, cancel, err := h.runContext(ctx, &req)
	if err != nil {
		log.Error("no time to run; nothing done", "error", err)
		return nil, err
	}
	defer cancel()
	req.RunID = reconcile.NewRunID(time.Now())
	log = log.With("run_id", req.RunID, "event", string(ev.Kind))
	for _, bad := range ev.Invalid {
		log.Warn("event names an invalid target", "token", bad.Token, "origin", bad.Origin, "reason", bad.Reason)
	}
	conn, sources, err := h.backend(ctx, req.RunID, req.Mode == reconcile.ModePlan, req.Shard.Count)
	if err != nil {
		return nil, fmt.Errorf("connect to AWS: %w", err)
	}
	if extra != nil {
		sources = append(sources, extra)
	}
	eng, err := reconcile.New(reconcile.Options{
		Settings: h.settings, Store: h.store, Clock: h.clock, Logger: log, TargetSources: sources,
		Connect: func(context.Context, string) (cloud.Connector, error) { return conn, nil },
	})
	if err != nil {
		return nil, err
	}
	res, err := eng.Run(ctx, req)
	if held, ok := reconcile.LeaseHeld(err); ok {
		reason := held.Error() + "; that run, or the next scheduled one, does the work"
		log.Warn("another run is working; nothing changed", "holder", held.Holder, "reason", held.Error())
		return &Result{Event: ev.Kind, Outcome: OutcomeLeaseHeld, Reason: reason}, nil
	}
	if err != nil {
		log.Error("run failed", "error", err)
		return nil, err
	}
	if err := WriteMetrics(h.out, res, time.Now()); err != nil {
		log.Warn("write metrics", "error", err)
	}
	outcome := OutcomeReconciled
	if req.Mode == reconcile.ModePlan {
		outcome = OutcomePlanned
	}
	return &Result{Event: ev.Kind, Outcome: outcome, Summary: res.Summary}, nil
}

// DeadlineReserve is kept free at the end of an invocation for what a run
// does after its context ends: the engine writes the run record and
// releases the lease with contexts of their own (WithoutCancel), each
// bounded to 10 s, one after the other; then the metrics line and the
// result. Without the reserve, a call still in flight (the SDK retrying
// with up to awsapi.DefaultMaxBackoff between attempts) could last until Lambda
// freezes the process, and the run would leave no record and a lease
// held until it expires. 25 s covers the two bounded writes and leaves
// 5 s for the rest.
const DeadlineReserve = 25 * time.Second

// runContext bounds a run to the invocation: the returned context ends
// DeadlineReserve before the invocation's deadline, and req.Deadline is
// that same end, so the engine stops starting work
// limits.deadline_margin before the context ends: calls started by then
// have the margin to finish before they would be cancelled. An
// invocation with less time left than the reserve is refused. Without a
// deadline (tests, local runs) the context is ctx.
func (h *Handler) runContext(ctx context.Context, req *reconcile.Request) (context.Context, context.CancelFunc, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}, nil
	}
	end := deadline.Add(-DeadlineReserve)
	if left := time.Until(deadline); !time.Now().Before(end) {
		return nil, nil, fmt.Errorf("the invocation has %s left, not more than the %s kept to record a run: nothing done (raise the function's timeout)",
			left.Round(time.Millisecond), DeadlineReserve)
	}
	req.Deadline = end
	runCtx, cancel := context.WithDeadline(ctx, end)
	return runCtx, cancel, nil
}

// request turns an event into a run request, plus the target source of
// an AMIgo message's invalid entries. A non-empty reason means the event
// asks for nothing.
func (h *Handler) request(ev Event) (reconcile.Request, cloud.TargetSource, string) {
	req := reconcile.Request{Mode: ev.Mode, Trigger: string(ev.Kind), Shard: ev.Shard}
	if ev.Kind == KindSchedule {
		return req, nil, ""
	}
	if !slices.Contains(h.cfg.Source.Regions, ev.Region) {
		return req, nil, fmt.Sprintf("image %s is in %s, which is not one of source.regions %v", ev.ImageID, ev.Region, h.cfg.Source.Regions)
	}
	req.OnlyImages = []string{ev.ImageID}
	switch ev.Kind {
	case KindAMIStateChange:
		if ev.State != string(cloud.ImageAvailable) {
			return req, nil, fmt.Sprintf("image %s is %s, not available: nothing to copy yet", ev.ImageID, quote(ev.State))
		}
		if ev.Account != h.cfg.Source.AccountID {
			return req, nil, fmt.Sprintf("image %s belongs to account %s, not the source account %s", ev.ImageID, ev.Account, h.cfg.Source.AccountID)
		}
	case KindSNS:
		req.ExtraTargets = ev.Targets
		// The message names accounts: reconcile the image for those
		// only. OU or organisation-wide targets make the image's whole
		// target set the scope.
		var accounts []string
		for _, t := range ev.Targets {
			if t.Kind != cloud.TargetAccount {
				accounts = nil
				break
			}
			accounts = append(accounts, t.ID)
		}
		req.OnlyAccounts = accounts
		if len(ev.Invalid) > 0 {
			return req, invalidTargets{image: ev.ImageID, invalid: ev.Invalid}, ""
		}
	}
	return req, nil, ""
}

// invalidTargets reports the entries of an event that are no target at
// all, so the run lists them as rejected targets of the image.
type invalidTargets struct {
	image   string
	invalid []cloud.InvalidTarget
}

func (s invalidTargets) Targets(_ context.Context, img *cloud.Image) (cloud.TargetSpec, error) {
	if img.ID != s.image {
		return cloud.TargetSpec{}, nil
	}
	return cloud.TargetSpec{Invalid: slices.Clone(s.invalid)}, nil
}
