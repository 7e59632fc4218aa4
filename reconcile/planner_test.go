package reconcile

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

const (
	testKeyARN   = "arn:aws:kms:eu-west-1:222222222222:key/11111111-2222-3333-4444-555555555555"
	otherKeyARN  = "arn:aws:kms:eu-west-1:222222222222:key/99999999-2222-3333-4444-555555555555"
	testFP       = "fp-current"
	testSourceID = "ami-0123456789abcdef0"
)

var (
	testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testKey = state.PairKey{SourceImage: testSourceID, Account: "222222222222", Region: "eu-west-1"}
)

// copyOf builds an observed copy; opts tweak it.
func copyOf(id string, st cloud.ImageState, opts ...func(*cloud.Image)) cloud.Image {
	img := cloud.Image{
		ID: id, State: st, OwnerID: testKey.Account, Region: testKey.Region,
		CreationDate: testNow.Add(-48 * time.Hour),
		Tags:         map[string]string{TagCopiedFrom: testSourceID, TagManaged: "true", TagKMSKey: testKeyARN},
		BlockDevices: []cloud.BlockDevice{{DeviceName: "/dev/xvda", SnapshotID: "snap-" + id[4:], Encrypted: true, KMSKeyID: testKeyARN}},
	}
	for _, o := range opts {
		o(&img)
	}
	return img
}

// foreign makes a copy another tool made: none of amicopier's tags.
func foreign(img *cloud.Image) {
	delete(img.Tags, TagManaged)
	delete(img.Tags, TagKMSKey)
}
func unencrypted(img *cloud.Image) {
	img.BlockDevices[0].Encrypted = false
	img.BlockDevices[0].KMSKeyID = ""
}
func otherKey(img *cloud.Image) { img.BlockDevices[0].KMSKeyID = otherKeyARN }
func attemptTag(n string) func(*cloud.Image) {
	return func(img *cloud.Image) { img.Tags[TagAttempt] = n }
}
func createdAgo(d time.Duration) func(*cloud.Image) {
	return func(img *cloud.Image) { img.CreationDate = testNow.Add(-d) }
}

func record(status state.PairStatus, attempts, failures int, mod ...func(*state.Pair)) *state.Pair {
	p := &state.Pair{Key: testKey, Source: "111111111111", Status: status, Attempts: attempts, Failures: failures,
		Fingerprint: testFP, ClientToken: ClientToken(testKey, testFP, attempts), Version: 3}
	for _, m := range mod {
		m(p)
	}
	return p
}

