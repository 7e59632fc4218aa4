package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/termtable"
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
	// ReadAt is when status read the store.
	ReadAt time.Time `json:"read_at"`
	// Runs are the latest runs, newest first.
	Runs []statusRun `json:"runs"`
	// Pairs groups the unsettled pairs by status; every group is present,
	// empty when it has no pair. They are as runs recorded them: status
	// reads no AWS, so a copy that finished after its run is listed in
	// progress until the next run records it.
	Pairs statusPairs `json:"pairs"`
	// Recorded says, per non-empty group of Pairs, which runs recorded
	// its pairs: the "as of" of the group.
	Recorded map[string]statusAsOf `json:"recorded"`
}

// statusAsOf is when a group of pairs was recorded: by how many runs,
// the latest of them and when it wrote.
type statusAsOf struct {
	Runs         int       `json:"runs"`
	LatestRunID  string    `json:"latest_run_id,omitempty"`
	LatestUpdate time.Time `json:"latest_update"`
}

type statusPairs struct {
	InProgress []statusPair `json:"in_progress"`
	Failing    []statusPair `json:"failing"`
	Deferred   []statusPair `json:"deferred"`
	Stuck      []statusPair `json:"stuck"`
	Rejected   []statusPair `json:"rejected"`
	Orphaned   []statusPair `json:"orphaned"`
	Superseded []statusPair `json:"superseded"`
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
	// Unreachable lists the target accounts the run could not work in;
	// UnreachableCount counts them all (the list is bounded).
	Unreachable      []state.UnreachableAccount `json:"unreachable"`
	UnreachableCount int                        `json:"unreachable_count"`
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
	fs := newFlags("status", usageDoc{
		description: "Show what the state store remembers for the configured source account: the latest runs\n" +
			"(trigger, mode, status, start, duration, pairs per drift category, actions, errors, unreachable\n" +
			"accounts; runs that failed outright too, with their error) and the pairs that are not settled:\n" +
			"copies in progress, failing pairs (attempts, last error, next retry), stuck pairs (attempts\n" +
			"exhausted), rejected targets and orphaned copies, each group as of the run that recorded it.\n" +
			"Reads only the state store, never AWS: a copy that finished after its run ended (even one\n" +
			"`run --wait` saw finish) is listed in progress until the next run records it; `amicopier plan`\n" +
			"shows what EC2 says now. Works with every state backend, also while a run works: a state file\n" +
			"is opened read-only and never created (one that does not exist, check state.path, is an error).\n" +
			"Tables fit the terminal (else $COLUMNS, else 100 columns); --wide prints them whole.",
		examples: []string{
			"amicopier status --config config.yaml",
			"amicopier status --config config.yaml --runs 20 --output json",
		},
		exits: []exitDoc{
			{ExitOK, "the status was printed"},
			{ExitError, "the state store could not be read"},
		},
		epilogue: envHelp(),
	}, env)
	path := fs.String("config", defaultConfigPath, "the configuration `FILE` naming the state backend and source account; - reads it\nfrom standard input")
	runs := fs.Int("runs", 10, "how many (`N`) of the latest runs to show (at least 1)")
	output := fs.String("output", "table", "output `FORMAT`: table or json")
	limit := fs.Duration("timeout", 2*time.Minute, "give up reading the state store after this `DURATION`")
	var view viewFlags
	view.register(fs, false)
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
	cfg, err := loadConfig(ctx, *path, env)
	if err != nil {
		return fail(env, "status", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()
	store, err := openReadOnlyStore(ctx, cfg, slog.Default())
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
	rep.ReadAt = time.Now().UTC().Truncate(time.Second)
	rep.Store = describeStore(cfg, store)
	if *output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail(env, "status", err)
		}
		return ExitOK
	}
	if err := writeStatusTable(env.Stdout, rep, textWidth(env, view.wide)); err != nil {
		return fail(env, "status", err)
	}
	return ExitOK
}

