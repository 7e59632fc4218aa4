package reconcile_test

import (
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

// build adds build n of recipe in region, targeted (by tag) at targets.
func (w *world) build(region, recipe string, n int, targets string) cloud.Image {
	return w.cloud.AddImage(srcAccount, region, sim.ImageSpec{
		Name: fmt.Sprintf("%s-%d", recipe, n), Devices: []sim.DeviceSpec{{Size: 8}},
		Tags: map[string]string{targetTag: targets, "Recipe": recipe, "BuildNumber": fmt.Sprint(n)},
	})
}

// deprecationOf is the deprecation time of the copies of source in
// account and region (one each, or the test fails).
func (w *world) deprecationOf(account, region, source string) time.Time {
	w.t.Helper()
	cs := w.copies(account, region, source)
	if len(cs) != 1 {
		w.t.Fatalf("%d copies of %s in %s/%s, want 1", len(cs), source, account, region)
	}
	return cs[0].DeprecationTime
}

func deprecationCalls(res *reconcile.Result) int64 {
	return res.Summary.APICalls[cloud.OpEnableImageDeprecation] + res.Summary.APICalls[cloud.OpDisableImageDeprecation]
}

// A copy follows its source's deprecation time: set once the copy is
// available, moved when the source's moves, cancelled when the source's
// is, and set as soon as EC2 allows when the source is deprecated already
// (it is then skipped as a source; its copies keep its deprecation). A
// run with nothing to change makes no deprecation call and writes
// nothing but its run record.
func TestCopiesFollowTheirSourcesDeprecation(t *testing.T) {
	w := newWorld(t, 2)
	w.cfg.Targets.Regions = []string{euWest}
	src := w.image(euWest, "web", 1, "*")
	first := w.cloud.Now().Add(30 * 24 * time.Hour)
	w.cloud.DeprecateImage(srcAccount, euWest, src.ID, first)
	res := w.run(reconcile.ModeRun)
	if n := res.Summary.APICalls[cloud.OpCopyImage]; n != 2 || deprecationCalls(res) != 0 {
		t.Fatalf("first run: %v (a pending copy's deprecation is set by a later run)", res.Summary.APICalls)
	}
	w.settle()

	steps := []struct {
		name string
		// change moves the source's deprecation time (nil: none).
		change  func() time.Time
		enable  int64
		disable int64
	}{
		{name: "the copies take the source's time once available", change: func() time.Time { return first }, enable: 2},
		{name: "nothing changed: no call", change: func() time.Time { return first }},
		{name: "the source's time moves", change: func() time.Time {
			later := w.cloud.Now().Add(40 * 24 * time.Hour).Truncate(time.Minute)
			w.cloud.DeprecateImage(srcAccount, euWest, src.ID, later)
			return later
		}, enable: 2},
		{name: "the source's deprecation is cancelled", change: func() time.Time {
			w.cloud.DeprecateImage(srcAccount, euWest, src.ID, time.Time{})
			return time.Time{}
		}, disable: 2},
		{name: "nothing to cancel any more", change: func() time.Time { return time.Time{} }},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			want := st.change()
			plan := w.run(reconcile.ModePlan)
			if got := len(plan.Report.Deprecations); got != int(st.enable+st.disable) {
				t.Fatalf("plan lists %d deprecation changes, want %d: %+v", got, st.enable+st.disable, plan.Report.Deprecations)
			}
			if plan.Summary.MutatingCalls != 0 {
				t.Fatalf("plan made mutating calls: %v", plan.Summary.APICalls)
			}
			w.store.Reset()
			res := w.run(reconcile.ModeRun)
			if got := res.Summary.APICalls[cloud.OpEnableImageDeprecation]; got != st.enable {
				t.Errorf("EnableImageDeprecation calls = %d, want %d", got, st.enable)
			}
			if got := res.Summary.APICalls[cloud.OpDisableImageDeprecation]; got != st.disable {
				t.Errorf("DisableImageDeprecation calls = %d, want %d", got, st.disable)
			}
			if wc := w.store.Writes(); st.enable+st.disable == 0 && (wc.RunWrites != 1 || wc.PairWrites+wc.LeaseWrites+wc.GrantsWrites != 0) {
				t.Errorf("a run with nothing to change wrote %+v, want its run record only", wc)
			}
			for _, a := range accounts(2) {
				if got := w.deprecationOf(a, euWest, src.ID); !got.Equal(want) {
					t.Errorf("%s: copy deprecated at %v, want %v", a, got, want)
				}
			}
		})
	}

	t.Run("the source is deprecated now: skipped, its copies deprecated at once", func(t *testing.T) {
		w.cloud.DeprecateImage(srcAccount, euWest, src.ID, w.cloud.Now().Add(-time.Hour))
		res := w.run(reconcile.ModeRun)
		if !slices.ContainsFunc(res.Report.Skipped, func(s report.Skipped) bool { return s.ID == src.ID && strings.Contains(s.Reason, "deprecated since") }) {
			t.Fatalf("the deprecated source is not skipped: %+v", res.Report.Skipped)
		}
		if got := res.Summary.APICalls[cloud.OpEnableImageDeprecation]; got != 2 {
			t.Fatalf("EnableImageDeprecation calls = %d, want 2: %+v", got, res.Report.Deprecations)
		}
		next := w.cloud.Now().Truncate(time.Minute).Add(time.Minute)
		for _, a := range accounts(2) {
			if got := w.deprecationOf(a, euWest, src.ID); !got.Equal(next) {
				t.Errorf("%s: copy deprecated at %v, want the first minute EC2 takes (%v)", a, got, next)
			}
		}
		w.cloud.Advance(5 * time.Minute)
		if res := w.run(reconcile.ModeRun); deprecationCalls(res) != 0 || res.Summary.MutatingCalls != 0 {
			t.Fatalf("deprecated copies changed again: %v %+v", res.Summary.APICalls, res.Report.Deprecations)
		}
		if res := w.run(reconcile.ModePlan); len(res.Report.Deprecations) != 0 {
			t.Fatalf("plan still lists %+v", res.Report.Deprecations)
		}
	})
}

