package awsapi

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/amicopier/amicopier/internal/cloud"
)

// eventsAdapter is the EventBridge port of the job's own identity in one
// Region.
type eventsAdapter struct {
	api *eventbridge.Client
}

// EventBus returns the EventBridge client of the session's own
// credentials (the central account) in region, the home Region when
// region is empty (the connector is a cloud.EventConnector).
func (c *Connector) EventBus(_ context.Context, region string) (cloud.EventPublisher, error) {
	if region == "" {
		region = c.s.base.Region
	}
	if !cloud.IsRegion(region) {
		return nil, fmt.Errorf("event client: region %q is not an AWS Region name", region)
	}
	cl := cachedClient(c, &c.eventClients, [2]string{"", region}, func() *eventbridge.Client {
		return eventbridge.NewFromConfig(c.s.base, func(o *eventbridge.Options) {
			o.Region = region
			if ep := c.s.cfg.AWS.Endpoints.Events; ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
			o.APIOptions = append(o.APIOptions, stackOptions(&c.counts, c.pace, "", region, c.readOnly))
		})
	})
	return &eventsAdapter{api: cl}, nil
}

// PutEvents sends one batch; the result of each entry is in the order of
// events.
func (a *eventsAdapter) PutEvents(ctx context.Context, bus, source string, events []cloud.Event) ([]cloud.EventResult, error) {
	if len(events) > cloud.MaxPutEventsEntries {
		return nil, fmt.Errorf("PutEvents: %d entries, EventBridge takes at most %d a call", len(events), cloud.MaxPutEventsEntries)
	}
	entries := make([]types.PutEventsRequestEntry, len(events))
	for i, e := range events {
		entries[i] = types.PutEventsRequestEntry{
			EventBusName: aws.String(bus), Source: aws.String(source),
			DetailType: aws.String(e.DetailType), Detail: aws.String(e.Detail), Resources: e.Resources,
		}
		if !e.Time.IsZero() {
			entries[i].Time = aws.Time(e.Time)
		}
	}
	out, err := a.api.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
	if err != nil {
		return nil, apiError("PutEvents", err)
	}
	results := make([]cloud.EventResult, len(out.Entries))
	for i, r := range out.Entries {
		results[i] = cloud.EventResult{ID: aws.ToString(r.EventId), ErrorCode: aws.ToString(r.ErrorCode), ErrorMessage: aws.ToString(r.ErrorMessage)}
	}
	return results, nil
}

var (
	_ cloud.EventConnector = (*Connector)(nil)
	_ cloud.EventPublisher = (*eventsAdapter)(nil)
)