// readStatus gathers the report: one RecentRuns and one UnsettledPairs.
func readStatus(ctx context.Context, store state.Store, source string, runs int) (*statusReport, error) {
	rep := &statusReport{
		SchemaVersion: statusSchemaVersion, SourceAccount: source, Runs: []statusRun{},
		Pairs: statusPairs{InProgress: []statusPair{}, Failing: []statusPair{}, Deferred: []statusPair{}, Stuck: []statusPair{}, Rejected: []statusPair{}, Orphaned: []statusPair{},
			Superseded: []statusPair{}},
		Recorded: map[string]statusAsOf{},
	}
	recent, err := store.RecentRuns(ctx, source, runs)
	if err != nil {
		return nil, fmt.Errorf("read the runs of source account %s: %w", source, err)
	}
	for _, r := range recent {
		sr := statusRun{
			ID: r.ID, Trigger: r.Trigger, Shard: r.Shard, Mode: r.Mode, Status: r.Status, Started: r.Started,
			Counts: nonZero(r.Counts), Actions: nonZero(r.Actions), Errors: slices.Clone(r.Errors),
			Unreachable: slices.Clone(r.Unreachable), UnreachableCount: max(r.UnreachableCount, len(r.Unreachable)),
		}
		if sr.Errors == nil {
			sr.Errors = []string{}
		}
		if sr.Unreachable == nil {
			sr.Unreachable = []state.UnreachableAccount{}
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
		case state.PairSuperseded:
			rep.Pairs.Superseded = append(rep.Pairs.Superseded, sp)
		default:
			rep.Pairs.Other = append(rep.Pairs.Other, sp)
		}
	}
	for name, ps := range rep.Pairs.groups() {
		if len(ps) > 0 {
			rep.Recorded[name] = asOf(ps)
		}
	}
	return rep, nil
}

// groups names the pair groups as the JSON does.
func (p *statusPairs) groups() map[string][]statusPair {
	return map[string][]statusPair{
		"in_progress": p.InProgress, "failing": p.Failing, "deferred": p.Deferred, "stuck": p.Stuck,
		"rejected": p.Rejected, "orphaned": p.Orphaned, "superseded": p.Superseded, "other": p.Other,
	}
}

