package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/amicopier/amicopier/state"
)

// statusSchemaVersion versions `status --output json`; bump it when a
// field changes meaning or disappears (adding fields is compatible).
const statusSchemaVersion = 1

// statusReport is what `amicopier status` shows.
type statusReport struct {
	SchemaVersion int    `json:"schema_version"`
	Store         string `json:"store"`
	SourceAccount string `json:"source_account"`
	// Runs are the latest runs, newest first.
	Runs []statusRun `json:"runs"`
	// Pairs groups the unsettled pairs by status; every group is present,
	// empty when it has no pair.
	Pairs statusPairs `json:"pairs"`
}

type statusPairs struct {
	InProgress []statusPair `json:"in_progress"`
	Failing    []statusPair `json:"failing"`
	Deferred   []statusPair `json:"deferred"`
	Stuck      []statusPair `json:"stuck"`
	Rejected   []statusPair `json:"rejected"`
	Orphaned   []statusPair `json:"orphaned"`
	// Other holds statuses this build does not know (a newer writer).
	Other []statusPair `json:"other,omitempty"`
}

type statusRun struct {
	ID              string         `json:"id"`
	Trigger         string         `json:"trigger"`
	Shard           string         `json:"shard,omitempty"`
	Mode            string         `json:"mode"`
	Status          string         `json:"status"`
	Started         time.Time      `json:"started"`
	Finished        *time.Time     `json:"finished,omitempty"`
	DurationSeconds *float64       `json:"duration_seconds,omitempty"`
	Counts          map[string]int `json:"counts"`
	Actions         map[string]int `json:"actions"`
	Errors          []string       `json:"errors"`
}

type statusPair struct {
	SourceImage   string     `json:"source_image"`
	Account       string     `json:"account"`
	Region        string     `json:"region"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	Failures      int        `json:"failures"`
	CopyImageID   string     `json:"copy_image_id,omitempty"`
	LastErrorCode string     `json:"last_error_code,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	NextRetry     *time.Time `json:"next_retry,omitempty"`
	UpdatedAt     time.Time  `json:"updated_at"`
	RunID         string     `json:"run_id,omitempty"`
}

func runStatus(ctx context.Context, args []string, env Env) int {
	fs := newFlags("status", "[--config FILE] [--runs N] [--output table|json] [--timeout DURATION]",
		"Show what the state store remembers for the configured source account: the latest runs\n"+
			"(trigger, mode, status, start, duration, pairs per drift category, actions, errors) and the\n"+
			"pairs that are not settled: copies in progress, failing pairs (attempts, last error, next\n"+
			"retry), stuck pairs (attempts exhausted), rejected targets and orphaned copies.\n"+
			"Reads only, with every state backend, also while a run works. A state file is opened read-only\n"+
			"and never created: one that does not exist (check state.path) is an error.\n\n"+envHelp(), env)
	path := fs.String("config", defaultConfigPath, "configuration file naming the state backend and source account")
	runs := fs.Int("runs", 10, "how many of the latest runs to show (at least 1)")
	output := fs.String("output", "table", "output format: table or json")
	limit := fs.Duration("timeout", 2*time.Minute, "give up reading the state store after this long")
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	switch {
	case *runs < 1:
		fmt.Fprintf(env.Stderr, "amicopier status: --runs %d: want at least 1\n", *runs)
		return ExitUsage
	case *output != "table" && *output != "json":
		fmt.Fprintf(env.Stderr, "amicopier status: --output %q: want table or json\n", *output)
		return ExitUsage
	case *limit <= 0:
		fmt.Fprintf(env.Stderr, "amicopier status: --timeout %s: want a positive duration\n", *limit)
		return ExitUsage
	}
	cfg, err := loadConfig(*path, env)
	if err != nil {
		return fail(env, "status", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()
	store, err := openReadOnlyStore(ctx, cfg)
	if err != nil {
		if errors.Is(err, state.ErrTableNotFound) {
			defer fmt.Fprintf(env.Stderr, "Create the table with: amicopier state init --config %s\n", *path)
		}
		return fail(env, "status", err)
	}
	defer store.Close()

	// Runs are recorded under the engine's lease scope, which is the
	// source account (reconcile.Engine.Scope).
	source := cfg.Source.AccountID
	rep, err := readStatus(ctx, store, source, *runs)
	if err != nil {
		return fail(env, "status", err)
	}
	rep.Store = describeStore(cfg, store)
	if *output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail(env, "status", err)
		}
		return ExitOK
	}
	if err := writeStatusTable(env.Stdout, rep); err != nil {
		return fail(env, "status", err)
	}
	return ExitOK
}

