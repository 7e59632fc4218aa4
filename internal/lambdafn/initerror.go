package lambdafn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/config"
)

// newLogger is the function's logger: JSON lines on out at the level the
// environment asks for. A time.Duration attribute is written as
// milliseconds in a field named after it ("duration" becomes
// "duration_ms"): log/slog's JSON handler would print integer
// nanoseconds under the bare name.
func newLogger(out io.Writer, getenv func(string) string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{
		Level: logLevel(getenv),
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				return slog.Float64(a.Key+"_ms", durationMS(a.Value.Duration()))
			}
			return a
		},
	}))
}

// durationMS is d in milliseconds, to the microsecond.
func durationMS(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// Init error types reported to the Lambda Runtime API, and shown by the
// Lambda console as the function's error.
const (
	// ErrorTypeConfig: the configuration is not valid.
	ErrorTypeConfig = "InvalidConfiguration"
	// ErrorTypeInit: anything else that stopped the cold start (the
	// state store or the AWS session could not be opened).
	ErrorTypeInit = "InitializationFailed"
)

// ColdStartError is why the function could not start: its type (one of
// the ErrorType constants) and every problem, one per entry.
type ColdStartError struct {
	Type     string
	Problems []string
	Err      error
}

func (e *ColdStartError) Error() string {
	return fmt.Sprintf("the function cannot start (%s): %s", e.Type, strings.Join(e.Problems, "; "))
}

func (e *ColdStartError) Unwrap() error { return e.Err }

// coldStartError classifies a failed cold start: a configuration that
// does not validate lists each of its problems (config.ValidationError
// prints one a line).
func coldStartError(err error) *ColdStartError {
	var cs *ColdStartError
	if errors.As(err, &cs) {
		return cs
	}
	var verr *config.ValidationError
	if errors.As(err, &verr) {
		var problems []string
		for _, line := range strings.Split(verr.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				problems = append(problems, line)
			}
		}
		return &ColdStartError{Type: ErrorTypeConfig, Problems: problems, Err: err}
	}
	return &ColdStartError{Type: ErrorTypeInit, Problems: []string{err.Error()}, Err: err}
}

// runtimeAPIVersion is the version of the Lambda Runtime API in its paths.
const runtimeAPIVersion = "2018-06-01"

// initErrorTimeout bounds the report of an init error: the process exits
// after it either way.
const initErrorTimeout = 5 * time.Second

// ReportInitError tells the Lambda Runtime API why the function cannot
// start: POST /runtime/init/error with the error in Lambda's standard
// error shape ({"errorMessage", "errorType", "stackTrace"}) and the
// Lambda-Runtime-Function-Error-Type header
// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-initerror).
// Lambda then fails the initialisation with that error, which the
// console and the invocation's response show; the runtime must exit
// afterwards. aws-lambda-go (v1.55.1, the latest) has no call for this:
// it only reports errors of invocations. runtimeAPI is
// AWS_LAMBDA_RUNTIME_API (host:port); client nil means a default one.
func ReportInitError(ctx context.Context, client *http.Client, runtimeAPI string, cs *ColdStartError) error {
	if runtimeAPI == "" {
		return errors.New("report init error: AWS_LAMBDA_RUNTIME_API is not set")
	}
	if client == nil {
		client = &http.Client{Timeout: initErrorTimeout}
	}
	body, err := json.Marshal(struct {
		Message    string   `json:"errorMessage"`
		Type       string   `json:"errorType"`
		StackTrace []string `json:"stackTrace"`
	}{cs.Error(), cs.Type, []string{}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, initErrorTimeout)
	defer cancel()
	url := "http://" + runtimeAPI + "/" + runtimeAPIVersion + "/runtime/init/error"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("report init error to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/vnd.aws.lambda.error+json")
	req.Header.Set("Lambda-Runtime-Function-Error-Type", cs.Type)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("report init error to %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("report init error to %s: status %s, want 202 Accepted", url, resp.Status)
	}
	return nil
}
