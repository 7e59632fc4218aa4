package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
)

// TestUnmatchedScope: scope values that match nothing are named, with
// why; a strict request fails before anything is observed, a lenient one
// lists them in the report. Filters that match no image at all are
// reported too.
func TestUnmatchedScope(t *testing.T) {
	w := newWorld(t, 3)
	web := w.image(euWest, "web", 1, accountID(1)+" "+accountID(2))
	const typo, stranger = "ami-0123456789abcdef0", "999999999999"
	req := reconcile.Request{
		Mode: reconcile.ModeRun, Trigger: "test",
		OnlyImages:   []string{web.ID, typo},
		OnlyAccounts: []string{accountID(1), accountID(3), stranger, stranger},
	}
	want := &report.Unmatched{
		Images: []report.UnmatchedValue{{Value: typo}},
		Accounts: []report.UnmatchedValue{
			{Value: accountID(3), Reason: "no source AMI in scope targets it"},
			{Value: stranger, Reason: "not an account of the organisation"},
		},
	}
	check := func(t *testing.T, got *report.Unmatched) {
		t.Helper()
		if got == nil || len(got.Images) != 1 || len(got.Accounts) != 2 || got.Filters != "" {
			t.Fatalf("unmatched %+v, want %+v", got, want)
		}
		if got.Images[0].Value != typo || !strings.Contains(got.Images[0].Reason, "no available image with this id") {
			t.Errorf("image %+v", got.Images[0])
		}
		for i, a := range got.Accounts {
			if a.Value != want.Accounts[i].Value || !strings.Contains(a.Reason, want.Accounts[i].Reason) {
				t.Errorf("account %+v, want %+v", a, want.Accounts[i])
			}
		}
	}

	strict := req
	strict.RequireScopeMatch = true
	_, err := w.engine().Run(context.Background(), strict)
	var scope *reconcile.ScopeError
	if !errors.As(err, &scope) {
		t.Fatalf("strict run: %v, want a *ScopeError", err)
	}
	check(t, scope.Unmatched)
	if n := w.cloud.Calls("AssumeRole", "", "") + w.cloud.Calls("CopyImage", "", ""); n != 0 {
		t.Errorf("the strict run observed or copied (%d calls) despite its bad scope", n)
	}

	res, err := w.engine().Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	check(t, res.Report.Unmatched)
	if res.Summary.APICalls["CopyImage"] != 1 {
		t.Errorf("the lenient run did not reconcile what matched: %v", res.Summary.APICalls)
	}

	// The same scope in a shard that does not hold the account.
	sharded := reconcile.Request{Mode: reconcile.ModePlan, OnlyAccounts: []string{accountID(1)}, Shard: reconcile.Shard{Index: 1, Count: 64}}
	for i := 1; i <= 64 && sharded.Shard.Contains(accountID(1)); i++ {
		sharded.Shard.Index = i
	}
	res, err = w.engine().Run(context.Background(), sharded)
	if err != nil {
		t.Fatal(err)
	}
	if u := res.Report.Unmatched; u == nil || len(u.Accounts) != 1 || !strings.Contains(u.Accounts[0].Reason, "another shard") {
		t.Errorf("an account of another shard: %+v", u)
	}

	// Filters that match nothing.
	w.cfg.Source.Filters = map[string][]string{"BuiltBy": {"amgio"}}
	res = w.run(reconcile.ModePlan)
	if u := res.Report.Unmatched; u == nil || !strings.Contains(u.Filters, "source.filters BuiltBy=amgio") || u.Scoped() {
		t.Errorf("filters matching nothing: %+v", u)
	}
	w.cfg.Source.Filters = nil
	if res := w.run(reconcile.ModePlan); res.Report.Unmatched != nil {
		t.Errorf("a run where everything matched reports %+v", res.Report.Unmatched)
	}
}
