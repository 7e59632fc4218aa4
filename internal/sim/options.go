package sim

import (
	"fmt"
	"time"
)

// Defaults of the options.
const (
	// DefaultCopyDuration is how long a CopyImage stays pending.
	DefaultCopyDuration = 10 * time.Minute
	// DefaultPageSize is the DescribeImages page size (EC2's MaxResults
	// maximum is 1000).
	DefaultPageSize = 1000
	// DefaultOrgPageSize is the page size of the Organizations list calls
	// (their MaxResults maximum is 20).
	DefaultOrgPageSize = 20
	// DefaultInFlightQuota is how many copies may be pending at once in
	// one destination account and Region before CopyImage answers
	// ResourceLimitExceeded.
	DefaultInFlightQuota = 100
)

// Option configures a Cloud at construction.
type Option func(*settings)

type settings struct {
	start         time.Time
	copyDuration  time.Duration
	pageSize      int
	orgPageSize   int
	inFlightQuota int
	// latency and throttling are the realism settings (realism.go); zero
	// and nil mean off.
	latency    Latency
	throttling *Throttling
}

func defaultSettings() settings {
	return settings{
		start:         DefaultStart(),
		copyDuration:  DefaultCopyDuration,
		pageSize:      DefaultPageSize,
		orgPageSize:   DefaultOrgPageSize,
		inFlightQuota: DefaultInFlightQuota,
	}
}

// WithStartTime sets the time the clock shows at construction.
func WithStartTime(t time.Time) Option {
	return func(s *settings) { s.start = t }
}

// WithCopyDuration sets how long a copy stays pending before it turns
// available (or failed). It panics on a negative duration.
func WithCopyDuration(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("sim: WithCopyDuration(%s): negative duration", d))
	}
	return func(s *settings) { s.copyDuration = d }
}

// WithPageSize sets how many images one DescribeImages page holds; each page
// is one counted call. It panics unless n > 0.
func WithPageSize(n int) Option {
	if n <= 0 {
		panic(fmt.Sprintf("sim: WithPageSize(%d): page size must be positive", n))
	}
	return func(s *settings) { s.pageSize = n }
}

// WithOrgPageSize sets the page size of ListAccounts,
// ListOrganizationalUnitsForParent and ListAccountsForParent. It panics
// unless n > 0.
func WithOrgPageSize(n int) Option {
	if n <= 0 {
		panic(fmt.Sprintf("sim: WithOrgPageSize(%d): page size must be positive", n))
	}
	return func(s *settings) { s.orgPageSize = n }
}

// WithInFlightQuota sets how many copies may be pending at once per
// destination account and Region. It panics unless n > 0.
func WithInFlightQuota(n int) Option {
	if n <= 0 {
		panic(fmt.Sprintf("sim: WithInFlightQuota(%d): quota must be positive", n))
	}
	return func(s *settings) { s.inFlightQuota = n }
}
