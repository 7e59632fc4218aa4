package awsfake_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// fixedAddrListener is a listener that claims an address; it accepts
// nothing (Start must refuse it before serving).
type fixedAddrListener struct{ addr net.Addr }

func (l fixedAddrListener) Accept() (net.Conn, error) { return nil, errors.New("not a real listener") }
func (l fixedAddrListener) Close() error              { return nil }
func (l fixedAddrListener) Addr() net.Addr            { return l.addr }

func TestStartRefusesAnythingButLoopback(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
	}{
		{"every interface", &net.TCPAddr{IP: net.IPv4zero, Port: 8080}},
		{"a private address", &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 8080}},
		{"a unix socket", &net.UnixAddr{Name: "/tmp/awsfake.sock", Net: "unix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := awsfake.Start(sim.New(), awsfake.Options{BaseAccount: owner}, fixedAddrListener{tt.addr})
			if err == nil {
				s.Close()
				t.Fatalf("Start on %s: no error", tt.addr)
			}
			if !strings.Contains(err.Error(), tt.addr.String()) {
				t.Errorf("error %q does not name the address %s", err, tt.addr)
			}
		})
	}
	if _, err := awsfake.Start(sim.New(), awsfake.Options{BaseAccount: "12345"}, fixedAddrListener{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}); err == nil ||
		!strings.Contains(err.Error(), `"12345"`) {
		t.Errorf("Start with a bad BaseAccount: error %v, want one naming it", err)
	}
}

// TestStartServesOnTheGivenListener: a listener the caller opened, the
// inspection hook, counts without records, and Close.
func TestStartServesOnTheGivenListener(t *testing.T) {
	c := sim.New()
	for _, a := range []string{owner, other} {
		if err := c.AddAccount(a, "acct-"+a[:3], "", cloud.AccountActive); err != nil {
			t.Fatal(err)
		}
	}
	src := c.AddImage(owner, region, sim.ImageSpec{Name: "golden"})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inspect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "inspected %s", r.URL.Path)
	})
	s, err := awsfake.Start(c, awsfake.Options{BaseAccount: owner, CountOnly: true, Inspect: inspect}, l)
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://" + l.Addr().String(); s.URL() != want {
		t.Errorf("URL %s, want %s", s.URL(), want)
	}

	copyForm := url.Values{"Action": {"CopyImage"}, "SourceImageId": {src.ID}, "SourceRegion": {region},
		"Name": {"golden-copy"}, "ClientToken": {"token-1"}}
	var first string
	for i := range 2 { // the second replays the token: no new image
		status, body := post(t, s, copyForm)
		if status != http.StatusOK {
			t.Fatalf("CopyImage %d: status %d: %s", i, status, body)
		}
		if i == 0 {
			first = body
		} else if body[strings.Index(body, "<imageId>"):] != first[strings.Index(first, "<imageId>"):] {
			t.Errorf("the replay answered another image: %s, then %s", first, body)
		}
	}
	copies := s.Copies()
	if len(copies) != 1 || copies[0].SourceImageID != src.ID || copies[0].Account != owner || copies[0].Region != region ||
		copies[0].ClientToken != "token-1" || !strings.Contains(first, "<imageId>"+copies[0].ImageID+"</imageId>") {
		t.Errorf("copies %+v, want the one image of %s", copies, first)
	}
	if status, body := post(t, s, url.Values{"Action": {"CopyImage"}, "SourceImageId": {"ami-0000000000000dead"},
		"SourceRegion": {region}, "Name": {"nope"}}); status == http.StatusOK {
		t.Errorf("a copy of a missing image succeeded: %s", body)
	}
	if got := len(s.Copies()); got != 1 {
		t.Errorf("a refused CopyImage was logged: %d copies", got)
	}
	if n := s.Calls("CopyImage"); n != 3 || s.Calls("") != 3 || s.MutatingCalls() != 3 {
		t.Errorf("Calls(CopyImage) %d, Calls() %d, MutatingCalls %d; want 3 each", n, s.Calls(""), s.MutatingCalls())
	}
	if got := s.CallCounts(); len(got) != 1 || got["CopyImage"] != 3 {
		t.Errorf("CallCounts %v", got)
	}
	if got := s.ErrorCounts(); len(got) != 1 || got["InvalidAMIID.NotFound"] != 1 {
		t.Errorf("ErrorCounts %v, want the one refusal", got)
	}
	if r := s.Requests(); len(r) != 0 {
		t.Errorf("CountOnly kept %d requests", len(r))
	}
	// The two successful answers, not the refusal.
	if got, want := s.SentBytes(), int64(2*len(first)); got != want {
		t.Errorf("SentBytes %d, want %d", got, want)
	}

	get := func(method, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, s.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get(http.MethodGet, "/_sim/copies"); status != http.StatusOK || body != "inspected /_sim/copies" {
		t.Errorf("GET /_sim/copies: %d %q", status, body)
	}
	if status, _ := get(http.MethodPost, "/_sim/copies"); status != http.StatusNotFound {
		t.Errorf("POST /_sim/copies: status %d, want 404 (read-only)", status)
	}
	if status, _ := get(http.MethodGet, "/"); status != http.StatusForbidden {
		t.Errorf("GET / without a signature: status %d, want 403", status)
	}

	s.Close()
	if _, err := http.Get(s.URL() + "/_sim/copies"); err == nil {
		t.Error("the server still answers after Close")
	}
}