// copy.deprecate_after deprecates a copy that long after it was made, or
// at its source's time when that is earlier.
func TestDeprecateAfter(t *testing.T) {
	tests := []struct {
		name   string
		source time.Duration // from now; 0: none
		after  time.Duration
		// want is the deprecation time's offset from the copy's creation
		// (cut to the minute) or, with fromSource, from now.
		want       time.Duration
		fromSource bool
	}{
		{name: "deprecate_after alone", after: 90 * 24 * time.Hour, want: 90 * 24 * time.Hour},
		{name: "deprecate_after earlier than the source", source: 365 * 24 * time.Hour, after: 30 * 24 * time.Hour, want: 30 * 24 * time.Hour},
		{name: "the source earlier than deprecate_after", source: 7 * 24 * time.Hour, after: 90 * 24 * time.Hour, want: 7 * 24 * time.Hour, fromSource: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, 1)
			w.cfg.Targets.Regions = []string{euWest}
			w.cfg.Copy.DeprecateAfter = config.Duration(tt.after)
			src := w.image(euWest, "web", 1, accountID(1))
			start := w.cloud.Now()
			if tt.source > 0 {
				w.cloud.DeprecateImage(srcAccount, euWest, src.ID, start.Add(tt.source))
			}
			w.run(reconcile.ModeRun)
			w.settle()
			res := w.run(reconcile.ModeRun)
			if n := res.Summary.APICalls[cloud.OpEnableImageDeprecation]; n != 1 {
				t.Fatalf("EnableImageDeprecation calls = %d: %+v", n, res.Report.Deprecations)
			}
			c := w.copies(accountID(1), euWest, src.ID)[0]
			want := c.CreationDate.Add(tt.want).Truncate(time.Minute)
			if tt.fromSource {
				want = start.Add(tt.want)
			}
			if !c.DeprecationTime.Equal(want) {
				t.Fatalf("copy deprecated at %v, want %v", c.DeprecationTime, want)
			}
			if res := w.run(reconcile.ModeRun); deprecationCalls(res) != 0 {
				t.Fatal("the next run changed the deprecation again")
			}
		})
	}
}

