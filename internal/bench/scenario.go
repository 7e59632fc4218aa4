// Package bench measures amicopier at organisation scale: it builds a
// simulated organisation (latency and EC2 token buckets on), runs the real
// engine against it once, and compares what the run cost with what it had
// to cost: API calls against the lower bound (bound.go, BENCHMARKS.md), wall time
// against the latency and token-bucket floor, peak heap, state writes and
// throttling. scripts/bench.sh runs it; BENCHMARKS.md has the numbers.
package bench

import (
	"fmt"
	"slices"
	"time"
)

// Kind is what a scenario exercises, and so which assertions apply.
type Kind string

// Scenario kinds.
const (
	// NoOp: every pair already has its copy; the run must cost the
	// observation and nothing else.
	NoOp Kind = "noop"
	// CatchUp: pairs are missing; the run must share and copy them, or
	// defer them for the in-flight cap, near the lower bound.
	CatchUp Kind = "catchup"
)

// ImageSet is a number of source AMIs of one Region with the same targets.
type ImageSet struct {
	Region string
	Count  int
	// Snapshots per image (EBS mappings).
	Snapshots int
	// OU is the index (0-based) of the OU the images target; -1 targets
	// the whole organisation ("*").
	OU int
	// Copied: every target already holds a good copy of each image.
	Copied bool
}

// Scenario is one benchmark: an organisation, its images, and the run's
// settings.
type Scenario struct {
	Name string
	Kind Kind
	// Accounts are the target accounts (the source account comes on
	// top), spread evenly over OUs OUs.
	Accounts int
	OUs      int
	// The first ExcludedPerOU accounts of each of the first ExcludedOUs
	// OUs are in targets.exclude_accounts: those OUs can never be granted
	// whole.
	ExcludedOUs, ExcludedPerOU int
	Regions                    []string
	Images                     []ImageSet
	// InFlightCap is limits.in_flight_copies.
	InFlightCap int
	// Concurrency is limits.concurrency: accounts worked on at once.
	Concurrency int
	// Latency per call (every class) and whether the EC2, STS and
	// Organizations buckets are on (their defaults).
	Latency  time.Duration
	Throttle bool
	// Wire: the built amicopier binary runs plan and run against the
	// organisation served by awsfake from a separate process (wire.go),
	// instead of the engine running in process.
	Wire bool
	// Kills is how many times a Soak scenario kills the built binary
	// (soak.go).
	Kills int
	// Shards: a Sharded scenario runs this many shards at once (sharded.go).
	Shards int
	// Naive: the naive peer (naive.go) runs on the same organisation too,
	// after the in-process run (a wire run leaves it out).
	Naive bool
	// Doc says what the scenario shows.
	Doc string
}

// wireOf is the wire scenario of an in-process one: the same
// organisation and settings, served over HTTP to the built binary.
func wireOf(s Scenario) Scenario {
	s.Name = "wire-" + s.Name
	s.Wire = true
	s.Doc = "the built binary over HTTP, plan then run: " + s.Doc
	return s
}

