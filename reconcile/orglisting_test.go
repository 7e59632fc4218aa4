package reconcile_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
)

// TestRoleAssumedWhileTheOrganisationIsListed: for an image for "*", the
// run assumes the copier role in the accounts of the first pages while
// the later pages are still coming, and the calls stay one AssumeRole per
// account; an account whose role cannot be assumed is reported
// unreachable once, as before.
func TestRoleAssumedWhileTheOrganisationIsListed(t *testing.T) {
	const n = 100 // 6 pages of ListAccounts
	w := newWorld(t, n, sim.WithLatency(sim.Latency{Organizations: 20 * time.Millisecond}))
	w.cfg.Source.Regions = []string{euWest}
	w.image(euWest, "web", 1, "*")
	w.cloud.DenyAssumeRole(accountID(7))
	var mu sync.Mutex
	var order []string
	w.cloud.SetFault(func(_ context.Context, c sim.Call) error {
		if c.Op == cloud.OpListAccounts || c.Op == cloud.OpAssumeRole {
			mu.Lock()
			order = append(order, c.Op)
			mu.Unlock()
		}
		return nil
	})
	res, err := w.engine().Run(context.Background(), reconcile.Request{Mode: reconcile.ModePlan, Trigger: "test"})
	must(t, err)
	lastPage, firstRole := -1, -1
	for i, op := range order {
		switch {
		case op == cloud.OpListAccounts:
			lastPage = i
		case firstRole < 0:
			firstRole = i
		}
	}
	if firstRole < 0 || firstRole > lastPage {
		t.Errorf("the first AssumeRole came after the last ListAccounts page: %v", order)
	}
	if got := w.cloud.Calls(cloud.OpAssumeRole, "", ""); got != n {
		t.Errorf("%d AssumeRole calls, want one per account (%d)", got, n)
	}
	un := itemsOf(res.Report, report.Unreachable)
	if len(un) != 1 || un[0].Account != accountID(7) {
		t.Errorf("unreachable %+v, want the denied account's one pair", un)
	}
	if got := res.Report.Counts[report.Missing]; got != n-1 {
		t.Errorf("%d missing pairs, want %d", got, n-1)
	}
}
