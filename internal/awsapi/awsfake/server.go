// Package awsfake is an HTTP server that speaks the AWS wire protocols
// amicopier uses (the EC2 and STS query protocols, the Organizations JSON
// protocol) on the loopback interface, backed by the simulator of package
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
// It is a test helper: it never listens anywhere but 127.0.0.1.
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
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

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
}

// Request is one recorded request.
type Request struct {
	// Service is "ec2", "sts" or "organizations" (from the SigV4 scope).
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

// Server is a fake AWS endpoint. Close it when done.
type Server struct {
	srv   *httptest.Server
	cloud *sim.Cloud
	opt   Options

	mu       sync.Mutex
	keys     map[string]identity
	requests []Request
	faults   map[string][]string
	issued   int
	reqID    int
}

// New starts a fake AWS endpoint over c on 127.0.0.1.
func New(c *sim.Cloud, o Options) *Server {
	if !cloud.IsAccountID(o.BaseAccount) {
		panic(fmt.Sprintf("awsfake: BaseAccount %q is not a 12-digit account id", o.BaseAccount))
	}
	if o.PageSize <= 0 {
		o.PageSize = 1000
	}
	if o.OrgPageSize <= 0 {
		o.OrgPageSize = 20
	}
	s := &Server{
		cloud: c, opt: o, faults: map[string][]string{},
		keys: map[string]identity{BaseAccessKeyID: {account: o.BaseAccount, secret: BaseSecretAccessKey, token: BaseSessionToken}},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the endpoint to configure for every service.
func (s *Server) URL() string { return s.srv.URL }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Requests returns every request received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Calls counts the requests for op ("" counts all).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if op == "" || r.Op == op {
			n++
		}
	}
	return n
}

// MutatingCalls counts the requests for operations that change something
// (IsMutating); a request with DryRun set changes nothing and is not one.
func (s *Server) MutatingCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if cloud.IsMutating(r.Op) && !r.DryRun() {
			n++
		}
	}
	return n
}

// DryRuns counts the requests for op sent with DryRun set.
func (s *Server) DryRuns(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Op == op && r.DryRun() {
			n++
		}
	}
	return n
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
	default:
		http.Error(w, "awsfake does not serve "+req.Service, http.StatusNotFound)
		return
	}
	if req.Service == "organizations" || req.Service == "kms" {
		req.Op = strings.TrimPrefix(strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AWSOrganizationsV20161128."), "TrentService.")
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
	s.requests = append(s.requests, req)
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
	resp, err := proto.handle(r.Context(), s, &req)
	if err != nil {
		s.fail(w, proto, req.Op, err)
		return
	}
	w.Header().Set("Content-Type", proto.contentType())
	w.Header().Set("X-Amzn-RequestId", s.requestID())
	_, _ = w.Write(resp)
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
	w.Header().Set("Content-Type", p.contentType())
	w.Header().Set("X-Amzn-RequestId", id)
	switch p.(type) {
	case orgProtocol, kmsProtocol:
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
