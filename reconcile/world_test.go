package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/engineconfig"
	"github.com/amicopier/amicopier/internal/pacing"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

const (
	srcAccount = "111111111111"
	euWest     = "eu-west-1"
	usEast     = "us-east-1"
	targetTag  = "amicopier:targets"
)

// world is a simulated organisation with an engine wired to it.
type world struct {
	t     *testing.T
	cloud *sim.Cloud
	// ou holds every target account.
	ou    string
	cfg   *config.Config
	store *state.Counting
	// last is the connector of the latest run, for its call counts; mu
	// guards it when runs overlap.
	mu   sync.Mutex
	last *sim.Connector
}

// newWorld builds an organisation with n ACTIVE target accounts
// (200000000001...) under one OU, each with an alias/amicopier key in
// both Regions.
func newWorld(t *testing.T, n int, opts ...sim.Option) *world {
	t.Helper()
	c := sim.New(opts...)
	ou := c.AddOU("", "Workloads")
	must(t, c.AddAccount(srcAccount, "golden", "", cloud.AccountActive))
	for i := 1; i <= n; i++ {
		id := accountID(i)
		must(t, c.AddAccount(id, fmt.Sprintf("acct-%d", i), ou, cloud.AccountActive))
		for _, r := range []string{euWest, usEast} {
			c.AddKey(id, r, "amicopier")
		}
	}
	cfg := config.Default()
	cfg.Source.AccountID = srcAccount
	cfg.Source.Regions = []string{euWest, usEast}
	cfg.Encryption.KMSKey = "alias/amicopier"
	cfg.State.Backend = config.BackendMemory
	cfg.Limits.Concurrency = 4
	must(t, cfg.Validate())
	return &world{t: t, cloud: c, ou: ou, cfg: cfg, store: state.NewCounting(state.NewMemory(state.WithClock(c.Now)))}
}

func accountID(i int) string { return fmt.Sprintf("2000000%05d", i) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// image adds a source image in region targeted (by tag) at targets.
func (w *world) image(region, name string, snapshots int, targets string) cloud.Image {
	devs := make([]sim.DeviceSpec, snapshots)
	for i := range devs {
		devs[i] = sim.DeviceSpec{Size: 8}
	}
	return w.cloud.AddImage(srcAccount, region, sim.ImageSpec{
		Name: name, Tags: map[string]string{targetTag: targets, "Recipe": name}, Devices: devs,
	})
}

func (w *world) engine() *reconcile.Engine {
	w.t.Helper()
	return w.engineWith(func(*reconcile.Options) {})
}

func (w *world) run(mode reconcile.Mode) *reconcile.Result {
	w.t.Helper()
	return w.runCtx(context.Background(), mode)
}

func (w *world) runCtx(ctx context.Context, mode reconcile.Mode) *reconcile.Result {
	w.t.Helper()
	res, err := w.engine().Run(ctx, reconcile.Request{Mode: mode, Trigger: "test"})
	if err != nil {
		w.t.Fatalf("%s: %v", mode, err)
	}
	return res
}

// settle lets every pending copy finish.
func (w *world) settle() { w.cloud.Advance(w.cloud.CopyDuration() + time.Minute) }

// copies returns the images in account/region copied from source.
func (w *world) copies(account, region, source string) []cloud.Image {
	var out []cloud.Image
	for _, img := range w.cloud.Images(account, region) {
		if img.Tags[reconcile.TagCopiedFrom] == source {
			out = append(out, img)
		}
	}
	return out
}

// copyCounts counts live copies per pair over the given accounts.
func (w *world) copyCounts(accounts []string) map[state.PairKey]int {
	out := map[state.PairKey]int{}
	for _, a := range accounts {
		for _, r := range []string{euWest, usEast} {
			for _, img := range w.cloud.Images(a, r) {
				if from := img.Tags[reconcile.TagCopiedFrom]; from != "" {
					out[state.PairKey{SourceImage: from, Account: a, Region: r}]++
				}
			}
		}
	}
	return out
}

func accounts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = accountID(i + 1)
	}
	return out
}

func wantCounts(t *testing.T, r *report.Report, want map[report.Category]int) {
	t.Helper()
	for _, c := range report.Categories {
		if r.Counts[c] != want[c] {
			t.Errorf("count %s = %d, want %d (all: %v)", c, r.Counts[c], want[c], r.Counts)
		}
	}
}

func itemsOf(r *report.Report, c report.Category) []report.Item {
	return slices.DeleteFunc(slices.Clone(r.Items), func(it report.Item) bool { return it.Category != c })
}

// engineWith builds the world's engine with mod applied to its options
// (extra target sources, say).
func (w *world) engineWith(mod func(*reconcile.Options)) *reconcile.Engine {
	w.t.Helper()
	o := reconcile.Options{
		Settings: settingsOf(w.t, w.cfg),
		Connect: func(context.Context, string) (cloud.Connector, error) {
			conn := w.connector()
			w.mu.Lock()
			w.last = conn
			w.mu.Unlock()
			return conn, nil
		},
		Store:  w.store,
		Clock:  w.cloud,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	mod(&o)
	e, err := reconcile.New(o)
	must(w.t, err)
	return e
}

// connector is a new run's connector as the production wiring would build
// it from the world's configuration: limits.call_retries and the
// client-side buckets of limits.*_rate and *_burst.
func (w *world) connector() *sim.Connector {
	w.t.Helper()
	pace, err := pacing.New(w.cfg.Limits.PaceRates(), srcAccount, 1)
	must(w.t, err)
	return w.cloud.Connector(srcAccount, sim.WithAttempts(w.cfg.Limits.CallRetries+1), sim.WithPacing(pace))
}

// pair returns the stored record of a pair (ok false: none).
func (w *world) pair(key state.PairKey) (state.Pair, bool) {
	w.t.Helper()
	p, ok, err := w.store.GetPair(context.Background(), key)
	must(w.t, err)
	return p, ok
}

// settingsOf is the engine's settings for cfg.
func settingsOf(t testing.TB, cfg *config.Config) reconcile.Settings {
	t.Helper()
	s, err := engineconfig.Settings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// deregister deregisters an image and keeps its snapshots, as a person
// does in the console.
func deregister(ctx context.Context, e cloud.EC2, imageID string) error {
	_, err := e.DeregisterImage(ctx, imageID, false)
	return err
}
