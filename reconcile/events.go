package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/pause"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// Events (events.bus): a run that reconciles tells downstream automation
// what happened, on an EventBridge bus:
//
//   - one "amicopier Copy Available" per copy that became available since
//     the last run: a pair whose record said a copy was on its way
//     (copying, failed, deferred...) and that this run settled on a good
//     copy;
//   - one "amicopier Pair Stuck" per pair that became stuck in this run
//     (its record was not stuck before);
//   - one "amicopier Run Finished", last, with the run's counts.
//
// The transitions are read from the state records the run wrote, so each
// is sent by the one run that made it (its record, and the lease, keep two
// runs from making the same one). Entries are sent ten a call, within the
// size PutEvents takes; the entries EventBridge refuses with a retryable
// code are sent again, with backoff, a few times. An event that still
// cannot be sent is a run error (the run is partial, and the log and the
// run record say which): the transition is recorded, so it is not sent
// again by the next run. A dry run sends nothing and reports what run
// would send. The schemas are in README.md ("Events").

// Detail types of the events, as the README documents them.
const (
	EventRunFinished   = "amicopier Run Finished"
	EventCopyAvailable = "amicopier Copy Available"
	EventPairStuck     = "amicopier Pair Stuck"
)

// DefaultEventSource is the Source of amicopier's events.
const DefaultEventSource = cloud.DefaultEventSource

// EventSettings say where a run publishes its events.
type EventSettings struct {
	// Bus is an event bus name or ARN; "" publishes nothing.
	Bus string
	// Source is the events' Source (default DefaultEventSource).
	Source string
	// Region is the bus's Region; "" is the connector's home Region.
	Region string
	// Attempts is how often an entry EventBridge refuses with a retryable
	// code is sent, at most (default 5); RetryBase the wait before the
	// first resend, doubled each time (default 200ms).
	Attempts  int
	RetryBase time.Duration
}

// PairDetail is what the events about one pair say of it.
type PairDetail struct {
	RunID         string `json:"run_id"`
	SourceAccount string `json:"source_account"`
	Account       string `json:"account"`
	AccountName   string `json:"account_name,omitempty"`
	Region        string `json:"region"`
	SourceImage   string `json:"source_image"`
	SourceName    string `json:"source_name,omitempty"`
	SourceRegion  string `json:"source_region"`
	// Group is the source's group: its Recipe tag, else its name.
	Group string `json:"group"`
}

// CopyAvailableDetail is the detail of an "amicopier Copy Available"
// event.
type CopyAvailableDetail struct {
	PairDetail
	CopyImage string `json:"copy_image"`
	// Parameter is the SSM parameter the group is published in, when
	// publish.ssm is set.
	Parameter string `json:"parameter,omitempty"`
}

// PairStuckDetail is the detail of an "amicopier Pair Stuck" event.
type PairStuckDetail struct {
	PairDetail
	Attempts      int    `json:"attempts"`
	Failures      int    `json:"failures"`
	LastErrorCode string `json:"last_error_code,omitempty"`
	LastError     string `json:"last_error,omitempty"`
}

// RunFinishedDetail is the detail of an "amicopier Run Finished" event.
type RunFinishedDetail struct {
	RunID         string    `json:"run_id"`
	SourceAccount string    `json:"source_account"`
	Trigger       string    `json:"trigger"`
	Mode          string    `json:"mode"`
	Shard         string    `json:"shard,omitempty"`
	Status        string    `json:"status"`
	Started       time.Time `json:"started"`
	Finished      time.Time `json:"finished"`
	// Pairs counts every pair observed, Drift those not ok, Counts them
	// per drift category; Parameters the SSM parameters per state.
	Pairs      int                           `json:"pairs"`
	Drift      int                           `json:"drift"`
	Counts     map[report.Category]int       `json:"counts"`
	Parameters map[report.ParameterState]int `json:"parameters,omitempty"`
	// Actions counts what the run did ("copy", "parameter_updated", ...);
	// CopyAvailable and PairStuck the events of this run.
	Actions          map[string]int `json:"actions"`
	CopyAvailable    int            `json:"copy_available"`
	PairStuck        int            `json:"pair_stuck"`
	Errors           int            `json:"errors"`
	UnreachableCount int            `json:"unreachable_accounts"`
}

// groupOf is a source's group for the events: its Recipe tag, else its
// name, else its id (as the drift matrix groups rows).
func groupOf(img *cloud.Image) string { return cmp.Or(img.Tags["Recipe"], img.Name, img.ID) }

// imageARN is the ARN of an AMI in region: "arn:PARTITION:ec2:REGION::
// image/ID" (Amazon EC2 resource types, Service Authorization Reference).
func imageARN(region, id string) string {
	partition := "aws"
	if r, ok := cloud.KnownRegion(region); ok {
		partition = r.Partition
	} else if p, ok := cloud.PartitionByPattern(region); ok {
		partition = p
	}
	return "arn:" + partition + ":ec2:" + region + "::image/" + id
}

