package reconcile_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
)

// eventWorld is 40 accounts under the world's OU plus an OU "ops" of
// three (the last suspended), and one image for two named accounts, a
// suspended named account, a non-member and ops. The first named account
// holds 1,500 unrelated copies: listing every copy there takes two pages,
// its image's copies one.
func eventWorld(t *testing.T) (w *world, img cloud.Image, ops string, opsAccounts []string) {
	t.Helper()
	w = newWorld(t, 40)
	ops = w.cloud.AddOU("", "ops")
	for i := range 3 {
		id := fmt.Sprintf("3000000%05d", i+1)
		must(t, w.cloud.AddAccount(id, fmt.Sprintf("ops-%d", i+1), ops, cloud.AccountActive))
		w.cloud.AddKey(id, euWest, "amicopier")
		opsAccounts = append(opsAccounts, id)
	}
	must(t, w.cloud.SetAccountState(opsAccounts[2], cloud.AccountSuspended))
	must(t, w.cloud.SetAccountState(accountID(3), cloud.AccountSuspended))
	for i := range 1500 {
		w.cloud.AddImage(accountID(1), euWest, sim.ImageSpec{Name: fmt.Sprintf("other-%04d", i),
			Tags: map[string]string{reconcile.TagCopiedFrom: fmt.Sprintf("ami-%017x", i+1)}, Devices: []sim.DeviceSpec{{Size: 8}}})
	}
	w.cfg.Source.Regions = []string{euWest}
	targets := strings.Join([]string{accountID(1), accountID(2), accountID(3), "999999999999", ops}, ",")
	img = w.image(euWest, "web", 2, targets)
	return w, img, ops, opsAccounts
}

// TestEventRunReadsOnlyWhatItNames: a run scoped to one image whose
// metadata names accounts and an OU looks up the accounts one by one and
// lists the OU, never the organisation; it describes only the image's
// copies; it shares only with ACTIVE members and rejects the rest.
func TestEventRunReadsOnlyWhatItNames(t *testing.T) {
	w, img, ops, opsAccounts := eventWorld(t)
	res, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, Trigger: "ami-state-change", OnlyImages: []string{img.ID}})
	must(t, err)
	calls := res.Summary.APICalls
	want := map[string]int64{
		cloud.OpListAccounts:                     0,
		cloud.OpListRoots:                        0,
		cloud.OpDescribeAccount:                  4, // the source account is never looked up
		cloud.OpListOrganizationalUnitsForParent: 1,
		cloud.OpListAccountsForParent:            1,
		cloud.OpDescribeOrganization:             1, // ops is granted whole
		cloud.OpAssumeRole:                       4, // 1, 2 and ops' ACTIVE two
		cloud.OpDescribeImages:                   1 + 4,
		cloud.OpCopyImage:                        4,
	}
	for op, n := range want {
		if calls[op] != n {
			t.Errorf("%s: %d calls, want %d (all: %v)", op, calls[op], n, calls)
		}
	}
	// Rejected: the non-member, the suspended named account and ops'
	// suspended one (reported as an OU's accounts always are).
	wantCounts(t, res.Report, map[report.Category]int{report.Missing: 4, report.RejectedTarget: 3})
	rejected := map[string]string{}
	for _, it := range itemsOf(res.Report, report.RejectedTarget) {
		rejected[it.Account] = it.Reason
	}
	if !strings.Contains(rejected["999999999999"], "not a member") || !strings.Contains(rejected[accountID(3)], "SUSPENDED") || !strings.Contains(rejected[opsAccounts[2]], "SUSPENDED") {
		t.Errorf("rejections %v", rejected)
	}
	for _, a := range []string{accountID(1), accountID(2), opsAccounts[0], opsAccounts[1]} {
		if n := len(w.copies(a, euWest, img.ID)); n != 1 {
			t.Errorf("%s holds %d copies, want 1", a, n)
		}
	}
	// Never shared outside ACTIVE members: the named accounts and the OU.
	perm := w.cloud.LaunchPermission(srcAccount, euWest, img.ID)
	slices.Sort(perm.Accounts)
	if !slices.Equal(perm.Accounts, []string{accountID(1), accountID(2)}) || !slices.Equal(perm.OUs, []string{sim.OUARN(ops)}) || len(perm.Organizations) != 0 {
		t.Errorf("launch permission %+v", perm)
	}
	for _, snap := range img.SnapshotIDs() {
		got := w.cloud.SnapshotPermissions(srcAccount, euWest, snap)
		slices.Sort(got)
		if want := []string{accountID(1), accountID(2), opsAccounts[0], opsAccounts[1]}; !slices.Equal(got, want) {
			t.Errorf("create-volume permission of %s: %v, want %v", snap, got, want)
		}
	}
}

