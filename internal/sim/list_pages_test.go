package sim_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// TestListAccountsPages: the pages of ListAccounts, handed over one call
// at a time, together the whole list, each page one counted call.
func TestListAccountsPages(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ accounts, pageSize, wantPages int }{
		{accounts: 0, pageSize: 2, wantPages: 1},
		{accounts: 4, pageSize: 2, wantPages: 2},
		{accounts: 5, pageSize: 2, wantPages: 3},
	} {
		t.Run(fmt.Sprintf("%d accounts, pages of %d", tc.accounts, tc.pageSize), func(t *testing.T) {
			c := sim.New(sim.WithOrgPageSize(tc.pageSize))
			for i := range tc.accounts {
				if err := c.AddAccount(fmt.Sprintf("2000000000%02d", i), "", "", ""); err != nil {
					t.Fatal(err)
				}
			}
			conn := c.Connector("111111111111", sim.WithAttempts(1))
			org, _ := conn.Organization(ctx)
			var pages [][]cloud.Account
			all, err := org.(*sim.Organization).ListAccountsPages(ctx, func(p []cloud.Account) {
				pages = append(pages, slices.Clone(p))
				if got := conn.CallCounts()[cloud.OpListAccounts]; got != int64(len(pages)) {
					t.Errorf("page %d handed over after %d calls", len(pages), got)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(pages) != tc.wantPages || !slices.Equal(slices.Concat(pages...), all) || len(all) != tc.accounts {
				t.Errorf("%d pages %v, all %v", len(pages), pages, all)
			}
			listed, _ := org.ListAccounts(ctx)
			if !slices.Equal(listed, all) {
				t.Errorf("ListAccounts %v, pages %v", listed, all)
			}
		})
	}
}
