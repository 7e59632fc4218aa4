package awsapi

import (
	"context"
	"fmt"
	"maps"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/amicopier/amicopier/internal/cloud"
)

// Rate is one token bucket: Burst tokens, refilled at PerSecond.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Rates are the client-side buckets of one account and Region.
type Rates struct {
	// Describe paces non-mutating calls (Describe*).
	Describe Rate
	// Mutating paces the calls cloud.IsMutating names.
	Mutating Rate
}

// DefaultRates mirror EC2's own buckets per account and Region (SPEC
// section 4): non-mutating calls 100 burst and 20 per second, mutating
// calls 50 burst and 5 per second. Staying inside them means EC2 rarely
// has to throttle, and when another tool shares the bucket the retryer
// absorbs the difference.
var DefaultRates = Rates{
	Describe: Rate{PerSecond: 20, Burst: 100},
	Mutating: Rate{PerSecond: 5, Burst: 50},
}

func (r Rates) check() error {
	for name, b := range map[string]Rate{"describe": r.Describe, "mutating": r.Mutating} {
		if b.PerSecond <= 0 || b.Burst < 1 {
			return fmt.Errorf("aws session: %s rate %v/s burst %d: both must be positive", name, b.PerSecond, b.Burst)
		}
	}
	return nil
}

// buckets are the limiters of one account and Region.
type buckets struct {
	describe, mutating *rate.Limiter
}

// limiters hands out the buckets of each account and Region; the source
// account's clients with and without an assumed role share them, as they
// share EC2's.
type limiters struct {
	rates Rates
	mu    sync.Mutex
	m     map[[2]string]*buckets
}

func (l *limiters) get(account, region string) *buckets {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]string{account, region}
	b := l.m[k]
	if b == nil {
		if l.m == nil {
			l.m = map[[2]string]*buckets{}
		}
		b = &buckets{
			describe: rate.NewLimiter(rate.Limit(l.rates.Describe.PerSecond), l.rates.Describe.Burst),
			mutating: rate.NewLimiter(rate.Limit(l.rates.Mutating.PerSecond), l.rates.Mutating.Burst),
		}
		l.m[k] = b
	}
	return b
}

// callCounts counts attempts by operation name, and the attempts AWS
// throttled (the SDK's retryer absorbs most of them).
type callCounts struct {
	mu        sync.Mutex
	m         map[string]int64
	throttled int64
}

func (c *callCounts) addThrottled() {
	c.mu.Lock()
	c.throttled++
	c.mu.Unlock()
}

func (c *callCounts) throttledCount() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.throttled
}

func (c *callCounts) add(op string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[op]++
	c.mu.Unlock()
}

func (c *callCounts) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}

// errReadOnly is returned, before anything is sent, for a mutating call
// made through a read-only connector (a dry run).
type errReadOnly struct{ op string }

func (e errReadOnly) Error() string {
	return fmt.Sprintf("%s refused: this run is a dry run and makes no mutating call", e.op)
}

// stackOptions returns the middleware of one client: the read-only guard
// (before serialisation, so nothing is sent), then, inside the retry
// loop so that every attempt passes them, the rate limiter of the
// client's account and Region (nil: none) and the call counter.
func stackOptions(counts *callCounts, b *buckets, readOnly bool) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		if readOnly {
			guard := middleware.InitializeMiddlewareFunc("amicopierReadOnly",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if op := awsmiddleware.GetOperationName(ctx); cloud.IsMutating(op) {
						return middleware.InitializeOutput{}, middleware.Metadata{}, errReadOnly{op: op}
					}
					return next.HandleInitialize(ctx, in)
				})
			if err := stack.Initialize.Add(guard, middleware.Before); err != nil {
				return err
			}
		}
		attempt := middleware.FinalizeMiddlewareFunc("amicopierAttempt",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				op := awsmiddleware.GetOperationName(ctx)
				if b != nil {
					lim := b.describe
					if cloud.IsMutating(op) {
						lim = b.mutating
					}
					if err := lim.Wait(ctx); err != nil {
						if _, ok := ctx.Deadline(); ok && ctx.Err() == nil {
							// The limiter refuses at once when the wait
							// would outlast the deadline: say it is the
							// deadline, so callers treat it as one.
							err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
						}
						return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("%s: wait for the rate limiter: %w", op, err)
					}
				}
				counts.add(op)
				out, md, err := next.HandleFinalize(ctx, in)
				if err != nil && cloud.ClassOf(apiError(op, err)) == cloud.ClassThrottled {
					counts.addThrottled()
				}
				return out, md, err
			})
		return stack.Finalize.Insert(attempt, "Retry", middleware.After)
	}
}
