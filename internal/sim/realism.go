package sim

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/amicopier/amicopier/internal/cloud"
)

// Realism: per-call latency and AWS's request token buckets. Both are off
// unless WithLatency or WithThrottling is given, so unit tests stay
// instant; the benchmark turns them on.
//
// Time: latency and bucket refills run on the real clock (the process
// sleeps), not on the Cloud's manual Clock. Goroutines that sleep cost
// nothing, so a benchmark of thousands of accounts at 25 ms per call with
// a few dozen calls in flight still finishes in seconds, and the wall time
// it reports is honest: nothing has to be reconstructed from a simulated
// schedule, and every scheduling cost of the engine (locks, GC, CPU) is in
// the number. The manual Clock keeps its one job, copy completion, which
// takes minutes in AWS and must stay under the test's control.

// DefaultCallLatency is the round trip of one call when latency is on.
const DefaultCallLatency = 25 * time.Millisecond

// Latency is the simulated round trip of one call, by class of operation.
// Half of it passes before the call reaches its token bucket and takes
// effect, half after, as a request and its response each cross the
// network. Zero means no delay for that class.
type Latency struct {
	// Describe is EC2's non-mutating calls (Describe*).
	Describe time.Duration
	// Mutating is EC2's mutating calls (see IsMutating).
	Mutating time.Duration
	// STS is AssumeRole.
	STS time.Duration
	// Organizations is the Organizations list calls.
	Organizations time.Duration
}

// DefaultLatency is DefaultCallLatency for every class.
func DefaultLatency() Latency {
	d := DefaultCallLatency
	return Latency{Describe: d, Mutating: d, STS: d, Organizations: d}
}

// Bucket is a request token bucket: Burst tokens, refilled at Refill tokens
// per second; each call takes one, and a call finding it empty is
// throttled. A zero Burst means no bucket (unlimited).
type Bucket struct {
	Burst  int
	Refill float64
}

// Throttling is the set of token buckets the Cloud enforces: one per API,
// account and Region for EC2 (see bucketKey), one per calling account for
// STS (the account that assumes roles) and for Organizations.
type Throttling struct {
	// Describe sizes the bucket of each of EC2's non-mutating APIs
	// (filtered or paginated calls), per account and Region.
	Describe Bucket
	// Mutating sizes the bucket of each of EC2's mutating APIs, per
	// account and Region.
	Mutating Bucket
	// Unfiltered meters DescribeImages calls with no filter at all (an
	// empty cloud.ImageQuery), which EC2 puts in a smaller bucket. The
	// engine always filters, so only a regression lands here.
	Unfiltered Bucket
	// STS meters AssumeRole by the calling account.
	STS Bucket
	// Organizations meters the Organizations list calls.
	Organizations Bucket
	// ParameterRead and ParameterWrite size the bucket of each Parameter
	// Store API (reads: GetParameters, ListTagsForResource; writes:
	// PutParameter, AddTagsToResource) per account and Region; Events
	// the PutEvents bucket per account and Region. Zero: none.
	ParameterRead, ParameterWrite, Events Bucket
}

// DefaultThrottling returns the request token buckets the simulator
// enforces by default, each one per API, account and Region for EC2
// (Request throttling for the Amazon EC2 API,
// https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html:
// non-mutating APIs such as DescribeHosts hold 100 tokens refilled at 20
// per second; the page gives mutating APIs smaller buckets without naming
// the figures of the ones amicopier calls, so 50 at 5 is the cautious
// assumption, and unfiltered, unpaginated describes 50 at 5), and
// assumptions for STS and Organizations, which publish no exact figures:
// STS 600 at 600 per second, Organizations 50 at 20 per second, per
// calling account.
//
// Parameter Store: "Parameter Store throughput defines the number of API
// transactions per second (TPS) that Systems Manager can process. This
// applies to GetParameter, GetParameters, and PutParameter API calls for
// your AWS account and AWS Region" (GetParameters, AWS Systems Manager API
// Reference,
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameters.html);
// AWS Systems Manager endpoints and quotas gives the standard throughput of
// GetParameter, GetParameters and GetParametersByPath together as 40 per
// second, which sizes the read buckets (40 at 40: a burst is not stated).
// No figure was found for PutParameter, ListTagsForResource or
// AddTagsToResource: writes are modelled at 3 at 3 per second, the
// cautious assumption. PutEvents is throttled per account and Region at
// thousands of requests per second in the large Regions and less in
// others ("Amazon EventBridge quotas",
// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html):
// 100 at 100 stays below every Region. All of them answer
// ThrottlingException.
func DefaultThrottling() Throttling {
	return Throttling{
		Describe:       Bucket{Burst: 100, Refill: 20},
		Mutating:       Bucket{Burst: 50, Refill: 5},
		Unfiltered:     Bucket{Burst: 50, Refill: 5},
		STS:            Bucket{Burst: 600, Refill: 600},
		Organizations:  Bucket{Burst: 50, Refill: 20},
		ParameterRead:  Bucket{Burst: 40, Refill: 40},
		ParameterWrite: Bucket{Burst: 3, Refill: 3},
		Events:         Bucket{Burst: 100, Refill: 100},
	}
}

