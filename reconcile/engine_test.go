package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

func TestReconcileThenNothingToDo(t *testing.T) {
	w := newWorld(t, 3)
	a := w.image(euWest, "web", 1, "*")
	b := w.image(usEast, "api", 2, accountID(1)+" "+accountID(2))
	w.cfg.Targets.Regions = []string{usEast} // every image also goes to us-east-1

	first := w.run(reconcile.ModeRun)
	// a: 3 accounts x {eu-west-1, us-east-1}; b: 2 accounts x us-east-1.
	wantCounts(t, first.Report, map[report.Category]int{report.Missing: 8})
	if got := first.Summary.APICalls["CopyImage"]; got != 8 {
		t.Fatalf("CopyImage calls = %d, want 8", got)
	}
	if first.Summary.Status != report.StatusSucceeded {
		t.Fatalf("status %s: %v", first.Summary.Status, first.Summary.Errors)
	}
	for pair, n := range w.copyCounts(accounts(3)) {
		if n != 1 {
			t.Errorf("pair %s has %d copies", pair, n)
		}
	}
	// A copy carries the source's tags and amicopier's.
	c := w.copies(accountID(1), usEast, b.ID)[0]
	for k, v := range map[string]string{"Recipe": "api", reconcile.TagCopiedFrom: b.ID, reconcile.TagEncrypted: "true",
		reconcile.TagManaged: "true", reconcile.TagSourceAccount: srcAccount, reconcile.TagSourceRegion: usEast} {
		if c.Tags[k] != v {
			t.Errorf("copy tag %s = %q, want %q", k, c.Tags[k], v)
		}
	}
	if !strings.Contains(c.Name, b.ID) {
		t.Errorf("copy name %q does not contain the source id", c.Name)
	}

	// While the copies run, a second run only watches.
	second := w.run(reconcile.ModeRun)
	wantCounts(t, second.Report, map[report.Category]int{report.InProgress: 8})
	if n := w.last.MutatingCalls(); n != 0 {
		t.Fatalf("run while copies are pending made %d mutating calls", n)
	}

	w.settle()
	w.store.Reset()
	third := w.run(reconcile.ModeRun)
	wantCounts(t, third.Report, map[report.Category]int{report.OK: 8})
	settled := w.store.Writes().PairWrites
	if settled != 8 {
		t.Fatalf("settling wrote %d pair records, want 8 (one audit record per pair)", settled)
	}

	// Now nothing at all changes: no mutating call, no pair write.
	w.store.Reset()
	fourth := w.run(reconcile.ModeRun)
	wantCounts(t, fourth.Report, map[report.Category]int{report.OK: 8})
	if n := w.last.MutatingCalls(); n != 0 {
		t.Fatalf("steady-state run made %d mutating calls: %v", n, w.last.CallCounts())
	}
	writes := w.store.Writes()
	if writes.PairWrites != 0 || writes.RunWrites != 1 {
		t.Fatalf("steady-state run writes = %+v, want only its run record and the lease", writes)
	}
	if fourth.Summary.StateWrites != int(writes.Total()) {
		t.Errorf("summary says %d state writes, the store saw %d", fourth.Summary.StateWrites, writes.Total())
	}
	_ = a
}

func TestPlanMakesNoMutatingCallAndNoWrite(t *testing.T) {
	w := newWorld(t, 4)
	w.image(euWest, "web", 2, "*")
	w.image(usEast, "api", 1, accountID(1)+", 999999999999, ou-nope-12345678")
	w.cloud.DenyAssumeRole(accountID(4))

	res := w.run(reconcile.ModePlan)
	if n := w.last.MutatingCalls(); n != 0 {
		t.Fatalf("plan made %d mutating calls: %v", n, w.last.CallCounts())
	}
	if n := w.cloud.MutatingCalls(); n != 0 {
		t.Fatalf("the simulator saw %d mutating calls", n)
	}
	if writes := w.store.Writes(); writes.Total() != 0 {
		t.Fatalf("plan wrote to the state store: %+v", writes)
	}
	wantCounts(t, res.Report, map[report.Category]int{report.Missing: 4, report.Unreachable: 1, report.RejectedTarget: 2})
	for _, it := range itemsOf(res.Report, report.Missing) {
		if it.Action != "copy" {
			t.Errorf("plan item %+v does not say what run would do", it)
		}
	}
}

