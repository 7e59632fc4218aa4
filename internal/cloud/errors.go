package cloud

import (
	"context"
	"errors"
	"fmt"
)

// ErrorClass says what the engine should do about a failed AWS call.
type ErrorClass int

// Error classes, from most to least hopeful.
const (
	// ClassUnknown is an error that did not come from AWS (a bug, a
	// cancelled context, a network failure the SDK gave up on).
	ClassUnknown ErrorClass = iota
	// ClassThrottled means a token bucket was empty: retry after a pause.
	ClassThrottled
	// ClassRetryable is a transient server-side failure: retry with backoff.
	ClassRetryable
	// ClassLimit means a service quota is full (for example concurrent
	// copies per Region): retry only after in-flight work finishes, which
	// in practice means a later run.
	ClassLimit
	// ClassAccessDenied means the role cannot be assumed or is not allowed
	// to make the call: the account is unreachable for this run.
	ClassAccessDenied
	// ClassNotFound means the resource does not exist (or is not visible
	// to the caller, which EC2 reports the same way).
	ClassNotFound
	// ClassPermanent means retrying the same request cannot succeed.
	ClassPermanent
)

var classNames = map[ErrorClass]string{
	ClassUnknown:      "unknown",
	ClassThrottled:    "throttled",
	ClassRetryable:    "retryable",
	ClassLimit:        "limit",
	ClassAccessDenied: "access_denied",
	ClassNotFound:     "not_found",
	ClassPermanent:    "permanent",
}

func (c ErrorClass) String() string {
	if s, ok := classNames[c]; ok {
		return s
	}
	return fmt.Sprintf("ErrorClass(%d)", int(c))
}

// codeClasses is the one place AWS error codes are classified. Codes not
// listed are permanent: retrying an unknown failure blindly is how a job
// hammers an API it does not understand.
var codeClasses = map[string]ErrorClass{
	// Throttling, EC2 and the JSON protocols.
	"RequestLimitExceeded":                   ClassThrottled,
	"Throttling":                             ClassThrottled,
	"ThrottlingException":                    ClassThrottled,
	"ThrottledException":                     ClassThrottled,
	"TooManyRequestsException":               ClassThrottled,
	"RequestThrottled":                       ClassThrottled,
	"RequestThrottledException":              ClassThrottled,
	"SlowDown":                               ClassThrottled,
	"ProvisionedThroughputExceededException": ClassThrottled,
	"LimitExceededException":                 ClassThrottled,
	"EC2ThrottledException":                  ClassThrottled,
	"BandwidthLimitExceeded":                 ClassThrottled,
	"PriorRequestNotComplete":                ClassThrottled,
	// Transient server-side failures.
	"InternalError":                       ClassRetryable,
	"InternalFailure":                     ClassRetryable,
	"ServiceUnavailable":                  ClassRetryable,
	"ServiceUnavailableException":         ClassRetryable,
	"Unavailable":                         ClassRetryable,
	"RequestTimeout":                      ClassRetryable,
	"RequestTimeoutException":             ClassRetryable,
	"ServiceException":                    ClassRetryable,
	"InternalServerError":                 ClassRetryable,
	"ConcurrentModificationException":     ClassRetryable,
	"IncorrectState":                      ClassRetryable,
	"TransactionInProgressException":      ClassRetryable,
	"IDPCommunicationError":               ClassRetryable,
	"InvalidAMIID.Unavailable":            ClassRetryable,
	"PendingVerification":                 ClassRetryable,
	"DependencyViolation":                 ClassRetryable,
	"KMS.KMSInvalidStateException":        ClassRetryable,
	"KMSInvalidStateException":            ClassRetryable,
	"KMSInternalException":                ClassRetryable,
	"InsufficientInstanceCapacity":        ClassRetryable,
	"ServiceQuotaExceededException":       ClassLimit,
	"ResourceLimitExceeded":               ClassLimit,
	"AMIQuotaExceeded":                    ClassLimit,
	"SnapshotCopyLimitExceeded":           ClassLimit,
	"MaxSnapshotCopiesExceeded":           ClassLimit,
	"ResourceCountExceeded":               ClassLimit,
	"AccessDenied":                        ClassAccessDenied,
	"AccessDeniedException":               ClassAccessDenied,
	"UnauthorizedOperation":               ClassAccessDenied,
	"AuthFailure":                         ClassAccessDenied,
	"InvalidClientTokenId":                ClassAccessDenied,
	"UnrecognizedClientException":         ClassAccessDenied,
	"ExpiredToken":                        ClassAccessDenied,
	"ExpiredTokenException":               ClassAccessDenied,
	"OptInRequired":                       ClassAccessDenied,
	"RegionDisabledException":             ClassAccessDenied,
	"AWSOrganizationsNotInUseException":   ClassAccessDenied,
	"SignatureDoesNotMatch":               ClassAccessDenied,
	"AccessDeniedForDependencyException":  ClassAccessDenied,
	"InvalidAMIID.NotFound":               ClassNotFound,
	"InvalidSnapshot.NotFound":            ClassNotFound,
	"InvalidAMIID.Malformed":              ClassPermanent,
	"NoSuchEntity":                        ClassNotFound,
	"ResourceNotFoundException":           ClassNotFound,
	"AccountNotFoundException":            ClassNotFound,
	"ParentNotFoundException":             ClassNotFound,
	"OrganizationalUnitNotFoundException": ClassNotFound,
	"KMS.NotFoundException":               ClassPermanent,
	// KMS: no such key or alias in the caller's account and Region.
	"NotFoundException":           ClassNotFound,
	"InvalidAMIName.Duplicate":    ClassPermanent,
	"InvalidAMIName.Malformed":    ClassPermanent,
	"IdempotentParameterMismatch": ClassPermanent,
	"InvalidParameterValue":       ClassPermanent,
	"InvalidParameterCombination": ClassPermanent,
	"InvalidParameter":            ClassPermanent,
	"OperationNotPermitted":       ClassPermanent,
	"InvalidSnapshot.InUse":       ClassPermanent,
	// Systems Manager Parameter Store (PutParameter, GetParameters,
	// ListTagsForResource, AddTagsToResource; AWS Systems Manager API
	// Reference). TooManyUpdates: "There are concurrent updates for a
	// resource that supports one update at a time", retried; a full
	// parameter or version quota waits for a person.
	"TooManyUpdates":                       ClassRetryable,
	"ParameterNotFound":                    ClassNotFound,
	"InvalidResourceId":                    ClassNotFound,
	"ParameterAlreadyExists":               ClassPermanent,
	"ParameterLimitExceeded":               ClassLimit,
	"ParameterMaxVersionLimitExceeded":     ClassLimit,
	"TooManyTagsError":                     ClassLimit,
	"HierarchyLevelLimitExceededException": ClassPermanent,
	"HierarchyTypeMismatchException":       ClassPermanent,
	"UnsupportedParameterType":             ClassPermanent,
	"InvalidAllowedPatternException":       ClassPermanent,
	"ParameterPatternMismatchException":    ClassPermanent,
	"InvalidResourceType":                  ClassPermanent,
	"ValidationException":                  ClassPermanent,
	// EventBridge PutEvents (Amazon EventBridge API Reference): the
	// whole call, and the error codes of single entries.
	"InternalException":               ClassRetryable,
	"NotAuthorizedForSourceException": ClassAccessDenied,
	"InvalidArgument":                 ClassPermanent,
	"MalformedDetail":                 ClassPermanent,
	"InvalidAccountIdException":       ClassPermanent,
	"RedactionFailure":                ClassPermanent,
}

