// Package reconcile is amicopier's engine: it discovers source AMIs,
// resolves their targets against the organisation, observes the copies
// every target account holds, plans with a pure planner, and (unless it
// is a dry run) shares and copies what is missing, recording progress in
// the state store.
//
// It is level-triggered: every run recomputes the truth from AWS, so a
// missed event is repaired by the next run and a second run changes
// nothing.
package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/state"
)

// Mode is what a run may do.
type Mode string

// Run modes.
const (
	// ModePlan observes and reports; it makes no mutating AWS call and
	// writes nothing to the state store.
	ModePlan Mode = "plan"
	// ModeRun reconciles: the run command.
	ModeRun Mode = "run"
)

// ConnectFunc opens the AWS clients of one run; runID names the sessions.
type ConnectFunc func(ctx context.Context, runID string) (cloud.Connector, error)

// Progress is told how far a run is; the CLI draws a bar with it.
// A run calls Step (and Phase) from several goroutines at once, its
// workers: implementations must be safe for concurrent use.
type Progress interface {
	// Phase starts a phase of total steps ("observe", "copy").
	Phase(name string, total int)
	// Step records n finished steps of the current phase.
	Step(n int)
}

// Options build an Engine.
type Options struct {
	// Settings are the engine's configuration (engineconfig.Settings
	// builds them from config.yaml).
	Settings Settings
	Connect  ConnectFunc
	Store    state.Store
	// Clock dates records and backoffs; the simulator's clock in tests
	// and the demo. Default: the system clock.
	Clock Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TargetSources are metadata sources beyond the tag and rules of the
	// settings (the AMIgo recipes table).
	TargetSources []cloud.TargetSource
	// Progress is optional.
	Progress Progress
}

// Engine runs reconciliations. It holds no per-run state: several runs
// may use one engine (the state lease keeps them from overlapping).
type Engine struct {
	set      Settings
	connect  ConnectFunc
	store    state.Store
	clock    Clock
	log      *slog.Logger
	sources  []cloud.TargetSource
	progress Progress
	shaper   *copyShaper
	// ticker starts the lease renewal ticks; tests of the renewal pass a
	// channel they drive by hand instead of waiting for real time.
	ticker func(d time.Duration) (tick <-chan time.Time, stop func())
}

// New checks the options and builds an engine.
func New(o Options) (*Engine, error) {
	if err := o.Settings.Validate(); err != nil {
		return nil, err
	}
	if o.Connect == nil {
		return nil, errors.New("reconcile: no AWS connector")
	}
	if o.Store == nil {
		return nil, errors.New("reconcile: no state store")
	}
	e := &Engine{
		set: o.Settings, connect: o.Connect, store: o.Store, clock: o.Clock,
		log: o.Logger, progress: o.Progress, shaper: newCopyShaper(o.Settings),
	}
	if e.clock == nil {
		e.clock = SystemClock{}
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.progress == nil {
		e.progress = noProgress{}
	}
	e.ticker = func(d time.Duration) (<-chan time.Time, func()) {
		t := time.NewTicker(d)
		return t.C, t.Stop
	}
	if o.Settings.TargetTagKey != "" {
		e.sources = append(e.sources, TagTargets{Key: o.Settings.TargetTagKey})
	}
	if len(o.Settings.Rules) > 0 {
		e.sources = append(e.sources, RuleTargets{Rules: o.Settings.Rules})
	}
	e.sources = append(e.sources, o.TargetSources...)
	return e, nil
}

type noProgress struct{}

func (noProgress) Phase(string, int) {}
func (noProgress) Step(int)          {}

// Request says what one run covers.
type Request struct {
	Mode Mode
	// Trigger names what started the run: "cli", "schedule", "sns",
	// "ami-state-change", "demo".
	Trigger string
	// OnlyImages and OnlyAccounts narrow the run's scope.
	OnlyImages   []string
	OnlyAccounts []string
	// ExtraTargets are added to every image's targets (event payloads);
	// they are checked against the organisation like any other.
	ExtraTargets []cloud.TargetRef
	// Deadline is when the run must have finished (the Lambda deadline);
	// zero means none beyond the configured time budget.
	Deadline time.Time
	// RunID is generated when empty.
	RunID string
	// IncludeOK keeps ok pairs (and ok SSM parameters) in the report (for
	// the drift matrix).
	IncludeOK bool
	// AllParameters lists every SSM parameter in the report, ok ones
	// included, whatever IncludeOK says.
	AllParameters bool
	// Shard restricts the run to one shard of the target accounts (see
	// Shard); the zero value is the whole organisation.
	Shard Shard
	// RequireScopeMatch makes a run whose OnlyImages or OnlyAccounts
	// name something that matches nothing fail with a *ScopeError, before
	// anything is observed or changed (a person typed the scope). Without
	// it the report only lists what matched nothing (Report.Unmatched).
	RequireScopeMatch bool
	// TrackCopies lists the copies the run starts in Result.Started, for
	// WaitForCopies (the CLI's --wait).
	TrackCopies bool
}

// NewRunID returns a sortable, unique run id.
func NewRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Scope names the lease a run takes: one run at a time per source account
// (per shard of it for a sharded run: see ScopeFor).
func (e *Engine) Scope() string { return e.set.SourceAccount }

// Holder is the other run a run ran into: one that holds the lease of
// Scope until Expires, or (zero Expires) one that held it and changed the
// state while this run observed (Run is empty when the changed record
// names no run). Its String says which.
type Holder struct {
	Scope, Run string
	Expires    time.Time
	err        error
}

func (h Holder) String() string {
	if h.err == nil {
		return "another run holds scope " + h.Scope
	}
	return h.err.Error()
}

// LeaseHeld reports whether err says another run is working on the
// scope: it holds the lease (*state.LeaseHeldError), or held it and
// changed the state while this run observed (*StaleError). Either way this
// run changed nothing and should exit cleanly.
func LeaseHeld(err error) (Holder, bool) {
	var stale *StaleError
	if errors.As(err, &stale) {
		return Holder{Scope: stale.Scope, Run: stale.Holder, err: stale}, true
	}
	var held *state.LeaseHeldError
	if errors.As(err, &held) {
		return Holder{Scope: held.Scope, Run: held.Holder, Expires: held.Expires, err: held}, true
	}
	return Holder{}, false
}

// errorf wraps an error with the resource it concerns.
func errorf(err error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}
