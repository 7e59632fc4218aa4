package sim_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

func TestAssumeRoleOncePerAccountPerConnector(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	conn := c.Connector(srcAcct, sim.WithAttempts(1))
	for _, reg := range []string{region, region2, region} {
		for _, acct := range []string{tgtA, tgtB} {
			got, err := conn.Target(ctx, acct, reg)
			if err != nil {
				t.Fatal(err)
			}
			e := got.(*sim.EC2)
			if e.Account() != acct || e.Region() != reg {
				t.Fatalf("client for %s/%s acts as %s/%s", acct, reg, e.Account(), e.Region())
			}
		}
	}
	if _, err := conn.Source(ctx, region); err != nil {
		t.Fatal(err)
	}
	if n := conn.CallCounts()[cloud.OpAssumeRole]; n != 2 {
		t.Fatalf("connector AssumeRole = %d, want 2", n)
	}
	for _, acct := range []string{tgtA, tgtB} {
		if n := c.Calls(cloud.OpAssumeRole, acct, ""); n != 1 {
			t.Fatalf("AssumeRole into %s = %d, want 1", acct, n)
		}
	}
	if n := c.Calls(cloud.OpAssumeRole, srcAcct, ""); n != 0 {
		t.Fatalf("Source assumed a role (%d)", n)
	}
	// A new connector is a new run.
	conn2 := c.Connector(srcAcct, sim.WithAttempts(1))
	if _, err := conn2.Target(ctx, tgtA, region2); err != nil {
		t.Fatal(err)
	}
	if conn2.CallCounts()[cloud.OpAssumeRole] != 1 || c.CallCounts()[cloud.OpAssumeRole] != 3 || conn.CallCounts()[cloud.OpAssumeRole] != 2 {
		t.Fatalf("counts: new %v, cloud %v, old %v", conn2.CallCounts(), c.CallCounts(), conn.CallCounts())
	}
}

func TestAssumeRoleConcurrentFirstCalls(t *testing.T) {
	c := newOrg(t)
	conn := c.Connector(srcAcct, sim.WithAttempts(1))
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			reg := region
			if i%2 == 0 {
				reg = region2
			}
			if _, err := conn.Target(context.Background(), tgtA, reg); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := conn.CallCounts()[cloud.OpAssumeRole]; n != 1 {
		t.Fatalf("AssumeRole = %d, want 1", n)
	}
}

func TestAssumeRoleDenied(t *testing.T) {
	c := newOrg(t)
	if err := c.AddAccount("555555555555", "suspended", "", cloud.AccountSuspended); err != nil {
		t.Fatal(err)
	}
	c.DenyAssumeRole(tgtB)
	for _, tt := range []struct {
		name, account string
	}{
		{"denied", tgtB},
		{"not in the organisation", outsider},
		{"malformed", "12345"},
		{"suspended", "555555555555"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn := c.Connector(srcAcct, sim.WithAttempts(1))
			for range 3 {
				e, err := conn.Target(context.Background(), tt.account, region)
				wantCode(t, err, "AccessDenied")
				if e != nil || cloud.ClassOf(err) != cloud.ClassAccessDenied {
					t.Fatalf("client %v, class %s", e, cloud.ClassOf(err))
				}
				var apiErr *cloud.APIError
				if !errors.As(err, &apiErr) || apiErr.Op != cloud.OpAssumeRole {
					t.Fatalf("error %v is not from AssumeRole", err)
				}
			}
			if n := conn.CallCounts()[cloud.OpAssumeRole]; n != 3 {
				t.Fatalf("AssumeRole calls = %d, want one per attempt (3)", n)
			}
		})
	}
	c.AllowAssumeRole(tgtB)
	if _, err := c.Connector(srcAcct, sim.WithAttempts(1)).Target(context.Background(), tgtB, region); err != nil {
		t.Fatalf("after AllowAssumeRole: %v", err)
	}
}