// asOf is when a group of pairs was recorded: the latest write and its run.
func asOf(ps []statusPair) statusAsOf {
	var a statusAsOf
	runs := map[string]bool{}
	for _, p := range ps {
		runs[p.RunID] = true
		if p.UpdatedAt.After(a.LatestUpdate) || a.LatestUpdate.IsZero() {
			a.LatestUpdate, a.LatestRunID = p.UpdatedAt, p.RunID
		}
	}
	a.Runs = len(runs)
	return a
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

func writeStatusTable(w io.Writer, rep *statusReport, width int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "State: %s\nSource account: %s\n", rep.Store, rep.SourceAccount)
	printWrapped(&b, width, "Read at "+statusTime(rep.ReadAt)+" from the state store only: pairs are as the runs named below recorded "+
		"them, and a copy that finished since its run (even one `run --wait` saw finish) shows until the next run "+
		"records it; `amicopier plan` shows what EC2 says now.")

	if len(rep.Runs) == 0 {
		fmt.Fprintln(&b, "\nNo runs recorded (or all expired).")
	} else {
		fmt.Fprintf(&b, "\nLatest runs (%d, newest first):\n", len(rep.Runs))
		// Only reconciles are recorded (a dry run writes nothing), so
		// the mode is left to the JSON.
		cols := []termtable.Column{
			{Header: "RUN", Min: 99}, {Header: "TRIGGER", Min: 8, Wrap: true},
			{Header: "STATUS", Min: 99}, {Header: "STARTED", Min: 99}, {Header: "DURATION", Min: 99},
			{Header: "ERRORS", Min: 99}, {Header: "UNREACHABLE", Min: 99},
			{Header: "PAIRS BY CATEGORY; ACTIONS", Min: 30, Wrap: true, Below: true},
		}
		var rows [][]string
		for _, r := range rep.Runs {
			dur := "running"
			if r.DurationSeconds != nil {
				dur = (time.Duration(*r.DurationSeconds * float64(time.Second))).Round(time.Second).String()
			}
			trigger := orDash(r.Trigger)
			if r.Shard != "" {
				trigger += ", shard " + r.Shard
			}
			if r.Mode != "" && r.Mode != "run" {
				trigger += ", " + r.Mode
			}
			rows = append(rows, []string{r.ID, trigger, orDash(r.Status), statusTime(r.Started), dur,
				strconv.Itoa(len(r.Errors)), strconv.Itoa(r.UnreachableCount),
				runDetails(r)})
		}
		if err := termtable.Write(&b, width, cols, rows); err != nil {
			return err
		}
		for _, r := range rep.Runs {
			for _, u := range r.Unreachable {
				line := "run " + r.ID + ": unreachable " + u.Account
				if len(u.Regions) > 0 {
					line += " (" + strings.Join(u.Regions, ", ") + ")"
				}
				if u.Reason != "" {
					line += ": " + clipFor(u.Reason, width)
				}
				printIndented(&b, width, line)
			}
			if more := r.UnreachableCount - len(r.Unreachable); more > 0 {
				printIndented(&b, width, fmt.Sprintf("run %s: and %d more unreachable account(s)", r.ID, more))
			}
			for _, e := range r.Errors {
				printIndented(&b, width, "run "+r.ID+": "+clipFor(e, width))
			}
			if r.Status == "partial" && len(r.Errors) == 0 && r.UnreachableCount == 0 {
				printIndented(&b, width, "run "+r.ID+": partial, but its record names no error and no unreachable account "+
					"(recorded by an older amicopier); its log has the details")
			}
		}
	}

	groups := []struct {
		title, key string
		pairs      []statusPair
		cols       []termtable.Column
		row        func(p statusPair) []string
	}{
		{"Copies in progress", "in_progress", rep.Pairs.InProgress, pairCols("ATTEMPT", "COPY", "SINCE", "RUN"),
			func(p statusPair) []string {
				return pairRow(p, strconv.Itoa(p.Attempts), orDash(p.CopyImageID), statusTime(p.UpdatedAt), "recorded by run "+orDash(p.RunID))
			}},
		{"Failing (retried with backoff)", "failing", rep.Pairs.Failing, pairCols("ATTEMPTS", "FAILURES", "LAST ERROR", "NEXT RETRY"),
			func(p statusPair) []string {
				return pairRow(p, strconv.Itoa(p.Attempts), strconv.Itoa(p.Failures), lastError(p), nextRetry(p))
			}},
		{"Deferred (not started, nothing failed; the next run asks again with the same request)", "deferred", rep.Pairs.Deferred,
			pairCols("ATTEMPT", "SINCE", "WHY"),
			func(p statusPair) []string {
				return pairRow(p, strconv.Itoa(p.Attempts), statusTime(p.UpdatedAt), lastError(p))
			}},
		{"Stuck (attempts exhausted; retried when the source or its settings change)", "stuck", rep.Pairs.Stuck,
			pairCols("ATTEMPTS", "FAILURES", "LAST ERROR", "SINCE"),
			func(p statusPair) []string {
				return pairRow(p, strconv.Itoa(p.Attempts), strconv.Itoa(p.Failures), lastError(p), statusTime(p.UpdatedAt))
			}},
		{"Rejected targets", "rejected", rep.Pairs.Rejected, pairCols("REASON", "SINCE"),
			func(p statusPair) []string { return pairRow(p, lastError(p), statusTime(p.UpdatedAt)) }},
		{"Orphaned copies (source gone)", "orphaned", rep.Pairs.Orphaned, pairCols("COPY", "GRACE ENDS"),
			func(p statusPair) []string { return pairRow(p, orDash(p.CopyImageID), nextRetry(p)) }},
		{"Superseded copies (older builds, source.keep_latest)", "superseded", rep.Pairs.Superseded, pairCols("COPY", "GRACE ENDS"),
			func(p statusPair) []string { return pairRow(p, orDash(p.CopyImageID), nextRetry(p)) }},
		{"Other statuses", "other", rep.Pairs.Other, pairCols("STATUS", "LAST ERROR", "SINCE"),
			func(p statusPair) []string { return pairRow(p, p.Status, lastError(p), statusTime(p.UpdatedAt)) }},
	}
	for _, g := range groups {
		if len(g.pairs) == 0 {
			if g.key != "other" {
				fmt.Fprintf(&b, "\n%s: none\n", g.title)
			}
			continue
		}
		b.WriteByte('\n')
		printWrapped(&b, width, fmt.Sprintf("%s (%d), %s:", g.title, len(g.pairs), asOfLine(rep.Recorded[g.key])))
		rows := make([][]string, len(g.pairs))
		for i, p := range g.pairs {
			rows[i] = g.row(p)
		}
		cols := g.cols
		if last := len(cols) - 1; cols[last].Header == "RUN" && rep.Recorded[g.key].Runs <= 1 {
			// One run recorded them all: the heading names it.
			cols = cols[:last]
		}
		if err := termtable.Write(&b, width, cols, rows); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// runDetails is a run's pairs by category and actions.
func runDetails(r statusRun) string {
	if len(r.Counts) == 0 && len(r.Actions) == 0 {
		return "no pair observed, nothing done"
	}
	return "pairs " + orDash(countList(r.Counts)) + "; actions " + orDash(countList(r.Actions))
}

// asOfLine says when a group of pairs was recorded.
func asOfLine(a statusAsOf) string {
	when := statusTime(a.LatestUpdate)
	switch {
	case a.Runs <= 1 && a.LatestRunID != "":
		return "as recorded by run " + a.LatestRunID + " at " + when
	case a.Runs <= 1:
		return "as recorded at " + when
	case a.LatestRunID != "":
		return fmt.Sprintf("as recorded by %d runs, the latest %s at %s", a.Runs, a.LatestRunID, when)
	}
	return fmt.Sprintf("as recorded by %d runs, the latest at %s", a.Runs, when)
}

// pairCols are the columns of a pair table: the pair, then extra.
func pairCols(extra ...string) []termtable.Column {
	cols := []termtable.Column{{Header: "SOURCE IMAGE", Min: 99}, {Header: "ACCOUNT", Min: 99}, {Header: "REGION", Min: 99}}
	for _, h := range extra {
		c := termtable.Column{Header: h, Min: 99}
		switch h {
		case "LAST ERROR", "REASON", "RUN", "WHY":
			c.Min, c.Wrap, c.Below = 40, true, true
		}
		cols = append(cols, c)
	}
	return cols
}

func pairRow(p statusPair, extra ...string) []string {
	return append([]string{p.SourceImage, p.Account, p.Region}, extra...)
}

// clipFor shortens a message for a table of the given width: whole with
// no limit (--wide), else at most detailLimit runes (they wrap).
func clipFor(s string, width int) string {
	if width <= 0 {
		return strings.Join(strings.Fields(s), " ")
	}
	return clip(s, detailLimit)
}

// detailLimit bounds an error or reason in a fitted table: four lines or
// so of a terminal.
const detailLimit = 400

// printIndented prints a detail line indented by two, wrapped to width,
// its continuation lines indented by four.
func printIndented(b *strings.Builder, width int, text string) {
	room := 0
	if width > 0 {
		room = max(width-4, 20)
	}
	for i, l := range termtable.Wrap(text, room) {
		if i == 0 {
			b.WriteString("  ")
		} else {
			b.WriteString("    ")
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
}

func lastError(p statusPair) string {
	switch {
	case p.LastErrorCode != "" && p.LastError != "":
		return clip(p.LastErrorCode+": "+p.LastError, detailLimit)
	case p.LastErrorCode != "":
		return p.LastErrorCode
	}
	return orDash(clip(p.LastError, detailLimit))
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
