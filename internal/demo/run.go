package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/engineconfig"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// Outcome is the demo's result: the drift found, what the run did, what
// the next run did once the copies finished, and the drift left.
type Outcome struct {
	Before *report.Report  `json:"before"`
	Run    *report.Summary `json:"run"`
	// NextRun is the next scheduled run, once the copies are available:
	// it sets their deprecation times (a pending copy's is set when it
	// is available), Deprecations lists each copy's, and it publishes
	// the copies in the SSM parameters (they are pending during the
	// first).
	NextRun      *report.Summary      `json:"next_run"`
	Deprecations []report.Deprecation `json:"deprecations"`
	After        *report.Report       `json:"after"`
	// Events are what the runs sent to the event bus.
	Events []Event `json:"events"`
	// Check is the preflight check of the organisation after the run:
	// what would still break copies, or launches from them.
	Check *report.CheckReport `json:"check"`
}

// Event is an event the bus received.
type Event struct {
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Time       time.Time       `json:"time"`
	Resources  []string        `json:"resources,omitempty"`
	Detail     json.RawMessage `json:"detail"`
}

// Options tune the demo loop.
type Options struct {
	Logger *slog.Logger
	// IncludeOK lists ok pairs in the reports too (the drift matrix).
	IncludeOK bool
	// Progress is told how far the reconcile is.
	Progress reconcile.Progress
}

// Run plays the demo on a scene with a state store: a dry run (the drift
// report), a reconcile, simulated time passing until the copies are
// done, the next scheduled run (the copies' deprecation times, and their
// SSM parameters), a second dry run (the clean report), and the
// preflight check.
func Run(ctx context.Context, s *Scene, store state.Store, o Options) (*Outcome, error) {
	settings, err := engineconfig.Settings(s.Config)
	if err != nil {
		return nil, err
	}
	eng, err := reconcile.New(reconcile.Options{
		Settings: settings,
		Connect: func(context.Context, string) (cloud.Connector, error) {
			return s.Cloud.Connector(SourceAccount), nil
		},
		Store:    store,
		Clock:    s.Cloud,
		Logger:   o.Logger,
		Progress: o.Progress,
	})
	if err != nil {
		return nil, err
	}
	before, err := eng.Run(ctx, reconcile.Request{Mode: reconcile.ModePlan, Trigger: "demo", IncludeOK: o.IncludeOK})
	if err != nil {
		return nil, fmt.Errorf("dry run before reconciling: %w", err)
	}
	applied, err := eng.Run(ctx, reconcile.Request{Mode: reconcile.ModeRun, Trigger: "demo", IncludeOK: o.IncludeOK, TrackCopies: true})
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	// Copies take minutes in AWS; in the simulator, time is ours to move:
	// wait for them as `run --wait` does, each pause moving the clock.
	_, err = reconcile.WaitForCopies(ctx, s.Cloud.Connector(SourceAccount), applied.Started, settings.Concurrency, reconcile.WaitOptions{
		Timeout: time.Minute,
		Sleep:   func(_ context.Context, d time.Duration) error { s.Cloud.Advance(d); return nil },
	})
	if err != nil {
		return nil, fmt.Errorf("wait for the copies: %w", err)
	}
	next, err := eng.Run(ctx, reconcile.Request{Mode: reconcile.ModeRun, Trigger: "demo", IncludeOK: o.IncludeOK})
	if err != nil {
		return nil, fmt.Errorf("the next run: %w", err)
	}
	after, err := eng.Run(ctx, reconcile.Request{Mode: reconcile.ModePlan, Trigger: "demo", IncludeOK: o.IncludeOK, AllParameters: true})
	if err != nil {
		return nil, fmt.Errorf("dry run after reconciling: %w", err)
	}
	check, err := eng.Check(ctx, reconcile.CheckRequest{Trigger: "demo"})
	if err != nil {
		return nil, fmt.Errorf("preflight check: %w", err)
	}
	out := &Outcome{Before: before.Report, Run: applied.Summary, NextRun: next.Summary, Deprecations: next.Report.Deprecations,
		After: after.Report, Check: check, Events: []Event{}}
	for _, e := range s.Cloud.BusEvents(s.Bus) {
		out.Events = append(out.Events, Event{DetailType: e.DetailType, Source: e.Source, Time: e.Time, Resources: e.Resources, Detail: json.RawMessage(e.Detail)})
	}
	return out, nil
}