func TestAssumeRoleFaultIsNotCached(t *testing.T) {
	c := newOrg(t)
	conn := c.Connector(srcAcct, sim.WithAttempts(1))
	fail := true
	c.SetFault(func(_ context.Context, call sim.Call) error {
		if call.Op == cloud.OpAssumeRole && fail {
			return cloud.Errorf(call.Op, "Throttling", "slow down")
		}
		return nil
	})
	_, err := conn.Target(context.Background(), tgtA, region)
	wantCode(t, err, "Throttling")
	fail = false
	if _, err := conn.Target(context.Background(), tgtA, region); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Target(context.Background(), tgtA, region2); err != nil {
		t.Fatal(err)
	}
	if n := conn.CallCounts()[cloud.OpAssumeRole]; n != 2 {
		t.Fatalf("AssumeRole = %d, want 2 (failed + successful)", n)
	}
}

func TestConnectorCountsOnlyItsCalls(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	one, two := c.Connector(srcAcct, sim.WithAttempts(1)), c.Connector(srcAcct, sim.WithAttempts(1))
	s1, _ := one.Source(ctx, region)
	s2, _ := two.Source(ctx, region)
	for range 2 {
		if _, err := s1.DescribeImages(ctx, cloud.ImageQuery{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s2.DescribeImages(ctx, cloud.ImageQuery{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client(srcAcct, region).DescribeImages(ctx, cloud.ImageQuery{}); err != nil {
		t.Fatal(err)
	}
	if one.CallCounts()[cloud.OpDescribeImages] != 2 || two.CallCounts()[cloud.OpDescribeImages] != 1 || c.CallCounts()[cloud.OpDescribeImages] != 4 {
		t.Fatalf("one %v two %v cloud %v", one.CallCounts(), two.CallCounts(), c.CallCounts())
	}
	one.ResetCounters()
	if len(one.CallCounts()) != 0 || c.CallCounts()[cloud.OpDescribeImages] != 4 {
		t.Fatal("connector reset touched the wrong counts")
	}
}

func TestConnectorIsTheEnginesPort(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	var conn cloud.Connector = c.Connector(srcAcct, sim.WithAttempts(1))
	src, err := conn.Source(ctx, region)
	if err != nil || src == nil {
		t.Fatal(src, err)
	}
	// An error must come with a nil interface, not a typed nil.
	e, err := conn.Target(ctx, outsider, region)
	wantCode(t, err, "AccessDenied")
	if e != nil {
		t.Fatalf("client on error = %#v", e)
	}
	if e, err := conn.Source(ctx, "nowhere"); err == nil || e != nil {
		t.Fatalf("Source(bad region) = %#v, %v", e, err)
	}
	org, err := conn.Organization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if roots, err := org.ListRoots(ctx); err != nil || !slices.Equal(roots, []string{sim.RootID}) {
		t.Fatal(roots, err)
	}
	counter := conn.(cloud.CallCounter)
	if counter.CallCounts()[cloud.OpListRoots] != 1 || counter.CallCounts()[cloud.OpAssumeRole] != 1 {
		t.Fatalf("connector counts %v", counter.CallCounts())
	}
}

func TestOrganizationListing(t *testing.T) {
	ctx := context.Background()
	c := sim.New()
	if !cloud.IsRootID(c.Root()) {
		t.Fatalf("root id %q", c.Root())
	}
	big := c.AddOU("", "big")
	empty := c.AddOU(big, "empty")
	var ous []string
	for i := range 25 {
		ou := c.AddOU(big, fmt.Sprintf("ou %d", i))
		if !cloud.IsOUID(ou) {
			t.Fatalf("OU id %q", ou)
		}
		ous = append(ous, ou)
	}
	var inBig []string
	for i := range 41 {
		id := fmt.Sprintf("%012d", 100000+i)
		state := cloud.AccountActive
		if i%10 == 0 {
			state = cloud.AccountSuspended
		}
		if err := c.AddAccount(id, "acct", big, state); err != nil {
			t.Fatal(err)
		}
		inBig = append(inBig, id)
	}
	if err := c.AddAccount("999999999999", "at root", "", ""); err != nil {
		t.Fatal(err)
	}
	conn := c.Connector(srcAcct, sim.WithAttempts(1))
	org, _ := conn.Organization(ctx)

	accounts, err := org.ListAccounts(ctx)
	if err != nil || len(accounts) != 42 || accounts[10].State != cloud.AccountSuspended || accounts[41].ID != "999999999999" || accounts[41].State != cloud.AccountActive {
		t.Fatalf("ListAccounts = %d accounts, %v", len(accounts), err)
	}
	if n := conn.CallCounts()[cloud.OpListAccounts]; n != 3 {
		t.Fatalf("ListAccounts calls = %d, want 3 pages of 20", n)
	}

	kids, err := org.ListChildren(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	gotOUs := make([]string, len(kids.OUs))
	for i, ou := range kids.OUs {
		gotOUs[i] = ou.ID
	}
	if !slices.Equal(gotOUs, append([]string{empty}, ous...)) || kids.OUs[0].Name != "empty" || !slices.Equal(kids.AccountIDs(), inBig) {
		t.Fatalf("children of big: %+v", kids)
	}
	counts := conn.CallCounts()
	if counts[cloud.OpListOrganizationalUnitsForParent] != 2 || counts[cloud.OpListAccountsForParent] != 3 {
		t.Fatalf("ListChildren counts %v, want 2 OU pages and 3 account pages", counts)
	}

	conn.ResetCounters()
	kids, err = org.ListChildren(ctx, empty)
	if err != nil || len(kids.OUs) != 0 || len(kids.Accounts) != 0 {
		t.Fatalf("children of empty: %+v, %v", kids, err)
	}
	root, _ := org.ListChildren(ctx, c.Root())
	if len(root.OUs) != 1 || !slices.Equal(root.AccountIDs(), []string{"999999999999"}) {
		t.Fatalf("children of root: %+v", root)
	}
	counts = conn.CallCounts()
	if counts[cloud.OpListOrganizationalUnitsForParent] != 2 || counts[cloud.OpListAccountsForParent] != 2 {
		t.Fatalf("counts %v, want one page of each per parent", counts)
	}

	conn.ResetCounters()
	_, err = org.ListChildren(ctx, "ou-sim0-deadbeef")
	wantCode(t, err, "ParentNotFoundException")
	// The two listings go at once: both are made, and both fail.
	if counts := conn.CallCounts(); counts[cloud.OpListOrganizationalUnitsForParent] != 1 || counts[cloud.OpListAccountsForParent] != 1 {
		t.Fatalf("counts %v", counts)
	}
	// 2 pages for big, 1 each for empty, the root and the unknown parent.
	if n := c.Calls(cloud.OpListOrganizationalUnitsForParent, srcAcct, ""); n != 5 {
		t.Fatalf("Organizations calls attributed to the source account: %d, want 5", n)
	}
}

func TestOrganizationPageSizeOption(t *testing.T) {
	c := sim.New(sim.WithOrgPageSize(5))
	for i := range 11 {
		if err := c.AddAccount(fmt.Sprintf("%012d", 100000+i), "a", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	conn := c.Connector(srcAcct, sim.WithAttempts(1))
	org, _ := conn.Organization(context.Background())
	if _, err := org.ListAccounts(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := org.ListChildren(context.Background(), c.Root()); err != nil {
		t.Fatal(err)
	}
	if got := conn.CallCounts(); got[cloud.OpListAccounts] != 3 || got[cloud.OpListAccountsForParent] != 3 || got[cloud.OpListOrganizationalUnitsForParent] != 1 {
		t.Fatalf("counts %v", got)
	}
}

func TestOrganizationBuilder(t *testing.T) {
	c := sim.New()
	ou := c.AddOU("", "ou")
	for _, tt := range []struct {
		name, id, parent string
		ok               bool
	}{
		{"ok", "123456789012", ou, true},
		{"duplicate", "123456789012", "", false},
		{"short id", "12345678901", "", false},
		{"letters", "12345678901a", "", false},
		{"unknown parent", "123456789013", "ou-sim0-ffffffff", false},
	} {
		err := c.AddAccount(tt.id, tt.name, tt.parent, "")
		if (err == nil) != tt.ok {
			t.Errorf("%s: AddAccount err = %v", tt.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), tt.id) {
			t.Errorf("%s: error %q does not name %s", tt.name, err, tt.id)
		}
	}
	if err := c.MoveAccount("123456789012", ""); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAccountState("123456789012", cloud.AccountClosed); err != nil {
		t.Fatal(err)
	}
	if a, ok := c.Account("123456789012"); !ok || a.State != cloud.AccountClosed {
		t.Fatalf("account %+v", a)
	}
	org, _ := c.Connector(srcAcct, sim.WithAttempts(1)).Organization(context.Background())
	kids, _ := org.ListChildren(context.Background(), ou)
	root, _ := org.ListChildren(context.Background(), c.Root())
	if len(kids.Accounts) != 0 || !slices.Equal(root.AccountIDs(), []string{"123456789012"}) {
		t.Fatalf("after move: ou %v root %v", kids.Accounts, root.Accounts)
	}
	if err := c.MoveAccount("000000000000", ""); err == nil {
		t.Fatal("moved an unknown account")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("AddOU under an unknown parent did not panic")
		}
	}()
	c.AddOU("ou-sim0-ffffffff", "x")
}

func TestConnectorRetriesLikeTheSDK(t *testing.T) {
	ctx := context.Background()
	c := newOrg(t)
	img := c.AddImage(srcAcct, region, sim.ImageSpec{Name: "x"})
	c.SetFault(sim.NewFaultPlan(1).
		Add(sim.FaultRule{Op: cloud.OpDescribeImages, Times: 2, Code: "RequestLimitExceeded"}).
		Add(sim.FaultRule{Op: cloud.OpDescribeImageAttribute, Times: 1, Code: "InternalError"}).
		Add(sim.FaultRule{Op: cloud.OpModifyImageAttribute, Times: 9, Code: "RequestLimitExceeded"}).
		Hook())
	conn := c.Connector(srcAcct, sim.WithAttempts(3))
	src, err := conn.Source(ctx, region)
	if err != nil {
		t.Fatal(err)
	}
	if imgs, err := src.DescribeImages(ctx, cloud.ImageQuery{}); err != nil || len(imgs) != 1 {
		t.Fatalf("describe: %v %v", imgs, err)
	}
	if _, err := src.ImageLaunchPermission(ctx, img.ID); err != nil {
		t.Fatalf("a 5xx answer is retried: %v", err)
	}
	// Past the attempts, the throttle reaches the caller.
	err = src.AddImageLaunchPermission(ctx, img.ID, cloud.LaunchPermission{Accounts: []string{tgtA}})
	wantCode(t, err, "RequestLimitExceeded")
	// A request EC2 refused on its merits is not retried.
	_, err = src.ImageLaunchPermission(ctx, "ami-00000000000000bad")
	wantCode(t, err, "InvalidAMIID.NotFound")
	counts := conn.CallCounts()
	if counts[cloud.OpDescribeImages] != 3 || counts[cloud.OpDescribeImageAttribute] != 3 || counts[cloud.OpModifyImageAttribute] != 3 {
		t.Fatalf("every attempt is a counted call: %v", counts)
	}
	if got, _ := conn.Throttles(); got != 5 {
		t.Fatalf("throttled answers = %d, want 5 (2 describes, 3 modifies: every attempt, the surfaced one too)", got)
	}
}
