package reconcile_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
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
				res := w.run(reconcile.ModeApply)
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
