package state

import (
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The errors Faulty injects are built from the SDK's own types, in the
// chain the DynamoDB client returns for each failure (the adapter's tests
// capture the real ones from dynalite behind a proxy and compare): an
// *smithy.OperationError naming the API operation, around the retryer's
// *retry.MaxAttemptsError when attempts ran out, around the HTTP response
// error with its status and request id, around DynamoDB's exception.

// The messages DynamoDB sends with each exception ("Error handling with
// DynamoDB", Amazon DynamoDB Developer Guide).
const (
	throughputMessage   = "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."
	throttlingMessage   = "Rate of requests exceeds the allowed throughput."
	tableMissingMessage = "Requested resource not found"
)

// httpAnswer is the HTTP part of a DynamoDB error answer.
func httpAnswer(status int, id string, err error) error {
	return &awshttp.ResponseError{
		RequestID: id,
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: http.Header{}}},
			Err:      err,
		},
	}
}

// throttledError is what the client returns when every one of attempts
// was throttled (HTTP 400).
func throttledError(operation string, kind FaultKind, attempts int, id string) error {
	var exc error = &types.ProvisionedThroughputExceededException{Message: aws.String(throughputMessage)}
	if kind == FaultThrottling {
		exc = &types.ThrottlingException{Message: aws.String(throttlingMessage)}
	}
	return &smithy.OperationError{
		ServiceID: "DynamoDB", OperationName: operation,
		Err: &retry.MaxAttemptsError{Attempt: attempts, Err: httpAnswer(400, id, exc)},
	}
}

// timeoutError is what the client returns when the caller's deadline
// passes while it waits for the answer: no status, no request id, the
// request cancelled.
func timeoutError(operation string) error {
	return &smithy.OperationError{
		ServiceID: "DynamoDB", OperationName: operation,
		Err: httpAnswer(0, "", &smithy.CanceledError{Err: context.DeadlineExceeded}),
	}
}

// tableMissingError is DynamoDB's answer about a table that does not
// exist (HTTP 400, never retried).
func tableMissingError(operation, id string) error {
	return &smithy.OperationError{
		ServiceID: "DynamoDB", OperationName: operation,
		Err: httpAnswer(400, id, &types.ResourceNotFoundException{Message: aws.String(tableMissingMessage)}),
	}
}
