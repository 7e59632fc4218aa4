// Package awsfake is an HTTP server that speaks the AWS wire protocols
// amicopier uses (the EC2 and STS query protocols; the JSON 1.1 protocol of
// Organizations, KMS, Systems Manager and EventBridge) on the loopback
// interface, backed by the simulator of package
// sim. Pointing the real SDK adapters at it (aws.endpoints in config.yaml)
// runs the whole stack, adapters and engine, with the simulator's
// semantics and no AWS account.
//
// The server trusts the SigV4 Authorization header without checking the
// signature: the access key id names the caller (the base key is the
// source account, keys issued by AssumeRole act as the assumed account),
// and the credential scope names the service and Region. It records every
// request, so tests can check the exact form fields and JSON the adapters
// send, and it can fail chosen calls with chosen AWS error codes
// (FailNext) to exercise retries and classification.
//
// It is a test helper: it never listens anywhere but a loopback address.
// New starts it in the test's process; Start serves it on a listener the
// caller opened, so a separate process can serve a simulated organisation
// to the built binary (amicopier-bench serve).
package awsfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// Static credentials of the base identity: tests export them as
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
const (
	BaseAccessKeyID     = "AKIDAMICOPIERFAKE01"
	BaseSecretAccessKey = "base-secret-access-key-never-logged"
	BaseSessionToken    = "base-session-token-never-logged"
)

// Options configure a Server.
type Options struct {
	// BaseAccount is the account of the base credentials (required): the
	// job's own identity, which acts as the source account when no source
	// role is configured.
	BaseAccount string
	// ExternalID, when set, is required on every AssumeRole.
	ExternalID string
	// PageSize caps the items of one EC2 describe page (below the
	// request's MaxResults); default 1000.
	PageSize int
	// OrgPageSize is the items of one Organizations page; default 20
	// (AWS's maximum for ListAccounts).
	OrgPageSize int
	// CountOnly keeps counts of the requests (Calls, CallCounts) but not
	// the requests themselves (Requests returns none), so a long-lived
	// server's memory does not grow with every call.
	CountOnly bool
	// Inspect, when set, answers the GET requests under /_sim/: read-only
	// views of the simulator for checkers in other processes. Nothing
	// else is served there, and no AWS request uses that path.
	Inspect http.Handler
}

// InspectPrefix is the path under which Options.Inspect is served.
const InspectPrefix = "/_sim/"

// Request is one recorded request.
type Request struct {
	// Service is "ec2", "sts", "organizations", "kms", "ssm" or "events"
	// (from the SigV4 scope).
	Service string
	// Op is the operation (Action or X-Amz-Target).
	Op string
	// Account is the caller's account; Region the signing Region.
	Account, Region string
	AccessKeyID     string
	// Form holds the query-protocol parameters (EC2, STS).
	Form url.Values
	// JSON is the decoded body of a JSON-protocol request.
	JSON map[string]any
	// Assumed says the caller's credentials came from AssumeRole: it acts
	// as the copier role.
	Assumed bool
	// Header is the request's header; SecurityToken its session token.
	Header        http.Header
	SecurityToken string
}

type identity struct {
	account string
	secret  string
	token   string
	// assumed: credentials AssumeRole issued, which act as the copier role
	// (the simulator's DenyCopierActions applies to them).
	assumed bool
}

// Copy is one image a CopyImage request created, as the server saw it:
// the log of what AWS would have started, whatever the caller recorded.
// A request that replays a ClientToken creates nothing and adds nothing.
type Copy struct {
	Account       string `json:"account"`
	Region        string `json:"region"`
	ImageID       string `json:"image_id"`
	SourceImageID string `json:"source_image_id"`
	SourceRegion  string `json:"source_region"`
	ClientToken   string `json:"client_token,omitempty"`
}

// Server is a fake AWS endpoint. Close it when done.
type Server struct {
	hs     *http.Server
	ln     net.Listener
	served chan struct{} // closed when the serving goroutine returns
	cloud  *sim.Cloud
	opt    Options

	mu       sync.Mutex
	keys     map[string]identity
	requests []Request
	calls    map[string]int64 // requests by operation
	dryRuns  map[string]int64 // of which with DryRun set
	answered map[string]int64 // error answers by AWS error code
	copies   []Copy
	copyIDs  map[string]bool // account/region/image of copies
	sent     int64           // bytes of the successful answers' bodies
	faults   map[string][]string
	issued   int
	reqID    int

	answers sync.Pool // of *[]byte, for answerBuffer
}

