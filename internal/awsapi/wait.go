package awsapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amicopier/amicopier/internal/cloud"
)

// WaitOptions tune WaitForCopies.
type WaitOptions struct {
	// Timeout bounds the whole wait (required, > 0).
	Timeout time.Duration
	// MinDelay and MaxDelay bound the pause between two looks at one
	// account and Region (the pause doubles from MinDelay up to
	// MaxDelay); defaults 15s and 120s, the SDK image waiter's.
	MinDelay, MaxDelay time.Duration
	// Finished, when set, is told of copies as they are seen finished
	// (available, failed, deregistered...), n at a time, out of
	// WaitTotal; it is called from several goroutines at once.
	Finished func(n int)
}

// WaitTotal is how many copies WaitForCopies waits for: the distinct
// copies started through the connector.
func (c *Connector) WaitTotal() int {
	seen := map[string]bool{}
	for _, sc := range c.StartedCopies() {
		seen[sc.Account+"/"+sc.Region+"/"+sc.ImageID] = true
	}
	return len(seen)
}

// CopyOutcome is where a started copy stands after the wait.
type CopyOutcome struct {
	StartedCopy
	// State is the copy's last seen state; empty when EC2 did not show
	// the image (yet); deregistered when it was listed once and then no
	// more.
	State cloud.ImageState
	// Reason is EC2's explanation of a failed copy.
	Reason string
}

// WaitForCopies waits until no copy this connector started is pending
// any more, then reports each copy's state. Accounts and Regions are
// waited for concurrently; each round describes the copies of one account
// and Region by an image-id filter, at most cloud.MaxFilterValues ids per
// filter and every page of the answer. A copy seen before that is no
// longer listed was deregistered while waiting: it is finished, with
// state deregistered. A copy never seen yet (not visible yet) is waited
// for. It returns an error when the wait timed out (the outcomes still
// say where each copy stood at the last look) or a describe failed.
func (c *Connector) WaitForCopies(ctx context.Context, o WaitOptions) ([]CopyOutcome, error) {
	if o.Timeout <= 0 {
		return nil, errors.New("wait for copies: the timeout must be positive")
	}
	if o.MinDelay <= 0 {
		o.MinDelay = defaultWaitMinDelay
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = defaultWaitMaxDelay
	}
	o.MaxDelay = max(o.MaxDelay, o.MinDelay)
	groups := map[[2]string][]StartedCopy{}
	for _, sc := range c.StartedCopies() {
		k := [2]string{sc.Account, sc.Region}
		groups[k] = append(groups[k], sc)
	}
	keys := make([][2]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })

	results := make([][]CopyOutcome, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.waitGroup(ctx, k[0], k[1], groups[k], o)
		}()
	}
	wg.Wait()
	var out []CopyOutcome
	for _, r := range results {
		out = append(out, r...)
	}
	return out, errors.Join(errs...)
}

// Default pauses between two looks at one account and Region, as the
// SDK's image-available waiter's.
const (
	defaultWaitMinDelay = 15 * time.Second
	defaultWaitMaxDelay = 120 * time.Second
)

// copyLook is what the last look showed of one copy.
type copyLook struct {
	state  cloud.ImageState
	reason string
}

