package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/demo"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

func runDemo(ctx context.Context, args []string, env Env) int {
	fs := newFlags("demo", usageDoc{
		description: "Build a simulated AWS organisation (a dozen accounts in nested OUs, two Regions, golden AMIs\n" +
			"with targets from tags and rules, and the leftovers of earlier tools), print its drift report,\n" +
			"reconcile it, let simulated time pass until the copies finish, run again (the copies'\n" +
			"deprecation times, and their SSM parameters: three move from the previous build's copies),\n" +
			"print the clean report, and run the preflight check (amicopier check) on what is left. The\n" +
			"runs send their events to a simulated EventBridge bus.\n" +
			"Needs no AWS account and no credentials. The demo's configuration is printed by --print-config.",
		examples: []string{
			"amicopier demo",
			"amicopier demo --output html > report.html       # the drift matrix, before and after",
			"amicopier demo --state demo.db && amicopier status --config <(amicopier demo --print-config)",
		},
		exits: []exitDoc{
			{ExitOK, "the demo ran"},
			{ExitError, "it failed (a bug: please report it)"},
		},
		epilogue: widthHelp,
	}, env)
	output := fs.String("output", report.FormatTable, "output `FORMAT`: "+strings.Join(report.Formats, ", ")+
		" (json prints one object {\"before\", \"run\", \"next_run\", \"deprecations\", \"after\", \"check\", \"events\"})")
	statePath := fs.String("state", "", "the embedded state `FILE` to use (default: a temporary file, removed afterwards)")
	printConfig := fs.Bool("print-config", false, "print the demo's config.yaml and exit")
	var view viewFlags
	view.register(fs, true)
	var lf logFlags
	lf.register(fs, "warn")
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	if *printConfig {
		_, _ = env.Stdout.Write(demo.ConfigYAML())
		return ExitOK
	}
	if !slices.Contains(report.Formats, *output) {
		fmt.Fprintf(env.Stderr, "amicopier demo: --output %q: want one of %s\n", *output, strings.Join(report.Formats, ", "))
		return ExitUsage
	}
	log, err := lf.logger(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "amicopier demo: %v\n", err)
		return ExitUsage
	}

	path := *statePath
	if path == "" {
		dir, err := os.MkdirTemp("", "amicopier-demo-")
		if err != nil {
			return fail(env, "demo", err)
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "state.db")
	}
	// The simulated clock starts now, so the state the demo leaves (with
	// --state) reads sensibly in `amicopier status`; the store keeps time
	// by the same clock.
	scene, err := demo.NewScene(time.Now().UTC().Truncate(time.Second))
	if err != nil {
		return fail(env, "demo", fmt.Errorf("build the simulated organisation: %w", err))
	}
	store, err := state.OpenFile(path, state.WithClock(scene.Cloud.Now))
	if err != nil {
		return fail(env, "demo", err)
	}
	defer store.Close()
	out, err := demo.Run(ctx, scene, store, demo.Options{Logger: log, IncludeOK: view.includeOK || *output == report.FormatHTML})
	if err != nil {
		return fail(env, "demo", err)
	}
	if err := writeDemo(env, out, *output, view.options(env)); err != nil {
		return fail(env, "demo", err)
	}
	return ExitOK
}

// demoTitle heads the demo's page and its Markdown.
const demoTitle = "amicopier demo: drift before and after a reconcile"