// New starts a fake AWS endpoint over c on 127.0.0.1, on a port the
// system picks. It panics when it cannot (a test helper, like
// httptest.NewServer).
func New(c *sim.Cloud, o Options) *Server {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("awsfake: listen on 127.0.0.1: %v", err))
	}
	s, err := Start(c, o, l)
	if err != nil {
		_ = l.Close()
		panic(err.Error())
	}
	return s
}

// Start serves a fake AWS endpoint over c on l until Close, which also
// closes l. l must listen on a loopback address: the fake trusts every
// caller and must never be reachable from elsewhere.
func Start(c *sim.Cloud, o Options, l net.Listener) (*Server, error) {
	if addr, ok := l.Addr().(*net.TCPAddr); !ok || !addr.IP.IsLoopback() {
		return nil, fmt.Errorf("awsfake: listener %s is not on a loopback address", l.Addr())
	}
	if !cloud.IsAccountID(o.BaseAccount) {
		return nil, fmt.Errorf("awsfake: BaseAccount %q is not a 12-digit account id", o.BaseAccount)
	}
	if o.PageSize <= 0 {
		o.PageSize = 1000
	}
	if o.OrgPageSize <= 0 {
		o.OrgPageSize = 20
	}
	s := &Server{
		ln: l, served: make(chan struct{}), cloud: c, opt: o, faults: map[string][]string{},
		calls: map[string]int64{}, dryRuns: map[string]int64{}, answered: map[string]int64{}, copyIDs: map[string]bool{},
		keys: map[string]identity{BaseAccessKeyID: {account: o.BaseAccount, secret: BaseSecretAccessKey, token: BaseSessionToken}},
	}
	s.hs = &http.Server{Handler: http.HandlerFunc(s.route), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		// ErrServerClosed after Close; any other error also means the
		// listener is gone, and requests fail on the client's side.
		_ = s.hs.Serve(l)
	}()
	return s, nil
}

// URL is the endpoint to configure for every service.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close shuts the server down: it stops accepting, lets the requests in
// progress finish (for up to 5 seconds), then closes every connection.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.hs.Shutdown(ctx); err != nil {
		_ = s.hs.Close()
	}
	<-s.served
}

// Requests returns every request received so far, in arrival order (none
// with Options.CountOnly).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Calls counts the requests for op ("" counts all).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op != "" {
		return int(s.calls[op])
	}
	n := int64(0)
	for _, c := range s.calls {
		n += c
	}
	return int(n)
}

// CallCounts returns the requests received so far by operation, each
// attempt of a retried call counted.
func (s *Server) CallCounts() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// ErrorCounts returns the error answers sent so far by AWS error code
// (throttling included, such as RequestLimitExceeded).
func (s *Server) ErrorCounts() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.answered)
}

// Copies returns the images CopyImage requests created, in order.
func (s *Server) Copies() []Copy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.copies)
}

// noteCopy logs an image a CopyImage request created (once per image: a
// replayed ClientToken answers an image already logged).
func (s *Server) noteCopy(c Copy) {
	key := c.Account + "/" + c.Region + "/" + c.ImageID
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.copyIDs[key] {
		s.copyIDs[key] = true
		s.copies = append(s.copies, c)
	}
}

// MutatingCalls counts the requests for operations that change something
// (IsMutating); a request with DryRun set changes nothing and is not one.
func (s *Server) MutatingCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int64(0)
	for op, c := range s.calls {
		if cloud.IsMutating(op) {
			n += c - s.dryRuns[op]
		}
	}
	return int(n)
}

// DryRuns counts the requests for op sent with DryRun set.
func (s *Server) DryRuns(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.dryRuns[op])
}

// DryRun reports whether the request was sent with DryRun set (EC2's
// query parameter or KMS's JSON field).
func (r *Request) DryRun() bool {
	if r.Form.Get("DryRun") == "true" {
		return true
	}
	dry, _ := r.JSON["DryRun"].(bool)
	return dry
}

