package state

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/amicopier/amicopier/state/dynamotest"
)

// proxyAnswer is what the proxy does with one request instead of
// forwarding it: answer an error (Status, Code, Message), after
// forwarding the request when Landed (the write is applied, the client
// hears the error).
type proxyAnswer struct {
	Status        int
	Code, Message string
	Landed        bool
}

// dynamoProxy stands between the store and dynalite: it counts the
// requests of each operation (X-Amz-Target) and answers the ones its
// rule picks with a DynamoDB error, as DynamoDB sends it.
type dynamoProxy struct {
	URL string

	mu       sync.Mutex
	requests map[string]int
	// rule picks the answer to the n-th request (from 1) of op; ok false
	// forwards it.
	rule func(op string, n int) (proxyAnswer, bool)
}

func newDynamoProxy(t *testing.T) *dynamoProxy {
	t.Helper()
	target, err := url.Parse(dynamotest.Endpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &dynamoProxy{requests: map[string]int{}}
	forward := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
		p.mu.Lock()
		p.requests[op]++
		n := p.requests[op]
		rule := p.rule
		p.mu.Unlock()
		var a proxyAnswer
		ok := false
		if rule != nil {
			a, ok = rule(op, n)
		}
		if !ok {
			forward.ServeHTTP(w, r)
			return
		}
		if a.Landed {
			rec := httptest.NewRecorder()
			forward.ServeHTTP(rec, r)
		} else {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		body := fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, a.Code, a.Message)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("PROXY%d", n))
		// The SDK checks DynamoDB's CRC32 of every response body.
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10))
		w.WriteHeader(a.Status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// setRule replaces the rule and zeroes the counts.
func (p *dynamoProxy) setRule(rule func(op string, n int) (proxyAnswer, bool)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = rule
	p.requests = map[string]int{}
}

func (p *dynamoProxy) count(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[op]
}

// firstN answers the first n requests of op with a, then forwards.
func firstN(op string, n int, a proxyAnswer) func(string, int) (proxyAnswer, bool) {
	return func(got string, i int) (proxyAnswer, bool) { return a, got == op && i <= n }
}

// openThroughProxy creates a table on dynalite and opens it through a
// proxy, with short SDK backoffs so that retries take milliseconds.
func openThroughProxy(t *testing.T, maxAttempts int) (*DynamoDB, *dynamoProxy) {
	t.Helper()
	o := newDynamoTable(t)
	p := newDynamoProxy(t)
	o.Endpoint = p.URL
	o.MaxAttempts = maxAttempts
	o.MaxBackoff = 5 * time.Millisecond
	return openDynamoDBOn(t, o, time.Now), p
}

var (
	answerThroughput = proxyAnswer{Status: 400, Code: "ProvisionedThroughputExceededException",
		Message: "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}
	answerThrottling = proxyAnswer{Status: 400, Code: "ThrottlingException", Message: "Rate of requests exceeds the allowed throughput."}
	answerInternal   = proxyAnswer{Status: 500, Code: "InternalServerError", Message: "Internal server error"}
)

// TestDynamoDBRetriesWhatDynamoDBCallsRetryable answers the first two
// PutItem requests with each error DynamoDB documents as "OK to retry":
// the SDK's retryer sends the request again, the write lands once.
func TestDynamoDBRetriesWhatDynamoDBCallsRetryable(t *testing.T) {
	s, proxy := openThroughProxy(t, 0)
	for i, a := range []proxyAnswer{
		answerThroughput,
		answerThrottling,
		{Status: 400, Code: "RequestLimitExceeded", Message: "Throughput exceeds the current throughput limit for your account."},
		{Status: 400, Code: "LimitExceededException", Message: "Too many operations for a given subscriber."},
		{Status: 400, Code: "ItemCollectionSizeLimitExceededException", Message: "Collection size exceeded."},
		answerInternal,
		{Status: 503, Code: "ServiceUnavailable", Message: "Service unavailable"},
	} {
		t.Run(a.Code, func(t *testing.T) {
			proxy.setRule(firstN("PutItem", 2, a))
			k := key(fmt.Sprintf("ami-%d", i), "111122223333", "eu-west-1")
			got, err := s.PutPair(context.Background(), newPair(k, "999988887777", PairFailed))
			if err != nil {
				t.Fatalf("PutPair after two %s: %v", a.Code, err)
			}
			if n := proxy.count("PutItem"); n != 3 {
				t.Errorf("%d PutItem requests, want 3 (two answered %s, one retry that landed)", n, a.Code)
			}
			if stored := mustGet(t, s, k); stored.Version != 1 || got.Version != 1 {
				t.Errorf("stored version %d, returned %d, want 1: written once", stored.Version, got.Version)
			}
		})
	}
}

// TestDynamoDBGivesUpAfterMaxAttempts: a table that stays throttled
// costs exactly MaxAttempts requests, and the error is DynamoDB's.
func TestDynamoDBGivesUpAfterMaxAttempts(t *testing.T) {
	s, proxy := openThroughProxy(t, 3)
	proxy.setRule(firstN("PutItem", 1000, answerThroughput))
	k := key("ami-1", "111122223333", "eu-west-1")
	_, err := s.PutPair(context.Background(), newPair(k, "999988887777", PairFailed))
	var pte *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) {
		t.Fatalf("PutPair on a throttled table: err = %v, want a ProvisionedThroughputExceededException", err)
	}
	if n := proxy.count("PutItem"); n != 3 {
		t.Errorf("%d PutItem requests, want MaxAttempts = 3", n)
	}
	if !strings.Contains(err.Error(), "exceeded maximum number of attempts, 3") {
		t.Errorf("error %q does not say the attempts ran out", err)
	}
	proxy.setRule(nil)
	if _, found, err := s.GetPair(context.Background(), k); err != nil || found {
		t.Errorf("a write throttled every time was stored: found %v, %v", found, err)
	}
}

// TestDynamoDBNeverRetriesAFailedCondition counts the requests of writes
// whose condition fails: one each, however many attempts the retryer may
// make, because a lost condition is an answer, not a transient failure.
func TestDynamoDBNeverRetriesAFailedCondition(t *testing.T) {
	s, proxy := openThroughProxy(t, 10)
	ctx := context.Background()
	k := key("ami-1", "111122223333", "eu-west-1")
	mustPut(t, s, newPair(k, "999988887777", PairFailed))
	if _, err := s.AcquireLease(ctx, "111122223333", "run-a", time.Minute); err != nil {
		t.Fatal(err)
	}

	proxy.setRule(nil)
	_, err := s.PutPair(ctx, newPair(k, "999988887777", PairFailed)) // version 0: must not exist
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("PutPair of an existing pair as new: err = %v, want ErrConflict", err)
	}
	if n := proxy.count("PutItem"); n != 1 {
		t.Errorf("a failed condition cost %d PutItem requests, want 1 (never retried)", n)
	}

	proxy.setRule(nil)
	var held *LeaseHeldError
	if _, err := s.AcquireLease(ctx, "111122223333", "run-b", time.Minute); !errors.As(err, &held) {
		t.Fatalf("AcquireLease of a held lease: err = %v, want *LeaseHeldError", err)
	}
	if n := proxy.count("PutItem"); n != 1 {
		t.Errorf("acquiring a held lease cost %d PutItem requests, want 1", n)
	}

	proxy.setRule(nil)
	if err := s.ReleaseLease(ctx, Lease{Scope: "111122223333", Holder: "run-b"}); err != nil {
		t.Fatalf("ReleaseLease by a non-holder: %v", err)
	}
	if n := proxy.count("DeleteItem"); n != 1 {
		t.Errorf("releasing another holder's lease cost %d DeleteItem requests, want 1", n)
	}
}

