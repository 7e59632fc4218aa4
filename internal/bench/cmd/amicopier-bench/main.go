// Command amicopier-bench runs the named benchmark scenarios (default:
// all) and prints one JSON object per scenario per line. It exits 1 when a
// scenario fails its assertions, 2 on bad usage. scripts/bench.sh runs it.
//
// `amicopier-bench serve -scenario NAME -portfile FILE` serves a
// scenario's simulated organisation over HTTP instead (the wire scenarios
// start it; see internal/bench/serve.go).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/amicopier/amicopier/internal/bench"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serve(os.Args[2:]))
	}
	list := flag.Bool("list", false, "list the scenarios and groups, then exit")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the runs (not the builds) to this file; of the amicopier run process in a wire scenario")
	heapProfile := flag.String("heapprofile", "", "write a heap profile taken when the copy phase starts to this file (in-process scenarios)")
	latency := flag.Duration("latency", -1, "override the scenarios' latency per call (exploration only: the assertions assume 25ms)")
	concurrency := flag.Int("concurrency", 0, "override the scenarios' limits.concurrency (exploration only)")
	amicopier := flag.String("amicopier", "", "the built amicopier binary, for the wire scenarios (scripts/bench.sh builds it)")
	serverProfile := flag.String("server-cpuprofile", "", "write a CPU profile of the wire scenarios' server process to this file")
	wireDir := flag.String("wire-dir", "", "keep each wire scenario's files (config, state, reports, logs) under this directory")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: amicopier-bench [flags] [scenario or group ...]")
		fmt.Fprintln(os.Stderr, "       amicopier-bench serve -scenario NAME -portfile FILE [-latency D] [-throttle=false] [-copies-complete]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *list {
		for _, s := range bench.Scenarios() {
			fmt.Printf("%-24s %s\n", s.Name, s.Doc)
		}
		for _, name := range slices.Sorted(maps.Keys(bench.Groups)) {
			fmt.Printf("%-24s group: %v\n", name, bench.Groups[name])
		}
		return
	}
	scenarios, err := bench.Select(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "amicopier-bench:", err)
		os.Exit(2)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "amicopier-bench:", err)
		os.Exit(2)
	}
	for _, sc := range scenarios {
		if (sc.Wire || sc.Kind == bench.Soak) && *amicopier == "" {
			fmt.Fprintf(os.Stderr, "amicopier-bench: scenario %s runs the built binary: pass -amicopier PATH (scripts/bench.sh does)\n", sc.Name)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := bench.Options{}
	if *cpuProfile != "" && !allWire(scenarios) {
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
	wire := bench.WireOptions{Amicopier: *amicopier, Server: []string{self, "serve"}, CPUProfile: *cpuProfile, ServerCPUProfile: *serverProfile}
	failed := false
	enc := json.NewEncoder(os.Stdout)
	for _, sc := range scenarios {
		if *latency >= 0 {
			sc.Latency = *latency
		}
		if *concurrency > 0 {
			sc.Concurrency = *concurrency
		}
		w := wire
		if *wireDir != "" {
			w.Dir = *wireDir + "/" + sc.Name
		}
		out, pass, err := runScenario(ctx, sc, opts, w)
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

// runSoak runs a kill scenario against the DynamoDB-compatible server of
// AMICOPIER_DYNAMODB_ENDPOINT (scripts/bench.sh soak starts dynalite),
// with the seed of AMICOPIER_KILL_SEED when set; a line per kill goes to
// stderr.
func runSoak(ctx context.Context, sc bench.Scenario, wire bench.WireOptions) (*bench.SoakResult, error) {
	o := bench.SoakOptions{Amicopier: wire.Amicopier, Server: wire.Server, DynamoDBEndpoint: os.Getenv(bench.DynamoDBEndpointEnv), Log: os.Stderr}
	if v := os.Getenv(bench.KillSeedEnv); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil || seed == 0 {
			return nil, fmt.Errorf("%s=%q: want a positive integer (the seed a kill test logged)", bench.KillSeedEnv, v)
		}
		o.Seed = seed
	}
	if wire.Dir != "" {
		o.Dir = wire.Dir
	}
	return bench.RunSoak(ctx, sc, o)
}

func allWire(scenarios []bench.Scenario) bool {
	for _, sc := range scenarios {
		if !sc.Wire {
			return false
		}
	}
	return true
}

// runScenario runs one scenario and returns its result line and verdict.
func runScenario(ctx context.Context, sc bench.Scenario, opts bench.Options, wire bench.WireOptions) (any, bool, error) {
	switch {
	case sc.Kind == bench.Chaos:
		res, err := bench.RunChaos(ctx, sc)
		if err != nil {
			return nil, false, err
		}
		return res, res.Pass, nil
	case sc.Kind == bench.Event:
		res, err := bench.RunEvent(ctx, sc)
		if err != nil {
			return nil, false, err
		}
		return res, res.Pass, nil
	case sc.Kind == bench.Soak:
		res, err := runSoak(ctx, sc, wire)
		if err != nil {
			return nil, false, err
		}
		return res, res.Pass, nil
	case sc.Kind == bench.Sharded:
		res, err := bench.RunSharded(ctx, sc)
		if err != nil {
			return nil, false, err
		}
		return res, res.Pass, nil
	case sc.Wire:
		res, err := bench.RunWire(ctx, sc, wire)
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

// serve serves one scenario's organisation until SIGTERM or SIGINT.
func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	name := fs.String("scenario", "", "the scenario whose organisation to serve (required; see -list)")
	portFile := fs.String("portfile", "", "write the port here once listening (required); removed on exit")
	latency := fs.String("latency", "", "latency per call, such as 25ms (default: the scenario's)")
	throttle := fs.Bool("throttle", true, "enforce the token buckets (-throttle=false: none)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the server, from listening to exit, to this file")
	complete := fs.Bool("copies-complete", false, "copies are available as soon as CopyImage accepts them (otherwise they stay pending: the simulated clock does not move)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: amicopier-bench serve -scenario NAME -portfile FILE [-latency D] [-throttle=false] [-copies-complete]\n\n"+
			"Serves the scenario's simulated organisation with awsfake on 127.0.0.1 (the EC2, STS and\n"+
			"Organizations protocols, for the credentials awsfake.BaseAccessKeyID, BaseSecretAccessKey\n"+
			"and BaseSessionToken), and read-only inspection under /_sim/ (scenario, calls, copies), until\n"+
			"SIGTERM or SIGINT.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *name == "" || *portFile == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "amicopier-bench serve: -scenario and -portfile are required, and nothing else")
		fs.Usage()
		return 2
	}
	scenarios, err := bench.Select([]string{*name})
	if err != nil || len(scenarios) != 1 {
		fmt.Fprintf(os.Stderr, "amicopier-bench serve: -scenario %q: %v\n", *name, errOr(err, "a group, not one scenario"))
		return 2
	}
	sc := scenarios[0]
	if *latency != "" {
		d, err := time.ParseDuration(*latency)
		if err != nil || d < 0 {
			fmt.Fprintf(os.Stderr, "amicopier-bench serve: -latency %q: want a duration such as 25ms\n", *latency)
			return 2
		}
		sc.Latency = d
	}
	sc.Throttle = *throttle
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	err = bench.Serve(ctx, sc, bench.ServeOptions{PortFile: *portFile, CopiesComplete: *complete, Ready: func(url string) {
		fmt.Fprintf(os.Stderr, "amicopier-bench serve: %s on %s (built in %s)\n", sc.Name, url, time.Since(start).Round(time.Millisecond))
		if *cpuProfile != "" {
			if err := startProfile(*cpuProfile); err != nil {
				fmt.Fprintln(os.Stderr, "amicopier-bench serve:", err)
			}
		}
	}})
	pprof.StopCPUProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "amicopier-bench serve:", err)
		return 1
	}
	return 0
}

// startProfile starts a CPU profile into path; the file stays open
// until the process exits (StopCPUProfile flushes it).
func startProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return pprof.StartCPUProfile(f)
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}
