package reconcile

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
)

// cloud.EC2 meters every account and Region with token buckets and answers
// RequestLimitExceeded when one is empty; retrying then only burns more
// tokens. A run therefore paces itself with client-side buckets of the same
// shape (limits.describe_* and limits.mutating_*), one per account, Region
// and kind of call, plus one for AssumeRole: a run over a thousand
// accounts then meets few or no throttles, and those it meets (another
// tool sharing the bucket) are retried with backoff.
//
// The source account's buckets are special: every target's sharing calls
// draw on them, and so does every shard of a sharded run. A shard paces
// the source account at 1/N of the configured rate and burst, so N shards
// in parallel stay inside one bucket.

// callKind is the client-side bucket a call draws on.
type callKind uint8

const (
	// unpaced calls draw on no bucket (Organizations, which pages within
	// one call, and the calls of code that predates pacing).
	unpaced callKind = iota
	describeCall
	mutatingCall
)

type paceKey struct {
	account, region string
	kind            callKind
}

// pacer holds a run's client-side token buckets.
type pacer struct {
	describe, mutating bucketSpec
	source             string
	shards             int
	assume             *rate.Limiter

	mu sync.Mutex
	m  map[paceKey]*rate.Limiter
}

type bucketSpec struct {
	rate  float64
	burst int
}

func (b bucketSpec) limiter() *rate.Limiter { return rate.NewLimiter(rate.Limit(b.rate), b.burst) }

// divided is the 1/n share of the bucket one of n parallel shards gets.
func (b bucketSpec) divided(n int) bucketSpec {
	if n <= 1 {
		return b
	}
	return bucketSpec{rate: b.rate / float64(n), burst: max(1, b.burst/n)}
}

func newPacer(l config.Limits, source string, shards int) *pacer {
	p := &pacer{
		describe: bucketSpec{l.DescribeRate, l.DescribeBurst},
		mutating: bucketSpec{l.MutatingRate, l.MutatingBurst},
		source:   source,
		shards:   shards,
		m:        map[paceKey]*rate.Limiter{},
	}
	// AssumeRole is made by the central account in every shard.
	p.assume = bucketSpec{l.AssumeRoleRate, max(1, int(l.AssumeRoleRate))}.divided(shards).limiter()
	return p
}

// wait blocks until a call of kind by account in region may go.
func (p *pacer) wait(ctx context.Context, account, region string, kind callKind) error {
	if p == nil || kind == unpaced {
		return nil
	}
	k := paceKey{account, region, kind}
	p.mu.Lock()
	l := p.m[k]
	if l == nil {
		spec := p.describe
		if kind == mutatingCall {
			spec = p.mutating
		}
		if account == p.source {
			spec = spec.divided(p.shards)
		}
		l = spec.limiter()
		p.m[k] = l
	}
	p.mu.Unlock()
	return l.Wait(ctx)
}

// waitAssume blocks until an AssumeRole call may go.
func (p *pacer) waitAssume(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.assume.Wait(ctx)
}

// callAt makes one AWS call by account in region, paced by its bucket,
// retrying throttled and transient failures with jittered exponential
// backoff, at most r.retries times (Limits.CallRetries, or none when the
// connector's clients retry themselves). A throttled answer is counted in
// throttled, unless the connector's clients retry (they count every
// throttled attempt, the last one too: finish adds their count); one that
// still fails the call is also counted in throttleErrors.
func (r *run) callAt(ctx context.Context, account, region string, kind callKind, fn func() error) error {
	for attempt := 0; ; attempt++ {
		if err := r.pace.wait(ctx, account, region, kind); err != nil {
			return err
		}
		err := fn()
		if err == nil {
			return nil
		}
		throttled := cloud.ClassOf(err) == cloud.ClassThrottled
		if throttled && !r.retrying {
			r.throttled.Add(1)
		}
		if !cloud.IsTransient(err) || attempt >= r.retries || ctx.Err() != nil {
			if throttled {
				r.throttleErrors.Add(1)
			}
			return err
		}
		base := 100 * time.Millisecond << min(attempt, 6)
		delay := base/2 + rand.N(base/2+1)
		if serr := r.e.sleep(ctx, delay); serr != nil {
			if throttled {
				r.throttleErrors.Add(1)
			}
			return err
		}
	}
}
