package bench

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
)

// SourceAccount is the benchmark organisation's source account.
const SourceAccount = "111111111111"

// image is a built source AMI and what the scenario says about it.
type image struct {
	img    cloud.Image
	set    ImageSet
	region string
}

// world is a built scenario.
type world struct {
	sc       Scenario
	cloud    *sim.Cloud
	cfg      *config.Config
	accounts []string   // the organisation's member accounts but the source, sorted
	ous      [][]string // accounts of each OU
	ouIDs    []string
	excluded map[string]bool // targets.exclude_accounts
	images   []image         // sorted by Region, then id (the engine's order)
}

func accountID(i int) string { return fmt.Sprintf("2%011d", i+1) }

// build makes the scenario's organisation. Copies of Copied image sets
// are created directly in the simulator (they are scenery, not calls).
// extra options (a served world's page sizes) come after the scenario's.
func build(ctx context.Context, sc Scenario, extra ...sim.Option) (*world, error) {
	cfg, err := scenarioConfig(sc)
	if err != nil {
		return nil, err
	}
	opts := []sim.Option{}
	if sc.Latency > 0 {
		l := sc.Latency
		opts = append(opts, sim.WithLatency(sim.Latency{Describe: l, Mutating: l, STS: l, Organizations: l}))
	}
	if sc.Throttle {
		opts = append(opts, sim.WithThrottling(sim.DefaultThrottling()))
	}
	c := sim.New(append(opts, extra...)...)
	w := &world{sc: sc, cloud: c, cfg: cfg, excluded: excludedAccounts(sc)}
	if err := c.AddAccount(SourceAccount, "golden-images", "", cloud.AccountActive); err != nil {
		return nil, err
	}
	ous := max(1, sc.OUs)
	for o := range ous {
		w.ouIDs = append(w.ouIDs, c.AddOU("", fmt.Sprintf("workloads-%d", o)))
		w.ous = append(w.ous, nil)
	}
	for i := range sc.Accounts {
		id := accountID(i)
		o := i * ous / sc.Accounts
		if err := c.AddAccount(id, fmt.Sprintf("acct-%d", i+1), w.ouIDs[o], cloud.AccountActive); err != nil {
			return nil, err
		}
		w.accounts = append(w.accounts, id)
		w.ous[o] = append(w.ous[o], id)
	}

	n := 0
	for _, set := range sc.Images {
		target := "*"
		if set.OU >= 0 {
			if set.OU >= ous {
				return nil, fmt.Errorf("scenario %s: image set targets OU %d of %d", sc.Name, set.OU, ous)
			}
			target = w.ouIDs[set.OU]
		}
		devs := make([]sim.DeviceSpec, max(1, set.Snapshots))
		for i := range devs {
			devs[i] = sim.DeviceSpec{Size: 8}
		}
		for range set.Count {
			n++
			name := fmt.Sprintf("golden-%04d", n)
			img := c.AddImage(SourceAccount, set.Region, sim.ImageSpec{
				Name: name, Tags: map[string]string{config.DefaultTagKey: target, "Recipe": name}, Devices: devs,
			})
			w.images = append(w.images, image{img: img, set: set, region: set.Region})
		}
	}
	slices.SortFunc(w.images, func(a, b image) int {
		if a.region != b.region {
			return strings.Compare(a.region, b.region)
		}
		return strings.Compare(a.img.ID, b.img.ID)
	})
	if err := w.addCopies(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// scenarioConfig is the configuration a scenario's runs use, in process
// or, written to a file, by the built binary.
func scenarioConfig(sc Scenario) (*config.Config, error) {
	cfg := config.Default()
	cfg.Source.AccountID = SourceAccount
	cfg.Source.Regions = slices.Clone(sc.Regions)
	cfg.Encryption.KMSKey = "" // each account's default EBS key
	cfg.State.Backend = config.BackendMemory
	cfg.Limits.Concurrency = sc.Concurrency
	cfg.Limits.InFlightCopies = sc.InFlightCap
	cfg.Targets.ExcludeAccounts = slices.Sorted(maps.Keys(excludedAccounts(sc)))
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	return cfg, nil
}

// excludedAccounts are the accounts targets.exclude_accounts names: the
// first ExcludedPerOU accounts of each of the first ExcludedOUs OUs.
func excludedAccounts(sc Scenario) map[string]bool {
	ex := map[string]bool{}
	ous := max(1, sc.OUs)
	inOU := make([]int, ous)
	for i := range sc.Accounts {
		o := i * ous / sc.Accounts
		if o < sc.ExcludedOUs && inOU[o] < sc.ExcludedPerOU {
			ex[accountID(i)] = true
		}
		inOU[o]++
	}
	return ex
}

// targets returns the accounts an image targets: those its OU (or the
// whole organisation) holds, but the excluded.
func (w *world) targets(im image) []string {
	all := w.accounts
	if im.set.OU >= 0 {
		all = w.ous[im.set.OU]
	}
	if len(w.excluded) == 0 {
		return all
	}
	return slices.DeleteFunc(slices.Clone(all), func(a string) bool { return w.excluded[a] })
}

// addCopies creates, for every Copied image, a good copy in each target
// account, tagged as amicopier tags its copies; several accounts at a time.
func (w *world) addCopies(ctx context.Context) error {
	type job struct {
		im   image
		name string
		tags map[string]string
	}
	var jobs []job
	for _, im := range w.images {
		if !im.set.Copied {
			continue
		}
		// One tag map per source: the simulator interns it, so 1,000
		// copies share one stored tag set.
		tags := map[string]string{
			reconcile.TagCopiedFrom: im.img.ID, reconcile.TagEncrypted: "true", reconcile.TagManaged: "true",
			reconcile.TagSourceAccount: SourceAccount, reconcile.TagSourceRegion: im.region, "Recipe": im.img.Tags["Recipe"],
		}
		jobs = append(jobs, job{im: im, name: im.img.Name + "-encrypted-" + im.img.ID, tags: tags})
	}
	if len(jobs) == 0 {
		return nil
	}
	devs := []sim.DeviceSpec{{Size: 8, AWSManagedKey: true}}
	var wg sync.WaitGroup
	next := make(chan string)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for account := range next {
				for _, j := range jobs {
					if w.excluded[account] || (j.im.set.OU >= 0 && !slices.Contains(w.targets(j.im), account)) {
						continue
					}
					w.cloud.AddImage(account, j.im.region, sim.ImageSpec{Name: j.name, Tags: j.tags, Devices: devs})
				}
			}
		})
	}
	for _, a := range w.accounts {
		select {
		case next <- a:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	return ctx.Err()
}

// staleGrants counts the grants of the source AMIs that reach an account
// that is not one of the image's targets: a launch permission of the
// account, of an OU holding it or of the organisation, or a create-volume
// permission on one of the image's snapshots.
func (w *world) staleGrants() int {
	n := 0
	for _, im := range w.images {
		targets := map[string]bool{}
		for _, a := range w.targets(im) {
			targets[a] = true
		}
		stale := func(accts []string) {
			for _, a := range accts {
				if !targets[a] {
					n++
				}
			}
		}
		p := w.cloud.LaunchPermission(SourceAccount, im.region, im.img.ID)
		stale(p.Accounts)
		if len(p.Organizations) > 0 {
			stale(w.accounts)
		}
		for _, arn := range p.OUs {
			for o, id := range w.ouIDs {
				if sim.OUARN(id) == arn {
					stale(w.ous[o])
				}
			}
		}
		for _, snap := range im.img.SnapshotIDs() {
			stale(w.cloud.SnapshotPermissions(SourceAccount, im.region, snap))
		}
	}
	return n
}