// A copy another tool made is left alone, whatever its source's
// deprecation; a role denied the call reports it, and the account's
// other copies are not tried.
func TestDeprecationOnlyOfAmicopiersCopies(t *testing.T) {
	w := newWorld(t, 2)
	w.cfg.Targets.Regions = []string{euWest}
	a, b := w.image(euWest, "a", 1, "*"), w.image(euWest, "b", 1, "*")
	w.run(reconcile.ModeRun)
	w.settle()
	amigo := w.cloud.AddImage(accountID(2), euWest, sim.ImageSpec{Name: "amigo", Tags: map[string]string{reconcile.TagCopiedFrom: "ami-0000000000000abc"},
		Devices: []sim.DeviceSpec{{Size: 8, Encrypted: true}}})
	_ = amigo
	at := w.cloud.Now().Add(10 * 24 * time.Hour)
	w.cloud.DeprecateImage(srcAccount, euWest, a.ID, at)
	w.cloud.DeprecateImage(srcAccount, euWest, b.ID, at)
	// Account 1's role lacks the action.
	w.cloud.DenyCopierActions(accountID(1), "ec2:EnableImageDeprecation")
	res := w.run(reconcile.ModeRun)
	if res.Summary.Status != report.StatusPartial {
		t.Errorf("status %s, want partial", res.Summary.Status)
	}
	if n := w.cloud.Calls(cloud.OpEnableImageDeprecation, accountID(1), euWest); n != 1 {
		t.Errorf("%d calls in the denied account, want 1 (the others would be denied alike)", n)
	}
	failed := 0
	for _, d := range res.Report.Deprecations {
		if d.Account == accountID(1) {
			if d.Action != report.DeprecationFailed || !strings.Contains(d.Error, "ec2:EnableImageDeprecation") {
				t.Errorf("denied line %+v", d)
			}
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("%d failed lines, want 2: %+v", failed, res.Report.Deprecations)
	}
	if got := w.deprecationOf(accountID(2), euWest, a.ID); !got.Equal(at) {
		t.Errorf("the other account's copy: %v", got)
	}
}

// The lifecycle of three builds of one recipe under keep_latest: 2, with
// an instance using the oldest copy and a launch template naming it: the
// oldest build is superseded when the third arrives, its copy is kept
// while the instance runs and while the template names it, and removed
// once free after the grace period; at no point is the account and
// Region left without a good copy of the recipe, and after every run the
// recipe's SSM parameter names the newest available copy.
func TestKeepLatestRetiresTheOldestBuild(t *testing.T) {
	const grace = 48 * time.Hour
	w := publishWorld(t, 1)
	acct := accountID(1)
	w.cfg.Targets.Regions = []string{euWest}
	w.cfg.Source.KeepLatest = config.KeepLatest{GroupBy: "Recipe", Count: 2}
	w.cfg.Prune.Enabled = true
	w.cfg.Prune.GracePeriod = config.Duration(grace)
	var builds []cloud.Image
	goodCopies := func() int {
		n := 0
		for _, b := range builds {
			for _, c := range w.copies(acct, euWest, b.ID) {
				if c.State == cloud.ImageAvailable {
					n++
				}
			}
		}
		return n
	}
	// newestGood is the newest build's available copy: what the
	// recipe's parameter must name after every run.
	newestGood := func() string {
		for i := len(builds) - 1; i >= 0; i-- {
			for _, c := range w.copies(acct, euWest, builds[i].ID) {
				if c.State == cloud.ImageAvailable {
					return c.ID
				}
			}
		}
		return ""
	}
	hadCopy := false
	run := func(mode reconcile.Mode) *reconcile.Result {
		t.Helper()
		res := w.run(mode)
		if want := newestGood(); mode == reconcile.ModeRun && want != "" {
			if p, ok := w.param(acct, paramName); !ok || p.Value != want {
				t.Fatalf("after the run %s names %q (exists %v), want the newest available copy %s", paramName, p.Value, ok, want)
			}
		}
		if n := goodCopies(); hadCopy && n == 0 {
			t.Fatal("the recipe has no good copy in the account and Region")
		} else if n > 0 {
			hadCopy = true
		}
		return res
	}
	superseded := func(res *reconcile.Result) report.Item {
		t.Helper()
		items := itemsOf(res.Report, report.Superseded)
		if len(items) != 1 {
			t.Fatalf("superseded items %+v, want 1 (counts %v)", items, res.Report.Counts)
		}
		return items[0]
	}
	for i := 1; i <= 2; i++ {
		builds = append(builds, w.build(euWest, "web", i, acct))
		w.cloud.Advance(time.Hour)
		run(reconcile.ModeRun)
		w.settle()
		run(reconcile.ModePlan)
	}
	oldest := w.copies(acct, euWest, builds[0].ID)[0].ID
	inst := w.cloud.LaunchInstance(acct, euWest, oldest)
	lt := w.cloud.AddLaunchTemplate(acct, euWest, "web-servers", oldest)

	// The third build supersedes the first: no new copy of it, its copy
	// reported and remembered, the grace period starts.
	builds = append(builds, w.build(euWest, "web", 3, acct))
	res := run(reconcile.ModeRun)
	if n := res.Summary.APICalls[cloud.OpCopyImage]; n != 1 {
		t.Fatalf("CopyImage calls = %d, want 1 (the third build)", n)
	}
	it := superseded(res)
	if it.SourceImage != builds[0].ID || it.Action != "none" || !strings.Contains(it.Reason, "may be removed after") {
		t.Fatalf("first sighting %+v", it)
	}
	if !slices.ContainsFunc(res.Report.Skipped, func(s report.Skipped) bool {
		return s.ID == builds[0].ID && strings.Contains(s.Reason, "build 3 of 3 of Recipe=web")
	}) {
		t.Errorf("skipped %+v: want the first build superseded", res.Report.Skipped)
	}
	rec, _ := w.pair(state.PairKey{SourceImage: builds[0].ID, Account: acct, Region: euWest})
	if rec.Status != state.PairSuperseded || rec.CopyImageID != oldest {
		t.Fatalf("record %+v", rec)
	}
	w.settle()

	steps := []struct {
		name    string
		advance time.Duration
		act     func()
		removed bool
		mention string
	}{
		{name: "within the grace period", mention: "may be removed after"},
		{name: "grace over, an instance uses it", advance: grace, mention: "1 instance(s) in the account use it"},
		{name: "the instance is gone, the template's default version names it", act: func() { w.cloud.TerminateInstance(acct, euWest, inst) },
			mention: "launch template " + lt + " (web-servers) version 1 ($Default) names it"},
		{name: "a new latest version names the newest copy, the default still the oldest", act: func() {
			w.cloud.AddLaunchTemplateVersion(acct, euWest, lt, w.copies(acct, euWest, builds[2].ID)[0].ID, false)
		}, mention: "version 1 ($Default) names it"},
		{name: "the new version becomes the default: free, removed", act: func() { w.cloud.SetDefaultLaunchTemplateVersion(acct, euWest, lt, 2) },
			removed: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			w.cloud.Advance(st.advance)
			if st.act != nil {
				st.act()
			}
			plan := run(reconcile.ModePlan)
			if want := map[bool]string{true: "prune", false: "none"}[st.removed]; superseded(plan).Action != want {
				t.Fatalf("plan: %+v, want action %s", superseded(plan), want)
			}
			res := run(reconcile.ModeRun)
			if got := res.Summary.Actions["prune_superseded"]; got != map[bool]int{true: 1}[st.removed] {
				t.Fatalf("removed %d: %+v", got, res.Report.Items)
			}
			if !st.removed {
				if it := superseded(res); !strings.Contains(it.Reason, st.mention) {
					t.Fatalf("reason %q lacks %q", it.Reason, st.mention)
				}
				if res.Summary.APICalls[cloud.OpDeregisterImage] != 0 {
					t.Fatal("a kept copy was deregistered")
				}
				return
			}
			if img, ok := w.cloud.Image(acct, euWest, oldest); ok && img.State != cloud.ImageDeregistered {
				t.Fatalf("the oldest copy is still registered: %+v", img)
			}
		})
	}
	// Nothing is left to say: the two kept builds are copied, the
	// record settled, nothing more is removed.
	res = run(reconcile.ModeRun)
	wantCounts(t, res.Report, map[report.Category]int{report.OK: 2})
	if res.Summary.MutatingCalls != 0 {
		t.Errorf("mutating calls after the removal: %v", res.Summary.APICalls)
	}
	if rec, _ := w.pair(state.PairKey{SourceImage: builds[0].ID, Account: acct, Region: euWest}); rec.Status != state.PairSettled || rec.LastErrorCode != "Pruned" {
		t.Errorf("record %+v, want settled as pruned", rec)
	}
}

