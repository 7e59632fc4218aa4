package awsapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
)

func TestOrganizationPaginates(t *testing.T) {
	c := newCloud(t)
	prod := c.AddOU("", "Prod")
	web := c.AddOU(prod, "Web")
	for i := range 5 {
		if err := c.AddAccount(fmt.Sprintf("5000000000%02d", i), "web", web, ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		c.AddOU(prod, fmt.Sprintf("empty-%d", i))
	}
	f := newFixture(t, c, awsfake.Options{OrgPageSize: 2}, nil)
	ctx := context.Background()
	org, err := f.sess.Connect(runID, ConnectOptions{}).Organization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := org.ListAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(accts) != 9 {
		t.Fatalf("%d accounts, want 9", len(accts))
	}
	states := map[string]cloud.AccountState{}
	for _, a := range accts {
		states[a.ID] = a.State
	}
	if states[acctC] != cloud.AccountSuspended || states[acctA] != cloud.AccountActive {
		t.Errorf("states %v", states)
	}
	reqs := f.requests("ListAccounts")
	if len(reqs) != 5 {
		t.Fatalf("%d ListAccounts requests, want 5 pages of 2", len(reqs))
	}
	for i, r := range reqs {
		if tgt := r.Header.Get("X-Amz-Target"); tgt != "AWSOrganizationsV20161128.ListAccounts" {
			t.Errorf("X-Amz-Target %q", tgt)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
			t.Errorf("Content-Type %q", ct)
		}
		_, has := r.JSON["NextToken"]
		if (i > 0) != has {
			t.Errorf("request %d body %v: NextToken from the second page on", i, r.JSON)
		}
	}

	roots, err := org.ListRoots(ctx)
	if err != nil || !slices.Equal(roots, []string{sim.RootID}) {
		t.Fatalf("roots %v, %v", roots, err)
	}
	children, err := org.ListChildren(ctx, prod)
	if err != nil {
		t.Fatal(err)
	}
	if len(children.OUs) != 4 || children.OUs[0].ID != web || children.OUs[0].Name != "Web" || len(children.Accounts) != 0 {
		t.Errorf("children of Prod: %+v", children)
	}
	if n := len(f.requests("ListOrganizationalUnitsForParent")); n != 2 {
		t.Errorf("%d ListOrganizationalUnitsForParent requests, want 2", n)
	}
	if r := f.requests("ListAccountsForParent")[0]; r.JSON["ParentId"] != prod {
		t.Errorf("ListAccountsForParent body %v", r.JSON)
	}
	children, err = org.ListChildren(ctx, web)
	if err != nil || len(children.Accounts) != 5 {
		t.Errorf("children of Web: %+v, %v", children, err)
	}
	_, err = org.ListChildren(ctx, "ou-zzzz-zzzzzzzz")
	if cloud.ClassOf(err) != cloud.ClassNotFound {
		t.Errorf("unknown parent: %v (class %v)", err, cloud.ClassOf(err))
	}
}

func TestAssumeRoleOncePerAccountAcrossRegions(t *testing.T) {
	c := newCloud(t)
	c.DenyAssumeRole(acctB)
	f := newFixture(t, c, awsfake.Options{ExternalID: "amicopier-ext"}, nil)
	ctx := context.Background()
	conn := f.sess.Connect(runID, ConnectOptions{})
	for _, region := range []string{region1, region2, region1} {
		tgt, err := conn.Target(ctx, acctA, region)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tgt.DescribeImages(ctx, cloud.ImageQuery{TagKeys: []string{"CopiedFromAMI"}}); err != nil {
			t.Fatal(err)
		}
	}
	assumes := f.requests("AssumeRole")
	if len(assumes) != 1 {
		t.Fatalf("%d AssumeRole requests for one account in two Regions, want 1", len(assumes))
	}
	wantForm(t, assumes[0].Form, map[string]string{
		"Action": "AssumeRole", "Version": "2011-06-15",
		"RoleArn":         "arn:aws:iam::" + acctA + ":role/" + config.DefaultRoleName,
		"RoleSessionName": "amicopier-" + runID, "ExternalId": "amicopier-ext", "DurationSeconds": "3600",
	})
	if a := assumes[0]; a.AccessKeyID != awsfake.BaseAccessKeyID || a.Region != region1 {
		t.Errorf("AssumeRole signed with %s in %s: want the base credentials in the home Region", a.AccessKeyID, a.Region)
	}
	for _, r := range f.requests("DescribeImages") {
		if r.Account != acctA || r.AccessKeyID == awsfake.BaseAccessKeyID {
			t.Errorf("describe as %s with %s: want the assumed role", r.Account, r.AccessKeyID)
		}
	}

	// A role that cannot be assumed: access denied, and asked once per run.
	for range 3 {
		_, err := conn.Target(ctx, acctB, region2)
		if cloud.ClassOf(err) != cloud.ClassAccessDenied {
			t.Fatalf("denied role: %v (class %v)", err, cloud.ClassOf(err))
		}
		if !strings.Contains(err.Error(), "arn:aws:iam::"+acctB+":role/") {
			t.Errorf("error %q must name the role", err)
		}
	}
	if n := len(f.requests("AssumeRole")); n != 2 {
		t.Errorf("%d AssumeRole requests, want 2 (a refusal is remembered for the run)", n)
	}
	// A new run assumes again.
	if _, err := f.sess.Connect("next-run", ConnectOptions{}).Target(ctx, acctA, region1); err != nil {
		t.Fatal(err)
	}
	if last := f.requests("AssumeRole")[2]; last.Form.Get("RoleSessionName") != "amicopier-next-run" {
		t.Errorf("session name %q", last.Form.Get("RoleSessionName"))
	}
	counts := conn.CallCounts()
	if counts["AssumeRole"] != 2 || counts["DescribeImages"] != 3 {
		t.Errorf("call counts %v", counts)
	}
}

func TestWrongExternalIDIsAccessDenied(t *testing.T) {
	c := newCloud(t)
	f := newFixture(t, c, awsfake.Options{ExternalID: "right"}, func(cfg *config.Config) { cfg.Targets.ExternalID = "wrong" })
	_, err := f.sess.Connect(runID, ConnectOptions{}).Target(context.Background(), acctA, region1)
	if cloud.ClassOf(err) != cloud.ClassAccessDenied {
		t.Fatalf("wrong external id: %v", err)
	}
}

func TestSourceAndOrganizationRoles(t *testing.T) {
	c := newCloud(t)
	c.AddImage(srcAccount, region1, sim.ImageSpec{})
	mgmt := acctB
	f := newFixture(t, c, awsfake.Options{BaseAccount: acctA}, func(cfg *config.Config) {
		cfg.Source.RoleARN = "arn:aws:iam::" + srcAccount + ":role/amicopier-source"
		cfg.Organization.RoleARN = "arn:aws:iam::" + mgmt + ":role/amicopier-org-reader"
		cfg.Targets.RoleARNTemplate = "arn:aws:iam::{account}:role/path/amicopier-copier"
	})
	ctx := context.Background()
	conn := f.sess.Connect(runID, ConnectOptions{})
	src, err := conn.Source(ctx, region1)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := src.DescribeImages(ctx, cloud.ImageQuery{})
	if err != nil || len(imgs) != 1 {
		t.Fatalf("source images %v, %v", imgs, err)
	}
	org, err := conn.Organization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := org.ListRoots(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Target(ctx, acctA, region1); err != nil {
		t.Fatal(err)
	}
	var arns []string
	for _, r := range f.requests("AssumeRole") {
		arns = append(arns, r.Form.Get("RoleArn"))
	}
	want := []string{
		"arn:aws:iam::" + srcAccount + ":role/amicopier-source",
		"arn:aws:iam::" + mgmt + ":role/amicopier-org-reader",
		"arn:aws:iam::" + acctA + ":role/path/amicopier-copier",
	}
	if !slices.Equal(arns, want) {
		t.Errorf("assumed %v, want %v", arns, want)
	}
	if r := f.requests("ListRoots")[0]; r.Account != mgmt {
		t.Errorf("ListRoots as %s, want the organisation role's account %s", r.Account, mgmt)
	}
	if r := f.requests("DescribeImages")[0]; r.Account != srcAccount {
		t.Errorf("source describe as %s", r.Account)
	}
}

func TestSessionName(t *testing.T) {
	for _, tc := range []struct{ run, want string }{
		{"20260101T000000Z-0123abcd", "amicopier-20260101T000000Z-0123abcd"},
		{"run with spaces/and:colons", "amicopier-run-with-spaces-and-colons"},
		{strings.Repeat("x", 80), "amicopier-" + strings.Repeat("x", 54)},
	} {
		if got := SessionName(tc.run); got != tc.want || len(got) > 64 {
			t.Errorf("SessionName(%q) = %q, want %q", tc.run, got, tc.want)
		}
	}
}

func TestThrottlingIsAbsorbedByTheRetryer(t *testing.T) {
	c := newCloud(t)
	c.AddImage(srcAccount, region1, sim.ImageSpec{})
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	f.fake.FailNext("DescribeImages", "RequestLimitExceeded", "RequestLimitExceeded")
	f.fake.FailNext("ListAccounts", "TooManyRequestsException")
	f.fake.FailNext("ListRoots", "ThrottlingException")
	f.fake.FailNext("AssumeRole", "Throttling")
	conn := f.sess.Connect(runID, ConnectOptions{})
	src, _ := conn.Source(ctx, region1)
	if imgs, err := src.DescribeImages(ctx, cloud.ImageQuery{}); err != nil || len(imgs) != 1 {
		t.Fatalf("describe after throttling: %v, %v", imgs, err)
	}
	org, _ := conn.Organization(ctx)
	if _, err := org.ListAccounts(ctx); err != nil {
		t.Fatalf("ListAccounts after throttling: %v", err)
	}
	if _, err := org.ListRoots(ctx); err != nil {
		t.Fatalf("ListRoots after throttling: %v", err)
	}
	if _, err := conn.Target(ctx, acctA, region1); err != nil {
		t.Fatalf("AssumeRole after throttling: %v", err)
	}
	counts := conn.CallCounts()
	if counts["DescribeImages"] != 3 || counts["ListAccounts"] != 2 || counts["ListRoots"] != 2 || counts["AssumeRole"] != 2 {
		t.Errorf("counts %v: every attempt counts, retries included", counts)
	}
	// The connector owns retries and counts every throttled attempt.
	if got, _ := conn.Throttles(); got != 5 {
		t.Errorf("absorbed throttles = %d, want 5", got)
	}

	// Past MaxAttempts the throttle reaches the engine, classified.
	f.fake.FailNext("DescribeImages", slices.Repeat([]string{"RequestLimitExceeded"}, testMaxAttempts)...)
	_, err := src.DescribeImages(ctx, cloud.ImageQuery{})
	if cloud.ClassOf(err) != cloud.ClassThrottled {
		t.Fatalf("exhausted retries: %v (class %v)", err, cloud.ClassOf(err))
	}
}

func TestErrorsAreClassified(t *testing.T) {
	c := newCloud(t)
	im := c.AddImage(srcAccount, region1, sim.ImageSpec{})
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	conn := f.sess.Connect(runID, ConnectOptions{})
	src, _ := conn.Source(ctx, region1)
	org, _ := conn.Organization(ctx)
	copyIt := func() error {
		_, err := src.CopyImage(ctx, cloud.CopyImageInput{SourceImageID: im.ID, SourceRegion: region1, Name: "n-" + im.ID, Encrypted: true})
		return err
	}
	for _, tc := range []struct {
		op, code string
		call     func() error
		want     cloud.ErrorClass
	}{
		{"CopyImage", "ResourceLimitExceeded", copyIt, cloud.ClassLimit},
		{"CopyImage", "InvalidAMIName.Duplicate", copyIt, cloud.ClassPermanent},
		{"CopyImage", "UnauthorizedOperation", copyIt, cloud.ClassAccessDenied},
		{"CopyImage", "InvalidAMIID.NotFound", copyIt, cloud.ClassNotFound},
		{"DescribeImages", "InternalError", func() error { _, err := src.DescribeImages(ctx, cloud.ImageQuery{}); return err }, cloud.ClassRetryable},
		{"ListAccounts", "AccessDeniedException", func() error { _, err := org.ListAccounts(ctx); return err }, cloud.ClassAccessDenied},
		{"ListAccounts", "AWSOrganizationsNotInUseException", func() error { _, err := org.ListAccounts(ctx); return err }, cloud.ClassAccessDenied},
	} {
		t.Run(tc.op+"/"+tc.code, func(t *testing.T) {
			// Retryable codes are retried: fail every attempt.
			f.fake.FailNext(tc.op, slices.Repeat([]string{tc.code}, testMaxAttempts)...)
			err := tc.call()
			var ae *cloud.APIError
			if !errors.As(err, &ae) || ae.Code != tc.code || ae.Op != tc.op {
				t.Fatalf("error %v: want a *cloud.APIError %s from %s", err, tc.code, tc.op)
			}
			if got := cloud.ClassOf(err); got != tc.want {
				t.Errorf("class %v, want %v", got, tc.want)
			}
			if !strings.Contains(ae.Message, "request id") {
				t.Errorf("message %q should carry the request id", ae.Message)
			}
			// A code that is not retried leaves faults behind.
			f.fake.ClearFaults()
		})
	}
}

// TestDescribeAccountOverTheWire: one account, its State as Organizations
// reports it (ACTIVE or not), one request each; an account outside the
// organisation is AccountNotFoundException (not found), never an empty
// account. OU listings carry their accounts' states too.
func TestDescribeAccountOverTheWire(t *testing.T) {
	c := newCloud(t)
	ou := c.AddOU("", "Ops")
	const ouAcct = "500000000001"
	if err := c.AddAccount(ouAcct, "ops-1", ou, cloud.AccountSuspended); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	org, err := f.sess.Connect(runID, ConnectOptions{}).Organization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id        string
		wantState cloud.AccountState
		wantClass cloud.ErrorClass
	}{
		{id: acctA, wantState: cloud.AccountActive},
		{id: acctC, wantState: cloud.AccountSuspended},
		{id: "999999999999", wantClass: cloud.ClassNotFound},
	}
	for _, tt := range tests {
		a, err := org.DescribeAccount(ctx, tt.id)
		if tt.wantClass != 0 {
			var api *cloud.APIError
			if cloud.ClassOf(err) != tt.wantClass || !errors.As(err, &api) || api.Code != "AccountNotFoundException" {
				t.Errorf("DescribeAccount(%s) = %+v, %v; want AccountNotFoundException", tt.id, a, err)
			}
			continue
		}
		if err != nil || a.ID != tt.id || a.State != tt.wantState || a.Name == "" {
			t.Errorf("DescribeAccount(%s) = %+v, %v; want state %s", tt.id, a, err, tt.wantState)
		}
	}
	reqs := f.requests("DescribeAccount")
	if len(reqs) != len(tests) {
		t.Fatalf("%d DescribeAccount requests, want one per call (%d)", len(reqs), len(tests))
	}
	if tgt := reqs[0].Header.Get("X-Amz-Target"); tgt != "AWSOrganizationsV20161128.DescribeAccount" || reqs[0].JSON["AccountId"] != acctA {
		t.Errorf("request %s %v", tgt, reqs[0].JSON)
	}
	kids, err := org.ListChildren(ctx, ou)
	if err != nil || len(kids.Accounts) != 1 || kids.Accounts[0] != (cloud.Account{ID: ouAcct, Name: "ops-1", State: cloud.AccountSuspended}) {
		t.Errorf("children of Ops: %+v, %v", kids, err)
	}
}
