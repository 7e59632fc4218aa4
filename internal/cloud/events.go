package cloud

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// EventBridge: a run can tell downstream automation what happened
// (events.bus). The port is apart from Connector: a connector without an
// EventBridge client does not implement it, and the run says its events
// were not sent.

// OpPutEvents is EventBridge's PutEvents, as AWS spells it.
const OpPutEvents = "PutEvents"

// Limits of PutEvents ("PutEvents", Amazon EventBridge API Reference,
// https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html).
const (
	// MaxPutEventsEntries is the most entries one call takes ("Array
	// Members: Minimum number of 1 item. Maximum number of 10 items").
	MaxPutEventsEntries = 10
	// MaxPutEventsSize bounds the entries of one call together, measured
	// as EventSize does: "the total entry size must be less than 256KB".
	// Later versions of the page say 1MB; the smaller figure holds
	// wherever either does.
	MaxPutEventsSize = 256 * 1024
	// MaxDetailTypeLength is the longest DetailType: "Free-form string,
	// with a maximum of 128 characters" (PutEventsRequestEntry).
	MaxDetailTypeLength = 128
)

// Event is one entry of a PutEvents call.
type Event struct {
	// DetailType names the kind of event ("amicopier Run Finished").
	DetailType string
	// Detail is a JSON object.
	Detail string
	// Resources are ARNs of what the event concerns (may be empty).
	Resources []string
	// Time is when it happened; zero lets EventBridge use the time of
	// the call.
	Time time.Time
}

// EventSize is the size EventBridge counts for an entry ("Calculating
// PutEvents event entry size", Amazon EventBridge User Guide,
// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html#eb-putevent-size):
// 14 bytes for Time when set, and the UTF-8 bytes of Source, DetailType,
// Detail and each Resource.
func EventSize(source string, e Event) int {
	n := len(source) + len(e.DetailType) + len(e.Detail)
	if !e.Time.IsZero() {
		n += 14
	}
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

// EventResult is EventBridge's answer for one entry: its event id, or the
// error code and message of an entry that failed.
type EventResult struct {
	ID, ErrorCode, ErrorMessage string
}

// Failed reports whether the entry was refused.
func (r EventResult) Failed() bool { return r.ErrorCode != "" || r.ID == "" }

// EntryRetryable reports whether an entry EventBridge refused may be sent
// again: "Retryable errors include: InternalFailure ... ThrottlingException"
// (PutEventsResultEntry, Amazon EventBridge API Reference,
// https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html);
// every other code (AccessDeniedException, InvalidArgument,
// MalformedDetail, NotAuthorizedForSourceException, ...) is not. An entry
// with no error code but no event id either is retried: the page does not
// name that case, and resending is what keeps the event.
func EntryRetryable(code string) bool {
	switch code {
	case "", "InternalFailure", "ThrottlingException":
		return true
	}
	return false
}

// EventPublisher sends events to one event bus.
type EventPublisher interface {
	// PutEvents sends at most MaxPutEventsEntries events, together at
	// most MaxPutEventsSize bytes, with source as their Source, to bus
	// (a name or ARN). The results are in the order of events; an entry
	// that failed is a result with an error code, not an error: the
	// error is for a call EventBridge refused as a whole.
	PutEvents(ctx context.Context, bus, source string, events []Event) ([]EventResult, error)
}

// EventConnector hands out the event publisher of the run's own identity
// (the central account) in a Region.
type EventConnector interface {
	EventBus(ctx context.Context, region string) (EventPublisher, error)
}

// BusRegion returns the Region of an event bus ARN, "" for a bus name
// (the caller's Region).
func BusRegion(bus string) string { return arnField(bus, 3) }

// CheckEventSource says why s cannot be the Source of custom events, or
// returns nil: EventBridge reserves "aws." for AWS services ("Events from
// AWS services", Amazon EventBridge User Guide,
// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events.html);
// the API reference gives Source no other constraint than a length of at
// most 256 characters, so printable ASCII without spaces is the cautious
// rule.
func CheckEventSource(s string) error {
	switch {
	case s == "":
		return errors.New("the source of the events cannot be empty")
	case utf8.RuneCountInString(s) > 256:
		return errors.New("at most 256 characters")
	case strings.HasPrefix(strings.ToLower(s), "aws."):
		return errors.New(`sources starting with "aws." are reserved for AWS services`)
	}
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("character %q is not allowed: only printable ASCII characters without spaces", string(r))
		}
	}
	return nil
}
