package awsapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// ownBodyClient hands the transport a request body of its own: a copy of
// the SDK's, which requests of these APIs keep in memory anyway.
//
// Why: the SDK closes the request body it built as soon as the response
// headers arrive, but net/http's writer may still be busy with that body
// (after sending it, it reads it once more to check it has ended, then
// closes it). When the answer outruns the writer (a fast endpoint, a busy
// CPU) the writer sees the body closed, fails, and closes the connection
// while the response body is being read: the call fails with "use of
// closed network connection" and the retryer sends it again, an extra call
// against the API's budget for nothing. With a body the SDK cannot close,
// the writer always finishes.
type ownBodyClient struct {
	inner aws.HTTPClient
}

func (c ownBodyClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.inner.Do(r)
	}
	b, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read the request body of %s %s: %w", r.Method, r.URL.Redacted(), err)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return c.inner.Do(r)
}
