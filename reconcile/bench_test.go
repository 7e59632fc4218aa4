package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/state"
)

// Benchmarks of the engine alone: the ports are answered by fakes that
// hand back prebuilt slices, so the numbers are the planner's and the
// observer's own cost (internal/bench measures whole runs on the
// simulator). Run: go test -run '^$' -bench . -benchmem ./reconcile/

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

// fakeEC2 answers DescribeImages with a fixed slice; nothing else.
type fakeEC2 struct {
	cloud.EC2
	images []cloud.Image
}

func (f *fakeEC2) DescribeImages(context.Context, cloud.ImageQuery) ([]cloud.Image, error) {
	return f.images, nil
}

type fakeOrg struct {
	cloud.Organization
	accounts []cloud.Account
}

func (f *fakeOrg) ListAccounts(context.Context) ([]cloud.Account, error) { return f.accounts, nil }

type fakeConnector struct {
	sources map[string]*fakeEC2
	target  map[string]*fakeEC2
	org     *fakeOrg
}

func (f *fakeConnector) Source(_ context.Context, region string) (cloud.EC2, error) {
	return f.sources[region], nil
}

func (f *fakeConnector) Target(_ context.Context, _, region string) (cloud.EC2, error) {
	return f.target[region], nil
}

func (f *fakeConnector) Organization(context.Context) (cloud.Organization, error) { return f.org, nil }

// BenchmarkObserveAccount is a dry run over one target account holding a
// good copy of each of 800 source images (200 in each of 4 Regions):
// discovery of the 800 sources, one describe per Region, and planning of
// the 800 pairs.
func BenchmarkObserveAccount(b *testing.B) {
	const (
		source = "111111111111"
		target = "222222222222"
	)
	regions := []string{"eu-west-1", "us-east-1", "eu-central-1", "ap-southeast-2"}
	conn := &fakeConnector{sources: map[string]*fakeEC2{}, target: map[string]*fakeEC2{},
		org: &fakeOrg{accounts: []cloud.Account{{ID: source, State: cloud.AccountActive}, {ID: target, State: cloud.AccountActive}}}}
	n := 0
	for _, region := range regions {
		src, tgt := &fakeEC2{}, &fakeEC2{}
		for range 200 {
			n++
			img := cloud.Image{
				ID: fmt.Sprintf("ami-%017x", n), Name: fmt.Sprintf("golden-%d", n), OwnerID: source, Region: region,
				State: cloud.ImageAvailable, Tags: map[string]string{config.DefaultTagKey: "*", "Recipe": "web"},
				BlockDevices: []cloud.BlockDevice{{DeviceName: "/dev/xvda", SnapshotID: fmt.Sprintf("snap-%017x", n), VolumeSize: 8}},
			}
			src.images = append(src.images, img)
			tgt.images = append(tgt.images, cloud.Image{
				ID: fmt.Sprintf("ami-%017x", 1<<40+n), OwnerID: target, Region: region, State: cloud.ImageAvailable,
				Tags:         map[string]string{TagCopiedFrom: img.ID, TagManaged: "true", TagSourceAccount: source, TagSourceRegion: region},
				BlockDevices: []cloud.BlockDevice{{DeviceName: "/dev/xvda", SnapshotID: fmt.Sprintf("snap-%017x", 1<<40+n), Encrypted: true}},
			})
		}
		conn.sources[region], conn.target[region] = src, tgt
	}
	cfg := config.Default()
	cfg.Source.AccountID = source
	cfg.Source.Regions = regions
	cfg.State.Backend = config.BackendMemory
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	e, err := New(Options{
		Config:  cfg,
		Connect: func(context.Context, string) (cloud.Connector, error) { return conn, nil },
		Store:   state.NewMemory(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
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
