package awsfake

import (
	"context"
	"encoding/json"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// eventsProtocol serves EventBridge's PutEvents over the JSON 1.1
// protocol (X-Amz-Target AWSEvents.PutEvents), from the simulator: the
// base credentials are the central identity.
type eventsProtocol struct{}

func (eventsProtocol) contentType() string { return "application/x-amz-json-1.1" }
func (eventsProtocol) badKeyCode() string  { return "UnrecognizedClientException" }

func (eventsProtocol) errorBody(code, message, _ string) []byte {
	b, _ := json.Marshal(map[string]string{"__type": code, "message": message})
	return b
}

func (eventsProtocol) handle(ctx context.Context, s *Server, r *Request) ([]byte, error) {
	if r.Op != "PutEvents" {
		return nil, cloud.Errorf(r.Op, "UnknownOperationException", "awsfake does not implement EventBridge operation %q", r.Op)
	}
	list, _ := r.JSON["Entries"].([]any)
	var bus, source string
	events := make([]cloud.Event, 0, len(list))
	for i, x := range list {
		e, _ := x.(map[string]any)
		b, src := stringField(e, "EventBusName"), stringField(e, "Source")
		if i == 0 {
			bus, source = b, src
		} else if b != bus || src != source {
			return nil, cloud.Errorf(r.Op, "ValidationException", "awsfake takes one EventBusName and Source per call (entry %d differs)", i)
		}
		ev := cloud.Event{DetailType: stringField(e, "DetailType"), Detail: stringField(e, "Detail"), Resources: stringList(e["Resources"])}
		if t, ok := e["Time"].(float64); ok {
			ev.Time = time.UnixMilli(int64(t * 1000)).UTC()
		}
		events = append(events, ev)
	}
	results, err := s.cloud.EventClient(r.Account, r.Region, !r.Assumed).PutEvents(ctx, bus, source, events)
	if err != nil {
		return nil, err
	}
	entries := make([]map[string]string, len(results))
	failed := 0
	for i, res := range results {
		if res.Failed() {
			failed++
			entries[i] = map[string]string{"ErrorCode": res.ErrorCode, "ErrorMessage": res.ErrorMessage}
			continue
		}
		entries[i] = map[string]string{"EventId": res.ID}
	}
	return json.Marshal(map[string]any{"FailedEntryCount": failed, "Entries": entries})
}
