// Command amicopier-bench runs the named benchmark scenarios (default:
// all) and prints one JSON object per scenario per line. It exits 1 when a
// scenario fails its assertions, 2 on bad usage. scripts/bench.sh runs it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"

	"github.com/amicopier/amicopier/internal/bench"
)

func main() {
	list := flag.Bool("list", false, "list the scenarios and groups, then exit")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the runs (not the builds) to this file")
	heapProfile := flag.String("heapprofile", "", "write a heap profile taken when the copy phase starts to this file")
	latency := flag.Duration("latency", -1, "override the scenarios' latency per call (exploration only: the assertions assume 25ms)")
	concurrency := flag.Int("concurrency", 0, "override the scenarios' limits.concurrency (exploration only)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: amicopier-bench [-list] [scenario or group ...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *list {
		for _, s := range bench.Scenarios() {
			fmt.Printf("%-18s %s\n", s.Name, s.Doc)
		}
		for _, name := range slices.Sorted(maps.Keys(bench.Groups)) {
			fmt.Printf("%-18s group: %v\n", name, bench.Groups[name])
		}
		return
	}
	scenarios, err := bench.Select(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "amicopier-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := bench.Options{}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "amicopier-bench:", err)
			os.Exit(2)
		}
		defer f.Close()
		opts.CPUProfile = f
	}
	if *heapProfile != "" {
		f, err := os.Create(*heapProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "amicopier-bench:", err)
			os.Exit(2)
		}
		defer f.Close()
		opts.HeapProfile = f
	}
	failed := false
	enc := json.NewEncoder(os.Stdout)
	for _, sc := range scenarios {
		if *latency >= 0 {
			sc.Latency = *latency
		}
		if *concurrency > 0 {
			sc.Concurrency = *concurrency
		}
		out, pass, err := runScenario(ctx, sc, opts)
		if err != nil {
			fmt.Fprintf(os.Stderr, "amicopier-bench: %s: %v\n", sc.Name, err)
			failed = true
			continue
		}
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(os.Stderr, "amicopier-bench:", err)
			os.Exit(1)
		}
		failed = failed || !pass
	}
	if failed {
		stop()
		os.Exit(1)
	}
}

// runScenario runs one scenario and returns its result line and verdict.
func runScenario(ctx context.Context, sc bench.Scenario, opts bench.Options) (any, bool, error) {
	if sc.Kind == bench.Chaos {
		res, err := bench.RunChaos(ctx, sc)
		if err != nil {
			return nil, false, err
		}
		return res, res.Pass, nil
	}
	res, err := bench.Run(ctx, sc, opts)
	if err != nil {
		return nil, false, err
	}
	return res, res.Pass, nil
}
