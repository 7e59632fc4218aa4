package awsapi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go"
)

// NoCredentialsError says that the default credential chain found no
// credentials, what a person can do about it, and which source was tried
// last, instead of the chain's raw text.
type NoCredentialsError struct {
	// Profile is AWS_PROFILE (or AWS_DEFAULT_PROFILE), "" for none.
	Profile string
	// LastSource names the source of the chain that was tried last.
	LastSource string
	// Hint is what to do about that source in particular, "" for none.
	Hint string
	err  error
}

func (e *NoCredentialsError) Error() string {
	var b strings.Builder
	b.WriteString("no AWS credentials found")
	if e.Profile != "" {
		fmt.Fprintf(&b, " for AWS_PROFILE %q", e.Profile)
	}
	b.WriteString(". Set AWS_PROFILE to a profile of ~/.aws/config (for an SSO profile, run `aws sso login --profile NAME` first), " +
		"export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or run where a role provides them " +
		"(an EC2 instance profile, an ECS or EKS task role, or AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE). ")
	fmt.Fprintf(&b, "The last source tried was %s", e.LastSource)
	if e.Hint != "" {
		b.WriteString(": " + e.Hint)
	}
	return b.String()
}

func (e *NoCredentialsError) Unwrap() error { return e.err }

// CheckCredentials resolves the session's own credentials now (from the
// environment, the shared files, SSO's cache, or a role's endpoint; no
// AWS API is called for static or cached ones), so that a missing
// credential is reported once, plainly, before any work starts. An error
// the chain could not turn into credentials is a *NoCredentialsError;
// credentials AWS refused (an SSO or STS answer) keep AWS's words.
func (s *Session) CheckCredentials(ctx context.Context, getenv func(string) string) error {
	if s.base.Credentials == nil {
		return &NoCredentialsError{Profile: profileOf(getenv), LastSource: "none (no credential provider is configured)"}
	}
	_, err := s.base.Credentials.Retrieve(ctx)
	if err == nil || ctx.Err() != nil {
		return err
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("AWS refused the credentials (%s): %w", ae.ErrorCode(), err)
	}
	return explainNoCredentials(err, getenv)
}

func profileOf(getenv func(string) string) string {
	if p := getenv("AWS_PROFILE"); p != "" {
		return p
	}
	return getenv("AWS_DEFAULT_PROFILE")
}

// explainNoCredentials names the source of the default chain that failed
// last. The chain tries, in order: the AWS_ACCESS_KEY_ID variables, the
// profile (its static keys, SSO, credential_process, or a web identity),
// the container credentials endpoint, then the EC2 instance metadata
// service; the SDK's error text says which one gave up.
func explainNoCredentials(err error, getenv func(string) string) *NoCredentialsError {
	e := &NoCredentialsError{Profile: profileOf(getenv), err: err}
	msg := err.Error()
	profile := e.Profile
	if profile == "" {
		profile = "NAME"
	}
	switch {
	case strings.Contains(msg, "SSO"):
		e.LastSource = "the SSO login of the profile"
		e.Hint = fmt.Sprintf("the SSO session has expired or never started; run `aws sso login --profile %s`", profile)
	case strings.Contains(msg, "jwt") || strings.Contains(msg, "web identity") || strings.Contains(msg, "WebIdentity"):
		e.LastSource = "a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE or the profile's web_identity_token_file)"
		e.Hint = "the token file cannot be read: " + lastCause(msg)
	case strings.Contains(msg, "credential_process") || strings.Contains(msg, "process provider"):
		e.LastSource = "the profile's credential_process"
		e.Hint = "the command failed: " + lastCause(msg)
	case strings.Contains(msg, "container") || strings.Contains(msg, "ECS"):
		e.LastSource = "the container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI)"
		e.Hint = lastCause(msg)
	case strings.Contains(msg, "IMDS"):
		e.LastSource = "the EC2 instance metadata service"
		if strings.EqualFold(getenv("AWS_EC2_METADATA_DISABLED"), "true") {
			e.Hint = "AWS_EC2_METADATA_DISABLED=true turns it off"
		} else {
			e.Hint = "this is not an EC2 instance with a role, or the service did not answer"
		}
	default:
		e.LastSource = "the default credential chain"
		e.Hint = lastCause(msg)
	}
	return e
}

// lastCause is the innermost part of an error chain's text, which the
// SDK joins with ", ".
func lastCause(msg string) string {
	if i := strings.LastIndex(msg, ", "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// explainProfileError rewrites the error of a profile that does not
// exist; others are returned as they are.
func explainProfileError(err error) error {
	var missing awsconfig.SharedConfigProfileNotExistError
	if errors.As(err, &missing) {
		return fmt.Errorf("AWS_PROFILE %q: no such profile in the shared config files (~/.aws/config and ~/.aws/credentials, "+
			"or AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE); `aws configure list-profiles` lists them: %w", missing.Profile, err)
	}
	return err
}
