package sim_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// TestChildListingsApart: each listing counts its own pages and nothing of
// the other's.
func TestChildListingsApart(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	big := c.AddOU("", "big")
	var inBig []string
	for i := range 45 {
		id := fmt.Sprintf("5%011d", i)
		if err := c.AddAccount(id, "acct", big, cloud.AccountActive); err != nil {
			t.Fatal(err)
		}
		inBig = append(inBig, id)
	}
	conn := c.Connector(srcAcct, sim.WithAttempts(1))
	port, _ := conn.Organization(ctx)
	org := port.(*sim.Organization)

	tests := []struct {
		name             string
		list             func() (int, error)
		want             int
		wantOUs, wantAcc int64
		code             string
	}{
		{"OUs of the root", func() (int, error) { ous, err := org.ListOUsForParent(ctx, sim.RootID); return len(ous), err }, 2, 1, 0, ""},
		{"accounts of big: 3 pages", func() (int, error) {
			ids, err := org.ListAccountsForParent(ctx, big)
			if err == nil && !slices.Equal(ids, inBig) {
				t.Errorf("accounts %v, want %v", ids, inBig)
			}
			return len(ids), err
		}, 45, 0, 3, ""},
		{"accounts of the root", func() (int, error) { ids, err := org.ListAccountsForParent(ctx, sim.RootID); return len(ids), err }, 1, 0, 1, ""},
		{"OUs of an unknown parent", func() (int, error) { ous, err := org.ListOUsForParent(ctx, "ou-sim0-deadbeef"); return len(ous), err }, 0, 1, 0, "ParentNotFoundException"},
		{"accounts of an unknown parent", func() (int, error) {
			ids, err := org.ListAccountsForParent(ctx, "ou-sim0-deadbeef")
			return len(ids), err
		}, 0, 0, 1, "ParentNotFoundException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn.ResetCounters()
			n, err := tt.list()
			wantCode(t, err, tt.code)
			if n != tt.want {
				t.Errorf("%d items, want %d", n, tt.want)
			}
			counts := conn.CallCounts()
			if counts[cloud.OpListOrganizationalUnitsForParent] != tt.wantOUs || counts[cloud.OpListAccountsForParent] != tt.wantAcc {
				t.Errorf("counts %v, want %d OU pages and %d account pages", counts, tt.wantOUs, tt.wantAcc)
			}
		})
	}
}
