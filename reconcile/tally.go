package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/state"
)

// maxRunErrors bounds the error messages a run keeps, and maxErrorLen
// each message. A run record must fit a DynamoDB item (400 KB) and a
// summary must stay readable: past the bound, errors are only counted, by
// AWS error code (every one is still logged in full).
const (
	maxRunErrors = 100
	maxErrorLen  = 1000
)

// runError is one error of a run: what was being done (scope) and what
// went wrong.
type runError struct {
	scope string
	err   error
}

func (e runError) String() string { return e.scope + ": " + e.err.Error() }

// tally is what a run did, as its workers report it: actions counted,
// errors, the records written. It is safe for concurrent use.
type tally struct {
	mu      sync.Mutex
	actions map[string]int
	// errs are the first maxRunErrors errors; past them only their
	// number by AWS error code is kept (more), so a run that fails
	// everywhere holds no more than that.
	errs    []runError
	more    map[string]int
	partial bool
	// written holds the records the run wrote, by pair.
	written map[state.PairKey]state.Pair
	// writes counts the state store's write requests.
	writes atomic.Int64
	// started lists the copies started, when the run tracks them.
	started []StartedCopy
}

func newTally() *tally {
	return &tally{actions: map[string]int{}, written: map[state.PairKey]state.Pair{}}
}

func (t *tally) count(action string, n int) {
	t.mu.Lock()
	t.actions[action] += n
	t.mu.Unlock()
}

// counted returns how often action was counted.
func (t *tally) counted(action string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.actions[action]
}

// fail records an error (which makes the run partial).
func (t *tally) fail(e runError) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = true
	if len(t.errs) < maxRunErrors {
		t.errs = append(t.errs, e)
		return
	}
	code := cloud.CodeOf(e.err)
	if code == "" {
		code = "other"
	}
	if t.more == nil {
		t.more = map[string]int{}
	}
	t.more[code]++
}

// markPartial makes the run partial without an error of its own (the
// pairs say why: unreachable, say).
func (t *tally) markPartial() {
	t.mu.Lock()
	t.partial = true
	t.mu.Unlock()
}

func (t *tally) noteStarted(sc StartedCopy) {
	t.mu.Lock()
	t.started = append(t.started, sc)
	t.mu.Unlock()
}

func (t *tally) noteWritten(p state.Pair) {
	t.writes.Add(1)
	t.mu.Lock()
	t.written[p.Key] = p
	t.mu.Unlock()
}

// writtenRecord returns the record the run wrote for key, if it wrote one.
func (t *tally) writtenRecord(key state.PairKey) (state.Pair, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.written[key]
	return p, ok
}

// errorList formats the run's errors: the first maxRunErrors, each at
// most maxErrorLen long, then one line counting the rest by AWS error code
// (most frequent first); n is how many there are in all.
func (t *tally) errorList() (lines []string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.errs {
		lines = append(lines, truncateRunes(e.String(), maxErrorLen))
	}
	if len(t.more) == 0 {
		return lines, len(t.errs)
	}
	total := 0
	codes := make([]string, 0, len(t.more))
	for code, k := range t.more {
		total += k
		codes = append(codes, code)
	}
	slices.SortFunc(codes, func(a, b string) int { return cmp.Or(cmp.Compare(t.more[b], t.more[a]), strings.Compare(a, b)) })
	parts := make([]string, len(codes))
	for i, code := range codes {
		parts[i] = fmt.Sprintf("%s: %d", code, t.more[code])
	}
	lines = append(lines, fmt.Sprintf("... and %d more errors (%s); the log has every one", total, strings.Join(parts, ", ")))
	return lines, len(t.errs) + total
}
