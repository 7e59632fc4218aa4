package awsapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/pacing"
)

// Defaults of Options.
const (
	// DefaultMaxBackoff caps the wait between two attempts.
	DefaultMaxBackoff = 20 * time.Second
	// DefaultSessionDuration is how long assumed-role credentials live;
	// one hour is the default maximum of an IAM role, and the cache
	// refreshes them before they expire.
	DefaultSessionDuration = time.Hour
	// refreshWindow is how long before expiry credentials are renewed.
	refreshWindow = 5 * time.Minute
)

// Options tune a Session. The zero value is production behaviour.
type Options struct {
	// Logger receives the SDK's own warnings; default slog.Default().
	// Credentials never reach it: the SDK's request and response logging
	// stays off.
	Logger *slog.Logger
	// HTTPClient replaces the HTTP client built from Timeouts (tests).
	HTTPClient *http.Client
	// Timeouts bound each attempt of a call; zero fields mean
	// DefaultTimeouts.
	Timeouts Timeouts
	// MaxAttempts per call, the first attempt included; default
	// limits.call_retries + 1.
	MaxAttempts int
	// MaxBackoff caps the wait between attempts; default
	// DefaultMaxBackoff. Tests set it to a millisecond.
	MaxBackoff time.Duration
	// Rates size the client-side token buckets (per account, Region and
	// API); the zero value means the configuration's limits.describe_*,
	// limits.mutating_* and limits.assume_role_rate.
	Rates pacing.Rates
	// SessionDuration of assumed roles; default DefaultSessionDuration.
	SessionDuration time.Duration
}

// Session is the AWS access of a process: the resolved base credentials
// and Region, and the configuration that names roles and endpoints. It
// makes no call by itself; Connect starts a run.
type Session struct {
	cfg  *config.Config
	base aws.Config
	opt  Options
	log  *slog.Logger
}

// NewSession resolves the default credential chain and the home Region.
// It reads the environment and the shared AWS files but calls no AWS API,
// so a missing or wrong credential shows up on the first call, as an
// access-denied error naming the operation.
func NewSession(ctx context.Context, cfg *config.Config, o Options) (*Session, error) {
	if cfg == nil {
		return nil, errors.New("aws session: no configuration")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = cfg.Limits.CallRetries + 1
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Rates == (pacing.Rates{}) {
		o.Rates = cfg.Limits.PaceRates()
	}
	if o.SessionDuration <= 0 {
		o.SessionDuration = DefaultSessionDuration
	}
	if err := o.Rates.Check(); err != nil {
		return nil, fmt.Errorf("aws session: %w", err)
	}
	load := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer { return newRetryer(o) }),
		awsconfig.WithLogger(sdkLogger{log: o.Logger}),
		// No request or response logging: signed requests carry
		// session tokens, and responses of AssumeRole carry secrets.
		awsconfig.WithClientLogMode(0),
		// Our own call log names each call and its outcome, nothing
		// more (calllog.go).
		awsconfig.WithAPIOptions([]func(*middleware.Stack) error{CallLog(o.Logger)}),
	}
	if cfg.AWS.Region != "" {
		load = append(load, awsconfig.WithRegion(cfg.AWS.Region))
	}
	if o.HTTPClient != nil {
		load = append(load, awsconfig.WithHTTPClient(o.HTTPClient))
	} else {
		load = append(load, awsconfig.WithHTTPClient(NewHTTPClient(o.Timeouts)))
	}
	base, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("load AWS credentials and settings (environment, AWS_PROFILE, shared config files): %w", explainProfileError(err))
	}
	if base.Region == "" {
		base.Region = config.FallbackRegion
	}
	// Wrapped once the configuration is loaded, so that what loading
	// set up on the SDK's client (a custom CA bundle) stays.
	if base.HTTPClient == nil {
		base.HTTPClient = awshttp.NewBuildableClient()
	}
	base.HTTPClient = ownBodyClient{inner: base.HTTPClient}
	return &Session{cfg: cfg, base: base, opt: o, log: o.Logger}, nil
}

// Region is the home Region: Organizations, STS and the AMIgo table are
// called there.
func (s *Session) Region() string { return s.base.Region }

// newRetryer is the retryer of one client. Every client gets its own, so
// the SDK's per-retryer state never couples two accounts.
//
// The connector owns retries: the engine does not retry on top of the
// SDK, so whatever the engine's classification
// (cloud.ClassifyCode) calls throttled or retryable must be retried here,
// not only the codes the SDK knows (IncorrectState,
// InvalidAMIID.Unavailable, ConcurrentModificationException... answer
// HTTP 400 and the SDK alone gives up on them at once). One table,
// internal/cloud's, decides for both.
func newRetryer(o Options) aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = o.MaxAttempts
		so.MaxBackoff = o.MaxBackoff
		// The retry quota would fail calls outright once a few hundred
		// throttled attempts were seen; the token buckets per account
		// and Region already pace retries, so the quota only hurts.
		so.RateLimiter = ratelimit.None
		// First the cancelled-request check (a cancelled call is never
		// retried), then the classification table, then the SDK's own
		// checks (connection errors, 5xx statuses, its code lists).
		so.Retryables = append([]retry.IsErrorRetryable{retry.NoRetryCanceledError{}, retry.IsErrorRetryableFunc(classRetryable)}, so.Retryables...)
		so.Throttles = append([]retry.IsErrorThrottle{retry.IsErrorThrottleFunc(classThrottle)}, so.Throttles...)
	})
}

// sdkErrorClass classifies an SDK error with the engine's table; ok is
// false when AWS gave no answer to classify (a transport failure, a
// cancelled context): the SDK's own checks decide those.
func sdkErrorClass(err error) (cloud.ErrorClass, bool) {
	if err == nil {
		return cloud.ClassUnknown, false
	}
	class := cloud.ClassOf(apiError("", err))
	return class, class != cloud.ClassUnknown
}

// classRetryable retries what the engine would have retried: throttled
// and transient answers. Other answers are left to the SDK's checks
// (unknown), so a 5xx the table does not name is still retried.
func classRetryable(err error) aws.Ternary {
	switch class, ok := sdkErrorClass(err); {
	case !ok:
		return aws.UnknownTernary
	case class == cloud.ClassThrottled || class == cloud.ClassRetryable:
		return aws.TrueTernary
	}
	return aws.UnknownTernary
}

// classThrottle marks the codes the table calls throttling, so the SDK
// backs off from them as from its own throttling codes.
func classThrottle(err error) aws.Ternary {
	if class, ok := sdkErrorClass(err); ok && class == cloud.ClassThrottled {
		return aws.TrueTernary
	}
	return aws.UnknownTernary
}

// sdkLogger sends the SDK's own log lines (configuration warnings,
// deprecations) to slog. With ClientLogMode off they never include
// requests or responses.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if c == logging.Warn {
		l.log.Warn(msg, "component", "aws-sdk")
		return
	}
	l.log.Debug(msg, "component", "aws-sdk")
}