// refusedShares are the answers EC2 gives a share it will never make: an
// image backed by a snapshot under the AWS-managed aws/ebs key cannot be
// shared ("You can't share AMIs that are backed by snapshots that are
// encrypted with the default AWS managed key", Share an AMI with specific
// AWS accounts, EC2 User Guide;
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html),
// which ModifyImageAttribute answers InvalidParameter, and a snapshot under
// it ("Snapshots encrypted with your default KMS key cannot be shared",
// ModifySnapshotAttribute, Amazon EC2 API Reference) OperationNotPermitted.
var refusedShares = map[[2]string]bool{
	{OpModifyImageAttribute, "InvalidParameter"}:         true,
	{OpModifySnapshotAttribute, "OperationNotPermitted"}: true,
}

// IsShareRefused reports whether a sharing call failed because EC2 will
// never share the source: the same request cannot succeed, whatever the
// next run does. Every other failure (a denial, a throttle, a code nobody
// classified) may pass by the next run.
func IsShareRefused(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && refusedShares[[2]string{apiErr.Op, apiErr.Code}]
}

// ClassifyCode returns the class of an AWS error code.
func ClassifyCode(code string) ErrorClass {
	if c, ok := codeClasses[code]; ok {
		return c
	}
	return ClassPermanent
}

// APIError is a failed AWS call, translated by an adapter or raised by the
// simulator. It never carries credentials or request payloads.
type APIError struct {
	Op      string
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: %s", e.Op, e.Code)
	}
	return fmt.Sprintf("%s: %s: %s", e.Op, e.Code, e.Message)
}

// Class classifies the error by its code.
func (e *APIError) Class() ErrorClass { return ClassifyCode(e.Code) }

// Errorf builds an APIError for op with an AWS error code.
func Errorf(op, code, format string, args ...any) *APIError {
	return &APIError{Op: op, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ClassOf classifies any error: APIErrors by their code, context errors
// and everything else as ClassUnknown.
func ClassOf(err error) ErrorClass {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Class()
	}
	return ClassUnknown
}

// CodeOf returns the AWS error code inside err, or "" when there is none.
func CodeOf(err error) string {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code
	}
	return ""
}

// IsTransient reports whether retrying the same call soon may succeed.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	switch ClassOf(err) {
	case ClassThrottled, ClassRetryable:
		return true
	}
	return false
}
