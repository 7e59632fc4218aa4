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
	// sharingQuota bounds the entities one image is shared with;
	// propagation is how long (simulated time) a new grant takes before
	// EC2 honours it (sharing.go).
	sharingQuota int
	propagation  time.Duration
	// listingDelay is how long (simulated time) a new copy stays out of
	// DescribeImages; deregisteredListing how long a deregistered image
	// stays in it.
	listingDelay        time.Duration
	deregisteredListing time.Duration
	// paramValidation is how long (simulated time) an aws:ec2:image
	// parameter write waits for its validation (ssm.go).
	paramValidation time.Duration
}

func defaultSettings() settings {
	return settings{
		start:         DefaultStart(),
		copyDuration:  DefaultCopyDuration,
		pageSize:      DefaultPageSize,
		orgPageSize:   DefaultOrgPageSize,
		inFlightQuota: DefaultInFlightQuota,
		sharingQuota:  DefaultSharingQuota,
	}
}

// WithSharingQuota sets how many entities (accounts, OUs, organisations)
// one image may be shared with (default DefaultSharingQuota, EC2's). It
// panics unless n > 0.
func WithSharingQuota(n int) Option {
	if n <= 0 {
		panic(fmt.Sprintf("sim: WithSharingQuota(%d): quota must be positive", n))
	}
	return func(s *settings) { s.sharingQuota = n }
}

// WithGrantPropagation makes a new launch or create-volume permission take
// d of simulated time (the Cloud's clock) before CopyImage honours it. EC2 is eventually consistent
// ("When you make changes to resources, ... the changes might not be
// reflected in all subsequent requests right away", Eventual consistency
// in the Amazon EC2 API,
// https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html):
// a copy made right after a share may be refused (InvalidAMIID.NotFound,
// AuthFailure) until the grant propagates. Default 0: at once.
func WithGrantPropagation(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("sim: WithGrantPropagation(%s): negative duration", d))
	}
	return func(s *settings) { s.propagation = d }
}

// WithListingDelay keeps an image CopyImage just created out of
// DescribeImages (by filter or by id) for d of simulated time, as EC2's
// eventual consistency may ("resources might not be immediately visible
// to all subsequent commands", Eventual consistency in the Amazon EC2 API,
// https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html;
// the page gives no bound). The copy exists meanwhile: it counts against
// the in-flight quota, its name is taken and its ClientToken replays.
// Default 0: listed at once.
func WithListingDelay(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("sim: WithListingDelay(%s): negative duration", d))
	}
	return func(s *settings) { s.listingDelay = d }
}

// WithDeregisteredListing keeps a deregistered image in DescribeImages, in
// state deregistered, for d of simulated time: "Recently deregistered
// images appear in the returned results for a short interval and then
// return empty results" (DescribeImages, Amazon EC2 API Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html;
// the interval is not given). A state filter without deregistered leaves
// it out. Default 0: gone at once.
func WithDeregisteredListing(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("sim: WithDeregisteredListing(%s): negative duration", d))
	}
	return func(s *settings) { s.deregisteredListing = d }
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