// transitions finds the pairs the run moved to available and to stuck:
// from the decisions of the plan in a dry run, from the records written
// otherwise. Results are in pair order.
func (r *run) transitions() (available []CopyAvailableDetail, stuck []PairStuckDetail) {
	work := slices.Clone(r.seen.work)
	slices.SortFunc(work, func(a, b *regionWork) int {
		return cmp.Or(strings.Compare(a.account, b.account), strings.Compare(a.region, b.region))
	})
	for _, rw := range work {
		for _, pw := range rw.pairs {
			if pw.src == nil {
				continue // a record retired, no pair of this run
			}
			before := r.seen.records[[2]string{pw.key.Account, pw.key.Region}][pw.key]
			var after *state.Pair
			if r.req.Mode == ModePlan {
				after = pw.dec.Record
			} else if w, ok := r.out.writtenRecord(pw.key); ok {
				after = &w
			}
			if after == nil {
				continue
			}
			img := &pw.src.img
			pd := PairDetail{
				RunID: r.id, SourceAccount: r.e.set.SourceAccount, Account: pw.key.Account, AccountName: r.accountName(pw.key.Account),
				Region: pw.key.Region, SourceImage: img.ID, SourceName: img.Name, SourceRegion: img.Region, Group: groupOf(img),
			}
			switch {
			case after.Status == state.PairSettled && after.CopyImageID != "" && before.Status != "" && !before.Status.Settled() &&
				before.Status != state.PairOrphaned && (pw.dec.Category == report.OK || pw.dec.Category == report.Duplicate):
				d := CopyAvailableDetail{PairDetail: pd, CopyImage: after.CopyImageID}
				if r.params != nil {
					d.Parameter = r.parameterName(pw.src)
				}
				available = append(available, d)
			case after.Status == state.PairStuck && before.Status != state.PairStuck:
				stuck = append(stuck, PairStuckDetail{PairDetail: pd,
					Attempts: after.Attempts, Failures: after.Failures, LastErrorCode: after.LastErrorCode, LastError: after.LastError,
				})
			}
		}
	}
	return available, stuck
}

// publishEvents sends the run's events (events.bus): called by finish
// once the summary is made and before the run is recorded, so an event
// that could not be sent makes the run partial and is in its record. A
// dry run sends nothing and lists what run would send in the report. It
// works on a context of its own: a run stopped by its deadline or a
// signal still reports how it ended.
func (r *run) publishEvents(ctx context.Context, rep *report.Report, sum *report.Summary) {
	set := r.e.set.Events
	if set.Bus == "" {
		return
	}
	available, stuck := r.transitions()
	if r.req.Mode == ModePlan {
		counts := map[string]int{EventRunFinished: 1}
		if len(available) > 0 {
			counts[EventCopyAvailable] = len(available)
		}
		if len(stuck) > 0 {
			counts[EventPairStuck] = len(stuck)
		}
		rep.Events = &report.EventCounts{Bus: set.Bus, WouldPublish: counts}
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	s := &eventSender{r: r, sum: sum, out: &report.EventCounts{Bus: set.Bus, Published: map[string]int{}}}
	sum.Events = s.out
	now := r.e.clock.Now()
	var events []cloud.Event
	for _, d := range available {
		events = s.add(events, now, EventCopyAvailable, d, imageARN(d.Region, d.CopyImage), imageARN(d.SourceRegion, d.SourceImage))
	}
	for _, d := range stuck {
		events = s.add(events, now, EventPairStuck, d, imageARN(d.SourceRegion, d.SourceImage))
	}
	pub, err := r.eventPublisher(ctx)
	if err != nil {
		s.out.Failed += len(events) + 1
		s.fail("events: no events sent to %s: %v", set.Bus, err)
		return
	}
	s.send(ctx, pub, events)
	// The run's own event last, with what the others came to.
	fin := RunFinishedDetail{
		RunID: r.id, SourceAccount: r.e.set.SourceAccount, Trigger: r.req.Trigger, Mode: string(r.req.Mode), Shard: r.shard.String(),
		Status: sum.Status, Started: r.started.UTC(), Finished: time.Now().UTC(),
		Pairs: rep.Pairs, Drift: rep.Drift(), Counts: maps.Clone(rep.Counts), Parameters: maps.Clone(rep.ParameterCounts),
		Actions: maps.Clone(sum.Actions), CopyAvailable: s.out.Published[EventCopyAvailable], PairStuck: s.out.Published[EventPairStuck],
		Errors: sum.ErrorCount, UnreachableCount: sum.UnreachableCount,
	}
	if fin.Actions == nil {
		fin.Actions = map[string]int{}
	}
	s.send(ctx, pub, s.add(nil, now, EventRunFinished, fin))
	// The summary's calls were counted before the events went.
	if cc, ok := r.conn.(cloud.CallCounter); ok {
		sum.APICalls = cc.CallCounts()
		sum.MutatingCalls = 0
		for op, n := range sum.APICalls {
			if cloud.IsMutating(op) {
				sum.MutatingCalls += n
			}
		}
		sum.ThrottledCalls, sum.ThrottleErrors = cc.Throttles()
	}
}

// eventSender sends one run's events and accounts for them in the
// summary.
type eventSender struct {
	r   *run
	sum *report.Summary
	out *report.EventCounts
}

// fail records an error of the events in the summary (which makes the run
// partial) and the log.
func (s *eventSender) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.sum.Errors = append(s.sum.Errors, truncateRunes(msg, maxErrorLen))
	s.sum.ErrorCount++
	if s.sum.Status == report.StatusSucceeded {
		s.sum.Status = report.StatusPartial
	}
	s.r.e.log.Warn(msg, "run_id", s.r.id)
}

