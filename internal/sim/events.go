package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// EventBridge buses, enough for the events a run publishes (events.bus):
// PutEvents with AWS's limits and its per-entry failures, following
// PutEvents (Amazon EventBridge API Reference,
// https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html)
// and "Sending events with PutEvents" (Amazon EventBridge User Guide,
// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html):
// "By default, if an individual entry within a request fails, EventBridge
// continues processing the rest of the entries in the request. A response
// Entries array can include both successful and unsuccessful entries.
// You must detect unsuccessful entries and include them in a subsequent
// call." FailEventEntries makes entries fail that way.

// BusEvent is an event a bus received.
type BusEvent struct {
	ID, Source, DetailType, Detail string
	Resources                      []string
	Time                           time.Time
	// Account and Region are the sender's.
	Account, Region string
}

type simBus struct {
	arn, account, region string
	// allowed are the other accounts the bus's resource policy lets put
	// events.
	allowed accountSet
	events  []BusEvent
	// failing entries: the next fail entries put on the bus are refused
	// with failCode.
	fail     int
	failCode string
}

// busRegistry holds the buses. Its lock is a leaf.
type busRegistry struct {
	mu    sync.Mutex
	buses map[string]*simBus // by ARN
	next  int
}

// BusARN returns the ARN of the bus called name in account and region.
func BusARN(account, region, name string) string {
	return "arn:aws:events:" + region + ":" + account + ":event-bus/" + name
}

// AddEventBus creates an event bus and returns its ARN.
func (c *Cloud) AddEventBus(account, region, name string) string {
	c.mustZone("AddEventBus", account, region)
	arn := BusARN(account, region, name)
	c.buses.mu.Lock()
	defer c.buses.mu.Unlock()
	if c.buses.buses == nil {
		c.buses.buses = map[string]*simBus{}
	}
	if c.buses.buses[arn] == nil {
		c.buses.buses[arn] = &simBus{arn: arn, account: account, region: region}
	}
	return arn
}

// AllowBusPutEvents lets other accounts put events on a bus (its resource
// policy).
func (c *Cloud) AllowBusPutEvents(busARN string, accounts ...string) {
	c.buses.mu.Lock()
	defer c.buses.mu.Unlock()
	b := c.buses.buses[busARN]
	if b == nil {
		panic(fmt.Sprintf("sim: AllowBusPutEvents: no bus %s", busARN))
	}
	b.allowed.add(accounts)
}

// FailEventEntries makes the next n entries put on the bus fail with the
// error code (ThrottlingException, InternalFailure, ...), each in a
// response whose other entries succeed.
func (c *Cloud) FailEventEntries(busARN string, n int, code string) {
	c.buses.mu.Lock()
	defer c.buses.mu.Unlock()
	b := c.buses.buses[busARN]
	if b == nil {
		panic(fmt.Sprintf("sim: FailEventEntries: no bus %s", busARN))
	}
	b.fail, b.failCode = n, code
}

// BusEvents returns the events a bus received, in the order it did.
func (c *Cloud) BusEvents(busARN string) []BusEvent {
	c.buses.mu.Lock()
	defer c.buses.mu.Unlock()
	b := c.buses.buses[busARN]
	if b == nil {
		return nil
	}
	out := slices.Clone(b.events)
	for i := range out {
		out[i].Resources = slices.Clone(out[i].Resources)
	}
	return out
}

// Events is an EventBridge client acting as one account in one Region.
type Events struct {
	cloud           *Cloud
	conn            *Connector
	account, region string
	calls           *cell
	// central: the client acts as the central identity, whose IAM policy
	// DenyCentralActions may restrict.
	central bool
}

// EventClient returns an EventBridge client acting as account in region,
// with no connector: the fake AWS endpoint serves requests through it.
// central says it acts as the central identity (DenyCentralActions
// applies).
func (c *Cloud) EventClient(account, region string, central bool) *Events {
	c.mustZone("EventClient", account, region)
	return &Events{cloud: c, account: account, region: region, calls: c.calls.cell(account, region), central: central}
}

// EventBus returns the EventBridge client of the connector's own identity
// (the account it acts from) in region (the connector is a
// cloud.EventConnector).
func (k *Connector) EventBus(_ context.Context, region string) (cloud.EventPublisher, error) {
	if _, err := k.cloud.zone(k.source, region); err != nil {
		return nil, fmt.Errorf("event client in account %s: %w", k.source, err)
	}
	return &Events{cloud: k.cloud, conn: k, account: k.source, region: region, calls: k.cloud.calls.cell(k.source, region), central: true}, nil
}

