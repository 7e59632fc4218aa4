package awsapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

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
