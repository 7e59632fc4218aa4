package state

import (
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// DefaultDynamoDBMaxAttempts is how many times the DynamoDB client tries a
// request when neither DynamoDBOptions.MaxAttempts nor AWS_MAX_ATTEMPTS
// says: the SDK's own default for DynamoDB (one attempt more than for
// other services).
const DefaultDynamoDBMaxAttempts = 4

// dynamoDBBaseDelay is the SDK's base backoff for DynamoDB's retryable
// errors other than throttling, which always backs off from 1 s.
const dynamoDBBaseDelay = 25 * time.Millisecond

// DynamoDB's own verdict on each error it returns, "OK to retry?" in "Error
// handling with DynamoDB" (Amazon DynamoDB Developer Guide, Error messages
// and codes). The SDK's standard checks already retry most of the Yes
// column (its throttle codes, HTTP 500 and 503) and none of the No column;
// these lists make both explicit, so that neither a change of the SDK's
// defaults nor a check added later can retry a failed condition as if it
// were transient.
var (
	dynamoDBRetryableCodes = map[string]struct{}{
		"ItemCollectionSizeLimitExceededException": {},
		"LimitExceededException":                   {},
		"ProvisionedThroughputExceededException":   {},
		"RequestLimitExceeded":                     {},
		"ThrottlingException":                      {},
		"UnrecognizedClientException":              {},
		"InternalServerError":                      {},
		"ServiceUnavailable":                       {},
	}
	dynamoDBNonRetryableCodes = map[string]struct{}{
		"AccessDeniedException":               {},
		"ConditionalCheckFailedException":     {},
		"IncompleteSignatureException":        {},
		"MissingAuthenticationTokenException": {},
		"ResourceInUseException":              {},
		"ResourceNotFoundException":           {},
		"ValidationException":                 {},
	}
)

// dynamoDBVerdict is DynamoDB's documented answer for err's code: true
// (retry), false (never), unknown for codes the page does not list and
// for failures without a code (transport errors), which the SDK's checks
// decide.
func dynamoDBVerdict(err error) aws.Ternary {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return aws.UnknownTernary
	}
	code := api.ErrorCode()
	if _, no := dynamoDBNonRetryableCodes[code]; no {
		return aws.FalseTernary
	}
	if _, yes := dynamoDBRetryableCodes[code]; yes {
		return aws.TrueTernary
	}
	return aws.UnknownTernary
}

// newDynamoDBRetryer is the state table client's retryer: the SDK's
// standard retryer with the DynamoDB client's settings (maxAttempts
// attempts, 25 ms base delay, 1 s for throttling, exponential with full
// jitter up to maxBackoff, the client-side retry quota), deciding by
// dynamoDBVerdict first. A cancelled request is never retried: that check
// comes before the verdict. maxBackoff 0 keeps the SDK's 20 s.
func newDynamoDBRetryer(maxAttempts int, maxBackoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = maxAttempts
		so.BaseDelay = dynamoDBBaseDelay
		if maxBackoff > 0 {
			so.MaxBackoff = maxBackoff
		}
		so.Retryables = append([]retry.IsErrorRetryable{
			retry.NoRetryCanceledError{},
			retry.IsErrorRetryableFunc(dynamoDBVerdict),
		}, so.Retryables...)
	})
}