// TestSharingIsBatchedPerImageAndSnapshot: account by account (OU grants
// off), an image is shared with every account copying it in one call per
// image and per 500 accounts per snapshot, never per pair; the grants of
// accounts whose copies are done are taken back in as few calls, so a new
// account later is granted alone.
func TestSharingIsBatchedPerImageAndSnapshot(t *testing.T) {
	// 600 accounts: more than one ModifySnapshotAttribute batch of 500.
	w := newWorld(t, 600, sim.WithInFlightQuota(1000))
	w.cfg.Limits.Concurrency = 32
	w.cfg.Sharing.OrganizationalUnits = false
	imgs := []cloud.Image{
		w.image(euWest, "web", 1, "*"),
		w.image(euWest, "api", 3, "*"),
		w.image(usEast, "db", 2, "*"),
	}
	res := w.run(reconcile.ModeRun)
	if got := res.Summary.APICalls["CopyImage"]; got != 1800 {
		t.Fatalf("CopyImage = %d, want 1800", got)
	}
	batches := int64(2) // ceil(600/500) per snapshot
	snapshots := int64(1 + 3 + 2)
	if got, want := w.last.CallCounts()["ModifyImageAttribute"], int64(len(imgs)); got != want {
		t.Errorf("ModifyImageAttribute = %d, want %d (one per image: up to 1,000 grantees a call)", got, want)
	}
	if got, want := w.last.CallCounts()["ModifySnapshotAttribute"], batches*snapshots; got != want {
		t.Errorf("ModifySnapshotAttribute = %d, want %d", got, want)
	}
	if got, want := w.last.CallCounts()["DescribeImageAttribute"], int64(len(imgs)); got != want {
		t.Errorf("DescribeImageAttribute = %d, want %d", got, want)
	}
	for _, img := range imgs {
		if got := len(w.cloud.LaunchPermissions(srcAccount, img.Region, img.ID)); got != 600 {
			t.Errorf("%s shared with %d accounts, want 600", img.ID, got)
		}
	}

	// The copies are done and a new account joins: it is granted alone,
	// in one call per image and per snapshot, and the 600 grants no
	// longer needed are taken back, as few calls again.
	w.settle()
	must(t, w.cloud.AddAccount(accountID(601), "late", "", cloud.AccountActive))
	w.cloud.AddKey(accountID(601), euWest, "amicopier")
	w.cloud.AddKey(accountID(601), usEast, "amicopier")
	res = w.run(reconcile.ModeRun)
	if got := res.Summary.APICalls["CopyImage"]; got != 3 {
		t.Fatalf("CopyImage after a new account = %d, want 3", got)
	}
	if got := res.Summary.Actions["share_launch_permission"]; got != 3 {
		t.Errorf("launch permission grants for one new account = %d calls, want 3", got)
	}
	if got := res.Summary.Actions["share_snapshot"]; int64(got) != snapshots {
		t.Errorf("create-volume grants for one new account = %d calls, want %d", got, snapshots)
	}
	if got := res.Summary.Actions["revoke_launch_permission"]; got != 3 {
		t.Errorf("launch permission taken back in %d calls, want 3", got)
	}
	if got := res.Summary.Actions["revoke_snapshot"]; int64(got) != batches*snapshots {
		t.Errorf("create-volume permission taken back in %d calls, want %d", got, batches*snapshots)
	}
	for _, img := range imgs {
		if got := w.cloud.LaunchPermissions(srcAccount, img.Region, img.ID); len(got) != 1 || got[0] != accountID(601) {
			t.Errorf("%s shared with %v, want only the new account", img.ID, got)
		}
	}
	// Its copies done too, nothing is shared any more.
	w.settle()
	w.run(reconcile.ModeRun)
	for _, img := range imgs {
		if got := w.cloud.LaunchPermission(srcAccount, img.Region, img.ID); got.Len() != 0 {
			t.Errorf("%s still shared with %+v", img.ID, got)
		}
		for _, snap := range img.SnapshotIDs() {
			if got := w.cloud.SnapshotPermissions(srcAccount, img.Region, snap); len(got) != 0 {
				t.Errorf("snapshot %s still shared with %d accounts", snap, len(got))
			}
		}
	}
}