// FailNext makes the next len(codes) requests for op fail, in order, with
// these AWS error codes (the request is recorded, then refused, and has
// no effect).
func (s *Server) FailNext(op string, codes ...string) {
	s.mu.Lock()
	s.faults[op] = append(s.faults[op], codes...)
	s.mu.Unlock()
}

// ClearFaults drops the failures FailNext queued and no call used yet.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	clear(s.faults)
	s.mu.Unlock()
}

// Secrets returns every secret access key and session token the server
// knows (the base ones and those AssumeRole issued): tests assert that
// none of them ever reaches a log.
func (s *Server) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range s.keys {
		out = append(out, id.secret, id.token)
	}
	return out
}

var scopePattern = regexp.MustCompile(`Credential=([^/,\s]+)/[0-9]{8}/([^/]+)/([^/]+)/aws4_request`)

// route sends the inspection paths to Options.Inspect and everything
// else to the AWS protocols.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, InspectPrefix) {
		if s.opt.Inspect == nil || r.Method != http.MethodGet {
			http.Error(w, "awsfake: no inspection here (GET only, when the server has one)", http.StatusNotFound)
			return
		}
		s.opt.Inspect.ServeHTTP(w, r)
		return
	}
	s.serve(w, r)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m := scopePattern.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		http.Error(w, "missing or malformed SigV4 Authorization header", http.StatusForbidden)
		return
	}
	req := Request{AccessKeyID: m[1], Region: m[2], Service: m[3], Header: r.Header.Clone(), SecurityToken: r.Header.Get("X-Amz-Security-Token")}
	var proto protocol
	switch req.Service {
	case "ec2":
		proto = ec2Protocol{}
	case "sts":
		proto = stsProtocol{}
	case "organizations":
		proto = orgProtocol{}
	case "kms":
		proto = kmsProtocol{}
	case "ssm":
		proto = ssmProtocol{}
	case "events":
		proto = eventsProtocol{}
	default:
		http.Error(w, "awsfake does not serve "+req.Service, http.StatusNotFound)
		return
	}
	if jsonProtocol(req.Service) {
		req.Op = jsonOperation(r.Header.Get("X-Amz-Target"))
		req.JSON = map[string]any{}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &req.JSON); err != nil {
				s.fail(w, proto, req.Op, cloud.Errorf(req.Op, "SerializationException", "body is not JSON: %v", err))
				return
			}
		}
	} else {
		req.Form, err = url.ParseQuery(string(body))
		if err != nil {
			s.fail(w, proto, "", cloud.Errorf("", "MalformedQueryString", "%v", err))
			return
		}
		req.Op = req.Form.Get("Action")
	}

	s.mu.Lock()
	id, known := s.keys[req.AccessKeyID]
	req.Account, req.Assumed = id.account, id.assumed
	s.calls[req.Op]++
	if req.DryRun() {
		s.dryRuns[req.Op]++
	}
	if !s.opt.CountOnly {
		s.requests = append(s.requests, req)
	}
	var fault string
	if q := s.faults[req.Op]; len(q) > 0 {
		fault, s.faults[req.Op] = q[0], q[1:]
	}
	s.mu.Unlock()

	switch {
	case !known:
		s.fail(w, proto, req.Op, cloud.Errorf(req.Op, proto.badKeyCode(), "The security token included in the request is invalid."))
		return
	case id.token != req.SecurityToken:
		s.fail(w, proto, req.Op, cloud.Errorf(req.Op, proto.badKeyCode(), "The security token included in the request does not match the access key."))
		return
	case !cloud.IsRegion(req.Region):
		s.fail(w, proto, req.Op, cloud.Errorf(req.Op, "InvalidClientTokenId", "%q is not a Region", req.Region))
		return
	case fault != "":
		s.fail(w, proto, req.Op, cloud.Errorf(req.Op, fault, "injected by awsfake"))
		return
	}
	resp, err := proto.handle(carriedOut(r), s, &req)
	if err != nil {
		s.fail(w, proto, req.Op, err)
		return
	}
	w.Header().Set("Content-Type", proto.contentType())
	w.Header().Set("X-Amzn-RequestId", s.requestID())
	_, _ = w.Write(resp)
	s.mu.Lock()
	s.sent += int64(len(resp))
	s.mu.Unlock()
	s.recycle(resp)
}

