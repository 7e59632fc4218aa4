package awsapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/amicopier/amicopier/internal/cloud"
)

// The call log: every AWS call at debug level, when it ends, with its
// service, operation, account (when the client knows it), Region,
// duration, attempts and outcome; and a warning for every attempt that
// got no answer in time, naming the endpoint, so a dead endpoint is
// visible before the retries run out. Nothing of a request or an answer
// is logged beyond that: no parameters, no payloads, no headers, so no
// credentials (AssumeRole answers carry them; signed requests carry
// session tokens).

type accountKey struct{}
type attemptsKey struct{}

// withAccount names the account a client acts in, for the call log.
func withAccount(account string) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("amicopierAccount",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				return next.HandleInitialize(middleware.WithStackValue(ctx, accountKey{}, account), in)
			}), middleware.Before)
	}
}

// CallLog returns the middleware that logs calls to log (see above). It
// goes on every client, the state store's included.
func CallLog(log *slog.Logger) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		call := middleware.InitializeMiddlewareFunc("amicopierCallLog",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				attempts := new(int)
				ctx = middleware.WithStackValue(ctx, attemptsKey{}, attempts)
				start := time.Now()
				out, md, err := next.HandleInitialize(ctx, in)
				if log.Enabled(ctx, slog.LevelDebug) {
					attrs := callAttrs(ctx, in.Parameters)
					attrs = append(attrs, slog.Int64("duration_ms", time.Since(start).Milliseconds()), slog.Int("attempts", *attempts))
					attrs = append(attrs, outcomeAttrs(ctx, err)...)
					log.LogAttrs(ctx, slog.LevelDebug, "aws call", attrs...)
				}
				return out, md, err
			})
		if err := stack.Initialize.Add(call, middleware.After); err != nil {
			return err
		}
		attempt := middleware.FinalizeMiddlewareFunc("amicopierAttemptLog",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				n, _ := middleware.GetStackValue(ctx, attemptsKey{}).(*int)
				if n != nil {
					*n++
				}
				start := time.Now()
				out, md, err := next.HandleFinalize(ctx, in)
				if err != nil && ctx.Err() == nil && isTimeout(err) {
					attrs := callAttrs(ctx, nil)
					if req, ok := in.Request.(*smithyhttp.Request); ok && req.URL != nil {
						attrs = append(attrs, slog.String("endpoint", req.URL.Scheme+"://"+req.URL.Host))
					}
					if n != nil {
						attrs = append(attrs, slog.Int("attempt", *n))
					}
					attrs = append(attrs, slog.Int64("after_ms", time.Since(start).Milliseconds()), slog.String("error", err.Error()))
					log.LogAttrs(ctx, slog.LevelWarn, "no answer from AWS in time; the call is retried until its attempts run out", attrs...)
				}
				return out, md, err
			})
		return stack.Finalize.Insert(attempt, "Retry", middleware.After)
	}
}

// callAttrs names a call: service, operation, account and Region. The
// account of an AssumeRole is the role's.
func callAttrs(ctx context.Context, params any) []slog.Attr {
	attrs := []slog.Attr{
		slog.String("service", awsmiddleware.GetServiceID(ctx)),
		slog.String("operation", awsmiddleware.GetOperationName(ctx)),
	}
	account, _ := middleware.GetStackValue(ctx, accountKey{}).(string)
	if in, ok := params.(*sts.AssumeRoleInput); ok && in.RoleArn != nil {
		if a, err := arn.Parse(*in.RoleArn); err == nil {
			account = a.AccountID
		}
	}
	if account != "" {
		attrs = append(attrs, slog.String("account", account))
	}
	return append(attrs, slog.String("region", awsmiddleware.GetRegion(ctx)))
}

// outcomeAttrs says how a call ended: ok, or the error's AWS code (when
// AWS answered) and message. AWS's messages name resources, never
// credentials.
func outcomeAttrs(ctx context.Context, err error) []slog.Attr {
	if err == nil {
		return []slog.Attr{slog.String("outcome", "ok")}
	}
	outcome := "error"
	if ctx.Err() != nil {
		outcome = "cancelled"
	}
	attrs := []slog.Attr{slog.String("outcome", outcome)}
	if code := cloud.CodeOf(apiError("", err)); code != "" {
		attrs = append(attrs, slog.String("error_code", code))
	}
	msg := err.Error()
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	return append(attrs, slog.String("error", msg))
}

// isTimeout reports whether an attempt failed for want of an answer (a
// dial, TLS, response-header, read or attempt timeout).
func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var rt *awshttp.ResponseTimeoutError
	return errors.As(err, &rt) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout exceeded")
}