func TestPlanPair(t *testing.T) {
	policy := PairPolicy{MaxAttempts: 3, RetryBackoff: time.Hour, Now: testNow}
	tests := []struct {
		name       string
		copies     []cloud.Image
		rec        *state.Pair
		wantKey    string
		category   report.Category
		copy       bool
		attempt    int // attempt of the write-ahead record when copying
		deregister []string
		record     state.PairStatus // "" = no write
		reason     string           // substring
	}{
		{name: "missing, nothing remembered", category: report.Missing, copy: true, attempt: 1, record: state.PairCopying, reason: "no encrypted copy"},
		{name: "one good copy", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable)}, wantKey: testKeyARN, category: report.OK},
		{name: "good copy settles an unsettled record", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable)}, rec: record(state.PairCopying, 1, 0), category: report.OK, record: state.PairSettled},
		{name: "adopted AMIgo copy is ok and never re-copied", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable, foreign)}, wantKey: testKeyARN, category: report.OK},
		{name: "pending copy", copies: []cloud.Image{copyOf("ami-1", cloud.ImagePending)}, category: report.InProgress, reason: "pending"},
		{name: "pending after a throttled call", copies: []cloud.Image{copyOf("ami-1", cloud.ImagePending)}, rec: record(state.PairFailed, 1, 1), category: report.InProgress, record: state.PairCopying},
		{name: "two good copies", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable), copyOf("ami-2", cloud.ImageAvailable, foreign)}, category: report.Duplicate, reason: "ami-1, ami-2"},
		{name: "unencrypted copy is reported, not replaced", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable, foreign, unencrypted)}, category: report.Unencrypted, reason: "not encrypted"},
		{name: "wrong key by ARN", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable, foreign, otherKey)}, wantKey: testKeyARN, category: report.WrongKey, reason: otherKeyARN},
		{name: "wrong key by key id", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable, foreign, otherKey)}, wantKey: "11111111-2222-3333-4444-555555555555", category: report.WrongKey},
		{name: "own copy judged by the key it was made with", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable, func(i *cloud.Image) { i.Tags[TagKMSKey] = otherKeyARN })}, wantKey: testKeyARN, category: report.WrongKey, reason: otherKeyARN},
		{name: "own copy made with the key id of the configured ARN", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable, func(i *cloud.Image) { i.Tags[TagKMSKey] = "11111111-2222-3333-4444-555555555555" })}, wantKey: testKeyARN, category: report.OK},
		{name: "own copy made under an alias, an ARN configured now: not judged", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable, func(i *cloud.Image) { i.Tags[TagKMSKey] = "alias/amicopier" })}, wantKey: testKeyARN, category: report.OK},
		{name: "foreign copy whose key EC2 did not report", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable, foreign, func(i *cloud.Image) { i.BlockDevices[0].KMSKeyID = "" })}, wantKey: testKeyARN, category: report.OK},
		{name: "right key by key id", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable)}, wantKey: "11111111-2222-3333-4444-555555555555", category: report.OK},
		{name: "alias compared through the copy's tag", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable, func(i *cloud.Image) { i.Tags[TagKMSKey] = "alias/old" })}, wantKey: "alias/new", category: report.WrongKey},
		{name: "alias matching the tag", copies: []cloud.Image{copyOf("ami-1", cloud.ImageAvailable, func(i *cloud.Image) { i.Tags[TagKMSKey] = "alias/new" })}, wantKey: "alias/new", category: report.OK},
		{name: "good copy wins over a failed one, which is cleaned up", copies: []cloud.Image{copyOf("ami-1", cloud.ImageFailed), copyOf("ami-2", cloud.ImageAvailable)}, category: report.OK, deregister: []string{"ami-1"}},
		{
			name:   "old failed copy without record is retried at once",
			copies: []cloud.Image{copyOf("ami-1", cloud.ImageFailed, attemptTag("1"))}, category: report.Failed,
			copy: true, attempt: 2, deregister: []string{"ami-1"}, record: state.PairCopying, reason: "attempt 2 of 3 is due",
		},
		{
			name:   "fresh failure backs off",
			copies: []cloud.Image{copyOf("ami-1", cloud.ImageFailed, createdAgo(10*time.Minute))}, rec: record(state.PairCopying, 1, 0, func(p *state.Pair) { p.CopyImageID = "ami-1" }),
			category: report.Failed, deregister: []string{"ami-1"}, record: state.PairFailed, reason: "next attempt after",
		},
		{
			name:   "failure after backoff retries",
			copies: []cloud.Image{copyOf("ami-1", cloud.ImageFailed, createdAgo(3*time.Hour))}, rec: record(state.PairCopying, 1, 0, func(p *state.Pair) { p.CopyImageID = "ami-1" }),
			category: report.Failed, copy: true, attempt: 2, deregister: []string{"ami-1"}, record: state.PairCopying,
		},
		{
			name: "failed record waiting", rec: record(state.PairFailed, 1, 1, func(p *state.Pair) { p.NextRetry = testNow.Add(time.Hour); p.LastError = "boom" }),
			category: report.Failed, reason: "boom",
		},
		{
			name: "failed record due", rec: record(state.PairFailed, 1, 1, func(p *state.Pair) { p.NextRetry = testNow.Add(-time.Minute) }),
			category: report.Failed, copy: true, attempt: 2, record: state.PairCopying,
		},
		{
			name:   "last failure makes it stuck",
			copies: []cloud.Image{copyOf("ami-1", cloud.ImageFailed)}, rec: record(state.PairCopying, 3, 2, func(p *state.Pair) { p.CopyImageID = "ami-1" }),
			category: report.Stuck, deregister: []string{"ami-1"}, record: state.PairStuck, reason: "gave up after 3",
		},
		{name: "stuck stays stuck without writes", rec: record(state.PairStuck, 3, 3), category: report.Stuck},
		{name: "stuck retries when the configuration changed", rec: record(state.PairStuck, 3, 3, func(p *state.Pair) { p.Fingerprint = "old" }), category: report.Missing, copy: true, attempt: 1, record: state.PairCopying},
		{name: "foreign failed copy is never deregistered", copies: []cloud.Image{copyOf("ami-1", cloud.ImageFailed, foreign)}, category: report.Failed, copy: true, attempt: 1, record: state.PairCopying},
		{
			name: "crash before the call returned repeats the same attempt", rec: record(state.PairCopying, 2, 1),
			category: report.Missing, copy: true, attempt: 2,
		},
		{
			name: "copy deleted after it was made gets a new attempt", rec: record(state.PairCopying, 1, 0, func(p *state.Pair) { p.CopyImageID = "ami-gone" }),
			category: report.Missing, copy: true, attempt: 2, record: state.PairCopying, reason: "ami-gone",
		},
		// Copies in states other than available, pending and failed.
		{
			name:   "our copy in state error is cleaned up and retried",
			copies: []cloud.Image{copyOf("ami-1", "error", createdAgo(3*time.Hour))}, rec: record(state.PairCopying, 1, 0, func(p *state.Pair) { p.CopyImageID = "ami-1" }),
			category: report.Failed, copy: true, attempt: 2, deregister: []string{"ami-1"}, record: state.PairCopying, reason: "state error",
		},
		{
			name:   "our copy in state invalid is cleaned up and retried",
			copies: []cloud.Image{copyOf("ami-1", "invalid", attemptTag("1"))}, category: report.Failed,
			copy: true, attempt: 2, deregister: []string{"ami-1"}, record: state.PairCopying, reason: "state invalid",
		},
		{
			name:   "a disabled copy is never copied over",
			copies: []cloud.Image{copyOf("ami-1", cloud.ImageDisabled)}, rec: record(state.PairCopying, 1, 0, func(p *state.Pair) { p.CopyImageID = "ami-1" }),
			category: report.Failed, reason: "copy ami-1 is disabled: enable it (or deregister it)",
		},
		{name: "a disabled copy of another tool is never copied over", copies: []cloud.Image{copyOf("ami-1", cloud.ImageDisabled, foreign)}, category: report.Failed, reason: "does not copy again while it exists"},
		{name: "another tool's copy in state error blocks a copy", copies: []cloud.Image{copyOf("ami-1", "error", foreign)}, category: report.Failed, reason: "state error"},
		{name: "a transient copy blocks a copy", copies: []cloud.Image{copyOf("ami-1", "transient")}, category: report.Failed, reason: "state transient"},
		{name: "a deregistered copy is gone", copies: []cloud.Image{copyOf("ami-1", cloud.ImageDeregistered)}, category: report.Missing, copy: true, attempt: 1, record: state.PairCopying},
		{name: "rejected share stays rejected", rec: record(state.PairRejected, 0, 0, func(p *state.Pair) { p.LastError = "aws managed key" }), category: report.RejectedTarget, reason: "aws managed key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := PlanPair(PairFacts{Key: testKey, Copies: tt.copies, Record: tt.rec, WantKey: tt.wantKey, Fingerprint: testFP, Source: "111111111111"}, policy)
			if d.Category != tt.category {
				t.Fatalf("category = %s (%s), want %s", d.Category, d.Reason, tt.category)
			}
			if d.Copy != tt.copy {
				t.Errorf("copy = %v, want %v", d.Copy, tt.copy)
			}
			if !equalStrings(d.Deregister, tt.deregister) {
				t.Errorf("deregister = %v, want %v", d.Deregister, tt.deregister)
			}
			if tt.reason != "" && !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", d.Reason, tt.reason)
			}
			switch {
			case tt.record == "" && d.Record != nil && !tt.copy:
				t.Errorf("unexpected record write %+v", *d.Record)
			case tt.record != "" && d.Record == nil:
				t.Errorf("no record written, want status %s", tt.record)
			case tt.record != "" && d.Record.Status != tt.record:
				t.Errorf("record status %s, want %s", d.Record.Status, tt.record)
			}
			if tt.copy {
				if d.Record == nil {
					if tt.rec == nil || tt.rec.Attempts != tt.attempt {
						t.Fatalf("copy without a write-ahead record")
					}
					return // repeating the recorded attempt needs no write
				}
				if d.Record.Attempts != tt.attempt {
					t.Errorf("attempt = %d, want %d", d.Record.Attempts, tt.attempt)
				}
				if want := ClientToken(testKey, testFP, tt.attempt); d.Record.ClientToken != want {
					t.Errorf("token = %s, want %s", d.Record.ClientToken, want)
				}
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPlanPairIsDeterministic(t *testing.T) {
	policy := PairPolicy{MaxAttempts: 3, RetryBackoff: time.Hour, Now: testNow}
	f := PairFacts{Key: testKey, Copies: []cloud.Image{copyOf("ami-1", cloud.ImageFailed, attemptTag("1"))}, Fingerprint: testFP}
	a, b := PlanPair(f, policy), PlanPair(f, policy)
	if a.Reason != b.Reason || !reflect.DeepEqual(*a.Record, *b.Record) {
		t.Fatalf("two plans of the same facts differ:\n%+v\n%+v", a, b)
	}
	// The order EC2 describes the copies in changes nothing, and the
	// facts are not reordered.
	copies := []cloud.Image{
		copyOf("ami-2", cloud.ImageFailed, attemptTag("2"), createdAgo(10*time.Minute)),
		copyOf("ami-1", cloud.ImageFailed, attemptTag("1"), createdAgo(3*time.Hour)),
		copyOf("ami-3", cloud.ImageFailed, foreign, createdAgo(time.Hour)),
	}
	rec := record(state.PairCopying, 2, 1)
	first := PlanPair(PairFacts{Key: testKey, Copies: copies, Record: rec, Fingerprint: testFP}, policy)
	for _, order := range [][]int{{1, 0, 2}, {2, 1, 0}, {0, 2, 1}} {
		perm := []cloud.Image{copies[order[0]], copies[order[1]], copies[order[2]]}
		d := PlanPair(PairFacts{Key: testKey, Copies: perm, Record: rec, Fingerprint: testFP}, policy)
		if d.Reason != first.Reason || !equalStrings(d.CopyImages, first.CopyImages) || !equalStrings(d.Deregister, first.Deregister) ||
			(d.Record == nil) != (first.Record == nil) || (d.Record != nil && !reflect.DeepEqual(*d.Record, *first.Record)) {
			t.Fatalf("order %v changed the plan:\n%+v\n%+v", order, d, first)
		}
		if perm[0].ID != copies[order[0]].ID {
			t.Fatal("PlanPair reordered the facts' copies")
		}
	}
}

// TestPlanPairCountsOnlyTheAttemptInFlight: a failure counts only when it
// is amicopier's attempt in flight that failed; the backoff starts from
// that copy, whatever the order of the describe.
func TestPlanPairCountsOnlyTheAttemptInFlight(t *testing.T) {
	policy := PairPolicy{MaxAttempts: 3, RetryBackoff: time.Hour, Now: testNow}
	tests := []struct {
		name     string
		copies   []cloud.Image
		rec      *state.Pair
		failures int  // of the failure record (newFailure) or of the record
		failure  bool // a new failure is counted
		copy     bool
		attempt  int // when copying
		reason   string
	}{
		{
			name:   "another tool's fresh failed copy is not our failure",
			copies: []cloud.Image{copyOf("ami-9", cloud.ImageFailed, foreign, createdAgo(10*time.Minute))}, rec: record(state.PairCopying, 1, 0),
			copy: true, attempt: 1, // the same attempt again: its call never answered
		},
		{
			name:   "an old failed copy of ours is not the attempt in flight",
			copies: []cloud.Image{copyOf("ami-1", cloud.ImageFailed, attemptTag("1"), createdAgo(3*time.Hour))}, rec: record(state.PairCopying, 2, 1),
			failures: 1, copy: true, attempt: 2,
		},
		{
			name:   "the failed copy the record names is the attempt in flight",
			copies: []cloud.Image{copyOf("ami-2", cloud.ImageFailed, createdAgo(3*time.Hour))}, rec: record(state.PairCopying, 2, 1, func(p *state.Pair) { p.CopyImageID = "ami-2" }),
			failures: 2, failure: true, copy: true, attempt: 3, reason: "copy ami-2 failed",
		},
		{
			name:   "the failed copy tagged with the recorded attempt is the attempt in flight",
			copies: []cloud.Image{copyOf("ami-2", cloud.ImageFailed, attemptTag("2"), createdAgo(3*time.Hour))}, rec: record(state.PairCopying, 2, 1),
			failures: 2, failure: true, copy: true, attempt: 3,
		},
		{
			// Listed oldest first: the backoff must start from ami-2 (10
			// minutes ago, not due), not from the first copy listed.
			name: "backoff from the attempt in flight, not the first copy described",
			copies: []cloud.Image{
				copyOf("ami-1", cloud.ImageFailed, attemptTag("1"), createdAgo(3*time.Hour)),
				copyOf("ami-2", cloud.ImageFailed, attemptTag("2"), createdAgo(10*time.Minute)),
			},
			rec:      record(state.PairCopying, 2, 1, func(p *state.Pair) { p.CopyImageID = "ami-2" }),
			failures: 2, failure: true, reason: "copy ami-2 failed",
		},
		{
			name:     "without a record the latest tagged attempt is the one in flight",
			copies:   []cloud.Image{copyOf("ami-2", cloud.ImageFailed, attemptTag("2")), copyOf("ami-1", cloud.ImageFailed, attemptTag("1"))},
			failures: 1, failure: true, copy: true, attempt: 3, reason: "copy ami-2 failed",
		},
		{
			name:   "a failed record's copy is not counted twice",
			copies: []cloud.Image{copyOf("ami-1", cloud.ImageFailed, attemptTag("1"))}, rec: record(state.PairFailed, 1, 1, func(p *state.Pair) { p.NextRetry = testNow }),
			failures: 1, copy: true, attempt: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := PlanPair(PairFacts{Key: testKey, Copies: tt.copies, Record: tt.rec, Fingerprint: testFP, Source: "111111111111"}, policy)
			if d.Copy != tt.copy {
				t.Fatalf("copy = %v, want %v (%s: %s)", d.Copy, tt.copy, d.Category, d.Reason)
			}
			if tt.reason != "" && !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", d.Reason, tt.reason)
			}
			failures := 0
			switch {
			case tt.copy && d.Failure != nil:
				failures = d.Failure.Failures
			case d.Record != nil:
				failures = d.Record.Failures
			case tt.rec != nil:
				failures = tt.rec.Failures
			}
			if failures != tt.failures {
				t.Errorf("failures = %d, want %d", failures, tt.failures)
			}
			if counted := d.Record != nil && d.Record.LastErrorCode == "CopyFailed"; counted != tt.failure {
				t.Errorf("new failure counted = %v, want %v (record %+v)", counted, tt.failure, d.Record)
			}
			if tt.copy {
				attempt := 0
				if tt.rec != nil {
					attempt = tt.rec.Attempts
				}
				if d.Record != nil {
					attempt = d.Record.Attempts
				}
				if attempt != tt.attempt {
					t.Errorf("attempt = %d, want %d", attempt, tt.attempt)
				}
			}
			// A new failure with a copy due is stored first on its own,
			// due now, so a deferred copy loses nothing.
			if (d.Failure != nil) != (tt.failure && tt.copy) {
				t.Fatalf("failure record %+v, want one: %v", d.Failure, tt.failure && tt.copy)
			}
			if d.Failure != nil && (d.Failure.Status != state.PairFailed || !d.Failure.NextRetry.Equal(testNow) ||
				d.Failure.Attempts != tt.attempt-1 || d.Failure.Failures != d.Record.Failures) {
				t.Errorf("failure record %+v", *d.Failure)
			}
		})
	}
}

