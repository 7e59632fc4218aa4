// Package noanswer recognises, in an AWS SDK error, a call AWS never
// answered: the request could not be sent, or every attempt ran out of
// time. Both the SDK adapters (internal/awsapi) and the DynamoDB state
// store read it, so an endpoint that never answers reads the same in
// every message.
package noanswer

import (
	"context"
	"errors"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Failure is what the error says of the call.
type Failure struct {
	// Endpoint is the scheme and host the request went to.
	Endpoint string
	// Service and Operation name the call, when the SDK said.
	Service, Operation string
	// Attempts is how many attempts were made; 0 when unknown.
	Attempts int
	// Reason is the transport's last word ("timeout awaiting response
	// headers", "connection refused").
	Reason string
	// Timeout: the attempts ran out of time (the endpoint took the
	// connection but did not answer), rather than failing to connect.
	Timeout bool
}

// Of returns the failure err describes, ok false when err is anything
// else. The caller's own context ending the request is not a failure of
// the endpoint's (an attempt's own timeout is another error value).
func Of(err error) (f Failure, ok bool) {
	var send *smithyhttp.RequestSendError
	var uerr *url.Error
	if !errors.As(err, &send) || !errors.As(err, &uerr) || uerr.Err == context.Canceled || uerr.Err == context.DeadlineExceeded {
		return Failure{}, false
	}
	f = Failure{Endpoint: uerr.URL, Reason: uerr.Err.Error(), Timeout: uerr.Timeout()}
	if u, perr := url.Parse(uerr.URL); perr == nil {
		f.Endpoint = u.Scheme + "://" + u.Host
	}
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		f.Service, f.Operation = oe.ServiceID, oe.OperationName
	}
	var maxed *retry.MaxAttemptsError
	if errors.As(err, &maxed) {
		f.Attempts = maxed.Attempt
	}
	return f, true
}
