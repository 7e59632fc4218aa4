package state

import (
	"context"
	"errors"
	"fmt"

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

// apiError explains a failed DynamoDB call: which table and operation,
// and for the failures an operator can fix (missing table, unreachable
// endpoint, no credentials) what to do. The SDK error stays wrapped.
func (d *DynamoDB) apiError(op string, err error) error {
	var (
		notFound *types.ResourceNotFoundException
		send     *smithyhttp.RequestSendError
		signing  *v4.SigningError
	)
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
