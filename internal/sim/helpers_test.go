package sim_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

const (
	srcAcct  = "111111111111"
	tgtA     = "222222222222"
	tgtB     = "333333333333"
	outsider = "444444444444" // not a member of the organisation
	region   = "eu-west-1"
	region2  = "us-east-1"
)

// newOrg returns a Cloud with the source account at the root and two
// targets in an OU.
func newOrg(t *testing.T, opts ...sim.Option) *sim.Cloud {
	t.Helper()
	c := sim.New(opts...)
	ou := c.AddOU("", "workloads")
	for _, a := range []struct{ id, name, parent string }{
		{srcAcct, "source", ""}, {tgtA, "a", ou}, {tgtB, "b", ou},
	} {
		if err := c.AddAccount(a.id, a.name, a.parent, cloud.AccountActive); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var apiErr *cloud.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error = %v, want APIError with code %s", err, code)
	}
	if apiErr.Code != code {
		t.Fatalf("error code = %s (%v), want %s", apiErr.Code, err, code)
	}
}

func wantContains(t *testing.T, err error, sub string) {
	t.Helper()
	if sub != "" && (err == nil || !strings.Contains(err.Error(), sub)) {
		t.Fatalf("error = %v, want it to mention %q", err, sub)
	}
}

func copyInput(src cloud.Image, name string) cloud.CopyImageInput {
	return cloud.CopyImageInput{
		SourceImageID: src.ID,
		SourceRegion:  src.Region,
		Name:          name,
		Encrypted:     true,
		Tags:          map[string]string{"CopiedFromAMI": src.ID},
	}
}

// deregister deregisters an image and keeps its snapshots, as a person
// does in the console.
func deregister(ctx context.Context, e cloud.EC2, imageID string) error {
	_, err := e.DeregisterImage(ctx, imageID, false)
	return err
}

// isCode reports whether err carries the AWS error code.
func isCode(err error, code string) bool { return cloud.CodeOf(err) == code }
