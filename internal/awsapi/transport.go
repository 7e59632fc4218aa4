package awsapi

import (
	"net"
	"net/http"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Timeouts bound each attempt of an AWS call. The retryer then bounds the
// call: at most Options.MaxAttempts attempts with at most
// Options.MaxBackoff between them, so an endpoint that accepts
// connections and never answers fails a call after about MaxAttempts x
// ResponseHeader (5 x 15 s plus the backoff, under two minutes), instead
// of hanging.
type Timeouts struct {
	// Dial bounds opening a TCP connection.
	Dial time.Duration
	// TLSHandshake bounds the TLS handshake.
	TLSHandshake time.Duration
	// ResponseHeader bounds the wait for the answer's headers once the
	// request is sent. AWS's control planes answer in well under a
	// second; a page of 1,000 images takes a few.
	ResponseHeader time.Duration
	// Read bounds a silence while the answer's body is read (the SDK's
	// inactivity read timeout): a slow but flowing answer is not cut.
	Read time.Duration
	// Attempt bounds one attempt end to end (http.Client.Timeout).
	Attempt time.Duration
}

// DefaultTimeouts are the production bounds.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Dial:           10 * time.Second,
		TLSHandshake:   10 * time.Second,
		ResponseHeader: 15 * time.Second,
		Read:           30 * time.Second,
		Attempt:        2 * time.Minute,
	}
}

// orDefault fills the zero fields in.
func (t Timeouts) orDefault() Timeouts {
	d := DefaultTimeouts()
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.Dial, &d.Dial}, {&t.TLSHandshake, &d.TLSHandshake}, {&t.ResponseHeader, &d.ResponseHeader},
		{&t.Read, &d.Read}, {&t.Attempt, &d.Attempt},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// NewHTTPClient is the SDK's buildable HTTP client with t's bounds (zero
// fields: DefaultTimeouts). Every AWS client of amicopier uses one: EC2,
// STS, Organizations, the AMIgo table and the DynamoDB state store.
func NewHTTPClient(t Timeouts) *awshttp.BuildableClient {
	t = t.orDefault()
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = t.Dial }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.TLSHandshakeTimeout = t.TLSHandshake
			tr.ResponseHeaderTimeout = t.ResponseHeader
		}).
		WithReadTimeout(t.Read).
		WithTimeout(t.Attempt)
}
