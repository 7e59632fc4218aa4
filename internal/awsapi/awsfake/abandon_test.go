package awsfake_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// TestAnAbandonedRequestIsCarriedOut: a CopyImage request that reached
// the fake whole is carried out and logged even when its client goes
// away before the answer (a process killed mid-call, a client timeout),
// as AWS carries out a request it received: the caller only loses the
// answer, which is why amicopier records the attempt (and its
// ClientToken) before the call. The latency is on, so the client is gone
// while the simulated call is still under way.
func TestAnAbandonedRequestIsCarriedOut(t *testing.T) {
	const lat = 300 * time.Millisecond
	c := sim.New(sim.WithLatency(sim.Latency{Describe: lat, Mutating: lat, STS: lat, Organizations: lat}))
	for _, a := range []string{owner, other} {
		if err := c.AddAccount(a, "acct-"+a[:3], "", cloud.AccountActive); err != nil {
			t.Fatal(err)
		}
	}
	src := c.AddImage(owner, region, sim.ImageSpec{Name: "golden"})
	s := awsfake.New(c, awsfake.Options{BaseAccount: owner})
	t.Cleanup(s.Close)

	form := url.Values{"Action": {"CopyImage"}, "SourceImageId": {src.ID}, "SourceRegion": {region},
		"Name": {"golden-copy"}, "ClientToken": {"token-abandoned"}}
	ctx, cancel := context.WithTimeout(context.Background(), lat/6) // gone in the call's first half
	defer cancel()
	req := ec2Request(t, ctx, s, form)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the client got an answer (%s) before going away", resp.Status)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	// The call finishes without its client.
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Copies()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	copies := s.Copies()
	if len(copies) != 1 || copies[0].ClientToken != "token-abandoned" {
		t.Fatalf("copies logged: %+v, want the abandoned request's", copies)
	}
	if _, ok := c.Image(owner, region, copies[0].ImageID); !ok {
		t.Fatalf("the logged copy %s is not in the simulator", copies[0].ImageID)
	}
}