// A superseded copy is kept, after its grace period too, while no copy of
// a build the group keeps is available in the account and Region: the
// newer copy still pending, or failed.
func TestSupersededKeptUntilANewerCopyIsAvailable(t *testing.T) {
	w := newWorld(t, 1, sim.WithCopyDuration(72*time.Hour))
	acct := accountID(1)
	w.cfg.Targets.Regions = []string{euWest}
	w.cfg.Source.KeepLatest = config.KeepLatest{GroupBy: "Recipe", Count: 1}
	w.cfg.Prune.Enabled = true
	w.cfg.Prune.GracePeriod = config.Duration(time.Hour)
	old := w.build(euWest, "web", 1, acct)
	w.run(reconcile.ModeRun)
	w.settle()
	oldCopy := w.copies(acct, euWest, old.ID)[0].ID
	newer := w.build(euWest, "web", 2, acct)
	w.run(reconcile.ModeRun) // the newer copy starts; the old one is superseded
	w.cloud.Advance(2 * time.Hour)
	res := w.run(reconcile.ModeRun)
	items := itemsOf(res.Report, report.Superseded)
	if len(items) != 1 || !strings.Contains(items[0].Reason, "never left without a copy") || res.Summary.APICalls[cloud.OpDeregisterImage] != 0 {
		t.Fatalf("superseded %+v with the newer copy pending; calls %v", items, res.Summary.APICalls)
	}
	if res.Summary.APICalls[cloud.OpDescribeInstances]+res.Summary.APICalls[cloud.OpDescribeLaunchTemplateVersions] != 0 {
		t.Errorf("use read for a copy that must stay anyway: %v", res.Summary.APICalls)
	}
	w.settle()
	if got := w.copies(acct, euWest, newer.ID); len(got) != 1 || got[0].State != cloud.ImageAvailable {
		t.Fatalf("setup: newer copy %+v", got)
	}
	res = w.run(reconcile.ModeRun)
	if res.Summary.Actions["prune_superseded"] != 1 {
		t.Fatalf("not removed once the newer copy is available: %+v", res.Report.Items)
	}
	if img, _ := w.cloud.Image(acct, euWest, oldCopy); img.State != cloud.ImageDeregistered {
		t.Fatalf("old copy %+v", img)
	}
}

