package awsfake

import (
	"context"
	"encoding/xml"
	"regexp"
	"strconv"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

var (
	roleARNPattern     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::([0-9]{12}):role/[\w+=,.@/-]{1,512}$`)
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
)

type stsProtocol struct{}

func (stsProtocol) contentType() string { return "text/xml" }
func (stsProtocol) badKeyCode() string  { return "InvalidClientTokenId" }

func (stsProtocol) errorBody(code, message, requestID string) []byte {
	type xmlError struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	b, _ := marshalXML(struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		Error     xmlError `xml:"Error"`
		RequestID string   `xml:"RequestId"`
	}{Xmlns: stsNamespace, Error: xmlError{Type: "Sender", Code: code, Message: message}, RequestID: requestID})
	return b
}

// handle serves AssumeRole with the simulator's rules: the role exists in
// every member account that is not suspended or closed, unless the test
// denied it (sim.Cloud.DenyAssumeRole).
func (stsProtocol) handle(ctx context.Context, s *Server, r *Request) ([]byte, error) {
	if r.Op != "AssumeRole" {
		return nil, cloud.Errorf(r.Op, "InvalidAction", "awsfake does not implement STS action %q", r.Op)
	}
	f := r.Form
	arn, name := f.Get("RoleArn"), f.Get("RoleSessionName")
	m := roleARNPattern.FindStringSubmatch(arn)
	switch {
	case m == nil:
		return nil, cloud.Errorf(r.Op, "ValidationError", "%q is not a role ARN", arn)
	case !sessionNamePattern.MatchString(name):
		return nil, cloud.Errorf(r.Op, "ValidationError", "1 validation error detected: Value %q at 'roleSessionName' failed to satisfy constraint", name)
	case s.opt.ExternalID != "" && f.Get("ExternalId") != s.opt.ExternalID:
		return nil, cloud.Errorf(r.Op, "AccessDenied", "User: arn:aws:sts::%s:assumed-role/central is not authorized to perform: sts:AssumeRole on resource: %s", r.Account, arn)
	}
	account := m[1]
	// A fresh connector: its Target call makes exactly one simulated
	// AssumeRole, with the simulator's refusals and fault hook, tried
	// once (the caller's SDK retries over HTTP).
	if _, err := s.cloud.Connector(s.opt.BaseAccount, sim.WithAttempts(1)).Target(ctx, account, r.Region); err != nil {
		return nil, err
	}
	duration := 3600
	if v := f.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 900 || n > 43200 {
			return nil, cloud.Errorf(r.Op, "ValidationError", "DurationSeconds %q must be between 900 and 43200", v)
		}
		duration = n
	}
	akid, id := s.issue(account)
	type creds struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		SessionToken    string `xml:"SessionToken"`
		Expiration      string `xml:"Expiration"`
	}
	type user struct {
		Arn           string `xml:"Arn"`
		AssumedRoleID string `xml:"AssumedRoleId"`
	}
	type result struct {
		Credentials     creds `xml:"Credentials"`
		AssumedRoleUser user  `xml:"AssumedRoleUser"`
	}
	return marshalXML(struct {
		XMLName   xml.Name `xml:"AssumeRoleResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		Result    result   `xml:"AssumeRoleResult"`
		RequestID string   `xml:"ResponseMetadata>RequestId"`
	}{Xmlns: stsNamespace, RequestID: s.requestID(), Result: result{
		Credentials: creds{AccessKeyID: akid, SecretAccessKey: id.secret, SessionToken: id.token,
			Expiration: time.Now().Add(time.Duration(duration) * time.Second).UTC().Format(time.RFC3339)},
		AssumedRoleUser: user{Arn: "arn:aws:sts::" + account + ":assumed-role/copier/" + name, AssumedRoleID: "AROAFAKE:" + name},
	}})
}
