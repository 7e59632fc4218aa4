package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// Records are retired ("no longer wanted", "copy gone") only on a complete
// view: every target known, every account and Region described.

// flakyTargets names targets like AMIgo's recipes table would, and fails
// while fail is set.
type flakyTargets struct {
	refs []cloud.TargetRef
	fail *atomic.Bool
}

func (s flakyTargets) Targets(context.Context, *cloud.Image) (cloud.TargetSpec, error) {
	if s.fail.Load() {
		return cloud.TargetSpec{}, errors.New("recipes table: ProvisionedThroughputExceededException")
	}
	return cloud.TargetSpec{Refs: s.refs}, nil
}

// TestIncompleteDiscoveryRetiresNoRecord: a pair that only looks
// untargeted because its targets could not be read (a metadata source
// failed, an OU could not be listed) or whose account could not be
// observed keeps its record.
func TestIncompleteDiscoveryRetiresNoRecord(t *testing.T) {
	tests := []struct {
		name    string
		targets string // the image's tag
		// breakWorld makes the second run incomplete; it returns the
		// run's context.
		breakWorld  func(w *world, fail *atomic.Bool) context.Context
		unreachable int
	}{
		{
			name: "a target metadata source fails",
			breakWorld: func(w *world, fail *atomic.Bool) context.Context {
				fail.Store(true)
				return context.Background()
			},
		},
		{
			name:    "an OU cannot be listed",
			targets: "ou-sim0-00000001",
			breakWorld: func(w *world, _ *atomic.Bool) context.Context {
				w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "ListAccountsForParent", Code: "ServiceUnavailable"}).Hook())
				return context.Background()
			},
			unreachable: 1, // the OU
		},
		{
			// One AssumeRole a million seconds: the second account's
			// turn would come after the run's deadline.
			name:    "an account gets no AssumeRole slot",
			targets: "*",
			breakWorld: func(w *world, _ *atomic.Bool) context.Context {
				w.cfg.Limits.AssumeRoleRate = 1e-6
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
				w.t.Cleanup(cancel)
				return ctx
			},
			unreachable: 1, // the second account's pair
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, 2)
			w.cfg.Limits.Concurrency = 1
			img := w.image(euWest, "web", 1, tt.targets)
			// Only the first case's targets come from the recipes table.
			fail := &atomic.Bool{}
			var sources []cloud.TargetSource
			if tt.targets == "" {
				sources = append(sources, flakyTargets{fail: fail, refs: []cloud.TargetRef{
					{Kind: cloud.TargetAccount, ID: accountID(1), Origin: "recipes"},
					{Kind: cloud.TargetAccount, ID: accountID(2), Origin: "recipes"},
				}})
			}
			engine := w.engineWith(func(o *reconcile.Options) { o.TargetSources = sources })
			res, err := engine.Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun})
			must(t, err)
			if res.Summary.APICalls["CopyImage"] != 2 {
				t.Fatalf("setup: %v %v", res.Summary.APICalls, res.Summary.Errors)
			}

			ctx := tt.breakWorld(w, fail)
			engine = w.engineWith(func(o *reconcile.Options) { o.TargetSources = sources })
			res, err = engine.Run(ctx, reconcile.Request{Mode: reconcile.ModeRun})
			must(t, err)
			if res.Summary.Status != report.StatusPartial {
				t.Errorf("status %s, want partial", res.Summary.Status)
			}
			if got := res.Report.Counts[report.Unreachable]; got != tt.unreachable {
				t.Errorf("unreachable = %d, want %d (%+v)", got, tt.unreachable, res.Report.Items)
			}
			after, err := w.store.UnsettledPairs(context.Background(), srcAccount)
			must(t, err)
			if len(after) != 2 {
				t.Fatalf("records retired by an incomplete run: %d of 2 left unsettled (%+v)", len(after), after)
			}
			for _, p := range after {
				if p.Key.SourceImage != img.ID || p.Status != state.PairCopying {
					t.Errorf("record %+v", p)
				}
			}
		})
	}
}

// TestOrphanRecordsNeedTheCopiesListed: an orphaned record is settled as
// "copy gone" only by a run that listed the account and Region's copies
// and saw every orphan: not a scoped run, not when the describe failed.
func TestOrphanRecordsNeedTheCopiesListed(t *testing.T) {
	tests := []struct {
		name string
		run  func(w *world) *reconcile.Result
	}{
		{name: "a scoped run", run: func(w *world) *reconcile.Result {
			res, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, OnlyAccounts: []string{accountID(1)}})
			must(w.t, err)
			return res
		}},
		{name: "the copies could not be listed", run: func(w *world) *reconcile.Result {
			w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "DescribeImages", Account: accountID(1), Code: "UnauthorizedOperation"}).Hook())
			return w.run(reconcile.ModeRun)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, 1)
			w.cfg.Prune.Enabled = true
			w.cfg.Prune.GracePeriod = config.Duration(48 * time.Hour)
			gone := w.image(euWest, "web", 1, accountID(1))
			w.image(euWest, "keep", 1, accountID(1)) // keeps the account a target
			w.run(reconcile.ModeRun)
			w.settle()
			must(t, deregister(context.Background(), w.cloud.Client(srcAccount, euWest), gone.ID))
			w.run(reconcile.ModeRun) // the orphan's first sighting: an orphaned record
			key := state.PairKey{SourceImage: gone.ID, Account: accountID(1), Region: euWest}
			if rec, _ := w.pair(key); rec.Status != state.PairOrphaned {
				t.Fatalf("setup: record %+v", rec)
			}
			tt.run(w)
			if rec, _ := w.pair(key); rec.Status != state.PairOrphaned {
				t.Fatalf("orphaned record settled by a run that did not see the copies: %+v", rec)
			}
		})
	}
}

// TestRetiredRecordIsNotReportedOrphaned: a copy whose source still exists
// (in a Region no longer configured) retires its pair's record, and is
// not reported as an orphan.
func TestRetiredRecordIsNotReportedOrphaned(t *testing.T) {
	w := newWorld(t, 1)
	w.cfg.Prune.Enabled = true
	img := w.image(euWest, "web", 1, accountID(1))
	w.run(reconcile.ModeRun)
	key := state.PairKey{SourceImage: img.ID, Account: accountID(1), Region: euWest}
	w.cfg.Source.Regions = []string{usEast}
	w.cfg.Targets.Regions = []string{euWest} // eu-west-1 is still swept
	res := w.run(reconcile.ModeRun)
	wantCounts(t, res.Report, map[report.Category]int{})
	rec, _ := w.pair(key)
	if rec.Status != state.PairSettled || rec.LastErrorCode != "NoLongerTargeted" {
		t.Fatalf("record %+v", rec)
	}
}

// TestOrganizationCallsAreRetriedOnce: each Organizations call is retried
// by itself, never a whole walk of the tree on top (retries multiplied).
func TestOrganizationCallsAreRetriedOnce(t *testing.T) {
	w := newWorld(t, 2)
	w.image(euWest, "web", 1, "*")
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "ListOrganizationalUnitsForParent", Code: "ServiceUnavailable"}).Hook())
	res, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModePlan, IncludeOK: true})
	must(t, err)
	if got, want := w.cloud.Calls("ListOrganizationalUnitsForParent", "", ""), int64(w.cfg.Limits.CallRetries+1); got != want {
		t.Fatalf("ListOrganizationalUnitsForParent = %d calls, want %d (one call and its retries)", got, want)
	}
	if !strings.Contains(strings.Join(res.Summary.Errors, "\n"), "OU tree") {
		t.Fatalf("errors %v", res.Summary.Errors)
	}
}
