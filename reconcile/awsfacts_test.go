package reconcile_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// The tests of this file pin the AWS facts, and the bugs found by running
// amicopier against AWS's behaviour, that docs/design.md lists under "AWS
// facts". Each failed before the change that made it pass.

// TestCopiesAreNeverSources: an image in the source account carrying
// CopiedFromAMI or amicopier's marker is a copy, whoever made it, and is
// never discovered as a source; and the source account is never a target,
// whichever form names it. Three runs: only the first copies.
func TestCopiesAreNeverSources(t *testing.T) {
	forms := []struct {
		name, targets string
		// named: the source account is named by its id, and so reported
		// as a rejected target; a group ("*", a root, an OU) leaves it out.
		named bool
	}{
		{"explicit id", "200000000001 " + srcAccount, true},
		{"whole organisation", "*", false},
		{"root", sim.RootID, false},
		{"explicit id beside the others", "* " + srcAccount, true},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			w := newWorld(t, 2)
			img := w.image(euWest, "web", 1, f.targets)
			// A copy another tool made in the source account, tagged as
			// AMIgo's Image Copier tags them, with the targets tag copied
			// over: a copy, not a source.
			w.cloud.AddImage(srcAccount, euWest, sim.ImageSpec{Name: "web-encrypted-by-amigo", Tags: map[string]string{
				reconcile.TagCopiedFrom: img.ID, "Encrypted": "true", targetTag: "*"}, Devices: []sim.DeviceSpec{{Size: 8, Encrypted: true}}})
			// One carrying only amicopier's marker.
			w.cloud.AddImage(srcAccount, euWest, sim.ImageSpec{Name: "marked", Tags: map[string]string{
				reconcile.TagManaged: "true", targetTag: "*"}, Devices: []sim.DeviceSpec{{Size: 8, Encrypted: true}}})
			for i := range 3 {
				res := w.run(reconcile.ModeRun)
				copies := res.Summary.APICalls[cloud.OpCopyImage]
				switch {
				case i == 0 && copies == 0:
					t.Fatalf("run 1 made no copy: %v %v", res.Summary.APICalls, res.Summary.Errors)
				case i > 0 && copies != 0:
					t.Fatalf("run %d made %d CopyImage calls: copies were taken for sources (%+v)", i+1, copies, res.Report.Sources)
				}
				if got := len(res.Report.Sources); got != 1 {
					t.Fatalf("run %d discovered %d sources, want 1 (%+v)", i+1, got, res.Report.Sources)
				}
				if n := len(w.copies(srcAccount, euWest, img.ID)); n != 1 {
					t.Fatalf("run %d: %d copies of the source in the source account, want only the other tool's", i+1, n)
				}
				rej := itemsOf(res.Report, report.RejectedTarget)
				if reported := slices.ContainsFunc(rej, func(it report.Item) bool {
					return it.Account == srcAccount && strings.Contains(it.Reason, "is the source account")
				}); reported != f.named {
					t.Fatalf("run %d: source account reported as a rejected target: %v, want %v (%+v)", i+1, reported, f.named, rej)
				}
				w.settle()
			}
		})
	}
}

// TestEveryFormRejectsTheSameAccounts: "*", the root, an OU and explicit
// ids report an excluded account and a suspended one the same way, as
// rejected targets, and copy into neither.
func TestEveryFormRejectsTheSameAccounts(t *testing.T) {
	forms := []struct{ name, targets string }{
		{"whole organisation", "*"},
		{"root", sim.RootID},
		{"OU", ""}, // the world's OU, filled in below
		{"explicit ids", accountID(1) + " " + accountID(2) + " " + accountID(3)},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			w := newWorld(t, 3)
			w.cfg.Targets.ExcludeAccounts = []string{accountID(2)}
			must(t, w.cloud.SetAccountState(accountID(3), cloud.AccountSuspended))
			targets := f.targets
			if targets == "" {
				targets = w.ou
			}
			w.image(euWest, "web", 1, targets)
			res := w.run(reconcile.ModePlan)
			rej := map[string]string{}
			for _, it := range itemsOf(res.Report, report.RejectedTarget) {
				rej[it.Account] = it.Reason
			}
			if !strings.Contains(rej[accountID(2)], "excluded by targets.exclude_accounts") {
				t.Errorf("excluded account: %q", rej[accountID(2)])
			}
			if !strings.Contains(rej[accountID(3)], "SUSPENDED, not ACTIVE") {
				t.Errorf("suspended account: %q", rej[accountID(3)])
			}
			if len(rej) != 2 {
				t.Errorf("rejected %v, want the excluded and the suspended account only", rej)
			}
			if got := res.Report.Counts[report.Missing]; got != 1 {
				t.Errorf("missing = %d, want 1 (only the ACTIVE, included account)", got)
			}
		})
	}
}