// TestOUGrantsStandForTheirAccounts: where the metadata names the whole
// organisation and every ACTIVE account is a target, the organisation is
// granted once (one entity, whatever its size); with an account excluded,
// the OUs without one are granted whole and the others' accounts one by
// one; the grants of a group no longer wholly targeted are taken back.
func TestOUGrantsStandForTheirAccounts(t *testing.T) {
	w := newWorld(t, 4)
	img := w.image(euWest, "web", 1, "*")
	res := w.run(reconcile.ModeRun)
	if res.Summary.APICalls["CopyImage"] != 4 {
		t.Fatalf("copies %v %v", res.Summary.APICalls, res.Summary.Errors)
	}
	got := w.cloud.LaunchPermission(srcAccount, euWest, img.ID)
	if len(got.Organizations) != 1 || got.Organizations[0] != sim.OrganizationARN() || got.Len() != 1 {
		t.Fatalf("launch permission %+v, want the organisation only", got)
	}
	// Every member is a target: ListAccounts said so, the OU tree is not
	// read.
	for _, op := range []string{cloud.OpListOrganizationalUnitsForParent, cloud.OpListAccountsForParent} {
		if n := res.Summary.APICalls[op]; n != 0 {
			t.Errorf("%d %s calls to grant the whole organisation", n, op)
		}
	}
	for _, a := range accounts(4) {
		if !w.cloud.AccountCanLaunch(srcAccount, euWest, img.ID, a) {
			t.Errorf("%s cannot use the image", a)
		}
	}
	// An account is excluded: the organisation no longer stands for the
	// targets. The grant is taken back; the copies stay.
	w.settle()
	w.cfg.Targets.ExcludeAccounts = []string{accountID(1)}
	w.run(reconcile.ModeRun)
	if got := w.cloud.LaunchPermission(srcAccount, euWest, img.ID); got.Len() != 0 {
		t.Fatalf("launch permission %+v after the exclusion, want none", got)
	}
	if w.cloud.AccountCanLaunch(srcAccount, euWest, img.ID, accountID(1)) {
		t.Fatal("the excluded account can still use the image")
	}
	if n := len(w.copies(accountID(1), euWest, img.ID)); n != 1 {
		t.Fatalf("the excluded account's copy: %d", n)
	}
	// A new image for the organisation with one account excluded: the
	// world's one OU holds the excluded account, so its other accounts are
	// granted one by one.
	img2 := w.image(euWest, "api", 1, "*")
	w.run(reconcile.ModeRun)
	got = w.cloud.LaunchPermission(srcAccount, euWest, img2.ID)
	if len(got.OUs)+len(got.Organizations) != 0 || len(got.Accounts) != 3 {
		t.Fatalf("launch permission %+v, want the 3 accounts", got)
	}
}

func TestForeignAndSuspendedAccountsAreNeverShared(t *testing.T) {
	w := newWorld(t, 2)
	must(t, w.cloud.AddAccount("300000000001", "suspended", "", cloud.AccountSuspended))
	w.cfg.Targets.ExcludeAccounts = []string{accountID(2)}
	img := w.image(euWest, "web", 1, "999999999999 300000000001 200000000001 "+accountID(2)+" <script>")
	res := w.run(reconcile.ModeRun)
	perms := w.cloud.LaunchPermissions(srcAccount, euWest, img.ID)
	if !slices.Equal(perms, []string{accountID(1)}) {
		t.Fatalf("launch permission = %v, want only %s", perms, accountID(1))
	}
	snap := img.BlockDevices[0].SnapshotID
	if perms := w.cloud.SnapshotPermissions(srcAccount, euWest, snap); !slices.Equal(perms, []string{accountID(1)}) {
		t.Fatalf("snapshot permission = %v", perms)
	}
	for _, a := range []string{"999999999999", "300000000001", accountID(2)} {
		if n := w.cloud.Calls("CopyImage", a, ""); n != 0 {
			t.Errorf("CopyImage in %s: %d", a, n)
		}
	}
	rejected := itemsOf(res.Report, report.RejectedTarget)
	if len(rejected) != 4 {
		t.Fatalf("rejected = %+v", rejected)
	}
	for _, it := range rejected {
		if it.Reason == "" || !strings.Contains(it.Reason, strings.Trim(it.Account, `"`)) {
			t.Errorf("rejection does not name its target: %+v", it)
		}
	}
}

func TestUnreachableAccountDoesNotStopTheOthers(t *testing.T) {
	w := newWorld(t, 3)
	w.image(euWest, "web", 1, "*")
	w.cloud.DenyAssumeRole(accountID(2))
	res := w.run(reconcile.ModeRun)
	if res.Summary.Status != report.StatusPartial {
		t.Fatalf("status = %s, want partial", res.Summary.Status)
	}
	wantCounts(t, res.Report, map[report.Category]int{report.Missing: 2, report.Unreachable: 1})
	un := itemsOf(res.Report, report.Unreachable)
	if un[0].Account != accountID(2) || !strings.Contains(un[0].Reason, "AccessDenied") {
		t.Fatalf("unreachable item %+v", un[0])
	}
	if res.Summary.APICalls["CopyImage"] != 2 {
		t.Fatalf("the reachable accounts were not reconciled: %v", res.Summary.APICalls)
	}
}