func (c *Connector) waitGroup(ctx context.Context, account, region string, copies []StartedCopy, o WaitOptions) ([]CopyOutcome, error) {
	c.mu.Lock()
	api := c.clients[[2]string{account, region}]
	c.mu.Unlock()
	if api == nil {
		return nil, fmt.Errorf("wait for copies in account %s, %s: no client (the copies were not started by this run)", account, region)
	}
	ids := make([]string, len(copies))
	for i, sc := range copies {
		ids[i] = sc.ImageID
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	what := fmt.Sprintf("wait for %d copies in account %s, %s", len(ids), account, region)

	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	looks := map[string]copyLook{}
	delay := o.MinDelay
	looked := false
	reported := 0 // copies told to o.Finished
	look := func(ctx context.Context) error {
		listed, err := describeCopies(ctx, api, ids)
		if err != nil {
			return err
		}
		looked = true
		for _, id := range ids {
			if l, ok := listed[id]; ok {
				looks[id] = l
			} else if _, seen := looks[id]; seen {
				// Listed before, gone now: deregistered while we waited
				// (DescribeImages does not list deregistered images).
				looks[id] = copyLook{state: cloud.ImageDeregistered, reason: "the copy is no longer listed: it was deregistered"}
			}
		}
		if done := len(ids) - unfinished(ids, looks); o.Finished != nil && done > reported {
			o.Finished(done - reported)
			reported = done
		}
		return nil
	}
	timedOut := func() ([]CopyOutcome, error) {
		if !looked {
			// The timeout cut the first look short: look once more, so
			// the outcomes say where every copy stands.
			if err := look(ctx); err != nil {
				return outcomes(copies, looks), fmt.Errorf("%s: timed out after %s, then: %w", what, o.Timeout, err)
			}
		}
		return outcomes(copies, looks), fmt.Errorf("%s: timed out after %s with %d still pending or not visible", what, o.Timeout, unfinished(ids, looks))
	}
	for {
		if err := look(wctx); err != nil {
			if ctx.Err() == nil && (wctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) {
				return timedOut()
			}
			return outcomes(copies, looks), fmt.Errorf("%s: %w", what, err)
		}
		if unfinished(ids, looks) == 0 {
			return outcomes(copies, looks), nil
		}
		t := time.NewTimer(delay)
		select {
		case <-wctx.Done():
			t.Stop()
			if err := ctx.Err(); err != nil {
				return outcomes(copies, looks), fmt.Errorf("%s: %w", what, err)
			}
			return timedOut()
		case <-t.C:
		}
		delay = min(2*delay, o.MaxDelay)
	}
}

// describeCopies looks at the copies ids (sorted, distinct) of one account
// and Region: one image-id filter per cloud.MaxFilterValues ids (a filter, not
// ImageIds: a copy just started may not be visible yet, which ImageIds
// answers with NotFound), every page of each answer.
func describeCopies(ctx context.Context, api ec2.DescribeImagesAPIClient, ids []string) (map[string]copyLook, error) {
	out := make(map[string]copyLook, len(ids))
	for chunk := range slices.Chunk(ids, cloud.MaxFilterValues) {
		p := ec2.NewDescribeImagesPaginator(api, &ec2.DescribeImagesInput{
			Owners:  []string{"self"},
			Filters: []types.Filter{{Name: aws.String("image-id"), Values: chunk}},
			// A copy disabled meanwhile is still a copy, not a
			// deregistered one.
			IncludeDisabled: aws.Bool(true),
			MaxResults:      aws.Int32(describePageSize),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, apiError("DescribeImages", err)
			}
			for _, im := range page.Images {
				l := copyLook{state: cloud.ImageState(im.State)}
				if im.StateReason != nil {
					l.reason = aws.ToString(im.StateReason.Message)
				}
				out[aws.ToString(im.ImageId)] = l
			}
		}
	}
	return out, nil
}

// unfinished counts the copies still pending or never seen.
func unfinished(ids []string, looks map[string]copyLook) int {
	n := 0
	for _, id := range ids {
		if l, ok := looks[id]; !ok || l.state == cloud.ImagePending {
			n++
		}
	}
	return n
}

// outcomes reports every started copy (a copy listed twice is reported
// twice) with its last look; a copy never seen has an empty state.
func outcomes(copies []StartedCopy, looks map[string]copyLook) []CopyOutcome {
	res := make([]CopyOutcome, len(copies))
	for i, sc := range copies {
		l := looks[sc.ImageID]
		res[i] = CopyOutcome{StartedCopy: sc, State: l.state, Reason: l.reason}
	}
	return res
}
