package reconcile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
)

// orphanWorld copies one image into an account, then deregisters the
// source, leaving amicopier's copy orphaned; it also adds copies the
// prune step must never touch.
func orphanWorld(t *testing.T, prune bool, opts ...sim.Option) (w *world, copyID string) {
	t.Helper()
	w = newWorld(t, 1, opts...)
	if !prune {
		// With pruning off only target accounts are observed: keep one.
		w.image(euWest, "keep", 1, accountID(1))
	}
	w.cfg.Prune.Enabled = prune
	w.cfg.Prune.GracePeriod = config.Duration(48 * time.Hour)
	img := w.image(euWest, "web", 2, accountID(1))
	w.run(reconcile.ModeRun)
	w.settle()
	copies := w.copies(accountID(1), euWest, img.ID)
	if len(copies) != 1 {
		t.Fatalf("setup: %d copies", len(copies))
	}
	// An AMIgo copy of a vanished source, and a copy another source
	// account's amicopier made: neither may ever be pruned.
	w.cloud.AddImage(accountID(1), euWest, sim.ImageSpec{Name: "amigo-copy", Tags: map[string]string{
		"CopiedFromAMI": "ami-0000000000000dead", "Encrypted": "true"}, Devices: []sim.DeviceSpec{{Size: 8, Encrypted: true}}})
	w.cloud.AddImage(accountID(1), euWest, sim.ImageSpec{Name: "other-source", Tags: map[string]string{
		"CopiedFromAMI": "ami-0000000000000beef", "amicopier:managed": "true", "amicopier:source-account": "999999999999",
		"amicopier:source-region": euWest}, Devices: []sim.DeviceSpec{{Size: 8, Encrypted: true}}})
	must(t, deregister(context.Background(), w.cloud.Client(srcAccount, euWest), img.ID))
	return w, copies[0].ID
}

func TestPruneIsOffByDefault(t *testing.T) {
	w, copyID := orphanWorld(t, false)
	w.cloud.Advance(30 * 24 * time.Hour)
	res := w.run(reconcile.ModeRun)
	wantCounts(t, res.Report, map[report.Category]int{report.Orphaned: 1, report.OK: 1})
	if it := itemsOf(res.Report, report.Orphaned)[0]; !strings.Contains(it.Reason, "pruning is off") {
		t.Fatalf("reason %q", it.Reason)
	}
	// (The run takes back the grants of the copy made, which is done:
	// that is sharing, not pruning.)
	if n := res.Summary.APICalls["DeregisterImage"] + res.Summary.APICalls["DeleteSnapshot"]; n != 0 {
		t.Fatalf("removals with prune off: %v", res.Summary.APICalls)
	}
	if _, ok := w.cloud.Image(accountID(1), euWest, copyID); !ok {
		t.Fatal("copy gone")
	}
}

func TestPruneAfterGracePeriod(t *testing.T) {
	w, copyID := orphanWorld(t, true)
	snaps := func() int {
		n := 0
		img, _ := w.cloud.Image(accountID(1), euWest, copyID)
		for _, s := range img.SnapshotIDs() {
			if _, ok := w.cloud.Snapshot(accountID(1), euWest, s); ok {
				n++
			}
		}
		return n
	}

	// First sighting: remembered, not pruned.
	res := w.run(reconcile.ModeRun)
	it := itemsOf(res.Report, report.Orphaned)[0]
	if it.Action != "none" || !strings.Contains(it.Reason, "may be pruned after") {
		t.Fatalf("first sighting: %+v", it)
	}
	if res.Summary.MutatingCalls != 0 {
		t.Fatalf("pruned during the grace period: %v", res.Summary.APICalls)
	}

	// Still within the grace period.
	w.cloud.Advance(24 * time.Hour)
	if res := w.run(reconcile.ModeRun); res.Summary.MutatingCalls != 0 {
		t.Fatal("pruned during the grace period")
	}

	// An instance uses the copy: kept, whatever the grace period.
	w.cloud.Advance(25 * time.Hour)
	inst := w.cloud.LaunchInstance(accountID(1), euWest, copyID)
	res = w.run(reconcile.ModeRun)
	if res.Summary.MutatingCalls != 0 || !strings.Contains(itemsOf(res.Report, report.Orphaned)[0].Reason, "still use it") {
		t.Fatalf("pruned a copy in use: %v %+v", res.Summary.APICalls, res.Report.Items)
	}
	w.cloud.TerminateInstance(accountID(1), euWest, inst)

	// The plan says what run will remove, without removing it.
	plan := w.run(reconcile.ModePlan)
	if it := itemsOf(plan.Report, report.Orphaned)[0]; it.Action != "prune" {
		t.Fatalf("plan does not show the prune: %+v", it)
	}
	if plan.Summary.MutatingCalls != 0 {
		t.Fatal("plan pruned")
	}

	before := snaps()
	res = w.run(reconcile.ModeRun)
	if res.Summary.Actions["prune"] != 1 {
		t.Fatalf("not pruned: %v %+v", res.Summary.Actions, res.Report.Items)
	}
	if img, ok := w.cloud.Image(accountID(1), euWest, copyID); ok && img.State != "deregistered" {
		t.Fatalf("copy still registered: %+v", img)
	}
	if before != 2 || snaps() != 0 {
		t.Fatalf("snapshots before %d, after %d", before, snaps())
	}
	// Only amicopier's own copy went; the others are untouched, and the
	// next run has nothing to say.
	if n := len(w.cloud.Images(accountID(1), euWest)); n != 2 {
		t.Fatalf("%d images left, want the 2 foreign ones", n)
	}
	wantCounts(t, w.run(reconcile.ModeRun).Report, map[report.Category]int{})
	if got := w.cloud.Calls("DeregisterImage", accountID(1), euWest); got != 1 {
		t.Fatalf("DeregisterImage calls = %d", got)
	}
}