func TestAbortedRunNeverCopiesAPairTwice(t *testing.T) {
	const pairs = 6
	for k := 0; k <= pairs; k++ {
		for _, where := range []string{"before", "during"} {
			t.Run(fmt.Sprintf("abort %s copy %d", where, k+1), func(t *testing.T) {
				w := newWorld(t, pairs)
				w.cfg.Limits.Concurrency = 1
				w.image(euWest, "web", 1, "*")
				ctx, cancel := context.WithCancel(context.Background())
				var copies atomic.Int64
				w.cloud.SetFault(func(_ context.Context, c sim.Call) error {
					if c.Op != "CopyImage" {
						return nil
					}
					n := copies.Add(1)
					if int(n) == k+1 {
						// The process dies: before the call reaches AWS, or
						// while it is in flight (the copy starts, but its
						// result is never recorded).
						cancel()
						if where == "before" {
							return context.Canceled
						}
					}
					return nil
				})
				res, err := w.engine().Run(ctx, reconcile.Request{Mode: reconcile.ModeRun, Trigger: "test"})
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Fatal(err)
				}
				_ = res
				w.cloud.SetFault(nil)
				// Start again at once (the crashed run's lease is
				// released or expired) and once more after the copies finish.
				w.cloud.Advance(w.cfg.State.LeaseTTL.D())
				w.run(reconcile.ModeRun)
				w.settle()
				final := w.run(reconcile.ModeRun)
				wantCounts(t, final.Report, map[report.Category]int{report.OK: pairs})
				for pair, n := range w.copyCounts(accounts(pairs)) {
					if n != 1 {
						t.Errorf("pair %s has %d copies", pair, n)
					}
				}
			})
		}
	}
}

func TestFailedCopiesAreRetriedThenStuck(t *testing.T) {
	w := newWorld(t, 1)
	w.cfg.Encryption.KMSKey = "alias/does-not-exist"
	w.cfg.Limits.RetryBackoff = 1 // config.Duration: 1ns, retry on every run
	w.image(euWest, "web", 1, accountID(1))
	var categories []report.Category
	for range 8 {
		res := w.run(reconcile.ModeRun)
		for _, c := range report.Categories {
			if res.Report.Counts[c] > 0 {
				categories = append(categories, c)
			}
		}
		w.settle()
	}
	if n := w.cloud.Calls("CopyImage", accountID(1), ""); n != 3 {
		t.Fatalf("CopyImage calls = %d, want 3 (max_attempts)", n)
	}
	want := []report.Category{report.Missing, report.Failed, report.Failed, report.Stuck, report.Stuck, report.Stuck, report.Stuck, report.Stuck}
	if !slices.Equal(categories, want) {
		t.Fatalf("categories over runs = %v, want %v", categories, want)
	}
	// Failed copies made by amicopier are cleaned up; none is left.
	for _, img := range w.cloud.Images(accountID(1), euWest) {
		if img.State == cloud.ImageFailed {
			t.Errorf("failed copy %s left behind", img.ID)
		}
	}
	// Fixing the configuration unsticks the pair.
	w.cfg.Encryption.KMSKey = "alias/amicopier"
	res := w.run(reconcile.ModeRun)
	if res.Summary.APICalls["CopyImage"] != 1 {
		t.Fatalf("a configuration change did not retry the stuck pair: %v", res.Report.Items)
	}
	w.settle()
	wantCounts(t, w.run(reconcile.ModePlan).Report, map[report.Category]int{report.OK: 1})
}

func TestInFlightCapDefersCopies(t *testing.T) {
	w := newWorld(t, 1)
	w.cfg.Limits.InFlightCopies = 2
	for i := range 5 {
		w.image(euWest, fmt.Sprintf("img-%d", i), 1, accountID(1))
	}
	res := w.run(reconcile.ModeRun)
	if res.Summary.APICalls["CopyImage"] != 2 || res.Summary.Actions["deferred"] != 3 {
		t.Fatalf("calls %v actions %v", res.Summary.APICalls, res.Summary.Actions)
	}
	// Pending copies count against the cap in the next run, which then
	// changes nothing: no lease, only its run record.
	w.store.Reset()
	res = w.run(reconcile.ModeRun)
	if res.Summary.APICalls["CopyImage"] != 0 || res.Summary.Actions["deferred"] != 3 || res.Summary.Actions["deferred_in_flight_cap"] != 3 {
		t.Fatalf("second run: calls %v actions %v", res.Summary.APICalls, res.Summary.Actions)
	}
	if writes := w.store.Writes(); writes.Total() != 1 || writes.RunWrites != 1 {
		t.Fatalf("a run whose only work the cap defers wrote %+v, want its run record only", writes)
	}
	for _, it := range itemsOf(res.Report, report.Missing) {
		if it.Action != "deferred" || !strings.Contains(it.Reason, "limits.in_flight_copies") {
			t.Errorf("item %+v", it)
		}
	}
	w.settle()
	w.run(reconcile.ModeRun)
	w.settle()
	w.run(reconcile.ModeRun)
	w.settle()
	wantCounts(t, w.run(reconcile.ModePlan).Report, map[report.Category]int{report.OK: 5})
}

