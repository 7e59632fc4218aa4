package reconcile

import (
	"slices"
	"testing"
	"time"

	"github.com/amicopier/amicopier/state"
)

// TestRecordTransitions is the table of the records the executor writes
// once AWS or the store answered, beside TestAfterCopy's.
func TestRecordTransitions(t *testing.T) {
	old := func(p *state.Pair) { p.UpdatedAt = testNow.Add(-time.Hour) }
	tests := []struct {
		name string
		got  state.Pair
		want func(t *testing.T, p state.Pair)
	}{
		{
			name: "reopen a settled record to copy: the attempt after the earlier life's, a new token",
			got:  must2(Reopen(*record(state.PairCopying, 1, 0), *record(state.PairSettled, 4, 1, old), testNow)),
			want: func(t *testing.T, p state.Pair) {
				if p.Attempts != 5 || p.ClientToken != ClientToken(testKey, testFP, 5) || p.Version != 3 {
					t.Errorf("%+v: want attempt 5 with its token, over version 3", p)
				}
			},
		},
		{
			name: "reopen to record a failure: the attempts continue",
			got:  must2(Reopen(*record(state.PairFailed, 1, 1), *record(state.PairSettled, 4, 1, old), testNow)),
			want: func(t *testing.T, p state.Pair) {
				if p.Attempts != 4 || p.Status != state.PairFailed {
					t.Errorf("%+v: want failed at attempt 4", p)
				}
			},
		},
		{
			name: "an unsettled record is another writer's",
			got:  mustNot(Reopen(*record(state.PairCopying, 1, 0), *record(state.PairCopying, 4, 0, old), testNow)),
		},
		{
			name: "a settled record written since the run started is another writer's",
			got:  mustNot(Reopen(*record(state.PairCopying, 1, 0), *record(state.PairSettled, 4, 0, func(p *state.Pair) { p.UpdatedAt = testNow }), testNow)),
		},
		{
			name: "after a reopened failure the copy takes the next attempt",
			got:  ContinueAttempts(*record(state.PairCopying, 2, 0), *record(state.PairFailed, 4, 1)),
			want: func(t *testing.T, p state.Pair) {
				if p.Attempts != 5 || p.ClientToken != ClientToken(testKey, testFP, 5) {
					t.Errorf("%+v: want attempt 5 with its token", p)
				}
			},
		},
		{
			name: "a copy already past the stored attempt keeps its own",
			got:  ContinueAttempts(*record(state.PairCopying, 3, 0), *record(state.PairFailed, 2, 1)),
			want: func(t *testing.T, p state.Pair) {
				if p.Attempts != 3 || p.ClientToken != ClientToken(testKey, testFP, 3) {
					t.Errorf("%+v: want attempt 3 unchanged", p)
				}
			},
		},
		{
			name: "a refused share rejects the target and keeps no token",
			got:  ShareRefused(*record(state.PairCopying, 3, 0), record(state.PairFailed, 2, 1), "InvalidParameter", "cannot share"),
			want: func(t *testing.T, p state.Pair) {
				if p.Status != state.PairRejected || p.Attempts != 2 || p.ClientToken != "" || p.LastErrorCode != "InvalidParameter" || p.LastError != "cannot share" {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name: "retire settles, saying why",
			got:  Retire(*record(state.PairFailed, 2, 1), "NoLongerTargeted", "gone"),
			want: func(t *testing.T, p state.Pair) {
				if p.Status != state.PairSettled || p.LastErrorCode != "NoLongerTargeted" || p.Attempts != 2 {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name: "a pruned copy settles",
			got:  AfterPrune(testKey, "111111111111", record(state.PairOrphaned, 1, 0), "source gone for 8 days", nil),
			want: func(t *testing.T, p state.Pair) {
				if p.Status != state.PairSettled || p.LastErrorCode != "Pruned" {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name: "a pruned copy whose snapshots EC2 kept stays orphaned with them",
			got:  AfterPrune(testKey, "111111111111", nil, "source gone", []string{"snap-1"}),
			want: func(t *testing.T, p state.Pair) {
				if p.Status != state.PairOrphaned || !slices.Equal(p.Snapshots, []string{"snap-1"}) || p.Source != "111111111111" || p.Key != testKey {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name: "a superseded copy's first sighting: superseded, removable from the due time, no token",
			got:  Supersede(testKey, "111111111111", record(state.PairCopying, 2, 0), "ami-old", "superseded by newer builds", testNow.Add(time.Hour)),
			want: func(t *testing.T, p state.Pair) {
				if p.Status != state.PairSuperseded || p.CopyImageID != "ami-old" || !p.NextRetry.Equal(testNow.Add(time.Hour)) ||
					p.ClientToken != "" || p.LastErrorCode != "Superseded" || p.Attempts != 2 || p.Version != 3 {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name: "a superseded copy with no record gets a new one",
			got:  Supersede(testKey, "111111111111", nil, "ami-old", "superseded", testNow),
			want: func(t *testing.T, p state.Pair) {
				if p.Status != state.PairSuperseded || p.Key != testKey || p.Source != "111111111111" || p.Version != 0 {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name: "leftovers deleted: the pruned record settles",
			got:  AfterLeftovers(*record(state.PairOrphaned, 1, 0, func(p *state.Pair) { p.Snapshots = []string{"snap-1"} }), nil),
			want: func(t *testing.T, p state.Pair) {
				if p.Status != state.PairSettled || len(p.Snapshots) != 0 {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name: "leftovers still there: listed still",
			got:  AfterLeftovers(*record(state.PairOrphaned, 1, 0, func(p *state.Pair) { p.Snapshots = []string{"snap-1", "snap-2"} }), []string{"snap-2"}),
			want: func(t *testing.T, p state.Pair) {
				if p.Status != state.PairOrphaned || !slices.Equal(p.Snapshots, []string{"snap-2"}) {
					t.Errorf("%+v", p)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want != nil {
				tt.want(t, tt.got)
			}
		})
	}
}

// must2 keeps a Reopen that must be allowed; mustNot one that must not
// (its record is returned as given).
func must2(p state.Pair, ok bool) state.Pair {
	if !ok {
		panic("Reopen refused a record it must reopen")
	}
	return p
}

func mustNot(p state.Pair, ok bool) state.Pair {
	if ok {
		panic("Reopen reopened a record it must not")
	}
	return p
}