// WithLatency makes every call take its class's latency in real time. It
// panics on a negative duration.
func WithLatency(l Latency) Option {
	for _, d := range []time.Duration{l.Describe, l.Mutating, l.STS, l.Organizations} {
		if d < 0 {
			panic(fmt.Sprintf("sim: WithLatency(%+v): negative duration", l))
		}
	}
	return func(s *settings) { s.latency = l }
}

// WithThrottling turns the token buckets on. It panics on a negative burst
// or a bucket that never refills.
func WithThrottling(t Throttling) Option {
	for _, b := range []Bucket{t.Describe, t.Mutating, t.Unfiltered, t.STS, t.Organizations, t.ParameterRead, t.ParameterWrite, t.Events} {
		if b.Burst < 0 || (b.Burst > 0 && b.Refill <= 0) {
			panic(fmt.Sprintf("sim: WithThrottling: bucket %+v needs a positive refill (or a zero burst for none)", b))
		}
	}
	return func(s *settings) { s.throttling = &t }
}

// BucketClass names the token bucket (and latency class) a call draws on.
type BucketClass uint8

// Bucket classes.
const (
	BucketDescribe BucketClass = iota
	BucketMutating
	BucketUnfiltered
	BucketSTS
	BucketOrganizations
	// BucketParameterRead, BucketParameterWrite and BucketEvents are
	// Parameter Store's and EventBridge's.
	BucketParameterRead
	BucketParameterWrite
	BucketEvents
	numBucketClasses
)

var bucketNames = [numBucketClasses]string{
	BucketDescribe:       "describe",
	BucketMutating:       "mutating",
	BucketUnfiltered:     "unfiltered-describe",
	BucketSTS:            "sts",
	BucketOrganizations:  "organizations",
	BucketParameterRead:  "parameter-read",
	BucketParameterWrite: "parameter-write",
	BucketEvents:         "events",
}

func (b BucketClass) String() string {
	if b < numBucketClasses {
		return bucketNames[b]
	}
	return fmt.Sprintf("BucketClass(%d)", int(b))
}

// ClassOf returns the bucket class of an operation (one of the Op
// constants); unknown operations are EC2 describes.
func ClassOf(op string) BucketClass {
	for code, name := range opNames {
		if name == op {
			return classOf(opCode(code))
		}
	}
	return BucketDescribe
}

func classOf(op opCode) BucketClass {
	switch op {
	case opAssumeRole:
		return BucketSTS
	case opListAccounts, opListRoots, opListOrganizationalUnitsForParent, opListAccountsForParent, opDescribeOrganization, opDescribeAccount:
		return BucketOrganizations
	case opGetParameters, opListTagsForResource:
		return BucketParameterRead
	case opPutParameter, opAddTagsToResource:
		return BucketParameterWrite
	case opPutEvents:
		return BucketEvents
	case opCopyImageDryRun:
		// A dry run draws on the bucket of the call it stands for: KMS
		// says so of its own DryRun requests ("All API requests using the
		// DryRun parameter apply to the request quota of the API", Testing
		// your permissions, AWS KMS Developer Guide,
		// https://docs.aws.amazon.com/kms/latest/developerguide/programming-dryrun.html);
		// EC2's documentation is silent, and the same is the cautious
		// reading.
		return BucketMutating
	}
	// KMS calls (DescribeKey, GetKeyPolicy, ListGrants,
	// GenerateDataKeyWithoutPlaintext) fall through to the describe
	// class: KMS's own request quotas per account and Region (AWS KMS
	// request quotas,
	// https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html)
	// are far above EC2's describe bucket, so metering them like one is
	// the cautious assumption.
	if isMutating(op) {
		return BucketMutating
	}
	return BucketDescribe
}