func TestSourceUnderAWSManagedKeyIsRejected(t *testing.T) {
	w := newWorld(t, 2)
	img := w.cloud.AddImage(srcAccount, euWest, sim.ImageSpec{
		Name: "managed", Tags: map[string]string{targetTag: "*"},
		Devices: []sim.DeviceSpec{{Size: 8, AWSManagedKey: true}},
	})
	res := w.run(reconcile.ModeRun)
	wantCounts(t, res.Report, map[report.Category]int{report.RejectedTarget: 2})
	if res.Summary.APICalls["CopyImage"] != 0 {
		t.Fatal("copied an image whose snapshot cannot be shared")
	}
	// The refusal is remembered: the next plan reports it without asking EC2.
	plan := w.run(reconcile.ModePlan)
	wantCounts(t, plan.Report, map[report.Category]int{report.RejectedTarget: 2})
	it := itemsOf(plan.Report, report.RejectedTarget)[0]
	if it.SourceImage != img.ID || !strings.Contains(it.Reason, "cannot be shared") {
		t.Fatalf("item %+v", it)
	}
	res = w.run(reconcile.ModeRun)
	if res.Summary.MutatingCalls != 0 {
		t.Fatalf("retried the impossible share: %v", res.Summary.APICalls)
	}
}

func TestOrphanedCopiesAreReported(t *testing.T) {
	w := newWorld(t, 1)
	img := w.image(euWest, "web", 1, accountID(1))
	keep := w.image(euWest, "api", 1, accountID(1))
	w.run(reconcile.ModeRun)
	w.settle()
	must(t, deregister(context.Background(), w.cloud.Client(srcAccount, euWest), img.ID))
	res := w.run(reconcile.ModePlan)
	wantCounts(t, res.Report, map[report.Category]int{report.OK: 1, report.Orphaned: 1})
	o := itemsOf(res.Report, report.Orphaned)[0]
	if o.SourceImage != img.ID || len(o.CopyImages) != 1 {
		t.Fatalf("orphan item %+v", o)
	}
	_ = keep
}

func TestAdoptsCopiesMadeByOtherTools(t *testing.T) {
	w := newWorld(t, 1)
	img := w.image(euWest, "web", 1, accountID(1))
	key := w.cloud.AddKey(accountID(1), euWest, "other")
	w.cloud.AddImage(accountID(1), euWest, sim.ImageSpec{
		Name: "amigo-copy", Tags: map[string]string{"CopiedFromAMI": img.ID, "Encrypted": "true"},
		Devices: []sim.DeviceSpec{{Size: 8, KMSKeyARN: key}},
	})
	res := w.run(reconcile.ModeRun)
	wantCounts(t, res.Report, map[report.Category]int{report.OK: 1})
	if res.Summary.MutatingCalls != 0 {
		t.Fatalf("re-copied an adopted copy: %v", res.Summary.APICalls)
	}
}

func TestLeaseKeepsRunsApart(t *testing.T) {
	w := newWorld(t, 1)
	w.image(euWest, "web", 1, accountID(1))
	held, err := w.store.AcquireLease(context.Background(), srcAccount, "other-run", time.Hour)
	must(t, err)
	_, err = w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun})
	h, ok := reconcile.LeaseHeld(err)
	if !ok || h.Run != "other-run" {
		t.Fatalf("err = %v, want the lease held by other-run", err)
	}
	if w.cloud.MutatingCalls() != 0 {
		t.Fatal("a run without the lease touched AWS")
	}
	// A crashed run's lease expires and is taken over.
	w.cloud.Advance(time.Hour)
	w.run(reconcile.ModeRun)
	_ = held
}

func TestStateStoreUnreachableFailsBeforeAnyCall(t *testing.T) {
	w := newWorld(t, 1)
	w.image(euWest, "web", 1, accountID(1))
	must(t, w.store.Close())
	_, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun})
	if err == nil || !strings.Contains(err.Error(), "state store") {
		t.Fatalf("err = %v", err)
	}
	if n := w.cloud.CallCounts(); len(n) != 0 {
		t.Fatalf("AWS calls made without a state store: %v", n)
	}
}

