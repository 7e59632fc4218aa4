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
//   - An SNS event carrying AMIgo's message (README, "Events the function accepts"). It reconciles that
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
	"github.com/amicopier/amicopier/internal/engineconfig"
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
	// Rejected names the first targets the run refused to serve (not
	// ACTIVE members, excluded, malformed entries of an event), with the
	// reason; RejectedCount counts them all.
	Rejected      []RejectedTarget `json:"rejected,omitempty"`
	RejectedCount int              `json:"rejected_count,omitempty"`
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

func (d Deps) withDefaults() Deps {
	if d.Getenv == nil {
		d.Getenv = os.Getenv
	}
	if d.Stdout == nil {
		d.Stdout = os.Stdout
	}
	if d.Clock == nil {
		d.Clock = reconcile.SystemClock{}
	}
	return d
}

// New reads the configuration and opens the state store and AWS: the
// cold start. Its error is a *ColdStartError listing what is wrong (every
// problem of a configuration that does not validate).
func New(ctx context.Context, d Deps) (*Handler, error) {
	d = d.withDefaults()
	if d.OpenStore == nil {
		return nil, errors.New("lambda handler: no state store opener")
	}
	out := &lockedWriter{w: d.Stdout}
	log := newLogger(out, d.Getenv)
	cfg := d.Config
	if cfg == nil {
		var err error
		if cfg, err = LoadConfig(d.Getenv); err != nil {
			cs := coldStartError(err)
			if cs.Type == ErrorTypeInit {
				// Unreadable rather than invalid: still the
				// configuration's fault.
				cs.Type = ErrorTypeConfig
			}
			return nil, cs
		}
	}
	settings, err := engineconfig.Settings(cfg)
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
// the cold start fails. Then it logs why as one JSON line listing every
// problem, reports the error to the Runtime API's init error endpoint (so
// the Lambda console shows it), and returns it: the caller exits.
func Start(ctx context.Context, d Deps) error {
	d = d.withDefaults()
	h, err := New(ctx, d)
	if err != nil {
		cs := coldStartError(err)
		log := newLogger(d.Stdout, d.Getenv)
		log.Error("the function cannot start", "error_type", cs.Type, "problem_count", len(cs.Problems), "problems", cs.Problems)
		if rerr := ReportInitError(ctx, nil, d.Getenv("AWS_LAMBDA_RUNTIME_API"), cs); rerr != nil {
			log.Error("the init error could not be reported to the Lambda Runtime API", "error", rerr)
		}
		return cs
	}
	// The handler takes the raw payload (lambda.Handler), so a payload
	// that is not JSON reaches ParseEvent, which names what is wrong,
	// instead of failing in the library's decoder.
	lambda.StartWithOptions(h, lambda.WithContext(ctx))
	return nil
}

// MalformedEventError is the invocation error of a payload the handler
// refuses; its Err (a *FieldError) names the offending field. Lambda
// reports it with errorType "MalformedEventError".
type MalformedEventError struct{ Err error }

func (e *MalformedEventError) Error() string { return "malformed event: " + e.Err.Error() }

func (e *MalformedEventError) Unwrap() error { return e.Err }

// Invoke implements lambda.Handler: the payload as Lambda sent it, the
// result as JSON.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	res, err := h.Handle(ctx, payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// Handle serves one invocation of the raw payload.
func (h *Handler) Handle(ctx context.Context, raw []byte) (*Result, error) {
	log := h.log
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		log = log.With("aws_request_id", lc.AwsRequestID)
	}
	ev, err := ParseEvent(raw)
	if err != nil {
		attrs := []any{"error", err.Error(), "payload_bytes", len(raw)}
		var fe *FieldError
		if errors.As(err, &fe) {
			attrs = append(attrs, "field", fe.Field)
		}
		log.Error("malformed event; nothing done", attrs...)
		return nil, &MalformedEventError{Err: err}
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
	started := h.clock.Now()
	req.RunID = reconcile.NewRunID(time.Now())
	// The engine adds run_id to its own lines: give it the logger
	// without, so no line carries the key twice.
	engLog := log.With("event", string(ev.Kind))
	log = engLog.With("run_id", req.RunID)
	for _, bad := range ev.Invalid {
		log.Warn("event names an invalid target", "token", bad.Token, "origin", bad.Origin, "reason", bad.Reason)
	}
	failed := func(err error) (*Result, error) {
		log.Error("run failed", "error", err.Error())
		if rerr := reconcile.RecordFailure(ctx, h.store, h.settings, reconcile.Failure{Request: req, Started: started, Finished: h.clock.Now(), Err: err}); rerr != nil {
			log.Warn("the failed run could not be recorded", "error", rerr.Error())
		}
		return nil, err
	}
	conn, sources, err := h.backend(ctx, req.RunID, req.Mode == reconcile.ModePlan, req.Shard.Count)
	if err != nil {
		return failed(fmt.Errorf("connect to AWS: %w", err))
	}
	if extra != nil {
		sources = append(sources, extra)
	}
	eng, err := reconcile.New(reconcile.Options{
		Settings: h.settings, Store: h.store, Clock: h.clock, Logger: engLog, TargetSources: sources,
		Connect: func(context.Context, string) (cloud.Connector, error) { return conn, nil },
	})
	if err != nil {
		return nil, err
	}
	res, err := eng.Run(ctx, req)
	if held, ok := reconcile.LeaseHeld(err); ok {
		reason := held.String() + "; that run, or the next scheduled one, does the work"
		log.Warn("another run is working; nothing changed", "holder", held.Run, "reason", held.String())
		return &Result{Event: ev.Kind, Outcome: OutcomeLeaseHeld, Reason: reason}, nil
	}
	if err != nil {
		return failed(err)
	}
	if err := WriteMetrics(h.out, res, time.Now()); err != nil {
		log.Warn("write metrics", "error", err)
	}
	outcome := OutcomeReconciled
	if req.Mode == reconcile.ModePlan {
		outcome = OutcomePlanned
	}
	out := &Result{Event: ev.Kind, Outcome: outcome, Summary: res.Summary}
	out.Rejected, out.RejectedCount = rejectedTargets(res.Report, maxNamedRejected)
	if out.RejectedCount > 0 {
		log.Warn("targets rejected", "rejected_count", out.RejectedCount, "rejected", out.Rejected)
	}
	return out, nil
}

// maxNamedRejected is how many rejected targets a result and its log
// line name; the rest are counted.
const maxNamedRejected = 10

// RejectedTarget is a target a run refused to serve, and why.
type RejectedTarget struct {
	Image  string `json:"image"`
	Target string `json:"target"`
	Region string `json:"region"`
	Reason string `json:"reason"`
}

// rejectedTargets names the first limit rejected targets of a report
// (in report order) and counts them all.
func rejectedTargets(r *report.Report, limit int) ([]RejectedTarget, int) {
	var out []RejectedTarget
	n := 0
	for _, it := range r.Items {
		if it.Category != report.RejectedTarget {
			continue
		}
		n++
		if len(out) < limit {
			out = append(out, RejectedTarget{Image: it.SourceImage, Target: it.Account, Region: it.Region, Reason: it.Reason})
		}
	}
	return out, n
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
