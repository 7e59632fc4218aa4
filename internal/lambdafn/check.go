package lambdafn

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
)

// OutcomeChecked is the outcome of a preflight check invocation.
const OutcomeChecked = "checked"

// maxResultFindings bounds the findings an invocation returns (Lambda's
// response payload is at most 6 MB); every finding is also logged.
const maxResultFindings = 100

// CheckResult is what a preflight check invocation returns.
type CheckResult struct {
	RunID  string                     `json:"run_id"`
	Status string                     `json:"status"`
	Counts map[report.FindingKind]int `json:"counts"`
	// FindingCount counts every finding; Findings holds the first
	// maxResultFindings of them.
	FindingCount int              `json:"finding_count"`
	Findings     []report.Finding `json:"findings,omitempty"`
	Notes        []string         `json:"notes,omitempty"`
}

// handleCheck runs a scheduled preflight check: read-only (the backend's
// connector refuses every mutating call but dry runs), no state store.
func (h *Handler) handleCheck(ctx context.Context, ev Event, log *slog.Logger) (*Result, error) {
	req := reconcile.Request{Mode: reconcile.ModePlan}
	ctx, cancel, err := h.runContext(ctx, &req)
	if err != nil {
		log.Error("no time to check; nothing done", "error", err)
		return nil, err
	}
	defer cancel()
	runID := reconcile.NewRunID(time.Now())
	log = log.With("run_id", runID, "event", string(ev.Kind))
	conn, sources, err := h.backend(ctx, runID, true, ev.Shard.Count)
	if err != nil {
		return nil, fmt.Errorf("connect to AWS: %w", err)
	}
	eng, err := reconcile.New(reconcile.Options{
		Settings: h.settings, Store: h.store, Clock: h.clock, Logger: log, TargetSources: sources,
		Connect: func(context.Context, string) (cloud.Connector, error) { return conn, nil },
	})
	if err != nil {
		return nil, err
	}
	rep, err := eng.Check(ctx, reconcile.CheckRequest{Trigger: string(KindCheck), RunID: runID, Shard: ev.Shard, Deadline: req.Deadline})
	if err != nil {
		log.Error("check failed", "error", err)
		return nil, err
	}
	for _, f := range rep.Findings {
		log.Warn("check finding", "kind", string(f.Kind), "account", f.Account, "region", f.Region, "key", f.Key,
			"pairs", f.Pairs, "problem", f.Problem, "fix", f.Fix)
	}
	if err := WriteCheckMetrics(h.out, rep, time.Now()); err != nil {
		log.Warn("write metrics", "error", err)
	}
	out := &CheckResult{RunID: rep.RunID, Status: rep.Status, Counts: rep.Counts, FindingCount: len(rep.Findings), Notes: rep.Notes}
	out.Findings = rep.Findings[:min(len(rep.Findings), maxResultFindings)]
	return &Result{Event: ev.Kind, Outcome: OutcomeChecked, Check: out}, nil
}
