package awsapi

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
)

// TestRetryerFollowsTheClassification: the connector is a
// the owner of retries, so the engine retries nothing itself; every
// code internal/cloud calls throttled or retryable must be retried by the
// SDK, and nothing else because of the table.
func TestRetryerFollowsTheClassification(t *testing.T) {
	r := newRetryer(Options{MaxAttempts: testMaxAttempts, MaxBackoff: DefaultMaxBackoff})
	for _, tc := range []struct {
		code      string
		retryable bool
		throttle  bool
	}{
		{"RequestLimitExceeded", true, true},
		{"ThrottlingException", true, true},
		{"LimitExceededException", true, true},
		{"InternalError", true, false},
		{"IncorrectState", true, false},
		{"InvalidAMIID.Unavailable", true, false},
		{"PendingVerification", true, false},
		{"DependencyViolation", true, false},
		{"KMS.KMSInvalidStateException", true, false},
		{"KMSInvalidStateException", true, false},
		{"KMSInternalException", true, false},
		{"ConcurrentModificationException", true, false},
		{"TransactionInProgressException", true, false},
		{"IDPCommunicationError", true, false},
		{"InsufficientInstanceCapacity", true, false},
		{"ResourceLimitExceeded", false, false},
		{"InvalidAMIName.Duplicate", false, false},
		{"UnauthorizedOperation", false, false},
		{"InvalidAMIID.NotFound", false, false},
		{"SomethingNobodyKnows", false, false},
	} {
		t.Run(tc.code, func(t *testing.T) {
			err := &smithy.GenericAPIError{Code: tc.code, Message: "test"}
			class := cloud.ClassifyCode(tc.code)
			if want := class == cloud.ClassThrottled || class == cloud.ClassRetryable; want != tc.retryable {
				t.Fatalf("the table classifies %s as %v: fix this test's expectation", tc.code, class)
			}
			if got := r.IsErrorRetryable(err); got != tc.retryable {
				t.Errorf("IsErrorRetryable(%s) = %v, want %v (class %v)", tc.code, got, tc.retryable, class)
			}
			if got := classThrottle(err) == aws.TrueTernary; got != tc.throttle {
				t.Errorf("throttle(%s) = %v, want %v", tc.code, got, tc.throttle)
			}
		})
	}
	// Cancelled calls are never retried.
	if r.IsErrorRetryable(context.Canceled) {
		t.Error("a cancelled call is retried")
	}
}

// TestEngineRetryableCodesAreRetriedOverTheWire fails one attempt of a
// call with each code the engine would once have retried itself: the SDK
// must retry it, and the call succeed.
func TestEngineRetryableCodesAreRetriedOverTheWire(t *testing.T) {
	c := newCloud(t)
	src := c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "golden"})
	c.ShareImage(srcAccount, region1, src.ID, acctA)
	f := newFixture(t, c, awsfake.Options{}, nil)
	ctx := context.Background()
	conn := f.sess.Connect(runID, ConnectOptions{})
	source, err := conn.Source(ctx, region1)
	if err != nil {
		t.Fatal(err)
	}
	org, err := conn.Organization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tc := range []struct {
		op, code string
		call     func() error
	}{
		{"AssumeRole", "IDPCommunicationError", func() error { _, err := conn.Target(ctx, acctA, region1); return err }},
		{"DescribeImages", "InvalidAMIID.Unavailable", func() error { _, err := source.DescribeImages(ctx, cloud.ImageQuery{}); return err }},
		{"DescribeImages", "InsufficientInstanceCapacity", func() error { _, err := source.DescribeImages(ctx, cloud.ImageQuery{}); return err }},
		{"ModifyImageAttribute", "IncorrectState", func() error {
			return source.AddImageLaunchPermission(ctx, src.ID, cloud.LaunchPermission{Accounts: []string{acctA}})
		}},
		{"ListAccounts", "ConcurrentModificationException", func() error { _, err := org.ListAccounts(ctx); return err }},
		{"CopyImage", "KMS.KMSInvalidStateException", func() error {
			tgt, err := conn.Target(ctx, acctA, region1)
			if err != nil {
				return err
			}
			n++
			_, err = tgt.CopyImage(ctx, cloud.CopyImageInput{SourceImageID: src.ID, SourceRegion: region1, Name: "golden-copy-" + string(rune('a'+n)), Encrypted: true})
			return err
		}},
		{"CopyImage", "PendingVerification", func() error {
			tgt, err := conn.Target(ctx, acctA, region1)
			if err != nil {
				return err
			}
			n++
			_, err = tgt.CopyImage(ctx, cloud.CopyImageInput{SourceImageID: src.ID, SourceRegion: region1, Name: "golden-copy-" + string(rune('a'+n)), Encrypted: true})
			return err
		}},
	} {
		t.Run(tc.op+"/"+tc.code, func(t *testing.T) {
			before := f.fake.Calls(tc.op)
			f.fake.FailNext(tc.op, tc.code)
			if err := tc.call(); err != nil {
				t.Fatalf("%s after one %s: %v (class %v): the SDK did not retry it", tc.op, tc.code, err, cloud.ClassOf(err))
			}
			if got := f.fake.Calls(tc.op) - before; got != 2 {
				t.Errorf("%d %s requests, want 2 (the failed attempt and its retry)", got, tc.op)
			}
			f.fake.ClearFaults()
		})
	}

	// A permanent code is not retried: one attempt, and the engine sees it.
	before := f.fake.Calls("ModifyImageAttribute")
	f.fake.FailNext("ModifyImageAttribute", "InvalidParameterValue")
	err = source.AddImageLaunchPermission(ctx, src.ID, cloud.LaunchPermission{Accounts: []string{acctA}})
	if cloud.CodeOf(err) != "InvalidParameterValue" {
		t.Fatalf("permanent failure: %v", err)
	}
	if got := f.fake.Calls("ModifyImageAttribute") - before; got != 1 {
		t.Errorf("%d ModifyImageAttribute requests for a permanent failure, want 1", got)
	}
}

// limits.call_retries drives the SDK's retryer: a throttled call is tried
// call_retries+1 times over the wire, then reaches the engine classified.
func TestCallRetriesDriveTheSDKRetryer(t *testing.T) {
	for _, retries := range []int{0, 1, 7} {
		t.Run(fmt.Sprintf("call_retries=%d", retries), func(t *testing.T) {
			c := newCloud(t)
			c.AddImage(srcAccount, region1, sim.ImageSpec{})
			f := newFixture(t, c, awsfake.Options{}, func(cfg *config.Config) { cfg.Limits.CallRetries = retries })
			ctx := context.Background()
			src, err := f.sess.Connect(runID, ConnectOptions{}).Source(ctx, region1)
			if err != nil {
				t.Fatal(err)
			}
			f.fake.FailNext("DescribeImages", slices.Repeat([]string{"RequestLimitExceeded"}, retries+5)...)
			_, err = src.DescribeImages(ctx, cloud.ImageQuery{})
			if cloud.ClassOf(err) != cloud.ClassThrottled {
				t.Fatalf("error %v (class %v), want throttled", err, cloud.ClassOf(err))
			}
			if n := f.fake.Calls("DescribeImages"); n != retries+1 {
				t.Errorf("%d DescribeImages requests, want call_retries+1 = %d", n, retries+1)
			}
		})
	}
}