func TestScopeFlags(t *testing.T) {
	w := newWorld(t, 3)
	a := w.image(euWest, "web", 1, "*")
	w.image(euWest, "api", 1, "*")
	res, err := w.engine().Run(context.Background(), reconcile.Request{
		Mode: reconcile.ModeRun, OnlyImages: []string{a.ID}, OnlyAccounts: []string{accountID(2)},
	})
	must(t, err)
	if res.Summary.APICalls["CopyImage"] != 1 || len(w.copies(accountID(2), euWest, a.ID)) != 1 {
		t.Fatalf("scoped run copied %v", res.Summary.APICalls)
	}
	if res.Report.Pairs != 1 {
		t.Fatalf("scoped report has %d pairs", res.Report.Pairs)
	}
	_ = state.PairKey{}
}

func TestShardedRunRecordsItsShard(t *testing.T) {
	w := newWorld(t, 4)
	w.image(euWest, "web", 1, "*")
	_, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, Shard: reconcile.Shard{Index: 2, Count: 3}})
	must(t, err)
	runs, err := w.store.RecentRuns(context.Background(), srcAccount, 5)
	must(t, err)
	if len(runs) != 1 || runs[0].Shard != "2/3" {
		t.Fatalf("runs %+v: want one run of shard 2/3", runs)
	}
}

// TestRunErrorsAreBounded: a run record must fit a DynamoDB item and a
// summary must stay readable: the first 100 errors are kept, the rest
// counted by error code.
func TestRunErrorsAreBounded(t *testing.T) {
	const n = 150
	w := newWorld(t, 1)
	w.cfg.Limits.InFlightCopies = 1000
	// No pacing: the simulator does not throttle here.
	w.cfg.Limits.MutatingRate, w.cfg.Limits.MutatingBurst = 1e6, 1e6
	w.cfg.Limits.DescribeRate, w.cfg.Limits.DescribeBurst = 1e6, 1e6
	for i := range n {
		w.image(euWest, fmt.Sprintf("img-%03d", i), 1, accountID(1))
	}
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "CopyImage", Code: "InvalidParameterValue", Message: "refused"}).Hook())
	res := w.run(reconcile.ModeRun)
	if got := res.Summary.APICalls["CopyImage"]; got != n {
		t.Fatalf("CopyImage = %d, want %d", got, n)
	}
	runs, err := w.store.RecentRuns(context.Background(), srcAccount, 1)
	must(t, err)
	if res.Summary.ErrorCount != 150 {
		t.Errorf("error count %d, want 150", res.Summary.ErrorCount)
	}
	for name, errs := range map[string][]string{"summary": res.Summary.Errors, "run record": runs[0].Errors} {
		if len(errs) != 101 {
			t.Fatalf("%s keeps %d errors, want 100 and a count of the rest", name, len(errs))
		}
		if last := errs[100]; !strings.Contains(last, "and 50 more errors") || !strings.Contains(last, "InvalidParameterValue: 50") {
			t.Fatalf("%s: last line %q", name, last)
		}
	}
}