// TestEventRunForStarListsTheOrganisation: "*" needs every member, so a
// scoped run for it lists the organisation and looks up no account.
func TestEventRunForStarListsTheOrganisation(t *testing.T) {
	w := newWorld(t, 3)
	img := w.image(euWest, "web", 1, "*")
	res, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, OnlyImages: []string{img.ID}})
	must(t, err)
	if c := res.Summary.APICalls; c[cloud.OpListAccounts] != 1 || c[cloud.OpDescribeAccount] != 0 || c[cloud.OpCopyImage] != 3 {
		t.Errorf("calls %v: want one ListAccounts page, no DescribeAccount, 3 copies", c)
	}
}

// TestEventRunLookupFailure: an account whose lookup fails is neither
// rejected nor shared with: it is unreachable this run (partial), and the
// others go on.
func TestEventRunLookupFailure(t *testing.T) {
	w := newWorld(t, 3)
	img := w.image(euWest, "web", 1, accountID(1)+","+accountID(2))
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: cloud.OpDescribeAccount, Resource: accountID(2), Code: "AccessDeniedException", Message: "denied"}).Hook())
	res, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, OnlyImages: []string{img.ID}})
	must(t, err)
	if res.Summary.Status != report.StatusPartial {
		t.Errorf("status %s, want partial", res.Summary.Status)
	}
	un := itemsOf(res.Report, report.Unreachable)
	if len(un) != 1 || un[0].Account != accountID(2) || !strings.Contains(un[0].Reason, "could not be checked") {
		t.Errorf("unreachable %+v", un)
	}
	if len(w.copies(accountID(2), euWest, img.ID)) != 0 || slices.Contains(w.cloud.LaunchPermissions(srcAccount, euWest, img.ID), accountID(2)) {
		t.Error("an account that could not be checked was shared with or copied into")
	}
	if len(w.copies(accountID(1), euWest, img.ID)) != 1 {
		t.Error("the other account was not copied into")
	}
}

// TestEventRunNeverListsTheOrganisation: an event for one image whose
// targets are five named accounts (one of them SUSPENDED) and one OU, in
// an organisation of 200 accounts, costs what it names: five
// DescribeAccount calls and the OU's own listing, counted by the
// simulator itself, and never a ListAccounts page. The SUSPENDED account
// is neither shared with nor copied into.
func TestEventRunNeverListsTheOrganisation(t *testing.T) {
	w := newWorld(t, 200)
	w.cfg.Source.Regions = []string{euWest}
	team := w.cloud.AddOU("", "team")
	var teamAccounts []string
	for i := range 4 {
		id := fmt.Sprintf("3000000%05d", i+1)
		must(t, w.cloud.AddAccount(id, fmt.Sprintf("team-%d", i+1), team, cloud.AccountActive))
		w.cloud.AddKey(id, euWest, "amicopier")
		teamAccounts = append(teamAccounts, id)
	}
	named := []string{accountID(10), accountID(20), accountID(30), accountID(40), accountID(50)}
	must(t, w.cloud.SetAccountState(accountID(50), cloud.AccountSuspended))
	img := w.image(euWest, "web", 2, strings.Join(append(slices.Clone(named), team), " "))
	w.cloud.ResetCounters()

	res, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, Trigger: "ami-state-change", OnlyImages: []string{img.ID}})
	must(t, err)
	for op, want := range map[string]int64{
		cloud.OpListAccounts:                     0,
		cloud.OpListRoots:                        0,
		cloud.OpDescribeAccount:                  5,
		cloud.OpListOrganizationalUnitsForParent: 1,
		cloud.OpListAccountsForParent:            1,
		cloud.OpCopyImage:                        8, // 4 named ACTIVE accounts + the OU's 4
	} {
		if got := w.cloud.Calls(op, "", ""); got != want {
			t.Errorf("the simulator saw %d %s calls, want %d", got, op, want)
		}
	}
	if n := len(w.copies(accountID(50), euWest, img.ID)); n != 0 {
		t.Errorf("the SUSPENDED named account holds %d copies", n)
	}
	for _, a := range append(named[:4:4], teamAccounts...) {
		if n := len(w.copies(a, euWest, img.ID)); n != 1 {
			t.Errorf("%s holds %d copies, want 1", a, n)
		}
	}
	perm := w.cloud.LaunchPermission(srcAccount, euWest, img.ID)
	if slices.Contains(perm.Accounts, accountID(50)) {
		t.Errorf("the SUSPENDED named account was granted launch permission: %+v", perm)
	}
	for _, snap := range img.SnapshotIDs() {
		if slices.Contains(w.cloud.SnapshotPermissions(srcAccount, euWest, snap), accountID(50)) {
			t.Errorf("the SUSPENDED named account was granted create-volume permission of %s", snap)
		}
	}
	rej := itemsOf(res.Report, report.RejectedTarget)
	if len(rej) != 1 || rej[0].Account != accountID(50) || !strings.Contains(rej[0].Reason, "SUSPENDED") {
		t.Errorf("rejected %+v, want only the SUSPENDED named account", rej)
	}
}
