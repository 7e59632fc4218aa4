package awsapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/amicopier/amicopier/internal/awsapi/noanswer"
	"github.com/amicopier/amicopier/internal/cloud"
)

// apiError turns an SDK error into the engine's vocabulary: a
// *cloud.APIError with the AWS error code when AWS answered, so that
// package cloud classifies it; context errors and transport failures
// the SDK gave up on are wrapped as they are (ClassUnknown). The
// message is AWS's, which names resources but never credentials.
func apiError(op string, err error) error {
	if err == nil {
		return nil
	}
	var ro errReadOnly
	if errors.As(err, &ro) {
		return fmt.Errorf("%s: %w", op, ro)
	}
	if na := noAnswer(op, err); na != nil {
		// Before the context check: a timed-out attempt is also a
		// context.DeadlineExceeded, but nobody cancelled anything.
		return na
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var already *cloud.APIError
	if errors.As(err, &already) {
		return already
	}
	status := 0
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) {
		status = resp.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, msg := ae.ErrorCode(), ae.ErrorMessage()
		if code == "" || code == "UnknownError" {
			code = statusCode(status, code)
		}
		return &cloud.APIError{Op: op, Code: code, Message: withRequestID(msg, err)}
	}
	if status != 0 {
		// AWS (or a proxy in front of it) answered without an error
		// document the SDK understood.
		return &cloud.APIError{Op: op, Code: statusCode(status, ""), Message: withRequestID(fmt.Sprintf("HTTP %d: %v", status, err), err)}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// NoAnswerError is a call AWS never answered: the endpoint could not be
// reached or every attempt ran out of time (Timeouts). It names the
// endpoint, the service and the operation, and unwraps to the SDK's
// error.
type NoAnswerError struct {
	Op, Service, Endpoint string
	// Attempts is how many attempts were made; 0 when unknown.
	Attempts int
	// Reason is the transport's last word ("timeout awaiting response
	// headers", "connection refused").
	Reason string
	err    error
}

func (e *NoAnswerError) Error() string {
	tries := ""
	if e.Attempts > 0 {
		tries = fmt.Sprintf(" in %d attempt(s)", e.Attempts)
	}
	return fmt.Sprintf("%s: no answer from %s at %s%s: %s", e.Op, e.Service, e.Endpoint, tries, e.Reason)
}

func (e *NoAnswerError) Unwrap() error { return e.err }

// noAnswer recognises a transport failure (the SDK could not send the
// request or got no answer), nil for anything else.
func noAnswer(op string, err error) *NoAnswerError {
	f, ok := noanswer.Of(err)
	if !ok {
		return nil
	}
	return &NoAnswerError{Op: cmp.Or(op, f.Operation), Service: f.Service, Endpoint: f.Endpoint, Attempts: f.Attempts, Reason: f.Reason, err: err}
}

// statusCode names an answer that carried no error code after its HTTP
// status, using codes the classification table knows.
func statusCode(status int, fallback string) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "TooManyRequestsException"
	case status == http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case status >= 500:
		return "InternalError"
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return "AccessDenied"
	case status == http.StatusNotFound:
		return "ResourceNotFoundException"
	case fallback != "":
		return fallback
	}
	return fmt.Sprintf("HTTP%d", status)
}

// withRequestID appends AWS's request id, which AWS support asks for.
func withRequestID(msg string, err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.ServiceRequestID() != "" {
		if msg == "" {
			return "request id " + re.ServiceRequestID()
		}
		return msg + " (request id " + re.ServiceRequestID() + ")"
	}
	return msg
}
