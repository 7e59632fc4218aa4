package noanswer

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// timeoutError is a transport error that says it timed out, as net/http's
// "timeout awaiting response headers" does.
type timeoutError struct{}

func (timeoutError) Error() string { return "net/http: timeout awaiting response headers" }
func (timeoutError) Timeout() bool { return true }

// sdkError wraps a transport error as the SDK does after its attempts.
func sdkError(transport error, attempts int) error {
	send := &smithyhttp.RequestSendError{Err: &url.Error{Op: "Post", URL: "http://127.0.0.1:9/path?x=1", Err: transport}}
	var err error = send
	if attempts > 0 {
		err = &retry.MaxAttemptsError{Attempt: attempts, Err: send}
	}
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "DescribeTable", Err: err}
}

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		ok   bool
		want Failure
	}{
		{"timed out", sdkError(timeoutError{}, 4), true, Failure{Endpoint: "http://127.0.0.1:9", Service: "DynamoDB", Operation: "DescribeTable",
			Attempts: 4, Reason: "net/http: timeout awaiting response headers", Timeout: true}},
		{"refused", sdkError(errors.New("dial tcp 127.0.0.1:9: connect: connection refused"), 0), true, Failure{Endpoint: "http://127.0.0.1:9",
			Service: "DynamoDB", Operation: "DescribeTable", Reason: "dial tcp 127.0.0.1:9: connect: connection refused"}},
		{"the caller cancelled", sdkError(context.Canceled, 0), false, Failure{}},
		{"the caller's deadline", sdkError(context.DeadlineExceeded, 1), false, Failure{}},
		{"an answer", &smithy.GenericAPIError{Code: "ThrottlingException"}, false, Failure{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Of(tc.err)
			if ok != tc.ok || got != tc.want {
				t.Errorf("Of = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