// TestRefusedCopyIsAFailedAttempt: EC2 refusing CopyImage on its merits is
// a failed attempt (counted, backed off, stuck after limits.max_attempts,
// its reason shown), never a copy in progress; a full quota or a grant not
// propagated yet is a deferral: nothing counted, the same request next run.
func TestRefusedCopyIsAFailedAttempt(t *testing.T) {
	tests := []struct {
		code   string
		status state.PairStatus
		cat    report.Category
	}{
		{"InvalidAMIName.Duplicate", state.PairFailed, report.Failed},
		{"AccessDenied", state.PairFailed, report.Failed},
		{"KMS.NotFoundException", state.PairFailed, report.Failed},
		{"InvalidParameterValue", state.PairFailed, report.Failed},
		{"ResourceLimitExceeded", state.PairDeferred, report.Missing},
		// The source was shared in this very run: EC2 not finding it is
		// the grant propagating.
		{"InvalidAMIID.NotFound", state.PairDeferred, report.Missing},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			w := newWorld(t, 1)
			w.cfg.Limits.MaxAttempts = 2
			w.cfg.Limits.RetryBackoff = config.Duration(time.Hour)
			img := w.image(euWest, "web", 1, accountID(1))
			key := state.PairKey{SourceImage: img.ID, Account: accountID(1), Region: euWest}
			w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: cloud.OpCopyImage, Code: tt.code, Message: "refused"}).Hook())
			res := w.run(reconcile.ModeRun)
			rec, _ := w.pair(key)
			if rec.Status != tt.status || rec.LastErrorCode != tt.code || rec.CopyImageID != "" {
				t.Fatalf("record %+v, want status %s", rec, tt.status)
			}
			it := itemsOf(res.Report, tt.cat)
			if len(it) != 1 || !strings.Contains(it[0].LastError, tt.code) {
				t.Fatalf("report %+v", res.Report.Items)
			}
			if tt.status == state.PairDeferred {
				if rec.Failures != 0 || res.Summary.Actions["deferred"] != 1 || res.Summary.Actions["copy_failed"] != 0 {
					t.Fatalf("a deferral counted as a failure: %+v %v", rec, res.Summary.Actions)
				}
				w.cloud.SetFault(nil)
				if res := w.run(reconcile.ModeRun); res.Summary.APICalls[cloud.OpCopyImage] != 1 {
					t.Fatalf("the deferred copy was not made next run: %v", res.Summary.APICalls)
				}
				if again, _ := w.pair(key); again.Attempts != rec.Attempts || again.ClientToken != rec.ClientToken {
					t.Fatalf("the deferred request changed: %+v then %+v", rec, again)
				}
				return
			}
			if rec.Failures != 1 || res.Summary.Actions["copy_failed"] != 1 {
				t.Fatalf("record %+v actions %v", rec, res.Summary.Actions)
			}
			// Backing off: nothing until the retry is due, then the
			// second failure makes it stuck, with its reason.
			if res := w.run(reconcile.ModeRun); res.Summary.APICalls[cloud.OpCopyImage] != 0 {
				t.Fatalf("retried within the backoff: %v", res.Summary.APICalls)
			}
			w.cloud.Advance(time.Hour + time.Minute)
			w.run(reconcile.ModeRun)
			res = w.run(reconcile.ModeRun)
			stuck := itemsOf(res.Report, report.Stuck)
			if len(stuck) != 1 || !strings.Contains(stuck[0].Reason, tt.code) || res.Summary.APICalls[cloud.OpCopyImage] != 0 {
				t.Fatalf("not stuck after 2 refusals: %+v %v", res.Report.Items, res.Summary.APICalls)
			}
		})
	}
}

