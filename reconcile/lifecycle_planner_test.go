package reconcile

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/state"
)

func TestWantedDeprecation(t *testing.T) {
	created := testNow.Add(-10 * 24 * time.Hour).Add(37 * time.Second)
	src := testNow.Add(30 * 24 * time.Hour)
	tests := []struct {
		name   string
		source time.Time
		after  time.Duration
		want   time.Time
	}{
		{"nothing deprecates it", time.Time{}, 0, time.Time{}},
		{"the source's time", src, 0, src},
		{"deprecate_after alone, cut to the minute", time.Time{}, 7 * 24 * time.Hour, created.Add(7 * 24 * time.Hour).Truncate(time.Minute)},
		{"deprecate_after earlier than the source", src, 7 * 24 * time.Hour, created.Add(7 * 24 * time.Hour).Truncate(time.Minute)},
		{"the source earlier than deprecate_after", src, 90 * 24 * time.Hour, src},
		{"a source time with seconds, as EC2 rounds it", src.Add(40 * time.Second), 0, src.Add(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WantedDeprecation(tt.source, created, tt.after); !got.Equal(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPlanDeprecation(t *testing.T) {
	future := testNow.Add(30 * 24 * time.Hour)
	past := testNow.Add(-24 * time.Hour)
	created := testNow.Add(-48 * time.Hour)
	tests := []struct {
		name            string
		f               DeprecationFacts
		enable, disable bool
		want            time.Time
		at              time.Time // DeprecateAt at testNow, when enabling
		mention         string
	}{
		{name: "in step with its source", f: DeprecationFacts{Current: future, Source: future, Created: created}, want: future, mention: "its source's deprecation time"},
		{name: "nothing on either side", f: DeprecationFacts{Created: created}, mention: "neither its source"},
		{name: "the source gets a deprecation time", f: DeprecationFacts{Source: future, Created: created}, enable: true, want: future, at: future, mention: "its source's"},
		{name: "the source's changes", f: DeprecationFacts{Current: future, Source: future.Add(24 * time.Hour), Created: created}, enable: true, want: future.Add(24 * time.Hour), at: future.Add(24 * time.Hour)},
		{name: "the source's is cancelled", f: DeprecationFacts{Current: future, Created: created}, disable: true, mention: "no longer scheduled"},
		{name: "deprecate_after earlier than the source", f: DeprecationFacts{Source: future, Created: created, After: 7 * 24 * time.Hour},
			enable: true, want: created.Add(7 * 24 * time.Hour), at: created.Add(7 * 24 * time.Hour), mention: "copy.deprecate_after (7d after the copy was made)"},
		{name: "the source deprecated already, the copy not", f: DeprecationFacts{Source: past, Created: created}, enable: true, want: past,
			at: testNow.Add(time.Minute), mention: "which has passed: the copy is deprecated at the first minute EC2 takes"},
		{name: "the source deprecated already, the copy later", f: DeprecationFacts{Current: future, Source: past, Created: created}, enable: true, want: past, at: testNow.Add(time.Minute)},
		{name: "both deprecated already", f: DeprecationFacts{Current: testNow.Add(-time.Hour), Source: past, Created: created}, want: past, mention: "deprecated already"},
		{name: "deprecate_after passed, the copy was made long ago", f: DeprecationFacts{Created: testNow.Add(-100 * 24 * time.Hour), After: 90 * 24 * time.Hour},
			enable: true, want: testNow.Add(-10 * 24 * time.Hour), at: testNow.Add(time.Minute)},
		{name: "the copy's time off by seconds is no difference", f: DeprecationFacts{Current: future.Add(10 * time.Second), Source: future, Created: created}, want: future},
		{name: "beyond EC2's limit", f: DeprecationFacts{Source: testNow.Add(cloud.MaxDeprecationAhead + 24*time.Hour), Created: created}, want: testNow.Add(cloud.MaxDeprecationAhead + 24*time.Hour), mention: "more than 10 years ahead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := PlanDeprecation(tt.f, testNow)
			if d.Enable != tt.enable || d.Disable != tt.disable || !d.Want.Equal(tt.want) {
				t.Fatalf("decision %+v, want enable %v disable %v want %v", d, tt.enable, tt.disable, tt.want)
			}
			if d.Changes() != (tt.enable || tt.disable) {
				t.Errorf("Changes() = %v", d.Changes())
			}
			if !strings.Contains(d.Reason, tt.mention) {
				t.Errorf("reason %q lacks %q", d.Reason, tt.mention)
			}
			if tt.enable {
				if at := DeprecateAt(d, testNow); !at.Equal(tt.at) {
					t.Errorf("DeprecateAt = %v, want %v", at, tt.at)
				}
				if at := DeprecateAt(d, testNow); at.Second() != 0 || !at.After(testNow) {
					t.Errorf("DeprecateAt %v: want a whole minute after now", at)
				}
			}
		})
	}
}

// A time set while the run worked is later than the plan's now: EC2
// would refuse it, so the call asks for the next minute instead.
func TestDeprecateAtNeverInThePast(t *testing.T) {
	d := PlanDeprecation(DeprecationFacts{Source: testNow.Add(2 * time.Minute), Created: testNow.Add(-time.Hour)}, testNow)
	if at := DeprecateAt(d, testNow.Add(5*time.Minute+20*time.Second)); !at.Equal(testNow.Add(6 * time.Minute)) {
		t.Fatalf("DeprecateAt = %v, want the next whole minute", at)
	}
}

func TestRankBuilds(t *testing.T) {
	img := func(id, region, recipe string, age time.Duration) cloud.Image {
		im := cloud.Image{ID: id, Region: region, CreationDate: testNow.Add(-age), Tags: map[string]string{}}
		if recipe != "" {
			im.Tags["Recipe"] = recipe
		}
		return im
	}
	imgs := []cloud.Image{
		img("ami-web1", "eu-west-1", "web", 72*time.Hour),
		img("ami-web3", "eu-west-1", "web", 24*time.Hour),
		img("ami-web2", "eu-west-1", "web", 48*time.Hour),
		img("ami-webus", "us-east-1", "web", 96*time.Hour), // another Region: another lineage
		img("ami-api1", "eu-west-1", "api", 10*time.Hour),
		img("ami-lone", "eu-west-1", "", 500*time.Hour), // no tag: no group
		img("ami-tie-a", "eu-west-1", "tie", time.Hour),
		img("ami-tie-b", "eu-west-1", "tie", time.Hour),
	}
	got := RankBuilds(imgs, KeepLatest{GroupBy: "Recipe", Count: 2})
	want := map[string]BuildRank{
		"ami-web3":  {Group: "web", Rank: 1, Of: 3, Kept: []string{"ami-web3", "ami-web2"}},
		"ami-web2":  {Group: "web", Rank: 2, Of: 3, Kept: []string{"ami-web3", "ami-web2"}},
		"ami-web1":  {Group: "web", Rank: 3, Of: 3, Kept: []string{"ami-web3", "ami-web2"}},
		"ami-webus": {Group: "web", Rank: 1, Of: 1, Kept: []string{"ami-webus"}},
		"ami-api1":  {Group: "api", Rank: 1, Of: 1, Kept: []string{"ami-api1"}},
		"ami-tie-b": {Group: "tie", Rank: 1, Of: 2, Kept: []string{"ami-tie-b", "ami-tie-a"}},
		"ami-tie-a": {Group: "tie", Rank: 2, Of: 2, Kept: []string{"ami-tie-b", "ami-tie-a"}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d ranks, want %d: %+v", len(got), len(want), got)
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok || g.Group != w.Group || g.Rank != w.Rank || g.Of != w.Of || !slices.Equal(g.Kept, w.Kept) {
			t.Errorf("%s: %+v, want %+v", id, g, w)
		}
		if g.Superseded() != (w.Rank > 2) {
			t.Errorf("%s: Superseded() = %v", id, g.Superseded())
		}
	}
	if RankBuilds(imgs, KeepLatest{}) != nil {
		t.Error("keep_latest off ranks nothing")
	}
}

func TestPlanSuperseded(t *testing.T) {
	p := PrunePolicy{Enabled: true, Grace: 24 * time.Hour, Now: testNow}
	superseded := record(state.PairSuperseded, 1, 0, func(r *state.Pair) { r.NextRetry = testNow.Add(-time.Minute) })
	waiting := record(state.PairSuperseded, 1, 0, func(r *state.Pair) { r.NextRetry = testNow.Add(time.Hour) })
	tests := []struct {
		name               string
		policy             PrunePolicy
		rec                *state.Pair
		newer              string
		checked            bool
		inUse              int
		templates          []string
		due, prune, record bool
		mention            string
	}{
		{name: "pruning off: reported only", policy: PrunePolicy{Now: testNow}, newer: "ami-new", mention: "pruning is off"},
		{name: "first sighting starts the grace period", policy: p, newer: "ami-new", record: true, mention: "may be removed after 2026-03-02T12:00:00Z"},
		{name: "a copying record of the old build is replaced", policy: p, rec: record(state.PairCopying, 2, 0), newer: "ami-new", record: true},
		{name: "within the grace period", policy: p, rec: waiting, newer: "ami-new", mention: "may be removed after"},
		{name: "no newer copy yet: the group keeps this one", policy: p, rec: superseded, mention: "a group is never left without a copy"},
		{name: "due, not checked yet", policy: p, rec: superseded, newer: "ami-new", due: true, mention: "grace period is over"},
		{name: "in use", policy: p, rec: superseded, newer: "ami-new", checked: true, inUse: 3, due: true, mention: "3 instance(s)"},
		{name: "a launch template names it", policy: p, rec: superseded, newer: "ami-new", checked: true,
			templates: []string{"lt-1 (web) version 2 ($Latest) names it"}, due: true, mention: "kept: launch template lt-1 (web) version 2 ($Latest) names it"},
		{name: "free: removed", policy: p, rec: superseded, newer: "ami-new", checked: true, due: true, prune: true, mention: "ami-new of a newer build is available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := PlanSuperseded(SupersededFacts{Key: testKey, CopyIDs: []string{"ami-old"}, Record: tt.rec, Source: "111111111111",
				Group: "Recipe=web", Newer: tt.newer, Checked: tt.checked, InUse: tt.inUse, Templates: tt.templates}, tt.policy)
			if d.Due != tt.due || d.Prune != tt.prune || (d.Record != nil) != tt.record {
				t.Fatalf("decision %+v", d)
			}
			if !strings.Contains(d.Reason, "ami-old") || !strings.Contains(d.Reason, "Recipe=web") || !strings.Contains(d.Reason, tt.mention) {
				t.Errorf("reason %q lacks %q", d.Reason, tt.mention)
			}
			if tt.record && (d.Record.Status != state.PairSuperseded || !d.Record.NextRetry.Equal(testNow.Add(24*time.Hour)) || d.Record.CopyImageID != "ami-old") {
				t.Errorf("record %+v", d.Record)
			}
		})
	}
}