// Scenarios returns every scenario, in the order the benchmark runs them.
func Scenarios() []Scenario {
	four := []string{"eu-west-1", "us-east-1", "eu-central-1", "ap-southeast-2"}
	two := []string{"eu-west-1", "us-east-1"}
	all := []Scenario{
		{
			Name: "small-noop", Kind: NoOp, Accounts: 150, OUs: 3, Regions: two,
			Images:      []ImageSet{{Region: two[0], Count: 25, Snapshots: 1, OU: -1, Copied: true}, {Region: two[1], Count: 25, Snapshots: 1, OU: -1, Copied: true}},
			InFlightCap: 20, Concurrency: 16, Latency: 25 * time.Millisecond, Throttle: true,
			Doc: "CI-sized steady state: 150 accounts x 2 Regions x 25 AMIs, all copied",
		},
		{
			Name: "small-catchup", Kind: CatchUp, Accounts: 100, OUs: 4, Regions: two,
			Images: []ImageSet{
				{Region: two[0], Count: 3, Snapshots: 1, OU: -1},
				{Region: two[1], Count: 3, Snapshots: 2, OU: -1},
				{Region: two[0], Count: 20, Snapshots: 1, OU: 0},
			},
			InFlightCap: 20, Concurrency: 16, Latency: 25 * time.Millisecond, Throttle: true,
			Doc: "CI-sized catch-up: 1,100 missing pairs, 75 of them beyond the in-flight cap",
		},
		{
			Name: "noop-1000x4x200", Kind: NoOp, Accounts: 1000, OUs: 10, Regions: four,
			Images: []ImageSet{
				{Region: four[0], Count: 200, Snapshots: 1, OU: -1, Copied: true},
				{Region: four[1], Count: 200, Snapshots: 1, OU: -1, Copied: true},
				{Region: four[2], Count: 200, Snapshots: 1, OU: -1, Copied: true},
				{Region: four[3], Count: 200, Snapshots: 1, OU: -1, Copied: true},
			},
			InFlightCap: 20, Concurrency: 64, Latency: 25 * time.Millisecond, Throttle: true, Naive: true,
			Doc: "steady state of a large organisation: 1,000 accounts x 4 Regions x 200 AMIs per Region, 800,000 good copies",
		},
		{
			Name: "noop-10000x2x50", Kind: NoOp, Accounts: 10000, OUs: 100, Regions: two,
			Images: []ImageSet{
				{Region: two[0], Count: 50, Snapshots: 1, OU: -1, Copied: true},
				{Region: two[1], Count: 50, Snapshots: 1, OU: -1, Copied: true},
			},
			InFlightCap: 20, Concurrency: 64, Latency: 25 * time.Millisecond, Throttle: true,
			Doc: "steady state at 10,000 accounts: 10,000 accounts x 2 Regions x 50 AMIs per Region, 1,000,000 good copies",
		},
		{
			Name: "catchup-10000", Kind: CatchUp, Accounts: 1000, OUs: 10, Regions: two,
			Images: []ImageSet{
				{Region: two[0], Count: 4, Snapshots: 1, OU: -1},
				{Region: two[1], Count: 4, Snapshots: 1, OU: -1},
				{Region: two[0], Count: 20, Snapshots: 1, OU: 0},
			},
			InFlightCap: 20, Concurrency: 64, Latency: 25 * time.Millisecond, Throttle: true, Naive: true,
			Doc: "10,000 missing pairs over 1,000 accounts; the 100 accounts of one OU miss 24 in one Region, 4 beyond the in-flight cap",
		},
		{
			Name: "fanout-50x1000", Kind: CatchUp, Accounts: 1000, OUs: 10, Regions: two[:1],
			Images:      []ImageSet{{Region: two[0], Count: 50, Snapshots: 2, OU: -1}},
			InFlightCap: 20, Concurrency: 64, Latency: 25 * time.Millisecond, Throttle: true,
			Doc: "50 new AMIs with 2 snapshots each to 1,000 accounts in one Region: 50,000 missing pairs, 20 per account started (the in-flight cap), the rest deferred",
		},
		{
			Name: "org-5000", Kind: CatchUp, Accounts: 5000, OUs: 50, ExcludedOUs: 5, ExcludedPerOU: 2, Regions: two[:1],
			Images:      []ImageSet{{Region: two[0], Count: 20, Snapshots: 1, OU: -1}},
			InFlightCap: 20, Concurrency: 64, Latency: 25 * time.Millisecond, Throttle: true,
			Doc: "20 new AMIs for * to 5,000 accounts in 50 OUs (10 accounts of 5 OUs excluded) in one Region, the sharing quota of 1,000 entities per AMI enforced: 99,800 copies",
		},
		ChaosScenario(),
		SoakScenario(),
		ShardedScenario(),
		EventScenario(),
	}
	byName := map[string]Scenario{}
	for _, s := range all {
		byName[s.Name] = s
	}
	for _, base := range []string{"small-noop", "small-catchup", "noop-1000x4x200", "catchup-10000"} {
		all = append(all, wireOf(byName[base]))
	}
	return all
}

// Groups name sets of scenarios on the command line.
var Groups = map[string][]string{
	"small": {"small-noop", "small-catchup", "wire-small-noop", "wire-small-catchup"},
	"wire":  {"wire-small-noop", "wire-small-catchup", "wire-noop-1000x4x200", "wire-catchup-10000"},
	"all": {"small-noop", "small-catchup", "noop-1000x4x200", "noop-10000x2x50", "catchup-10000", "fanout-50x1000", "org-5000", "chaos", "sharded-10000", "event-10000",
		"wire-small-noop", "wire-small-catchup", "wire-noop-1000x4x200", "wire-catchup-10000"},
}

// Select returns the scenarios named (scenario or group names), in the
// order given, each once; no names means the group "all".
func Select(names []string) ([]Scenario, error) {
	if len(names) == 0 {
		names = []string{"all"}
	}
	byName := map[string]Scenario{}
	for _, s := range Scenarios() {
		byName[s.Name] = s
	}
	var out []Scenario
	seen := map[string]bool{}
	add := func(n string) error {
		s, ok := byName[n]
		if !ok {
			known := slices.Sorted(func(yield func(string) bool) {
				for k := range byName {
					if !yield(k) {
						return
					}
				}
				for k := range Groups {
					if !yield(k) {
						return
					}
				}
			})
			return fmt.Errorf("unknown scenario %q (known: %v)", n, known)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, s)
		}
		return nil
	}
	for _, n := range names {
		if g, ok := Groups[n]; ok {
			for _, m := range g {
				if err := add(m); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := add(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AMIs is the number of source AMIs.
func (s Scenario) AMIs() int {
	n := 0
	for _, set := range s.Images {
		n += set.Count
	}
	return n
}
