// Package pacing holds the client-side token buckets both connectors (the
// SDK adapters and the simulator's) pace their calls with, so a run stays
// inside AWS's own request buckets instead of being throttled.
//
// EC2 throttles each API separately, per account and Region: "each API is
// evaluated individually, and you are throttled on the number of requests
// you make on a per-API basis" (Request throttling for the Amazon EC2 API,
// https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html).
// A Pacer therefore keeps one bucket per account, Region and API, sized by
// the API's kind (non-mutating or mutating). STS has one bucket for the
// calling identity, whatever account a role is assumed in.
//
// The source account is special: every target's sharing calls draw on its
// buckets, and so does every shard of a sharded run. A pacer built for one
// of N shards gives the source account's buckets 1/N of the rate and burst,
// so N shards in parallel stay inside one AWS bucket.
package pacing

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/amicopier/amicopier/internal/cloud"
)

// Bucket is one token bucket: Burst tokens, refilled at PerSecond.
type Bucket struct {
	PerSecond float64
	Burst     int
}

func (b Bucket) valid() bool { return b.PerSecond > 0 && b.Burst >= 1 }

// share is the 1/n part of the bucket one of n parallel shards may use.
func (b Bucket) share(n int) Bucket {
	if n <= 1 {
		return b
	}
	return Bucket{PerSecond: b.PerSecond / float64(n), Burst: max(1, b.Burst/n)}
}

// Rates size the buckets of a Pacer.
type Rates struct {
	// Describe sizes the bucket of each non-mutating EC2 API
	// (DescribeImages, DescribeImageAttribute, ...), per account and
	// Region.
	Describe Bucket
	// Mutating sizes the bucket of each mutating EC2 API (CopyImage,
	// ModifyImageAttribute, ... as IsMutating names them), per
	// account and Region.
	Mutating Bucket
	// AssumeRole sizes the STS bucket of the calling identity.
	AssumeRole Bucket
	// Organizations sizes the one bucket every Organizations call of the
	// calling identity draws on (ListAccounts, ListChildren's listings,
	// DescribeOrganization): AWS publishes no per-API figures for
	// Organizations ("You have sent too many requests in too short a
	// period of time", TooManyRequestsException, AWS Organizations API
	// Reference), so one bucket for all is the cautious reading.
	Organizations Bucket
	// ParameterRead, ParameterWrite and Events size the buckets of the
	// Parameter Store and EventBridge APIs (services.go); zero means
	// DefaultRates' buckets.
	ParameterRead, ParameterWrite, Events Bucket
}

// DefaultRates stay just inside EC2's documented default buckets per API
// (non-mutating 100 burst and 20 per second; mutating calls far lower, the
// simulator's DefaultThrottling models 50 and 5) and STS's request rate:
// the refill rates equal EC2's, the bursts stay a tenth under, so the
// client and server buckets never disagree by more than that margin.
//
// Organizations gets 20 per second and a burst of 45, inside the 50 at 20
// the simulator assumes: with the OU tree read while accounts are listed,
// a run's Organizations calls no longer page strictly one after the other.
var DefaultRates = Rates{
	Describe:       Bucket{PerSecond: 20, Burst: 90},
	Mutating:       Bucket{PerSecond: 5, Burst: 45},
	AssumeRole:     Bucket{PerSecond: 500, Burst: 500},
	Organizations:  Bucket{PerSecond: 20, Burst: 45},
	ParameterRead:  DefaultParameterRead,
	ParameterWrite: DefaultParameterWrite,
	Events:         DefaultEvents,
}

// Check reports a bucket that could never let a call through. The service
// buckets may be left zero (their defaults apply).
func (r Rates) Check() error {
	for _, b := range []struct {
		name     string
		b        Bucket
		optional bool
	}{{"describe", r.Describe, false}, {"mutating", r.Mutating, false}, {"assume-role", r.AssumeRole, false}, {"organizations", r.Organizations, false},
		{"parameter-read", r.ParameterRead, true}, {"parameter-write", r.ParameterWrite, true}, {"events", r.Events, true}} {
		if b.optional && b.b == (Bucket{}) {
			continue
		}
		if !b.b.valid() {
			return fmt.Errorf("pacing: %s bucket %g per second, burst %d: both must be positive", b.name, b.b.PerSecond, b.b.Burst)
		}
	}
	return nil
}