func TestLeaseHeld(t *testing.T) {
	expires := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		err      error
		held     bool
		scope    string
		holder   string
		expires  time.Time
		mentions string
	}{
		{name: "held lease", err: fmt.Errorf("take lease: %w", &state.LeaseHeldError{Scope: srcAccount, Holder: "run-1", Expires: expires}),
			held: true, scope: srcAccount, holder: "run-1", expires: expires, mentions: "2026-03-01T12:00:00Z"},
		{name: "stale observation", err: fmt.Errorf("run: %w", &reconcile.StaleError{Scope: srcAccount + "/shard-1-of-2", Holder: "run-2"}),
			held: true, scope: srcAccount + "/shard-1-of-2", holder: "run-2", mentions: "run-2"},
		{name: "stale observation, writer unknown", err: &reconcile.StaleError{Scope: srcAccount}, held: true, scope: srcAccount, mentions: srcAccount},
		{name: "another error", err: errors.New("boom")},
		{name: "no error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, held := reconcile.LeaseHeld(tt.err)
			if held != tt.held {
				t.Fatalf("held = %v, want %v", held, tt.held)
			}
			if !held {
				return
			}
			if h.Scope != tt.scope || h.Run != tt.holder || !h.Expires.Equal(tt.expires) {
				t.Fatalf("Holder %+v, want scope %q holder %q expires %v", h, tt.scope, tt.holder, tt.expires)
			}
			if msg := h.String(); !strings.Contains(msg, tt.mentions) || strings.Contains(msg, "0001-01-01") {
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestForeignCopyKeysAreReadFromItsSnapshots(t *testing.T) {
	w := newWorld(t, 1)
	want, ok := w.cloud.ResolveKey(accountID(1), euWest, "alias/amicopier")
	if !ok {
		t.Fatal("no key")
	}
	w.cfg.Encryption.KMSKey = want.ARN
	good := w.image(euWest, "good", 1, accountID(1))
	bad := w.image(euWest, "bad", 1, accountID(1))
	ours := w.image(euWest, "ours", 1, accountID(1))
	other := w.cloud.AddKey(accountID(1), euWest, "other")
	for _, c := range []struct {
		src cloud.Image
		key string
	}{{good, want.ARN}, {bad, other}} {
		w.cloud.AddImage(accountID(1), euWest, sim.ImageSpec{
			Name: "amigo-" + c.src.ID, Tags: map[string]string{"CopiedFromAMI": c.src.ID, "Encrypted": "true"},
			Devices: []sim.DeviceSpec{{Size: 8, KMSKeyARN: c.key}},
		})
	}
	w.run(reconcile.ModeRun) // copies "ours"
	w.settle()
	res := w.run(reconcile.ModePlan)
	wantCounts(t, res.Report, map[report.Category]int{report.OK: 2, report.WrongKey: 1})
	it := itemsOf(res.Report, report.WrongKey)[0]
	if it.SourceImage != bad.ID || !strings.Contains(it.Reason, other) {
		t.Fatalf("wrong_key item %+v", it)
	}
	// One DescribeSnapshots for the two foreign copies.
	if n := w.last.CallCounts()["DescribeSnapshots"]; n != 1 {
		t.Fatalf("DescribeSnapshots = %d, want 1", n)
	}
	if len(w.copies(accountID(1), euWest, ours.ID)) != 1 {
		t.Fatal("no copy of ours")
	}

	// A Region holding only amicopier's copies, under a key ARN setting:
	// they are judged by the key they recorded, at no cost.
	east, ok := w.cloud.ResolveKey(accountID(1), usEast, "alias/amicopier")
	if !ok {
		t.Fatal("no key in us-east-1")
	}
	w.cfg.Encryption.Overrides = []config.KeyOverride{{Region: usEast, KMSKey: east.ARN}}
	w.image(usEast, "east", 1, accountID(1))
	w.run(reconcile.ModeRun)
	w.settle()
	res = w.run(reconcile.ModePlan)
	if n := w.cloud.Calls("DescribeSnapshots", accountID(1), usEast); n != 0 {
		t.Fatalf("DescribeSnapshots in a Region of amicopier's own copies = %d, want 0", n)
	}
	if res.Report.Counts[report.WrongKey] != 1 || res.Report.Counts[report.OK] != 3 {
		t.Fatalf("counts %v", res.Report.Counts)
	}
}

func TestOrphanRecordOfARediscoveredPairIsDecidedOnce(t *testing.T) {
	w := newWorld(t, 1)
	w.cfg.Prune.Enabled = true
	img := w.image(euWest, "web", 1, accountID(1))
	w.run(reconcile.ModeRun)
	w.settle()
	w.run(reconcile.ModeRun) // settles the pair
	// A record left orphaned by an earlier version (say the source was
	// disabled, and looked gone), while the source is discovered today.
	key := state.PairKey{SourceImage: img.ID, Account: accountID(1), Region: euWest}
	cur, ok, err := w.store.GetPair(context.Background(), key)
	must(t, err)
	if !ok {
		t.Fatal("no record")
	}
	cur.Status = state.PairOrphaned
	_, err = w.store.PutPair(context.Background(), cur)
	must(t, err)
	res := w.run(reconcile.ModeRun)
	if res.Summary.Status != report.StatusSucceeded {
		t.Fatalf("status %s: %v", res.Summary.Status, res.Summary.Errors)
	}
	left, err := w.store.UnsettledPairs(context.Background(), srcAccount)
	must(t, err)
	if len(left) != 0 {
		t.Fatalf("unsettled records left: %+v", left)
	}
}

func TestOrphanRecordsLeaveWhenPruningIsTurnedOff(t *testing.T) {
	w, _ := orphanWorld(t, true)
	w.run(reconcile.ModeRun) // remembers the orphan
	left, err := w.store.UnsettledPairs(context.Background(), srcAccount)
	must(t, err)
	if len(left) != 1 || left[0].Status != state.PairOrphaned {
		t.Fatalf("records %+v", left)
	}
	w.cfg.Prune.Enabled = false
	w.run(reconcile.ModeRun)
	left, err = w.store.UnsettledPairs(context.Background(), srcAccount)
	must(t, err)
	if len(left) != 0 {
		t.Fatalf("orphan records kept with pruning off: %+v", left)
	}
}

func TestFailedCopyAlreadyGoneDoesNotBlockTheRetry(t *testing.T) {
	w := newWorld(t, 1)
	img := w.image(euWest, "web", 1, accountID(1))
	failed := w.cloud.AddImage(accountID(1), euWest, sim.ImageSpec{
		Name: "failed-copy", State: cloud.ImageFailed, StateReason: "bad key", CreationDate: w.cloud.Now().Add(-48 * time.Hour),
		Tags: map[string]string{"CopiedFromAMI": img.ID, "amicopier:managed": "true", "amicopier:attempt": "1"},
	})
	// Someone removes the failed copy between the observation and the
	// engine's own DeregisterImage.
	client := w.cloud.Client(accountID(1), euWest)
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: "DeregisterImage", Times: 1, Before: func() {
		_ = deregister(context.Background(), client, failed.ID)
	}}).Hook())
	res := w.run(reconcile.ModeRun)
	if res.Summary.Status != report.StatusSucceeded || res.Summary.APICalls["CopyImage"] != 1 {
		t.Fatalf("status %s, calls %v, errors %v", res.Summary.Status, res.Summary.APICalls, res.Summary.Errors)
	}
}

