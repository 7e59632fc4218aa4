package awsapi

import (
	"errors"
	"strings"
	"testing"
)

// TestExplainNoCredentials names the source each of the chain's final
// errors (as the SDK words them) comes from.
func TestExplainNoCredentials(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		sdk    string
		getenv func(string) string
		want   []string
	}{
		{"failed to refresh cached credentials, no EC2 IMDS role found, operation error ec2imds: GetMetadata, access disabled to EC2 IMDS via client option, or \"AWS_EC2_METADATA_DISABLED\" environment variable",
			env("AWS_EC2_METADATA_DISABLED", "true"), []string{"the EC2 instance metadata service: AWS_EC2_METADATA_DISABLED=true turns it off"}},
		{"failed to refresh cached credentials, no EC2 IMDS role found, operation error ec2imds: GetMetadata, request send failed",
			env(), []string{"the EC2 instance metadata service: this is not an EC2 instance with a role"}},
		{"failed to refresh cached credentials, the SSO session has expired or is invalid: failed to read cached SSO token file",
			env("AWS_PROFILE", "dev"), []string{`for AWS_PROFILE "dev"`, "run `aws sso login --profile dev`"}},
		{"failed to refresh cached credentials, failed to retrieve jwt from provide source, unable to read file at /t: no such file",
			env(), []string{"a web identity token", "unable to read file at /t: no such file"}},
		{"failed to refresh cached credentials, failed to load credentials, error in credential_process, exit status 1",
			env("AWS_DEFAULT_PROFILE", "ops"), []string{`for AWS_PROFILE "ops"`, "the profile's credential_process: the command failed: exit status 1"}},
		{"failed to refresh cached credentials, failed to load credentials, operation error ecs container credentials: GetCredentials, dial tcp",
			env(), []string{"the container credentials endpoint"}},
	} {
		err := explainNoCredentials(errors.New(tc.sdk), tc.getenv)
		msg := err.Error()
		for _, want := range append(tc.want, "no AWS credentials found", "Set AWS_PROFILE", "aws sso login", "The last source tried was") {
			if !strings.Contains(msg, want) {
				t.Errorf("%q: no %q in\n%s", tc.sdk, want, msg)
			}
		}
	}
}
