package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/amicopier/amicopier/internal/awsapi/noanswer"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// ErrTableNotFound is wrapped by errors about a DynamoDB state table that
// does not exist, so callers can suggest `amicopier state init`.
var ErrTableNotFound = errors.New("DynamoDB state table not found")

// ErrEndpointUnreachable is wrapped by errors about a DynamoDB endpoint
// that could not be reached at all (refused connection, DNS, TLS).
var ErrEndpointUnreachable = errors.New("DynamoDB endpoint unreachable")

// ErrBatchUnprocessed is wrapped by the error of a batch read whose keys
// DynamoDB kept returning as unprocessed (throttling, the response size
// limit) after every retry.
var ErrBatchUnprocessed = errors.New("batch keys still unprocessed")

// tableRef names the table a store uses, for messages.
type tableRef struct {
	table, region, endpoint string
}

// endpointName names where requests go, for messages.
func (d tableRef) endpointName() string {
	if d.endpoint != "" {
		return "endpoint " + d.endpoint
	}
	return "the AWS DynamoDB endpoint of " + d.region
}

// The descriptions of the store's operations in its errors, shared by the
// adapter and Faulty, whose errors must read the same.
func opUnsettledPairs(source string) string { return "read unsettled pairs of source " + source }
func opGetPair(k PairKey) string            { return "get pair " + k.String() }
func opGetPairs(n int) string               { return fmt.Sprintf("batch get %d pairs", n) }
func opPutPair(k PairKey) string            { return "put pair " + k.String() }
func opPutRun(r Run) string                 { return fmt.Sprintf("put run %s of scope %s", r.ID, r.Scope) }
func opRecentRuns(scope string) string      { return "read runs of scope " + scope }
func opAcquireLease(scope string) string    { return "acquire lease of scope " + scope }
func opRenewLease(scope string) string      { return "renew lease of scope " + scope }
func opReleaseLease(scope string) string    { return "release lease of scope " + scope }

// unprocessedError is a batch read that left n keys unprocessed after
// retries rounds.
func (d tableRef) unprocessedError(op string, n, retries int) error {
	return fmt.Errorf("DynamoDB table %s: %s: %d keys still unprocessed after %d retries (throttled?): %w",
		d.table, op, n, retries, ErrBatchUnprocessed)
}

// apiError explains a failed DynamoDB call: which table and operation,
// and for the failures an operator can fix (missing table, unreachable
// endpoint, no credentials) what to do. The SDK error stays wrapped.
func (d tableRef) apiError(op string, err error) error {
	var (
		notFound *types.ResourceNotFoundException
		send     *smithyhttp.RequestSendError
		signing  *v4.SigningError
	)
	if f, ok := noanswer.Of(err); ok {
		// Before the context check: an attempt that timed out is also a
		// context.DeadlineExceeded, but nobody cancelled anything.
		what, reason := "cannot reach", f.Reason
		if f.Timeout {
			what = "no answer from"
		}
		if f.Attempts > 0 {
			reason = fmt.Sprintf("%s (%d attempt(s))", reason, f.Attempts)
		}
		return fmt.Errorf("%w: %s %s (table %s, %s): %s; check state.endpoint / aws.endpoints.dynamodb and the network: %w",
			ErrEndpointUnreachable, what, d.endpointName(), d.table, op, reason, err)
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("DynamoDB table %s: %s: %w", d.table, op, err)
	case errors.As(err, &notFound):
		return fmt.Errorf("%w: table %s does not exist in region %s at %s: create it with `amicopier state init --config FILE` (%s: %w)",
			ErrTableNotFound, d.table, d.region, d.endpointName(), op, err)
	case errors.As(err, &send):
		return fmt.Errorf("%w: cannot reach %s (table %s, %s): check state.endpoint / aws.endpoints.dynamodb and the network: %w",
			ErrEndpointUnreachable, d.endpointName(), d.table, op, err)
	case errors.As(err, &signing):
		return fmt.Errorf("DynamoDB table %s: %s: no usable AWS credentials (environment, shared config, or role): %w", d.table, op, err)
	}
	return fmt.Errorf("DynamoDB table %s: %s: %w", d.table, op, err)
}

// isUnknownOperation reports whether the server said it does not
// implement the operation at all, as dynalite does for UpdateTimeToLive.
func isUnknownOperation(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "UnknownOperationException"
}

// conditionFailed returns the ConditionalCheckFailedException in err, if
// that is what err is.
func conditionFailed(err error) (*types.ConditionalCheckFailedException, bool) {
	var ccf *types.ConditionalCheckFailedException
	ok := errors.As(err, &ccf)
	return ccf, ok
}