// TestDynamoDBRetriedWriteThatLandedIsNoConflict: DynamoDB applies a
// conditional PutItem and answers 500; the SDK retries, and the retry's
// condition fails against the write itself. That is the write done, not a
// conflict with another writer.
func TestDynamoDBRetriedWriteThatLandedIsNoConflict(t *testing.T) {
	s, proxy := openThroughProxy(t, 0)
	ctx := context.Background()
	k := key("ami-1", "111122223333", "eu-west-1")
	landed := answerInternal
	landed.Landed = true

	proxy.setRule(firstN("PutItem", 1, landed))
	created, err := s.PutPair(ctx, newPair(k, "999988887777", PairCopying))
	if err != nil {
		t.Fatalf("PutPair whose first attempt landed: %v", err)
	}
	if n := proxy.count("PutItem"); n != 2 || created.Version != 1 {
		t.Errorf("%d PutItem requests, version %d; want 2 (the landed one, its retry) and version 1", n, created.Version)
	}

	proxy.setRule(firstN("PutItem", 1, landed))
	next := created
	next.Status = PairSettled
	updated, err := s.PutPair(ctx, next)
	if err != nil {
		t.Fatalf("update whose first attempt landed: %v", err)
	}
	if stored := mustGet(t, s, k); stored.Version != 2 || updated.Version != 2 || stored.Status != PairSettled {
		t.Errorf("stored %+v, returned version %d: want version 2, settled", stored, updated.Version)
	}

	// Another writer's record with the same content is still a conflict:
	// it is not this write.
	proxy.setRule(nil)
	rival := updated
	rival.RunID = "other-run"
	mustPut(t, s, rival)
	if _, err := s.PutPair(ctx, updated); !errors.Is(err, ErrConflict) {
		t.Errorf("write over another writer's newer version: err = %v, want ErrConflict", err)
	}
}

// TestDynamoDBRetryerVerdicts checks the retryer's decision on each kind
// of answer, without a server.
func TestDynamoDBRetryerVerdicts(t *testing.T) {
	r := newDynamoDBRetryer(DefaultDynamoDBMaxAttempts, 0)
	if r.MaxAttempts() != DefaultDynamoDBMaxAttempts {
		t.Errorf("MaxAttempts = %d", r.MaxAttempts())
	}
	for _, tc := range []struct {
		name  string
		err   error
		retry bool
	}{
		{"conditional check failed", &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}, false},
		{"conditional check failed, wrapped", fmt.Errorf("x: %w", &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "PutItem", Err: &types.ConditionalCheckFailedException{}}), false},
		{"throughput", &types.ProvisionedThroughputExceededException{}, true},
		{"throttling", &types.ThrottlingException{}, true},
		{"request limit", &types.RequestLimitExceeded{}, true},
		{"item collection size", &types.ItemCollectionSizeLimitExceededException{}, true},
		{"unrecognized client", &smithy.GenericAPIError{Code: "UnrecognizedClientException"}, true},
		{"internal server error", &types.InternalServerError{}, true},
		{"resource not found", &types.ResourceNotFoundException{}, false},
		{"validation", &smithy.GenericAPIError{Code: "ValidationException"}, false},
		{"cancelled", &smithy.CanceledError{Err: context.Canceled}, false},
	} {
		if got := r.IsErrorRetryable(tc.err); got != tc.retry {
			t.Errorf("%s: retryable = %v, want %v", tc.name, got, tc.retry)
		}
	}
}
