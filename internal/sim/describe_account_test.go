package sim_test

import (
	"context"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// TestDescribeAccount: one counted Organizations call per account, its
// State whatever it is; a non-member is AccountNotFoundException and a
// malformed id InvalidInputException, never an empty account.
func TestDescribeAccount(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	if err := c.SetAccountState(tgtB, cloud.AccountSuspended); err != nil {
		t.Fatal(err)
	}
	conn := c.Connector(srcAcct, sim.WithAttempts(1))
	org, _ := conn.Organization(ctx)
	tests := []struct {
		id       string
		want     cloud.Account
		wantCode string
	}{
		{id: tgtA, want: cloud.Account{ID: tgtA, Name: "a", State: cloud.AccountActive}},
		{id: tgtB, want: cloud.Account{ID: tgtB, Name: "b", State: cloud.AccountSuspended}},
		{id: "999999999999", wantCode: "AccountNotFoundException"},
		{id: "12345", wantCode: "InvalidInputException"},
	}
	for _, tt := range tests {
		got, err := org.DescribeAccount(ctx, tt.id)
		wantCode(t, err, tt.wantCode)
		if got != tt.want {
			t.Errorf("DescribeAccount(%s) = %+v, want %+v", tt.id, got, tt.want)
		}
	}
	if n := conn.CallCounts()[cloud.OpDescribeAccount]; n != int64(len(tests)) {
		t.Errorf("%d DescribeAccount calls, want %d", n, len(tests))
	}
	if got := sim.ClassOf(cloud.OpDescribeAccount); got != sim.BucketOrganizations {
		t.Errorf("DescribeAccount draws on bucket class %v, want Organizations", got)
	}
}