func (t *Throttling) bucket(class BucketClass) Bucket {
	switch class {
	case BucketDescribe:
		return t.Describe
	case BucketMutating:
		return t.Mutating
	case BucketUnfiltered:
		return t.Unfiltered
	case BucketSTS:
		return t.STS
	case BucketOrganizations:
		return t.Organizations
	case BucketParameterRead:
		return t.ParameterRead
	case BucketParameterWrite:
		return t.ParameterWrite
	case BucketEvents:
		return t.Events
	}
	return Bucket{}
}

func (l *Latency) of(class BucketClass) time.Duration {
	switch class {
	case BucketMutating, BucketParameterWrite, BucketEvents:
		return l.Mutating
	case BucketSTS:
		return l.STS
	case BucketOrganizations:
		return l.Organizations
	}
	return l.Describe
}

// Latency returns the Cloud's latency settings (zero when off).
func (c *Cloud) Latency() Latency { return c.cfg.latency }

// Throttling returns the Cloud's buckets and whether throttling is on.
func (c *Cloud) Throttling() (Throttling, bool) {
	if c.cfg.throttling == nil {
		return Throttling{}, false
	}
	return *c.cfg.throttling, true
}

// ThrottledCalls returns how many calls a token bucket refused, through any
// connector or client, since construction or ResetCounters.
func (c *Cloud) ThrottledCalls() int64 { return c.throttled.Load() }

// bucketKey names one token bucket. EC2 evaluates each API individually
// ("each API is evaluated individually, and you are throttled on the
// number of requests you make on a per-API basis", Request throttling for
// the Amazon EC2 API,
// https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html),
// per account and Region, so an EC2 bucket is keyed by its operation too;
// the class only sizes it (and separates unfiltered describes, which the
// same page meters in a smaller bucket). STS and Organizations publish no
// per-API figures: their buckets are per calling account, every operation
// sharing one (the cautious reading).
type bucketKey struct {
	account, region string
	class           BucketClass
	op              opCode
}

// buckets holds the Cloud's token buckets, made on first use.
type buckets struct {
	mu sync.RWMutex
	m  map[bucketKey]*rate.Limiter
}

func (b *buckets) get(k bucketKey, spec Bucket) *rate.Limiter {
	b.mu.RLock()
	l := b.m[k]
	b.mu.RUnlock()
	if l != nil {
		return l
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if l = b.m[k]; l == nil {
		if b.m == nil {
			b.m = make(map[bucketKey]*rate.Limiter)
		}
		l = rate.NewLimiter(rate.Limit(spec.Refill), spec.Burst)
		b.m[k] = l
	}
	return l
}

// take draws a token for a call of class made by account in region, or
// returns the throttling error AWS would. Caller holds no lock.
func (c *Cloud) take(class BucketClass, op opCode, account, region string) error {
	t := c.cfg.throttling
	if t == nil {
		return nil
	}
	spec := t.bucket(class)
	if spec.Burst == 0 {
		return nil
	}
	k := bucketKey{account: account, region: region, class: class}
	if class != BucketSTS && class != BucketOrganizations {
		k.op = op
		if op == opCopyImageDryRun {
			k.op = opCopyImage
		}
	}
	if c.buckets.get(k, spec).Allow() {
		return nil
	}
	name := opNames[op]
	var err *cloud.APIError
	switch class {
	case BucketSTS:
		err = cloud.Errorf(name, "Throttling", "Rate exceeded (account %s)", account)
	case BucketOrganizations:
		err = cloud.Errorf(name, "TooManyRequestsException",
			"You have sent too many requests in too short a period of time (account %s)", account)
	case BucketParameterRead, BucketParameterWrite, BucketEvents:
		err = cloud.Errorf(name, "ThrottlingException", "Rate exceeded (the %s bucket of %s for account %s in %s is empty)", class, name, account, region)
	default:
		err = cloud.Errorf(name, "RequestLimitExceeded",
			"Request limit exceeded: the %s bucket of %s for account %s in %s is empty (%d burst, %g per second)",
			class, name, account, region, spec.Burst, spec.Refill)
	}
	return &bucketRefusal{APIError: err, refill: spec.Refill}
}

// bucketRefusal is a refusal by one of the Cloud's own buckets (as
// opposed to one injected by the fault hook): the connector's backoff
// waits for the bucket to refill.
type bucketRefusal struct {
	*cloud.APIError
	refill float64
}

func (e *bucketRefusal) Unwrap() error { return e.APIError }
