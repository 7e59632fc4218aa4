package reconcile

import (
	"context"
	"slices"
	"sync"

	"github.com/amicopier/amicopier/internal/cloud"
)

// accountPager is an Organization that hands each ListAccounts page over
// as it arrives (the SDK adapter and the simulator do): at 10,000
// accounts the listing is 501 pages, over 20 seconds of Organizations'
// bucket, and the run need not wait for the last page to start on the
// accounts of the first.
type accountPager interface {
	ListAccountsPages(ctx context.Context, page func([]cloud.Account)) ([]cloud.Account, error)
}

// orgListing is the listing of the organisation, running while the
// source AMIs are discovered. Each page's accounts that "*" would target
// are passed on (pages), so that, once discovery knows some source
// targets "*", the run assumes the copier role in them while the
// listing goes on (warm): observing them then costs their describes
// only. The calls are the same, one AssumeRole per target account; only
// their time moves.
type orgListing struct {
	wg    sync.WaitGroup
	err   error
	pages chan []string
}

// maxQueuedPages bounds the pages the listing runs ahead of the warming
// (10,000 accounts are 501 pages); beyond, it waits for them.
const maxQueuedPages = 1024

// startOrgListing starts listing the organisation (and, for the drift
// matrix, its OU tree); finish waits for it.
func (r *run) startOrgListing(ctx context.Context) *orgListing {
	l := &orgListing{pages: make(chan []string, maxQueuedPages)}
	wanted := r.wholeOrgFilter()
	l.wg.Go(func() {
		defer close(l.pages)
		org, err := r.conn.Organization(ctx)
		if err == nil {
			r.found.org, err = loadOrg(ctx, org, func(page []cloud.Account) {
				var ids []string
				for _, a := range page {
					if wanted(a) {
						ids = append(ids, a.ID)
					}
				}
				select {
				case l.pages <- ids:
				case <-ctx.Done():
				}
			})
		}
		if err != nil {
			l.err = errorf(err, "read the organisation")
			return
		}
		if r.req.IncludeOK {
			// The drift matrix groups accounts by OU: learn them all.
			if err := r.found.org.walkTree(ctx); err != nil {
				r.fail("read the OU tree (accounts are shown without their OU)", err)
			}
		}
	})
	return l
}

// wholeOrgFilter tells the accounts "*" targets in this run: ACTIVE
// members but the source account, the excluded ones and those outside
// the shard.
func (r *run) wholeOrgFilter() func(cloud.Account) bool {
	set := &r.e.set
	return func(a cloud.Account) bool {
		return a.State == cloud.AccountActive && a.ID != set.SourceAccount && !slices.Contains(set.ExcludeAccounts, a.ID) && r.shard.Contains(a.ID)
	}
}

// finish waits for the listing. With warm, it assumes the copier role in
// each account the pages pass on meanwhile, limits.concurrency at a time;
// a failure is kept for the account's observation to report (warmth).
func (l *orgListing) finish(ctx context.Context, r *run, warm bool) error {
	if warm && len(r.e.set.SourceRegions) > 0 {
		// The session serves every Region: the first one observed.
		region := r.e.set.SourceRegions[0]
		if len(r.e.set.TargetRegions) > 0 {
			region = r.e.set.TargetRegions[0]
		}
		ids := make(chan string)
		var wg sync.WaitGroup
		for range max(1, r.e.set.Concurrency) {
			wg.Go(func() {
				for id := range ids {
					if ctx.Err() != nil || r.outOfTime() {
						continue // drain: the run stops starting work
					}
					switch _, err := r.conn.Target(ctx, id, region); {
					case err == nil:
					case r.cutOff(err):
						r.noteCutOff(1) // the stop's, not the account's (interrupt.go)
					default:
						r.found.warm.failed(id, err)
					}
				}
			})
		}
		for page := range l.pages {
			for _, id := range page {
				ids <- id
			}
		}
		close(ids)
		wg.Wait()
	}
	// Drain what no one warmed, so the listing can end.
	for range l.pages {
	}
	l.wg.Wait()
	return l.err
}

// targetsWhole reports whether some candidate's metadata names "*".
func targetsWhole(cands []candidate) bool {
	for _, c := range cands {
		for _, s := range c.specs {
			for _, ref := range s.Refs {
				if ref.Kind == cloud.TargetOrganization {
					return true
				}
			}
		}
	}
	return false
}

// warmth keeps the accounts whose role could not be assumed while the
// organisation was listed: their first observation reports that error
// instead of asking again (the calls stay one per account and Region).
type warmth struct {
	mu  sync.Mutex
	err map[string]error
}

func (w *warmth) failed(account string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = map[string]error{}
	}
	w.err[account] = err
}

// take returns, once, the error warming account met.
func (w *warmth) take(account string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.err[account]
	delete(w.err, account)
	return err
}

// target is the observation's client of account in region: the warmed
// session's, or the error warming it met.
func (r *run) target(ctx context.Context, account, region string) (cloud.EC2, error) {
	if err := r.found.warm.take(account); err != nil {
		return nil, err
	}
	return r.conn.Target(ctx, account, region)
}