// A superseded build is no target: its grants are taken back (the OU
// grant a build keeps for good included), and a run scoped to it copies
// nothing.
func TestSupersededBuildIsNoTarget(t *testing.T) {
	w := newWorld(t, 2)
	w.cfg.Targets.Regions = []string{euWest}
	w.cfg.Source.KeepLatest = config.KeepLatest{GroupBy: "Recipe", Count: 1}
	old := w.build(euWest, "web", 1, w.ou)
	w.run(reconcile.ModeRun)
	w.settle()
	if perms := w.cloud.LaunchPermission(srcAccount, euWest, old.ID); len(perms.OUs) != 1 {
		t.Fatalf("setup: launch permission %+v, want the OU", perms)
	}
	w.cloud.Advance(time.Hour)
	newer := w.build(euWest, "web", 2, w.ou)
	plan := w.run(reconcile.ModePlan)
	if !slices.ContainsFunc(plan.Report.Sharing, func(s report.ImageSharing) bool {
		return s.Image == old.ID && slices.ContainsFunc(s.Revoked, func(e string) bool { return strings.Contains(e, ":ou/") })
	}) {
		t.Errorf("plan does not take the old build's OU grant back: %+v", plan.Report.Sharing)
	}
	res, err := w.engine().Run(t.Context(), reconcile.Request{Mode: reconcile.ModeRun, OnlyImages: []string{old.ID}})
	must(t, err)
	if res.Summary.APICalls[cloud.OpCopyImage] != 0 || res.Report.Pairs != 0 {
		t.Fatalf("a run scoped to the superseded build: %v, %d pairs", res.Summary.APICalls, res.Report.Pairs)
	}
	w.run(reconcile.ModeRun)
	if perms := w.cloud.LaunchPermission(srcAccount, euWest, old.ID); perms.Len() != 0 {
		t.Errorf("the superseded build is still shared: %+v", perms)
	}
	if n := len(w.copies(accountID(1), euWest, newer.ID)); n != 1 {
		t.Errorf("%d copies of the kept build, want 1", n)
	}
}