// carriedOut is the context a request that arrived whole is carried out
// in: it goes on even if its client goes away meanwhile (killed, timed
// out), and only the answer is lost. EC2's documentation warns that a
// request whose answer never came may still have taken effect, and that
// retries must carry the same ClientToken
// (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html);
// it says nothing of a client that disconnects, so the fake takes the
// side that tests the client: the call completes, as a server that never
// saw the disconnect would complete it.
func carriedOut(r *http.Request) context.Context { return context.WithoutCancel(r.Context()) }

// SentBytes is the size of the successful answers' bodies sent so far:
// what a client downloads.
func (s *Server) SentBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// answerBuffer returns a buffer for a large answer (DescribeImages),
// reused once the answer is sent (recycle): a benchmark serves thousands
// of answers of hundreds of kilobytes.
func (s *Server) answerBuffer() []byte {
	if b, ok := s.answers.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

func (s *Server) recycle(b []byte) {
	if cap(b) >= 64<<10 {
		s.answers.Put(&b)
	}
}

// jsonProtocol reports whether a service speaks the JSON 1.1 protocol.
func jsonProtocol(service string) bool {
	switch service {
	case "organizations", "kms", "ssm", "events":
		return true
	}
	return false
}

// jsonOperation is the operation an X-Amz-Target names (its part after
// the service's target prefix: AWSOrganizationsV20161128., TrentService.,
// AmazonSSM., AWSEvents.).
func jsonOperation(target string) string {
	if i := strings.LastIndexByte(target, '.'); i >= 0 {
		return target[i+1:]
	}
	return target
}

// protocol is one wire protocol: how requests are handled and errors
// rendered.
type protocol interface {
	handle(ctx context.Context, s *Server, r *Request) ([]byte, error)
	errorBody(code, message, requestID string) []byte
	contentType() string
	badKeyCode() string
}

func (s *Server) fail(w http.ResponseWriter, p protocol, op string, err error) {
	code, msg := "InternalError", err.Error()
	var ae *cloud.APIError
	if errors.As(err, &ae) {
		code, msg = ae.Code, ae.Message
	}
	id := s.requestID()
	s.mu.Lock()
	s.answered[code]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", p.contentType())
	w.Header().Set("X-Amzn-RequestId", id)
	switch p.(type) {
	case orgProtocol, kmsProtocol, ssmProtocol, eventsProtocol:
		w.Header().Set("X-Amzn-ErrorType", code)
	}
	w.WriteHeader(statusFor(code))
	_, _ = w.Write(p.errorBody(code, msg, id))
}

// statusFor is the HTTP status AWS answers an error code with.
func statusFor(code string) int {
	switch code {
	case "RequestLimitExceeded", "ServiceUnavailable", "Unavailable":
		return http.StatusServiceUnavailable
	case "InternalServerError", "InternalException":
		return http.StatusInternalServerError
	case "InternalError", "InternalFailure", "ServiceException":
		return http.StatusInternalServerError
	case "AccessDenied", "UnauthorizedOperation", "ExpiredToken":
		return http.StatusForbidden
	case "AuthFailure":
		return http.StatusUnauthorized
	case "DryRunOperation":
		return http.StatusPreconditionFailed
	}
	return http.StatusBadRequest
}

func (s *Server) requestID() string {
	s.mu.Lock()
	s.reqID++
	n := s.reqID
	s.mu.Unlock()
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
}

// issue records new credentials for account and returns them.
func (s *Server) issue(account string) (akid string, id identity) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued++
	akid = fmt.Sprintf("ASIAFAKE%012d", s.issued)
	id = identity{
		account: account, assumed: true,
		secret: fmt.Sprintf("issued-secret-%d-%s", s.issued, hex.EncodeToString(b[:])),
		token:  fmt.Sprintf("issued-session-token-%d-%s", s.issued, hex.EncodeToString(b[:])),
	}
	s.keys[akid] = id
	return akid, id
}

func marshalXML(v any) ([]byte, error) {
	b, err := xml.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), b...), nil
}