// TestPruneLeavesNoSnapshot: deleting the snapshots of a copy right after
// deregistering it races with EC2 releasing them (InvalidSnapshot.InUse),
// so prune deregisters with DeleteAssociatedSnapshots; a snapshot EC2
// still could not delete is remembered and deleted by a later run.
func TestPruneLeavesNoSnapshot(t *testing.T) {
	w, copyID := orphanWorld(t, true)
	copyImg, _ := w.cloud.Image(accountID(1), euWest, copyID)
	snaps := copyImg.SnapshotIDs()
	if len(snaps) != 2 {
		t.Fatalf("setup: copy has %d snapshots", len(snaps))
	}
	w.run(reconcile.ModeRun) // first sighting
	w.cloud.Advance(49 * time.Hour)
	w.cloud.BreakSnapshotDeletion(accountID(1), euWest, snaps[1], true)
	res := w.run(reconcile.ModeRun)
	if res.Summary.Actions["prune"] != 1 || res.Summary.APICalls[cloud.OpDeleteSnapshot] != 0 {
		t.Fatalf("actions %v calls %v errors %v", res.Summary.Actions, res.Summary.APICalls, res.Summary.Errors)
	}
	if _, ok := w.cloud.Snapshot(accountID(1), euWest, snaps[0]); ok {
		t.Fatalf("snapshot %s of the pruned copy left behind", snaps[0])
	}
	key := state.PairKey{SourceImage: copyImg.Tags[reconcile.TagCopiedFrom], Account: accountID(1), Region: euWest}
	rec, _ := w.pair(key)
	if rec.Status != state.PairOrphaned || !slices.Equal(rec.Snapshots, snaps[1:]) {
		t.Fatalf("record %+v, want the snapshot EC2 kept", rec)
	}
	// EC2 lets go of it: the next run deletes it and the record settles.
	w.cloud.BreakSnapshotDeletion(accountID(1), euWest, snaps[1], false)
	w.cloud.Advance(time.Hour)
	w.run(reconcile.ModeRun)
	if _, ok := w.cloud.Snapshot(accountID(1), euWest, snaps[1]); ok {
		t.Fatalf("snapshot %s still there", snaps[1])
	}
	if rec, _ := w.pair(key); rec.Status != state.PairSettled || len(rec.Snapshots) != 0 {
		t.Fatalf("record %+v", rec)
	}
}

// EC2 may not list a copy right after CopyImage returned its id: within
// the visibility grace the pair is in progress, never copied again.
func TestUnlistedCopyIsNotCopiedAgain(t *testing.T) {
	w := newWorld(t, 1, sim.WithListingDelay(20*time.Minute))
	w.cfg.Targets.Regions = []string{euWest}
	img := w.image(euWest, "web", 1, accountID(1))
	res := w.run(reconcile.ModeRun)
	if n := res.Summary.APICalls[cloud.OpCopyImage]; n != 1 {
		t.Fatalf("%d CopyImage calls, want 1", n)
	}
	w.cloud.Advance(5 * time.Minute)
	res = w.run(reconcile.ModeRun)
	if n := res.Summary.APICalls[cloud.OpCopyImage]; n != 0 {
		t.Errorf("the unlisted copy was copied again (%d CopyImage calls)", n)
	}
	wantCounts(t, res.Report, map[report.Category]int{report.InProgress: 1})
	w.cloud.Advance(20 * time.Minute)
	res = w.run(reconcile.ModeRun)
	wantCounts(t, res.Report, map[report.Category]int{report.OK: 1})
	if n := len(w.copies(accountID(1), euWest, img.ID)); n != 1 {
		t.Errorf("%d copies, want 1", n)
	}
}

// EC2 lists a deregistered image for a while, in state deregistered: a
// source in that state is gone, and its copies orphaned.
func TestListedDeregisteredSourceIsGone(t *testing.T) {
	w, copyID := orphanWorld(t, false, sim.WithDeregisteredListing(24*time.Hour))
	src := w.cloud.Client(srcAccount, euWest)
	imgs, err := src.DescribeImages(context.Background(), cloud.ImageQuery{})
	must(t, err)
	if !slices.ContainsFunc(imgs, func(im cloud.Image) bool { return im.State == cloud.ImageDeregistered }) {
		t.Fatal("setup: the deregistered source is not listed")
	}
	res := w.run(reconcile.ModeRun)
	orphans := itemsOf(res.Report, report.Orphaned)
	if len(orphans) != 1 || !slices.Contains(orphans[0].CopyImages, copyID) {
		t.Fatalf("orphaned %+v, want the copy %s", orphans, copyID)
	}
}

