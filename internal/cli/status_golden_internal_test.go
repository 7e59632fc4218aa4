package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/amicopier/amicopier/internal/golden"
	"github.com/amicopier/amicopier/state"
)

// goldenStatusStore is what a week of runs leaves: a run that failed
// outright, a partial one with an unreachable account and no error, one
// with errors, and pairs in every group, at fixed times.
func goldenStatusStore(t *testing.T) state.Store {
	t.Helper()
	ctx := context.Background()
	base := time.Date(2026, 5, 4, 3, 0, 0, 0, time.UTC)
	s := state.NewMemory(state.WithClock(func() time.Time { return base.Add(5 * time.Hour) }))
	const src = "111111111111"
	runs := []state.Run{
		{ID: "20260504T030000Z-0a0a0a0a", Scope: src, Trigger: "schedule", Mode: "run", Status: "succeeded",
			Started: base, Finished: base.Add(95 * time.Second), Counts: map[string]int{"ok": 220, "missing": 8},
			Actions: map[string]int{"copy": 8, "share_launch_permission": 2}},
		{ID: "20260504T040000Z-0b0b0b0b", Scope: src, Trigger: "cli", Mode: "run", Status: "partial",
			Started: base.Add(time.Hour), Finished: base.Add(time.Hour + 40*time.Second),
			Counts: map[string]int{"ok": 224, "unreachable": 4},
			Unreachable: []state.UnreachableAccount{{Account: "200000000009", Regions: []string{"eu-west-1", "us-east-1"},
				Reason: "cannot work in account 200000000009 (eu-west-1): AccessDenied: User: arn:aws:sts::123456789012:assumed-role/amicopier/x is not authorized to perform: sts:AssumeRole; check the copier role and its trust policy"}},
			UnreachableCount: 1},
		{ID: "20260504T050000Z-0c0c0c0c", Scope: src, Trigger: "schedule", Shard: "2/8", Mode: "run", Status: "partial",
			Started: base.Add(2 * time.Hour), Finished: base.Add(2*time.Hour + 3*time.Minute),
			Counts: map[string]int{"ok": 30, "failed": 1}, Actions: map[string]int{"copy": 1, "copy_failed": 1},
			Errors: []string{"pair ami-0123456789abcdef0/200000000004/eu-west-1: not copied: InvalidParameterValue: the KMS key alias/amicopier is pending deletion"}},
		{ID: "20260504T060000Z-0d0d0d0d", Scope: src, Trigger: "cli", Mode: "run", Status: "failed",
			Started: base.Add(3 * time.Hour), Finished: base.Add(3*time.Hour + 21*time.Second),
			Errors: []string{`read the organisation: operation error Organizations: ListAccounts, exceeded maximum number of attempts, 5, https response error StatusCode: 0, RequestID: , request send failed, Post "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused`}},
	}
	for _, r := range runs {
		if err := s.PutRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	pairs := []state.Pair{
		{Key: state.PairKey{SourceImage: "ami-0123456789abcdef0", Account: "200000000001", Region: "eu-west-1"}, Source: src,
			Status: state.PairCopying, Attempts: 1, CopyImageID: "ami-0c0c0c0c0c0c0c0c0", RunID: "20260504T030000Z-0a0a0a0a"},
		{Key: state.PairKey{SourceImage: "ami-0123456789abcdef0", Account: "200000000002", Region: "us-east-1"}, Source: src,
			Status: state.PairCopying, Attempts: 2, CopyImageID: "ami-0d0d0d0d0d0d0d0d0", RunID: "20260504T030000Z-0a0a0a0a"},
		{Key: state.PairKey{SourceImage: "ami-0123456789abcdef0", Account: "200000000004", Region: "eu-west-1"}, Source: src,
			Status: state.PairFailed, Attempts: 2, Failures: 2, LastErrorCode: "InvalidParameterValue",
			LastError: "the KMS key alias/amicopier is pending deletion", NextRetry: base.Add(9 * time.Hour), RunID: "20260504T050000Z-0c0c0c0c"},
		{Key: state.PairKey{SourceImage: "ami-0123456789abcdef0", Account: "200000000005", Region: "us-east-1"}, Source: src,
			Status: state.PairDeferred, Attempts: 1, LastErrorCode: "ResourceLimitExceeded",
			LastError: "the account's limit of concurrent copies is reached; the next run asks again", RunID: "20260504T050000Z-0c0c0c0c"},
		{Key: state.PairKey{SourceImage: "ami-0fedcba9876543210", Account: "200000000010", Region: "eu-west-1"}, Source: src,
			Status: state.PairRejected, LastErrorCode: "aws-managed-key", LastError: "the source's snapshots are encrypted with the AWS-managed aws/ebs key, which cannot be shared"},
	}
	for _, p := range pairs {
		if _, err := s.PutPair(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestStatusGolden pins the status table (at a terminal's 100 columns and
// --wide) and the JSON.
func TestStatusGolden(t *testing.T) {
	rep, err := readStatus(context.Background(), goldenStatusStore(t), "111111111111", 10)
	if err != nil {
		t.Fatal(err)
	}
	rep.Store = "memory"
	rep.ReadAt = time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name  string
		width int
	}{{"status-100.golden", 100}, {"status-wide.golden", 0}} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeStatusTable(&b, rep, tt.width); err != nil {
				t.Fatal(err)
			}
			for line := range strings.Lines(b.String()) {
				if n := utf8.RuneCountInString(strings.TrimSuffix(line, "\n")); tt.width > 0 && n > tt.width {
					t.Errorf("line of %d columns, more than %d: %q", n, tt.width, line)
				}
			}
			golden.Check(t, tt.name, b.String())
		})
	}
	t.Run("status.json.golden", func(t *testing.T) {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "status.json.golden", string(data)+"\n")
	})
}