func TestAfterCopy(t *testing.T) {
	policy := PairPolicy{MaxAttempts: 3, RetryBackoff: time.Hour, Now: testNow}
	base := *record(state.PairCopying, 2, 1)
	tests := []struct {
		name       string
		err        error
		justShared bool
		status     state.PairStatus
		failures   int
	}{
		{name: "success", status: state.PairCopying, failures: 1},
		// Nothing failed: the same request again next run.
		{name: "throttled after the connector's retries is deferred", err: cloud.Errorf("CopyImage", "RequestLimitExceeded", "slow down"), status: state.PairDeferred, failures: 1},
		{name: "the quota defers", err: cloud.Errorf("CopyImage", "ResourceLimitExceeded", "too many"), status: state.PairDeferred, failures: 1},
		{name: "an unknown outcome defers", err: errors.New("connection reset"), status: state.PairDeferred, failures: 1},
		{name: "a call cut off by the deadline defers", err: fmt.Errorf("CopyImage: %w", context.DeadlineExceeded), status: state.PairDeferred, failures: 1},
		{name: "a grant not propagated yet defers", err: cloud.Errorf("CopyImage", "InvalidAMIID.NotFound", "not visible yet"), justShared: true, status: state.PairDeferred, failures: 1},
		{name: "AuthFailure of a source just shared defers", err: cloud.Errorf("CopyImage", "AuthFailure", "not authorized"), justShared: true, status: state.PairDeferred, failures: 1},
		// Refusals are failed attempts (the second failure of two allowed: stuck).
		{name: "name taken is a failure", err: cloud.Errorf("CopyImage", "InvalidAMIName.Duplicate", "name taken"), status: state.PairStuck, failures: 2},
		{name: "a denial is a failure", err: cloud.Errorf("CopyImage", "UnauthorizedOperation", "not allowed to use the key"), status: state.PairStuck, failures: 2},
		{name: "access denied is a failure", err: cloud.Errorf("CopyImage", "AccessDenied", "denied"), status: state.PairStuck, failures: 2},
		{name: "source not found is a failure", err: cloud.Errorf("CopyImage", "InvalidAMIID.NotFound", "gone"), status: state.PairStuck, failures: 2},
		{name: "a KMS error is a failure", err: cloud.Errorf("CopyImage", "KMS.NotFoundException", "no such key"), status: state.PairStuck, failures: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AfterCopy(base, CopyAnswer{ImageID: "ami-new", Err: tt.err, JustShared: tt.justShared},
				PairPolicy{MaxAttempts: 2, RetryBackoff: time.Hour, Now: testNow})
			if got.Status != tt.status || got.Failures != tt.failures {
				t.Fatalf("got %s/%d failures, want %s/%d", got.Status, got.Failures, tt.status, tt.failures)
			}
			if tt.err == nil && got.CopyImageID != "ami-new" {
				t.Errorf("copy id not recorded: %+v", got)
			}
			if tt.err != nil && (got.LastError == "" || got.LastErrorCode == "" || got.CopyImageID != "") {
				t.Errorf("error not recorded: %+v", got)
			}
			if got.Attempts != base.Attempts || got.ClientToken != base.ClientToken {
				t.Errorf("the attempt changed: %+v", got)
			}
		})
	}
	got := AfterCopy(*record(state.PairCopying, 1, 0), CopyAnswer{Err: cloud.Errorf("CopyImage", "InvalidParameterValue", "bad")}, policy)
	if got.Status != state.PairFailed || !got.NextRetry.Equal(testNow.Add(time.Hour)) {
		t.Fatalf("first refusal: %+v", got)
	}
}