// readStatus gathers the report: one RecentRuns and one UnsettledPairs.
func readStatus(ctx context.Context, store state.Store, source string, runs int) (*statusReport, error) {
	rep := &statusReport{
		SchemaVersion: statusSchemaVersion, SourceAccount: source, Runs: []statusRun{},
		Pairs: statusPairs{InProgress: []statusPair{}, Failing: []statusPair{}, Deferred: []statusPair{}, Stuck: []statusPair{}, Rejected: []statusPair{}, Orphaned: []statusPair{}},
	}
	recent, err := store.RecentRuns(ctx, source, runs)
	if err != nil {
		return nil, fmt.Errorf("read the runs of source account %s: %w", source, err)
	}
	for _, r := range recent {
		sr := statusRun{
			ID: r.ID, Trigger: r.Trigger, Shard: r.Shard, Mode: r.Mode, Status: r.Status, Started: r.Started,
			Counts: nonZero(r.Counts), Actions: nonZero(r.Actions), Errors: slices.Clone(r.Errors),
		}
		if sr.Errors == nil {
			sr.Errors = []string{}
		}
		if !r.Finished.IsZero() {
			f := r.Finished
			d := r.Finished.Sub(r.Started).Seconds()
			sr.Finished, sr.DurationSeconds = &f, &d
		}
		rep.Runs = append(rep.Runs, sr)
	}
	pairs, err := store.UnsettledPairs(ctx, source)
	if err != nil {
		return nil, fmt.Errorf("read the unsettled pairs of source account %s: %w", source, err)
	}
	for _, p := range pairs {
		sp := statusPair{
			SourceImage: p.Key.SourceImage, Account: p.Key.Account, Region: p.Key.Region, Status: string(p.Status),
			Attempts: p.Attempts, Failures: p.Failures, CopyImageID: p.CopyImageID,
			LastErrorCode: p.LastErrorCode, LastError: p.LastError, UpdatedAt: p.UpdatedAt, RunID: p.RunID,
		}
		if !p.NextRetry.IsZero() {
			t := p.NextRetry
			sp.NextRetry = &t
		}
		switch p.Status {
		case state.PairCopying:
			rep.Pairs.InProgress = append(rep.Pairs.InProgress, sp)
		case state.PairFailed:
			rep.Pairs.Failing = append(rep.Pairs.Failing, sp)
		case state.PairDeferred:
			rep.Pairs.Deferred = append(rep.Pairs.Deferred, sp)
		case state.PairStuck:
			rep.Pairs.Stuck = append(rep.Pairs.Stuck, sp)
		case state.PairRejected:
			rep.Pairs.Rejected = append(rep.Pairs.Rejected, sp)
		case state.PairOrphaned:
			rep.Pairs.Orphaned = append(rep.Pairs.Orphaned, sp)
		default:
			rep.Pairs.Other = append(rep.Pairs.Other, sp)
		}
	}
	return rep, nil
}

