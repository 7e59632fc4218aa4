package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cli"
)

// TestNoCredentials: without credentials, plan and run say so plainly,
// say what to set, and name the source of the chain tried last, instead
// of the SDK chain's raw text. Nothing reaches AWS (the instance metadata
// service is turned off; the SSO token cache is empty).
func TestNoCredentials(t *testing.T) {
	w := newAWSWorld(t, false)
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(home, ".aws", "config")
	if err := os.WriteFile(shared, []byte(`[profile dev]
sso_start_url = https://example.awsapps.com/start
sso_region = eu-west-1
sso_account_id = 111111111111
sso_role_name = Admin
`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + shared, "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none")}
	common := []string{"no AWS credentials found", "Set AWS_PROFILE", "aws sso login", "AWS_ACCESS_KEY_ID", "role"}
	for _, tc := range []struct {
		cmd     string
		profile string
		want    []string
	}{
		{"plan", "", append(common, "The last source tried was the EC2 instance metadata service: AWS_EC2_METADATA_DISABLED=true turns it off")},
		{"run", "", append(common, "The last source tried was the EC2 instance metadata service")},
		{"plan", "dev", append(common, `for AWS_PROFILE "dev"`, "The last source tried was the SSO login of the profile", "run `aws sso login --profile dev`")},
		{"plan", "nosuch", []string{`AWS_PROFILE "nosuch": no such profile`}},
	} {
		env := append(base, "AWS_PROFILE="+tc.profile)
		res := runBinary(t, env, time.Minute, tc.cmd, "--config", w.cfgPath)
		if res.code != cli.ExitError {
			t.Errorf("%s with AWS_PROFILE=%q: exit %d, want %d\n%s", tc.cmd, tc.profile, res.code, cli.ExitError, res.stderr)
		}
		for _, want := range tc.want {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("%s with AWS_PROFILE=%q: no %q in\n%s", tc.cmd, tc.profile, want, res.stderr)
			}
		}
		if strings.Contains(res.stderr, "failed to refresh cached credentials") {
			t.Errorf("%s with AWS_PROFILE=%q: the SDK chain's raw text:\n%s", tc.cmd, tc.profile, res.stderr)
		}
	}
	if n := w.fake.Calls(""); n != 0 {
		t.Errorf("%d AWS calls without credentials", n)
	}
}