// TestDeferredAttemptIsRepeated: a deferred attempt is made again with its
// own ClientToken, counting nothing, and the report says why it waited.
func TestDeferredAttemptIsRepeated(t *testing.T) {
	policy := PairPolicy{MaxAttempts: 3, RetryBackoff: time.Hour, Now: testNow}
	rec := record(state.PairDeferred, 2, 1)
	rec.LastError = "CopyImage: ResourceLimitExceeded: too many"
	d := PlanPair(PairFacts{Key: testKey, Record: rec, WantKey: testKeyARN, Fingerprint: testFP}, policy)
	if !d.Copy || d.Record == nil || d.Record.Attempts != 2 || d.Record.ClientToken != ClientToken(testKey, testFP, 2) || d.Record.Failures != 1 {
		t.Fatalf("decision %+v record %+v", d, d.Record)
	}
	if d.Category != report.Missing || !strings.Contains(d.Reason, "deferred") {
		t.Fatalf("category %s reason %q", d.Category, d.Reason)
	}
}

// TestUnlistedCopyIsInFlight: a copy CopyImage started moments ago that
// DescribeImages does not list yet is in flight, not gone, until the
// visibility grace is over; then a new attempt is due.
func TestUnlistedCopyIsInFlight(t *testing.T) {
	rec := record(state.PairCopying, 1, 0)
	rec.CopyImageID = "ami-00000000000000042"
	rec.UpdatedAt = testNow.Add(-time.Minute)
	policy := PairPolicy{MaxAttempts: 3, RetryBackoff: time.Hour, VisibilityGrace: 15 * time.Minute, Now: testNow}
	d := PlanPair(PairFacts{Key: testKey, Record: rec, WantKey: testKeyARN, Fingerprint: testFP}, policy)
	if d.Category != report.InProgress || !d.Unlisted || d.Copy || d.Record != nil {
		t.Fatalf("within the grace: %+v", d)
	}
	policy.Now = testNow.Add(time.Hour)
	d = PlanPair(PairFacts{Key: testKey, Record: rec, WantKey: testKeyARN, Fingerprint: testFP}, policy)
	if d.Category != report.Missing || !d.Copy || d.Record.Attempts != 2 {
		t.Fatalf("after the grace: %+v", d)
	}
}