// nonZero drops zero counts (a run records every category) and never
// returns nil, so JSON shows {} rather than null.
func nonZero(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// statusTime renders a time in UTC, to the second.
func statusTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// clip shortens s to n characters for a table cell.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeStatusTable(w io.Writer, rep *statusReport) error {
	fmt.Fprintf(w, "State: %s\nSource account: %s\n", rep.Store, rep.SourceAccount)

	if len(rep.Runs) == 0 {
		fmt.Fprintln(w, "\nNo runs recorded (or all expired).")
	} else {
		fmt.Fprintf(w, "\nLatest runs (%d, newest first):\n", len(rep.Runs))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tTRIGGER\tMODE\tSTATUS\tSTARTED\tDURATION\tPAIRS BY CATEGORY\tACTIONS\tERRORS")
		for _, r := range rep.Runs {
			dur := "running"
			if r.DurationSeconds != nil {
				dur = (time.Duration(*r.DurationSeconds * float64(time.Second))).Round(time.Second).String()
			}
			trigger := orDash(r.Trigger)
			if r.Shard != "" {
				trigger += " (shard " + r.Shard + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.ID, trigger, orDash(r.Mode), orDash(r.Status),
				statusTime(r.Started), dur, orDash(countList(r.Counts)), orDash(countList(r.Actions)), len(r.Errors))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, r := range rep.Runs {
			for _, e := range r.Errors {
				fmt.Fprintf(w, "  run %s: %s\n", r.ID, clip(e, 200))
			}
		}
	}

	groups := []struct {
		title string
		pairs []statusPair
		cols  string
		row   func(p statusPair) string
	}{
		{"Copies in progress", rep.Pairs.InProgress, "SOURCE IMAGE\tACCOUNT\tREGION\tATTEMPT\tCOPY\tSINCE\tRUN",
			func(p statusPair) string {
				return fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s\t%s", p.SourceImage, p.Account, p.Region, p.Attempts,
					orDash(p.CopyImageID), statusTime(p.UpdatedAt), orDash(p.RunID))
			}},
		{"Failing (retried with backoff)", rep.Pairs.Failing, "SOURCE IMAGE\tACCOUNT\tREGION\tATTEMPTS\tFAILURES\tLAST ERROR\tNEXT RETRY",
			func(p statusPair) string {
				return fmt.Sprintf("%s\t%s\t%s\t%d\t%d\t%s\t%s", p.SourceImage, p.Account, p.Region, p.Attempts, p.Failures,
					lastError(p), nextRetry(p))
			}},
		{"Deferred (not started, nothing failed; the next run asks again with the same request)", rep.Pairs.Deferred,
			"SOURCE IMAGE\tACCOUNT\tREGION\tATTEMPT\tWHY\tSINCE",
			func(p statusPair) string {
				return fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s", p.SourceImage, p.Account, p.Region, p.Attempts,
					lastError(p), statusTime(p.UpdatedAt))
			}},
		{"Stuck (attempts exhausted; retried when the source or its settings change)", rep.Pairs.Stuck,
			"SOURCE IMAGE\tACCOUNT\tREGION\tATTEMPTS\tFAILURES\tLAST ERROR\tSINCE",
			func(p statusPair) string {
				return fmt.Sprintf("%s\t%s\t%s\t%d\t%d\t%s\t%s", p.SourceImage, p.Account, p.Region, p.Attempts, p.Failures,
					lastError(p), statusTime(p.UpdatedAt))
			}},
		{"Rejected targets", rep.Pairs.Rejected, "SOURCE IMAGE\tACCOUNT\tREGION\tREASON\tSINCE",
			func(p statusPair) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", p.SourceImage, p.Account, p.Region, lastError(p), statusTime(p.UpdatedAt))
			}},
		{"Orphaned copies (source gone)", rep.Pairs.Orphaned, "SOURCE IMAGE\tACCOUNT\tREGION\tCOPY\tGRACE ENDS",
			func(p statusPair) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", p.SourceImage, p.Account, p.Region, orDash(p.CopyImageID), nextRetry(p))
			}},
		{"Other statuses", rep.Pairs.Other, "SOURCE IMAGE\tACCOUNT\tREGION\tSTATUS\tLAST ERROR\tSINCE",
			func(p statusPair) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", p.SourceImage, p.Account, p.Region, p.Status, lastError(p), statusTime(p.UpdatedAt))
			}},
	}
	for _, g := range groups {
		if len(g.pairs) == 0 {
			if g.title != "Other statuses" {
				fmt.Fprintf(w, "\n%s: none\n", g.title)
			}
			continue
		}
		fmt.Fprintf(w, "\n%s (%d):\n", g.title, len(g.pairs))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, g.cols)
		for _, p := range g.pairs {
			fmt.Fprintln(tw, g.row(p))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func lastError(p statusPair) string {
	switch {
	case p.LastErrorCode != "" && p.LastError != "":
		return clip(p.LastErrorCode+": "+p.LastError, 100)
	case p.LastErrorCode != "":
		return p.LastErrorCode
	}
	return orDash(clip(p.LastError, 100))
}

func nextRetry(p statusPair) string {
	if p.NextRetry == nil {
		return "-"
	}
	return statusTime(*p.NextRetry)
}

// countList renders counts as "k=v k=v" in key order.
func countList(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
