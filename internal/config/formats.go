package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
)

// Shapes of the AWS identifiers the configuration holds. They follow the
// service documentation closely enough to catch typos and values pasted
// into the wrong field; AWS remains the judge of whether they exist.
var (
	// IAM role names: 1-64 characters; the path, if any, is not part of
	// role_name (use role_arn_template for roles with a path).
	roleNamePattern = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	// Role ARNs in any partition, with an optional path.
	roleARNPattern = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/([\x21-\x7e]+/)?[\w+=,.@-]{1,64}$`)
	// sts:ExternalId characters (2-1224 of them; RE2 caps repeat counts at
	// 1000, so the length is checked apart).
	externalIDPattern = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	// KMS key references.
	kmsKeyIDPattern    = regexp.MustCompile(`^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-fA-F]{32})$`)
	kmsAliasPattern    = regexp.MustCompile(`^alias/[A-Za-z0-9/_-]{1,250}$`)
	kmsKeyARNPattern   = regexp.MustCompile(`^arn:aws(?:-[a-z]+)*:kms:([a-z0-9-]+):[0-9]{12}:key/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-fA-F]{32})$`)
	kmsAliasARNPattern = regexp.MustCompile(`^arn:aws(?:-[a-z]+)*:kms:([a-z0-9-]+):[0-9]{12}:alias/[A-Za-z0-9/_-]{1,250}$`)
	// DynamoDB table names.
	tableNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	// AMI names: 3-128 characters from this set.
	amiNamePattern = regexp.MustCompile(`^[A-Za-z0-9 ()\[\]./\-'@_]{3,128}$`)
)

// IsAMIName reports whether s is acceptable to EC2 as an AMI name: 3 to
// 128 characters among letters, digits, space and ( ) [ ] . / - ' @ _.
func IsAMIName(s string) bool { return amiNamePattern.MatchString(s) }

func isRoleName(s string) bool { return roleNamePattern.MatchString(s) }
func isRoleARN(s string) bool  { return roleARNPattern.MatchString(s) }
func isExternalID(s string) bool {
	return len(s) >= 2 && len(s) <= 1224 && externalIDPattern.MatchString(s)
}
func isTableName(s string) bool { return tableNamePattern.MatchString(s) }

// kmsKeyRegion checks a KMS key reference. ok is false when s is none of
// a key id, an alias name, a key ARN or an alias ARN; region is the Region
// an ARN pins the key to (not checked here), empty for ids and alias names
// (which resolve in the Region of the copy).
func kmsKeyRegion(s string) (region string, ok bool) {
	if kmsKeyIDPattern.MatchString(s) || kmsAliasPattern.MatchString(s) {
		return "", true
	}
	for _, p := range []*regexp.Regexp{kmsKeyARNPattern, kmsAliasARNPattern} {
		if m := p.FindStringSubmatch(s); m != nil {
			return m[1], true
		}
	}
	return "", false
}

// checkGlob explains why pattern is not valid path.Match syntax.
func checkGlob(pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("%q is not a valid glob (path.Match syntax: * ? [a-z] and \\ escapes): %w", pattern, err)
	}
	return nil
}

// checkEndpoint explains why s is not a usable endpoint URL. Plain http
// is for local emulators only: over any network the calls and their
// signed credentials must be protected by TLS.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q is plain http to a host that is not this machine: use https, or http to localhost, 127.0.0.1 or [::1] (a local emulator)", s)
	}
	return nil
}

// isLoopback reports whether host names this machine: localhost or a
// loopback address (127.0.0.0/8, ::1), as state.IsLoopbackEndpoint judges
// the endpoints that may go without real credentials. Other names are not
// resolved: what they point at is not known before the call.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
