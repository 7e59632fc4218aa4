package sim

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/amicopier/amicopier/internal/cloud"
)

// FaultRule fails matching calls with an AWS error code. Empty selectors
// match anything.
type FaultRule struct {
	// Op, Account, Region and Resource select calls (see Call).
	Op, Account, Region, Resource string
	// Rate is the probability in [0, 1] that a matching call fails; 0
	// means always (a rule that never fires is pointless).
	Rate float64
	// Code is the AWS error code returned, e.g. RequestLimitExceeded,
	// InternalError, AccessDenied, ResourceLimitExceeded.
	Code    string
	Message string
	// Times caps how many calls the rule fails; 0 means no cap.
	Times int64
	// Before, when set, runs instead of failing the call: a side effect
	// just before the call proceeds (say, deregistering the source image
	// between the observation and the copy). Code is then ignored.
	Before func()
}

// FaultPlan injects faults by rules, deterministically for a seed, and
// can crash the caller after a number of calls. Install it with
// Cloud.SetFault(plan.Hook()). It is safe for concurrent use.
type FaultPlan struct {
	mu    sync.Mutex
	rng   *rand.Rand
	rules []FaultRule
	fired []int64 // per rule

	calls      atomic.Int64
	injected   atomic.Int64
	crashAfter int64
	crash      func()
	crashed    atomic.Bool
}

// NewFaultPlan returns an empty plan whose probabilistic rules draw from a
// generator seeded with seed.
func NewFaultPlan(seed uint64) *FaultPlan {
	return &FaultPlan{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Add appends a rule; the first matching rule that fires decides a call.
func (p *FaultPlan) Add(r FaultRule) *FaultPlan {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, r)
	p.fired = append(p.fired, 0)
	return p
}

// Throttle makes a share of every call answer RequestLimitExceeded.
func (p *FaultPlan) Throttle(rate float64) *FaultPlan {
	return p.Add(FaultRule{Rate: rate, Code: "RequestLimitExceeded", Message: "Request limit exceeded."})
}

// CrashAfter makes the k-th call (counting from 1, every call through the
// hook) run crash (typically a context's cancel) and fail with
// context.Canceled, as if the process died while making it. Later calls
// fail the same way.
func (p *FaultPlan) CrashAfter(k int64, crash func()) *FaultPlan {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.crashAfter, p.crash = k, crash
	return p
}

// Calls returns how many calls passed the hook.
func (p *FaultPlan) Calls() int64 { return p.calls.Load() }

// Injected returns how many faults were injected (side effects included,
// the crash excluded).
func (p *FaultPlan) Injected() int64 { return p.injected.Load() }

// Crashed reports whether the crash point was reached.
func (p *FaultPlan) Crashed() bool { return p.crashed.Load() }

// Hook returns the FaultFunc to install with Cloud.SetFault.
func (p *FaultPlan) Hook() FaultFunc {
	return func(ctx context.Context, c Call) error {
		n := p.calls.Add(1)
		p.mu.Lock()
		crashAt, crash := p.crashAfter, p.crash
		p.mu.Unlock()
		if crashAt > 0 && n >= crashAt {
			if p.crashed.CompareAndSwap(false, true) && crash != nil {
				crash()
			}
			return context.Canceled
		}
		rule, ok := p.pick(c)
		if !ok {
			return nil
		}
		p.injected.Add(1)
		if rule.Before != nil {
			rule.Before()
			return nil
		}
		msg := rule.Message
		if msg == "" {
			msg = "injected fault"
		}
		return &cloud.APIError{Op: c.Op, Code: rule.Code, Message: msg}
	}
}

// pick returns (a copy of) the first rule that matches c and fires,
// counting it.
func (p *FaultPlan) pick(c Call) (FaultRule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.rules {
		r := &p.rules[i]
		if !r.matches(c) {
			continue
		}
		if r.Times > 0 && p.fired[i] >= r.Times {
			continue
		}
		if r.Rate > 0 && r.Rate < 1 && p.rng.Float64() >= r.Rate {
			continue
		}
		p.fired[i]++
		return *r, true
	}
	return FaultRule{}, false
}

func (r *FaultRule) matches(c Call) bool {
	return (r.Op == "" || r.Op == c.Op) && (r.Account == "" || r.Account == c.Account) &&
		(r.Region == "" || r.Region == c.Region) && (r.Resource == "" || r.Resource == c.Resource)
}
