package awsapi

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/pacing"
)

// callCounts counts attempts by operation name, the attempts AWS
// throttled (the SDK's retryer absorbs most of them), and the calls that
// failed throttled after the retryer's last attempt.
type callCounts struct {
	mu                  sync.Mutex
	m                   map[string]int64
	throttled, surfaced int64
}

func (c *callCounts) addSurfaced() {
	c.mu.Lock()
	c.surfaced++
	c.mu.Unlock()
}

func (c *callCounts) addThrottled() {
	c.mu.Lock()
	c.throttled++
	c.mu.Unlock()
}

func (c *callCounts) throttles() (attempts, surfaced int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.throttled, c.surfaced
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

// dryRunKey marks, on the middleware stack, a request sent with DryRun.
type dryRunKey struct{}

func dryRun(ctx context.Context) bool {
	v, _ := middleware.GetStackValue(ctx, dryRunKey{}).(bool)
	return v
}

// isDryRun reports whether an SDK input is an EC2 CopyImage with DryRun
// set, the one mutating request a read-only connector sends. KMS dry runs
// need no exception: the operations the check tries are not mutating.
func isDryRun(params any) bool {
	in, ok := params.(*ec2.CopyImageInput)
	return ok && aws.ToBool(in.DryRun)
}

// stackOptions returns the middleware of one client: the read-only guard
// (before serialisation, so nothing is sent), then, inside the retry loop
// so that every attempt and every page passes them, the client-side bucket
// of the operation for the client's account and Region (pace nil: none)
// and the call counter.
func stackOptions(counts *callCounts, pace *pacing.Pacer, account, region string, readOnly bool) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		// A dry run changes nothing: it is marked here, before the
		// guard, counted apart, and let through a read-only connector.
		dry := middleware.InitializeMiddlewareFunc("amicopierDryRun",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if isDryRun(in.Parameters) {
					ctx = middleware.WithStackValue(ctx, dryRunKey{}, true)
				}
				return next.HandleInitialize(ctx, in)
			})
		if err := stack.Initialize.Add(dry, middleware.Before); err != nil {
			return err
		}
		if readOnly {
			guard := middleware.InitializeMiddlewareFunc("amicopierReadOnly",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if op := awsmiddleware.GetOperationName(ctx); cloud.IsMutating(op) && !dryRun(ctx) {
						return middleware.InitializeOutput{}, middleware.Metadata{}, errReadOnly{op: op}
					}
					return next.HandleInitialize(ctx, in)
				})
			if err := stack.Initialize.Insert(guard, "amicopierDryRun", middleware.After); err != nil {
				return err
			}
		}
		attempt := middleware.FinalizeMiddlewareFunc("amicopierAttempt",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				op := awsmiddleware.GetOperationName(ctx)
				if err := pace.Wait(ctx, account, region, op); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, err
				}
				if dryRun(ctx) && op == cloud.OpCopyImage {
					counts.add(cloud.OpCopyImageDryRun)
				} else {
					counts.add(op)
				}
				out, md, err := next.HandleFinalize(ctx, in)
				if err != nil && cloud.ClassOf(apiError(op, err)) == cloud.ClassThrottled {
					counts.addThrottled()
				}
				return out, md, err
			})
		if err := stack.Finalize.Insert(attempt, "Retry", middleware.After); err != nil {
			return err
		}
		// Outside the retry loop: the call's final answer.
		final := middleware.FinalizeMiddlewareFunc("amicopierOutcome",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleFinalize(ctx, in)
				if err != nil && cloud.ClassOf(apiError(awsmiddleware.GetOperationName(ctx), err)) == cloud.ClassThrottled {
					counts.addSurfaced()
				}
				return out, md, err
			})
		return stack.Finalize.Insert(final, "Retry", middleware.Before)
	}
}
