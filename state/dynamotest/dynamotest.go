// Package dynamotest gives tests a DynamoDB-compatible server to talk to:
// the endpoint from AMICOPIER_DYNAMODB_ENDPOINT (scripts/test.sh starts
// dynalite and sets it) and fresh, uniquely named tables that are deleted
// when the test ends.
//
// Without the variable the tests that need it skip, saying how to run
// them; with AMICOPIER_REQUIRE_DYNAMODB=1 (set by scripts/test.sh) they
// fail instead, so a CI run can never pass with them silently skipped.
// Only loopback endpoints are accepted: tests never talk to AWS.
package dynamotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Environment variables the tests read.
const (
	// EndpointEnv holds the URL of the DynamoDB-compatible server.
	EndpointEnv = "AMICOPIER_DYNAMODB_ENDPOINT"
	// RequireEnv set to 1 turns a missing endpoint into a failure.
	RequireEnv = "AMICOPIER_REQUIRE_DYNAMODB"
)

// HowToRun tells a developer how to get the DynamoDB tests to run.
const HowToRun = "DynamoDB tests need a DynamoDB-compatible server: run scripts/test.sh " +
	"(it installs and starts dynalite), or start one yourself " +
	"(npx dynalite@4.0.0 --port 4567) and export " + EndpointEnv + "=http://127.0.0.1:4567"

// Endpoint returns the server's URL, or skips the test (fails it when
// RequireEnv is 1) when there is none. A non-loopback endpoint fails the
// test: these tests create and delete tables.
func Endpoint(t testing.TB) string {
	t.Helper()
	ep := strings.TrimSpace(os.Getenv(EndpointEnv))
	if ep == "" {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s=1 but %s is not set. %s", RequireEnv, EndpointEnv, HowToRun)
		}
		t.Skipf("SKIPPED: %s is not set. %s", EndpointEnv, HowToRun)
	}
	if !loopback(ep) {
		t.Fatalf("%s=%q is not a loopback URL (http://127.0.0.1:PORT, http://localhost:PORT): "+
			"tests create and delete tables and must never talk to a real DynamoDB", EndpointEnv, ep)
	}
	return ep
}

func loopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// TableName returns a table name no other test uses, and deletes that
// table (if it was created) when the test ends.
func TableName(t testing.TB) string {
	t.Helper()
	ep := Endpoint(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	table := "amicopier-test-" + hex.EncodeToString(b[:]) + "-" + strings.Trim(name, "_")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := Client(ep).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		var notFound *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &notFound) {
			t.Logf("delete test table %s: %v", table, err)
		}
	})
	return table
}

// Client returns a DynamoDB client for a loopback endpoint with dummy
// credentials, for tests that look at the table directly.
func Client(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("amicopier-test", "amicopier-test", ""),
	})
}