func writeDemo(env Env, out *demo.Outcome, format string, o report.Options) error {
	w := env.Stdout
	switch format {
	case report.FormatJSON:
		return report.WriteJSON(w, out)
	case report.FormatHTML:
		// The matrix draws a cell per listed pair: runDemo lists ok pairs
		// for this format.
		return report.WriteHTMLPage(w, demoTitle, []report.Section{
			{ID: "before", Title: "Before: a dry run finds drift", Report: out.Before,
				Note: "The simulated organisation as the leftovers of earlier tools left it."},
			{ID: "run", Title: "Reconcile", Summary: out.Run,
				Note: "Share the sources, start the missing copies, retry the failed one."},
			{ID: "next-run", Title: "The next run: the copies are available", Summary: out.NextRun,
				Note: nextRunNote(out)},
			{ID: "after", Title: "After: the copies finished", Report: out.After,
				Note: "What is left is what amicopier only reports: copies it did not make and targets it must not serve."},
			{ID: "check", Title: "Preflight check (amicopier check)", Note: checkNote(out.Check)},
		})
	case report.FormatMarkdown:
		// One document: the demo is the title, each part a section, and
		// each report's parts sit one level below its section.
		fmt.Fprintf(w, "# %s\n\n", demoTitle)
		before, after := o, o
		before.HeadingLevel, before.Title = 2, "Before: a dry run finds drift"
		after.HeadingLevel, after.Title = 2, "After: the copies finished"
		if err := report.WriteMarkdown(w, out.Before, before); err != nil {
			return err
		}
		fmt.Fprint(w, "\n## The reconcile\n\nShare the sources, start the missing copies, retry the failed one.\n\n")
		if err := report.WriteSummaryMarkdown(w, out.Run); err != nil {
			return err
		}
		fmt.Fprint(w, "\n## The next run\n\n"+nextRunNote(out)+"\n\n")
		if err := report.WriteSummaryMarkdown(w, out.NextRun); err != nil {
			return err
		}
		fmt.Fprintln(w)
		if err := report.WriteDeprecationsMarkdown(w, out.NextRun.Mode, out.Deprecations); err != nil {
			return err
		}
		fmt.Fprintln(w)
		if err := report.WriteMarkdown(w, out.After, after); err != nil {
			return err
		}
		fmt.Fprintln(w, "\nWhat is left is what amicopier only reports: copies it did not make and targets it must not serve.")
		fmt.Fprintln(w)
		return report.WriteCheckMarkdown(w, out.Check)
	}
	printWrapped(w, o.Width, "== Before: a dry run of the simulated organisation")
	if err := report.WriteTable(w, out.Before, o); err != nil {
		return err
	}
	printWrapped(w, o.Width, "\n== Reconcile: share the sources, start the missing copies, retry the failed one")
	if err := report.WriteSummaryTable(w, out.Run, o); err != nil {
		return err
	}
	printWrapped(w, o.Width, "\n== The next run: simulated time passes until the copies finish; "+nextRunNote(out))
	if err := report.WriteSummaryTable(w, out.NextRun, o); err != nil {
		return err
	}
	if err := report.WriteDeprecations(w, out.NextRun.Mode, out.Deprecations, o); err != nil {
		return err
	}
	printWrapped(w, o.Width, "\n== After: another dry run")
	if err := report.WriteTable(w, out.After, o); err != nil {
		return err
	}
	printWrapped(w, o.Width, "\nWhat is left is what amicopier only reports: copies it did not make and targets it must not serve.")
	printWrapped(w, o.Width, "\n== Preflight check (amicopier check): what would still break copies, or launches from them")
	return report.WriteCheckTable(w, out.Check, o)
}

// nextRunNote says what the demo's next run is for.
func nextRunNote(out *demo.Outcome) string {
	return fmt.Sprintf("the copies are available: it sets the deprecation time of %d of them (their source's, or copy.deprecate_after's when earlier), "+
		"publishes each in its account's SSM parameter (three move from the previous build's copy) and tells the event bus which copies became available.",
		len(out.Deprecations))
}

// checkNote is the demo page's text of the preflight check: its headline
// and each finding with its fix.
func checkNote(r *report.CheckReport) string {
	var b strings.Builder
	var sb strings.Builder
	if err := report.WriteCheckTable(&sb, r, report.Options{}); err == nil {
		b.WriteString(strings.SplitN(sb.String(), "\n", 2)[0])
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, " %s in %s/%s: %s. Fix: %s.", f.Kind, f.Account, f.Region, f.Problem, f.Fix)
	}
	return b.String()
}
