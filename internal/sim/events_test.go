package sim_test

import (
	"context"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

func TestPutEvents(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	bus := c.AddEventBus(srcAcct, region, "copies")
	theirs := c.AddEventBus(tgtA, region, "theirs")
	pub, err := c.Connector(srcAcct, sim.WithAttempts(1)).EventBus(ctx, region)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(detail string) cloud.Event { return cloud.Event{DetailType: "amicopier Test", Detail: detail} }
	many := make([]cloud.Event, 11)
	for i := range many {
		many[i] = ev(`{}`)
	}
	_, err = pub.PutEvents(ctx, bus, "amicopier", many)
	wantCode(t, err, "ValidationException")
	_, err = pub.PutEvents(ctx, bus, "amicopier", []cloud.Event{ev(`{"x":"` + strings.Repeat("x", cloud.MaxPutEventsSize) + `"}`)})
	wantCode(t, err, "ValidationException")
	_, err = pub.PutEvents(ctx, "nope", "amicopier", []cloud.Event{ev(`{}`)})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = pub.PutEvents(ctx, theirs, "amicopier", []cloud.Event{ev(`{}`)})
	wantCode(t, err, "AccessDeniedException")
	c.AllowBusPutEvents(theirs, srcAcct)
	if _, err := pub.PutEvents(ctx, theirs, "amicopier", []cloud.Event{ev(`{}`)}); err != nil {
		t.Fatalf("a bus that allows the account: %v", err)
	}

	// Each entry is judged alone; the failures are entries, not errors
	// (the injected failure takes the first entry that would succeed).
	c.FailEventEntries(bus, 1, "ThrottlingException")
	res, err := pub.PutEvents(ctx, "copies", "amicopier", []cloud.Event{ev(`{"a":1}`), ev(`not json`), ev(`{"b":2}`), {DetailType: strings.Repeat("d", 129), Detail: `{}`}})
	if err != nil {
		t.Fatal(err)
	}
	codes := []string{res[0].ErrorCode, res[1].ErrorCode, res[2].ErrorCode, res[3].ErrorCode}
	if strings.Join(codes, ",") != "ThrottlingException,MalformedDetail,,InvalidArgument" || res[2].ID == "" || !res[0].Failed() {
		t.Fatalf("results %+v", res)
	}
	if got := c.BusEvents(bus); len(got) != 1 || got[0].Detail != `{"b":2}` || got[0].Source != "amicopier" || got[0].Account != srcAcct {
		t.Fatalf("bus events %+v", got)
	}
	res, _ = pub.PutEvents(ctx, bus, "aws.ec2", []cloud.Event{ev(`{}`)})
	if res[0].ErrorCode != "NotAuthorizedForSourceException" {
		t.Errorf("aws. source: %+v", res)
	}
	c.DenyCentralActions("events:PutEvents")
	_, err = pub.PutEvents(ctx, bus, "amicopier", []cloud.Event{ev(`{}`)})
	wantCode(t, err, "AccessDeniedException")
}
