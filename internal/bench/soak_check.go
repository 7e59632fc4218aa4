package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// The checks of a round, once a run finished: the organisation (every
// wanted pair has exactly one copy, and never had a second), the table
// (no record says copying for a copy EC2 does not have, no lease left),
// `amicopier status` against EC2, and once more after the next run
// (which, the copies being available, settles every record).

// soakStatus is what the checks read of `amicopier status --output json`.
type soakStatus struct {
	Runs []struct {
		ID     string         `json:"id"`
		Status string         `json:"status"`
		Counts map[string]int `json:"counts"`
	} `json:"runs"`
	Pairs map[string][]struct {
		SourceImage string `json:"source_image"`
		Account     string `json:"account"`
		Region      string `json:"region"`
		Status      string `json:"status"`
		CopyImageID string `json:"copy_image_id"`
	} `json:"pairs"`
}

func (s *soak) check(ctx context.Context, r *soakRound) error {
	census, err := r.insp.Copies(ctx, ItemsAll)
	if err != nil {
		return err
	}
	live := map[state.PairKey]string{} // the pair's one live copy
	for _, p := range census.Items {
		key := state.PairKey{SourceImage: p.SourceImage, Account: p.Account, Region: p.Region}
		if len(p.Copies) > 1 {
			s.res.DuplicateCopies++
			s.fail("round %d: pair %s has %d copies: %+v", r.n, key, len(p.Copies), p.Copies)
		}
		if p.Live() == 1 {
			for _, c := range p.Copies {
				if c.State != string(cloud.ImageDeregistered) {
					live[key] = c.ImageID
				}
			}
		}
	}
	s.res.Pairs += census.Pairs
	s.res.CopiesMade += census.MadeByCopyImage
	if bad := census.PairsWithoutCopy + census.PairsWithMore + census.UnwantedCopies; bad > 0 {
		s.res.PairsUnreconciledAfterRecovery += census.PairsWithoutCopy + census.PairsWithMore
		s.fail("round %d: after a finished run, %d pairs have no copy, %d more than one, %d copies are of no wanted pair",
			r.n, census.PairsWithoutCopy, census.PairsWithMore, census.UnwantedCopies)
	}

	// The table: every unsettled record of a copy names one EC2 has.
	recs, err := r.store.UnsettledPairs(ctx, SourceAccount)
	if err != nil {
		return err
	}
	for _, p := range recs {
		switch {
		case p.Status == state.PairCopying && (p.CopyImageID == "" || live[p.Key] != p.CopyImageID):
			s.res.CopyingWithoutCopy++
			s.fail("round %d: record %s says copying %q (attempt %d), EC2 has %q", r.n, p.Key, p.CopyImageID, p.Attempts, live[p.Key])
		case p.Status != state.PairCopying:
			s.res.PairsUnreconciledAfterRecovery++
			s.fail("round %d: after a finished run, record %s is %s: %s", r.n, p.Key, p.Status, p.LastError)
		}
	}
	s.checkLease(ctx, r)
	if err := s.checkStatus(ctx, r, live, false); err != nil {
		return err
	}

	// The next run settles every record (the copies are available), and
	// status then lists nothing but that run, every pair ok.
	p, err := r.start(ctx)
	if err != nil {
		return err
	}
	s.res.Runs++
	out, err := p.waitOrKill(-1)
	if err != nil {
		return err
	}
	if !out.finished {
		s.res.PairsUnreconciledAfterRecovery += census.Pairs
		s.fail("round %d: the run after the finished one exited %d: %s", r.n, out.exit, tail(p.stderr))
		return nil
	}
	if ok := out.report.Counts[report.OK]; ok != census.Pairs || out.report.Drift() > 0 {
		s.res.PairsUnreconciledAfterRecovery += census.Pairs - ok
		s.fail("round %d: the run after the finished one: %d of %d pairs ok (%v)", r.n, ok, census.Pairs, out.report.Counts)
	}
	if n := out.summary.Actions["copy"]; n > 0 {
		s.res.DuplicateCopies += n
		s.fail("round %d: the run after the finished one started %d copies", r.n, n)
	}
	s.checkLease(ctx, r)
	return s.checkStatus(ctx, r, live, true)
}

// checkLease: once every run has ended, no lease may be left in force.
// An expired lease of a run killed earlier may stay when no run since
// needed the lease (only a run with something to change takes it); it
// blocks nobody, and the next run that needs it takes it over.
func (s *soak) checkLease(ctx context.Context, r *soakRound) {
	l, held, err := r.store.Lease(ctx, SourceAccount)
	if err != nil {
		s.fail("round %d: read the lease: %v", r.n, err)
		return
	}
	if held && time.Now().Before(l.Expires) {
		s.res.LeasesStuck++
		s.fail("round %d: no run is running, yet %s holds the lease until %s", r.n, l.Holder, l.Expires)
	}
}

// checkStatus compares `amicopier status` with EC2: its latest run
// succeeded; every pair it lists in progress has the copy EC2 has, and
// it lists no pair failing, deferred, stuck, rejected or orphaned; once
// settled (the run after the finished one) it lists no pair at all and
// counts every pair ok.
func (s *soak) checkStatus(ctx context.Context, r *soakRound, live map[state.PairKey]string, settled bool) error {
	out, err := r.command(ctx, "status", "--config", r.cfgPath, "--output", "json", "--runs", "1")
	if err != nil {
		return fmt.Errorf("amicopier status: %w: %s", err, out)
	}
	var st soakStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return fmt.Errorf("amicopier status: %w: %.300s", err, out)
	}
	mismatch := func(format string, args ...any) {
		s.res.StatusMismatches++
		s.fail("round %d: status: "+format, append([]any{r.n}, args...)...)
	}
	if len(st.Runs) == 0 || st.Runs[0].Status != report.StatusSucceeded {
		mismatch("the latest run is not a succeeded one: %+v", st.Runs)
	} else if settled && st.Runs[0].Counts[string(report.OK)] != len(live) {
		mismatch("the latest run counts %v, want all %d pairs ok", st.Runs[0].Counts, len(live))
	}
	for group, pairs := range st.Pairs {
		for _, p := range pairs {
			key := state.PairKey{SourceImage: p.SourceImage, Account: p.Account, Region: p.Region}
			switch {
			case settled:
				mismatch("pair %s listed %s (%s) once every copy is available and recorded", key, group, p.Status)
			case group != "in_progress":
				mismatch("pair %s listed %s (%s): EC2 has its copy %q", key, group, p.Status, live[key])
			case p.CopyImageID != live[key]:
				mismatch("pair %s in progress with copy %q, EC2 has %q", key, p.CopyImageID, live[key])
			}
		}
	}
	return nil
}