func TestNoInspectionUnlessAsked(t *testing.T) {
	_, s := newServer(t)
	resp, err := http.Get(s.URL() + "/_sim/copies")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}

// TestOrganizationsRequestIsOneSimulatedCall: each Organizations request
// is one simulated call of its own API, so latency, buckets and counts
// apply once per request.
func TestOrganizationsRequestIsOneSimulatedCall(t *testing.T) {
	c := sim.New()
	ou := c.AddOU("", "workloads")
	if err := c.AddAccount(owner, "source", "", cloud.AccountActive); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := c.AddAccount(fmt.Sprintf("2000000000%02d", i), "member", ou, cloud.AccountActive); err != nil {
			t.Fatal(err)
		}
	}
	s := awsfake.New(c, awsfake.Options{BaseAccount: owner})
	t.Cleanup(s.Close)
	call := func(op string, in map[string]any) map[string]any {
		t.Helper()
		body, _ := json.Marshal(in)
		req, err := http.NewRequest(http.MethodPost, s.URL(), strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Target", "AWSOrganizationsV20161128."+op)
		req.Header.Set("Authorization", fmt.Sprintf(
			"AWS4-HMAC-SHA256 Credential=%s/20260101/us-east-1/organizations/aws4_request, SignedHeaders=host, Signature=00", awsfake.BaseAccessKeyID))
		req.Header.Set("X-Amz-Security-Token", awsfake.BaseSessionToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, %v %v", op, resp.StatusCode, out, err)
		}
		return out
	}
	tests := []struct {
		op    string
		in    map[string]any
		field string
		items int
	}{
		{cloud.OpListOrganizationalUnitsForParent, map[string]any{"ParentId": sim.RootID}, "OrganizationalUnits", 1},
		{cloud.OpListAccountsForParent, map[string]any{"ParentId": ou}, "Accounts", 3},
		{cloud.OpListAccountsForParent, map[string]any{"ParentId": sim.RootID}, "Accounts", 1},
	}
	for _, tt := range tests {
		before := c.CallCounts()
		out := call(tt.op, tt.in)
		if items, _ := out[tt.field].([]any); len(items) != tt.items {
			t.Errorf("%s %v: %d %s, want %d", tt.op, tt.in, len(items), tt.field, tt.items)
		}
		after := c.CallCounts()
		for op, n := range after {
			want := before[op]
			if op == tt.op {
				want++
			}
			if n != want {
				t.Errorf("%s %v: the simulator counted %d %s, want %d", tt.op, tt.in, n-before[op], op, want-before[op])
			}
		}
	}
}