func TestClientToken(t *testing.T) {
	a := ClientToken(testKey, testFP, 1)
	if len(a) > 64 {
		t.Fatalf("token longer than 64: %d", len(a))
	}
	if a != ClientToken(testKey, testFP, 1) {
		t.Fatal("token not deterministic")
	}
	other := testKey
	other.Region = "us-east-1"
	for _, b := range []string{ClientToken(testKey, testFP, 2), ClientToken(testKey, "fp2", 1), ClientToken(other, testFP, 1)} {
		if a == b {
			t.Fatalf("tokens collide: %s", a)
		}
	}
}

func TestPlanOrphan(t *testing.T) {
	p := PrunePolicy{Enabled: true, Grace: 24 * time.Hour, Now: testNow}
	orphaned := record(state.PairOrphaned, 0, 0, func(r *state.Pair) { r.NextRetry = testNow.Add(-time.Minute) })
	waiting := record(state.PairOrphaned, 0, 0, func(r *state.Pair) { r.NextRetry = testNow.Add(time.Hour) })
	tests := []struct {
		name    string
		policy  PrunePolicy
		rec     *state.Pair
		inUse   int
		lt      []string
		due     bool
		prune   bool
		record  bool
		mention string
	}{
		{name: "disabled", policy: PrunePolicy{Now: testNow}, inUse: -1, mention: "pruning is off"},
		{name: "first sighting starts the grace period", policy: p, inUse: -1, record: true, mention: "may be pruned after 2026-03-02T12:00:00Z"},
		{name: "an old record of another status is replaced", policy: p, rec: record(state.PairSettled, 1, 0), inUse: -1, record: true},
		{name: "within the grace period", policy: p, rec: waiting, inUse: -1, mention: "may be pruned after"},
		{name: "due, instances not checked yet", policy: p, rec: orphaned, inUse: -1, due: true},
		{name: "due but in use", policy: p, rec: orphaned, inUse: 2, due: true, mention: "2 instance(s)"},
		{name: "due and unused", policy: p, rec: orphaned, inUse: 0, due: true, prune: true},
		{name: "due, unused, but a launch template names it", policy: p, rec: orphaned, inUse: 0,
			lt: []string{"lt-1 (web) version 3 ($Default) names it"}, due: true, mention: "launch template lt-1 (web) version 3 ($Default) names it, so it is kept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := PlanOrphan(OrphanFacts{Key: testKey, CopyID: "ami-copy", Record: tt.rec, Source: "111111111111", InUse: tt.inUse, Templates: tt.lt}, tt.policy)
			if d.Due != tt.due || d.Prune != tt.prune || (d.Record != nil) != tt.record {
				t.Fatalf("decision %+v", d)
			}
			if !strings.Contains(d.Reason, "ami-copy") || !strings.Contains(d.Reason, tt.mention) {
				t.Errorf("reason %q lacks %q", d.Reason, tt.mention)
			}
			if tt.record && (d.Record.Status != state.PairOrphaned || !d.Record.NextRetry.Equal(testNow.Add(24*time.Hour))) {
				t.Errorf("record %+v", d.Record)
			}
		})
	}
}