type key struct{ account, region, op string }

// Pacer hands out the buckets of one run; it is safe for concurrent use.
// The zero Pacer and a nil *Pacer pace nothing.
type Pacer struct {
	rates  Rates
	source string
	shards int

	mu sync.Mutex
	m  map[key]*bucket
	// sweepAt is the size of m at which full buckets are dropped
	// (sweep); now is the clock sweeping judges by (tests move it).
	sweepAt int
	now     func() time.Time
}

// minSweep is the fewest buckets a pacer keeps before it sweeps.
const minSweep = 1024

// bucket is one limiter and when it was last handed out.
type bucket struct {
	l    *rate.Limiter
	used time.Time
}

// New returns a pacer with the given rates for a run that is one of
// shards parallel runs (1 or less: the whole organisation); source is the
// source account, whose buckets the shards share.
func New(r Rates, source string, shards int) (*Pacer, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	r.fillServices()
	return &Pacer{rates: r, source: source, shards: max(1, shards), m: map[key]*bucket{}, now: time.Now}, nil
}

// Wait blocks until a call of op by account in region may go. Operations
// of the global services have an empty Region: AssumeRole draws on the
// calling identity's STS bucket and every Organizations call on its
// Organizations bucket (account is ignored for both). A wait that cannot finish
// before ctx's deadline fails at once with an error wrapping
// context.DeadlineExceeded.
func (p *Pacer) Wait(ctx context.Context, account, region, op string) error {
	l := p.limiter(account, region, op)
	if l == nil {
		return nil
	}
	if err := l.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: wait for the rate limiter: %w", op, context.Cause(ctx))
		}
		// rate.Limiter refuses at once when the wait would outlast the
		// deadline: call it the deadline, so callers treat it as one.
		return fmt.Errorf("%s: wait for the rate limiter: %w (%v)", op, context.DeadlineExceeded, err)
	}
	return nil
}

func (p *Pacer) limiter(account, region, op string) *rate.Limiter {
	if p == nil || p.m == nil {
		return nil
	}
	var spec Bucket
	k := key{account, region, op}
	switch {
	case op == cloud.OpAssumeRole:
		spec, k = p.rates.AssumeRole.share(p.shards), key{op: op}
	case region == "":
		spec, k = p.rates.Organizations.share(p.shards), key{op: "organizations"}
	case p.rates.serviceBucket(op) != (Bucket{}):
		spec = p.rates.serviceBucket(op)
	case cloud.IsMutating(op):
		spec = p.rates.Mutating
	default:
		spec = p.rates.Describe
	}
	// The source account's EC2 buckets are per Region: the global
	// buckets above are shared already, whichever account the caller
	// names (the simulator names the source for Organizations calls).
	if account == p.source && region != "" {
		spec = spec.share(p.shards)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	b := p.m[k]
	if b == nil {
		if len(p.m) >= max(minSweep, p.sweepAt) {
			p.sweep(now)
		}
		b = &bucket{l: rate.NewLimiter(rate.Limit(spec.PerSecond), spec.Burst)}
		p.m[k] = b
	}
	b.used = now
	return b.l
}

// sweep drops the buckets that are full again and were not handed out in
// the last second: a full bucket lets calls go exactly as a new one
// would, so dropping it changes no wait, and a run over 10,000 accounts
// keeps the buckets of the accounts it is working on, not one per account
// and Region it ever called. (The second covers a caller that got a bucket
// and has not drawn from it yet.) The next sweep waits until the map has
// doubled, so sweeping costs O(1) per bucket made. Caller holds p.mu.
func (p *Pacer) sweep(now time.Time) {
	for k, b := range p.m {
		if now.Sub(b.used) > time.Second && b.l.TokensAt(now) >= float64(b.l.Burst()) {
			delete(p.m, k)
		}
	}
	p.sweepAt = 2 * len(p.m)
}
