package awsapi

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
)

const (
	srcAccount = "111111111111"
	acctA      = "222222222222"
	acctB      = "333333333333"
	acctC      = "444444444444"
	region1    = "eu-west-1"
	region2    = "us-east-1"
	runID      = "20260101T000000Z-0123abcd"
)

// fakeEnv points the SDK's default chain at the fake's static
// credentials and at nothing else: no shared files, no profile, no
// instance metadata. Tests using it cannot run in parallel.
func fakeEnv(t *testing.T) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           awsfake.BaseAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       awsfake.BaseSecretAccessKey,
		"AWS_SESSION_TOKEN":           awsfake.BaseSessionToken,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_PROFILE":                 "",
		"AWS_DEFAULT_PROFILE":         "",
		"AWS_REGION":                  "",
		"AWS_DEFAULT_REGION":          "",
		"AWS_ROLE_ARN":                "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "",
		"AWS_ENDPOINT_URL":            "",
	} {
		t.Setenv(k, v)
	}
}

// newCloud builds a small organisation: the source and three members,
// the third suspended.
func newCloud(t *testing.T, opts ...sim.Option) *sim.Cloud {
	t.Helper()
	c := sim.New(opts...)
	for _, a := range []struct {
		id    string
		state cloud.AccountState
	}{{srcAccount, ""}, {acctA, ""}, {acctB, ""}, {acctC, cloud.AccountSuspended}} {
		if err := c.AddAccount(a.id, "acct-"+a.id[:3], "", a.state); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

type fixture struct {
	cloud *sim.Cloud
	fake  *awsfake.Server
	cfg   *config.Config
	sess  *Session
}

// newFixture starts a fake over c and a session whose endpoints point at
// it; edit adjusts the configuration first.
func newFixture(t *testing.T, c *sim.Cloud, fo awsfake.Options, edit func(*config.Config)) *fixture {
	t.Helper()
	fakeEnv(t)
	if fo.BaseAccount == "" {
		fo.BaseAccount = srcAccount
	}
	fake := awsfake.New(c, fo)
	t.Cleanup(fake.Close)
	cfg := config.Default()
	cfg.Source.AccountID = srcAccount
	cfg.Source.Regions = []string{region1}
	cfg.Targets.ExternalID = fo.ExternalID
	cfg.AWS.Region = region1
	cfg.AWS.Endpoints.EC2 = fake.URL()
	cfg.AWS.Endpoints.Organizations = fake.URL()
	cfg.AWS.Endpoints.STS = fake.URL()
	cfg.AWS.Endpoints.SSM = fake.URL()
	cfg.AWS.Endpoints.Events = fake.URL()
	if edit != nil {
		edit(cfg)
	}
	sess, err := NewSession(context.Background(), cfg, Options{
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{cloud: c, fake: fake, cfg: cfg, sess: sess}
}

// testMaxAttempts is how often the fixture's clients try a call: the
// default limits.call_retries (4) plus the first attempt.
const testMaxAttempts = 5

// requests returns the recorded requests for op.
func (f *fixture) requests(op string) []awsfake.Request {
	var out []awsfake.Request
	for _, r := range f.fake.Requests() {
		if r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

func sortedIDs(imgs []cloud.Image) []string {
	ids := make([]string, len(imgs))
	for i, im := range imgs {
		ids[i] = im.ID
	}
	slices.Sort(ids)
	return ids
}