func TestReopenedPairTakesANewAttempt(t *testing.T) {
	w := newWorld(t, 1)
	img := w.image(euWest, "web", 1, accountID(1))
	key := state.PairKey{SourceImage: img.ID, Account: accountID(1), Region: euWest}
	// An earlier life went to attempt 3 and settled; a failed copy of
	// attempt 1 from before is still there.
	_, err := w.store.PutPair(context.Background(), state.Pair{Key: key, Source: srcAccount, Status: state.PairSettled, Attempts: 3, Fingerprint: "old"})
	must(t, err)
	w.cloud.Advance(time.Hour)
	w.cloud.AddImage(accountID(1), euWest, sim.ImageSpec{
		Name: "old-failed", State: cloud.ImageFailed, CreationDate: w.cloud.Now().Add(-48 * time.Hour),
		Tags: map[string]string{"CopiedFromAMI": img.ID, "amicopier:managed": "true", "amicopier:attempt": "1"},
	})
	res := w.run(reconcile.ModeRun)
	if res.Summary.APICalls["CopyImage"] != 1 {
		t.Fatalf("calls %v, errors %v", res.Summary.APICalls, res.Summary.Errors)
	}
	var live []cloud.Image
	for _, c := range w.copies(accountID(1), euWest, img.ID) {
		if c.State != cloud.ImageFailed {
			live = append(live, c)
		}
	}
	if len(live) != 1 || live[0].Tags[reconcile.TagAttempt] != "4" {
		t.Fatalf("copies %+v: want one new copy of attempt 4", live)
	}
}

// An account whose copies were all removed by hand after they settled:
// the first write of its Region finds a settled record of an earlier life,
// and the Region's other pairs are read with it in one batch, then
// reopened without a lost write each.
func TestReopenedRegionIsReadInOneBatch(t *testing.T) {
	w := newWorld(t, 1)
	w.cfg.Targets.Regions = []string{euWest}
	var keys []state.PairKey
	for i := range 5 {
		img := w.image(euWest, fmt.Sprintf("web-%d", i), 1, accountID(1))
		key := state.PairKey{SourceImage: img.ID, Account: accountID(1), Region: euWest}
		keys = append(keys, key)
		_, err := w.store.PutPair(context.Background(), state.Pair{Key: key, Source: srcAccount, Status: state.PairSettled, Attempts: 2, Fingerprint: "old"})
		must(t, err)
	}
	w.cloud.Advance(time.Hour)
	w.store.Reset()
	res := w.run(reconcile.ModeRun)
	if n := res.Summary.APICalls[cloud.OpCopyImage]; n != 5 {
		t.Fatalf("%d copies, want 5: %v", n, res.Summary.Errors)
	}
	reads := w.store.Reads()
	if reads.PairBatchReads != 1 || reads.PairReads != 0 {
		t.Errorf("reads %+v: want one batch read of the Region's settled records and no GetPair", reads)
	}
	// 5 write-ahead records and 5 answers, plus the one lost write that
	// found the first settled record.
	if n := w.store.Writes().PairWrites; n != 11 {
		t.Errorf("%d pair writes, want 11", n)
	}
	for _, k := range keys {
		rec, _ := w.pair(k)
		if rec.Attempts != 3 || rec.Status != state.PairCopying {
			t.Errorf("record %+v: want attempt 3, copying", rec)
		}
	}
}