// Its owner always sees a deprecated AMI: by default it is no longer a
// source (no new copies), and plan says so; source.include_deprecated
// copies it still.
func TestDeprecatedSourcesAreSkipped(t *testing.T) {
	for _, include := range []bool{false, true} {
		t.Run(fmt.Sprintf("include_deprecated=%v", include), func(t *testing.T) {
			w := newWorld(t, 2)
			w.cfg.Targets.Regions = []string{euWest}
			w.cfg.Source.IncludeDeprecated = include
			old := w.image(euWest, "old", 1, "*")
			w.cloud.DeprecateImage(srcAccount, euWest, old.ID, w.cloud.Now().Add(-time.Hour))
			soon := w.image(euWest, "soon", 1, "*")
			w.cloud.DeprecateImage(srcAccount, euWest, soon.ID, w.cloud.Now().Add(time.Hour))
			plan := w.run(reconcile.ModePlan).Report
			skipped := len(plan.Skipped) == 1 && plan.Skipped[0].ID == old.ID && strings.Contains(plan.Skipped[0].Reason, "deprecated since")
			if skipped == include {
				t.Fatalf("skipped %+v", plan.Skipped)
			}
			w.run(reconcile.ModeRun)
			if n := len(w.copies(accountID(1), euWest, soon.ID)); n != 1 {
				t.Errorf("%d copies of the AMI deprecated in an hour, want 1", n)
			}
			want := 0
			if include {
				want = 1
			}
			if n := len(w.copies(accountID(1), euWest, old.ID)); n != want {
				t.Errorf("%d copies of the deprecated AMI, want %d", n, want)
			}
		})
	}
}

// An image backed by a snapshot under the AWS-managed aws/ebs key cannot
// be shared at all: EC2 says so (the simulator as AWS does, no fault
// injected) and its targets are rejected with EC2's code.
func TestAWSManagedKeySourceIsRejected(t *testing.T) {
	w := newWorld(t, 2)
	w.cfg.Targets.Regions = []string{euWest}
	img := w.cloud.AddImage(srcAccount, euWest, sim.ImageSpec{Name: "ebs-default", Tags: map[string]string{targetTag: "*"},
		Devices: []sim.DeviceSpec{{AWSManagedKey: true}}})
	res := w.run(reconcile.ModeRun)
	if n := res.Summary.APICalls[cloud.OpCopyImage]; n != 0 {
		t.Errorf("%d CopyImage calls for an AMI that cannot be shared", n)
	}
	wantCounts(t, res.Report, map[report.Category]int{report.RejectedTarget: 2})
	rec, _ := w.pair(state.PairKey{SourceImage: img.ID, Account: accountID(1), Region: euWest})
	if rec.Status != state.PairRejected || rec.LastErrorCode != "InvalidParameter" {
		t.Errorf("record %+v, want rejected with ModifyImageAttribute's InvalidParameter", rec)
	}
}

// A CopyImage right after the share may be refused while the grant
// propagates (AuthFailure or InvalidAMIID.NotFound): the copy waits for
// the next run, nothing counts as failed, and the account is not taken for
// denied.
func TestGrantStillPropagatingDefersTheCopy(t *testing.T) {
	const propagation = 5 * time.Minute // on the simulator's clock
	w := newWorld(t, 2, sim.WithGrantPropagation(propagation))
	w.cfg.Targets.Regions = []string{euWest}
	w.cfg.Sharing.OrganizationalUnits = false
	img := w.image(euWest, "web", 1, "*")
	res := w.run(reconcile.ModeRun)
	if n := res.Summary.APICalls[cloud.OpCopyImage]; n != 2 {
		t.Fatalf("%d CopyImage calls, want 2 (refused while the grants propagate)", n)
	}
	wantCounts(t, res.Report, map[report.Category]int{report.Missing: 2})
	for _, it := range res.Report.Items {
		if it.Action != "deferred" || !strings.Contains(it.Reason, "does not see the grant yet") {
			t.Errorf("item %+v: want deferred while the grant propagates", it)
		}
	}
	for _, a := range accounts(2) {
		rec, _ := w.pair(state.PairKey{SourceImage: img.ID, Account: a, Region: euWest})
		if rec.Failures != 0 || rec.Status == state.PairFailed {
			t.Errorf("record %+v: a propagating grant is no failure", rec)
		}
	}
	w.cloud.Advance(propagation)
	res = w.run(reconcile.ModeRun)
	if n := res.Summary.APICalls[cloud.OpCopyImage]; n != 2 {
		t.Errorf("%d CopyImage calls on the next run, want 2", n)
	}
	w.settle()
	wantCounts(t, w.run(reconcile.ModePlan).Report, map[report.Category]int{report.OK: 2})
}
