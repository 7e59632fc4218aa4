package state

import (
	"testing"
	"time"
)

func TestLeaseHeldErrorMessage(t *testing.T) {
	until := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		err  *LeaseHeldError
		want string
	}{
		{"held", &LeaseHeldError{Scope: "111111111111", Holder: "run-a", Expires: until},
			`another run holds the lease for scope "111111111111": holder run-a, expires 2026-01-02T03:04:05Z`},
		{"sharded scope", &LeaseHeldError{Scope: "111111111111/shard-1-of-2", Holder: "run-b", Expires: until},
			`another run holds the lease for scope "111111111111/shard-1-of-2": holder run-b, expires 2026-01-02T03:04:05Z`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}