// resolve finds the bus a PutEvents names: a name is a bus of the
// caller's account and Region; an ARN must be of the caller's Region (the
// page says nothing of an ARN in another Region; the simulator refuses it
// as a bus it cannot find). A missing bus is ResourceNotFoundException,
// one of another account whose policy does not allow the caller
// AccessDeniedException. Caller holds c.buses.mu.
func (e *Events) resolve(bus string) (*simBus, error) {
	const op = cloud.OpPutEvents
	arn := bus
	if bus == "" {
		bus = "default"
	}
	if !strings.HasPrefix(bus, "arn:") {
		arn = BusARN(e.account, e.region, bus)
	}
	b := e.cloud.buses.buses[arn]
	if b == nil || b.region != e.region {
		return nil, cloud.Errorf(op, "ResourceNotFoundException", "Event bus %s does not exist.", bus)
	}
	if b.account != e.account && !b.allowed.has(e.account) {
		return nil, cloud.Errorf(op, "AccessDeniedException",
			"User: arn:aws:sts::%s:assumed-role/central is not authorized to perform: events:PutEvents on resource: %s", e.account, b.arn)
	}
	return b, nil
}

// PutEvents sends entries to a bus as PutEvents does: at most 10 entries
// ("Array Members: Minimum number of 1 item. Maximum number of 10 items"),
// together less than 256 KB as EventBridge counts them (cloud.EventSize;
// more is a ValidationException for the whole request, as is an empty
// request). Each entry is judged alone: a DetailType longer than 128
// characters is InvalidArgument, a Detail that is not a JSON object
// MalformedDetail, a Source starting with "aws."
// NotAuthorizedForSourceException, and FailEventEntries' code applies to
// the entries it chose; the others are delivered, in order, each with an
// event id.
func (e *Events) PutEvents(ctx context.Context, bus, source string, events []cloud.Event) ([]cloud.EventResult, error) {
	const op = cloud.OpPutEvents
	var out []cloud.EventResult
	err := e.cloud.do(ctx, e.conn, e.calls, opPutEvents, e.account, e.region, bus, func() error {
		if e.central && !e.cloud.centralAllows("events:PutEvents") {
			return cloud.Errorf(op, "AccessDeniedException",
				"User: arn:aws:sts::%s:assumed-role/central is not authorized to perform: events:PutEvents on resource: %s", e.account, bus)
		}
		size := 0
		for _, ev := range events {
			size += cloud.EventSize(source, ev)
		}
		switch {
		case len(events) == 0:
			return cloud.Errorf(op, "ValidationException", "1 validation error detected: Value '[]' at 'entries' failed to satisfy constraint: Member must have length greater than or equal to 1")
		case len(events) > cloud.MaxPutEventsEntries:
			return cloud.Errorf(op, "ValidationException",
				"1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to %d", cloud.MaxPutEventsEntries)
		case size >= cloud.MaxPutEventsSize:
			return cloud.Errorf(op, "ValidationException", "Total size of the entries in the request is over the limit (%d bytes)", size)
		}
		c := e.cloud
		c.buses.mu.Lock()
		defer c.buses.mu.Unlock()
		b, err := e.resolve(bus)
		if err != nil {
			return err
		}
		now := c.clock.Now()
		out = make([]cloud.EventResult, len(events))
		for i, ev := range events {
			var detail map[string]any
			switch {
			case len(ev.DetailType) > cloud.MaxDetailTypeLength || ev.DetailType == "":
				out[i] = cloud.EventResult{ErrorCode: "InvalidArgument", ErrorMessage: "Parameter DetailType is not valid."}
			case json.Unmarshal([]byte(ev.Detail), &detail) != nil:
				out[i] = cloud.EventResult{ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed."}
			case strings.HasPrefix(strings.ToLower(source), "aws."):
				out[i] = cloud.EventResult{ErrorCode: "NotAuthorizedForSourceException", ErrorMessage: "Not authorized for the source."}
			case b.fail > 0:
				b.fail--
				out[i] = cloud.EventResult{ErrorCode: b.failCode, ErrorMessage: "injected by the simulator"}
			default:
				c.buses.next++
				id := fmt.Sprintf("00000000-0000-4000-8000-%012d", c.buses.next)
				at := ev.Time
				if at.IsZero() {
					at = now
				}
				b.events = append(b.events, BusEvent{
					ID: id, Source: source, DetailType: ev.DetailType, Detail: ev.Detail,
					Resources: slices.Clone(ev.Resources), Time: at.UTC(), Account: e.account, Region: e.region,
				})
				out[i] = cloud.EventResult{ID: id}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

var (
	_ cloud.EventPublisher = (*Events)(nil)
	_ cloud.EventConnector = (*Connector)(nil)
)