// add appends an event with detail encoded as JSON.
func (s *eventSender) add(events []cloud.Event, at time.Time, detailType string, detail any, resources ...string) []cloud.Event {
	b, err := json.Marshal(detail)
	if err != nil {
		s.out.Failed++
		s.fail("events: encode a %q event: %v", detailType, err)
		return events
	}
	return append(events, cloud.Event{DetailType: detailType, Detail: string(b), Resources: resources, Time: at})
}

// eventPublisher returns the publisher of the bus's Region.
func (r *run) eventPublisher(ctx context.Context) (cloud.EventPublisher, error) {
	ec, ok := r.conn.(cloud.EventConnector)
	if !ok {
		return nil, fmt.Errorf("this connection has no EventBridge client")
	}
	return ec.EventBus(ctx, r.e.set.Events.Region)
}

// eventBatches splits events into PutEvents calls: at most
// cloud.MaxPutEventsEntries entries, together less than
// cloud.MaxPutEventsSize as EventBridge counts them. An event that does
// not fit a call alone is returned apart.
func eventBatches(source string, events []cloud.Event) (batches [][]cloud.Event, tooLarge []cloud.Event) {
	var cur []cloud.Event
	size := 0
	for _, ev := range events {
		n := cloud.EventSize(source, ev)
		if n >= cloud.MaxPutEventsSize {
			tooLarge = append(tooLarge, ev)
			continue
		}
		if len(cur) == cloud.MaxPutEventsEntries || size+n >= cloud.MaxPutEventsSize {
			batches = append(batches, cur)
			cur, size = nil, 0
		}
		cur = append(cur, ev)
		size += n
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches, tooLarge
}

// send sends events in batches; the entries EventBridge refuses with
// a retryable code are sent again (alone with the other refused ones),
// with backoff, until they are accepted or Attempts is spent. It counts
// what was published and what failed in out.
func (s *eventSender) send(ctx context.Context, pub cloud.EventPublisher, events []cloud.Event) {
	r, out := s.r, s.out
	set := r.e.set.Events
	source := cmp.Or(set.Source, DefaultEventSource)
	attempts := cmp.Or(set.Attempts, 5)
	wait := cmp.Or(set.RetryBase, 200*time.Millisecond)
	batches, tooLarge := eventBatches(source, events)
	for _, ev := range tooLarge {
		out.Failed++
		s.fail("events: a %q event of %d bytes is larger than PutEvents takes (%d); not sent", ev.DetailType, cloud.EventSize(source, ev), cloud.MaxPutEventsSize)
	}
	for _, batch := range batches {
		pending := batch
		for attempt := 1; len(pending) > 0; attempt++ {
			results, err := pub.PutEvents(ctx, set.Bus, source, pending)
			if err == nil && len(results) != len(pending) {
				err = fmt.Errorf("PutEvents answered %d results for %d entries", len(results), len(pending))
			}
			if err != nil {
				out.Failed += len(pending)
				s.fail("events: PutEvents to %s: %d event(s) not sent (%s): %v", set.Bus, len(pending), detailTypes(pending), err)
				break
			}
			var again []cloud.Event
			var lastCode, lastMsg string
			for i, res := range results {
				if !res.Failed() {
					out.Published[pending[i].DetailType]++
					continue
				}
				lastCode, lastMsg = res.ErrorCode, res.ErrorMessage
				if cloud.EntryRetryable(res.ErrorCode) && attempt < attempts {
					again = append(again, pending[i])
					continue
				}
				out.Failed++
				s.fail("events: EventBridge refused a %q event for %s: %s: %s", pending[i].DetailType, set.Bus, cmp.Or(res.ErrorCode, "no event id"), res.ErrorMessage)
			}
			if len(again) > 0 {
				r.e.log.Warn("events: EventBridge refused entries; sending them again", "run_id", r.id, "entries", len(again),
					"error_code", lastCode, "error", lastMsg, "attempt", attempt)
				if err := pause.For(ctx, wait<<(attempt-1)); err != nil {
					out.Failed += len(again)
					s.fail("events: %d event(s) not sent to %s: %v", len(again), set.Bus, err)
					break
				}
			}
			pending = again
		}
	}
}

func detailTypes(events []cloud.Event) string {
	seen := map[string]int{}
	for _, e := range events {
		seen[e.DetailType]++
	}
	return strings.Join(mapEntriesOf(seen), ", ")
}

func mapEntriesOf(m map[string]int) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, fmt.Sprintf("%d %s", m[k], k))
	}
	return out
}
