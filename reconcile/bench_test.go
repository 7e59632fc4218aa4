package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/state"
)

// Micro-benchmarks of the engine: the planner alone, and one account's
// observation on the simulator without realism (internal/bench measures
// whole runs with latency and buckets). Run:
// go test -run '^$' -bench . -benchmem ./reconcile/

func BenchmarkPlanPair(b *testing.B) {
	policy := PairPolicy{MaxAttempts: 3, RetryBackoff: time.Hour, Now: testNow}
	cases := []struct {
		name  string
		facts PairFacts
	}{
		{"ok", PairFacts{Key: testKey, Copies: []cloud.Image{copyOf("ami-00000000000000001", cloud.ImageAvailable)}, WantKey: testKeyARN, Fingerprint: testFP}},
		{"missing", PairFacts{Key: testKey, WantKey: testKeyARN, Fingerprint: testFP, Source: "111111111111"}},
		{"failed-retry", PairFacts{Key: testKey, Copies: []cloud.Image{copyOf("ami-00000000000000002", cloud.ImageFailed, attemptTag("1"))},
			Record: record(state.PairCopying, 1, 0), WantKey: testKeyARN, Fingerprint: testFP}},
		{"in-progress", PairFacts{Key: testKey, Copies: []cloud.Image{copyOf("ami-00000000000000003", cloud.ImagePending)},
			Record: record(state.PairCopying, 1, 0), WantKey: testKeyARN, Fingerprint: testFP}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = PlanPair(c.facts, policy)
			}
		})
	}
}

// BenchmarkObserveAccount is a dry run over one target account holding a
// good copy of each of 800 source images (200 in each of 4 Regions), on
// the simulator without latency or buckets: discovery of the 800 sources,
// one describe per Region, and planning of the 800 pairs (the simulator's
// own cost of describing the images is in the number).
func BenchmarkObserveAccount(b *testing.B) {
	const (
		source = "111111111111"
		target = "222222222222"
	)
	regions := []string{"eu-west-1", "us-east-1", "eu-central-1", "ap-southeast-2"}
	c := sim.New()
	for _, id := range []string{source, target} {
		if err := c.AddAccount(id, id, "", cloud.AccountActive); err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	for _, region := range regions {
		for range 200 {
			n++
			img := c.AddImage(source, region, sim.ImageSpec{
				Name: fmt.Sprintf("golden-%d", n), Tags: map[string]string{"amicopier:targets": "*", "Recipe": "web"},
			})
			c.AddImage(target, region, sim.ImageSpec{
				Name:    img.Name + "-encrypted-" + img.ID,
				Tags:    map[string]string{TagCopiedFrom: img.ID, TagManaged: "true", TagSourceAccount: source, TagSourceRegion: region},
				Devices: []sim.DeviceSpec{{Size: 8, Encrypted: true}},
			})
		}
	}
	e, err := New(Options{
		Settings: testSettings(b, source, regions...),
		Connect: func(context.Context, string) (cloud.Connector, error) {
			return c.Connector(source, sim.WithAttempts(1)), nil
		},
		Store:  state.NewMemory(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := e.Run(context.Background(), Request{Mode: ModePlan})
		if err != nil {
			b.Fatal(err)
		}
		if res.Report.Counts["ok"] != n {
			b.Fatalf("ok pairs = %d, want %d: %+v", res.Report.Counts["ok"], n, res.Report.Items)
		}
	}
	b.ReportMetric(float64(n), "pairs/op")
}
