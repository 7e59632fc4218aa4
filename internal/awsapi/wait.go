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
	// MinDelay and MaxDelay bound the pause between two describes of one
	// account and Region; defaults 15s and 120s (the SDK waiter's).
	MinDelay, MaxDelay time.Duration
}

// CopyOutcome is where a started copy stands after the wait.
type CopyOutcome struct {
	StartedCopy
	// State is the copy's last seen state; empty when EC2 did not show
	// the image (yet).
	State cloud.ImageState
	// Reason is EC2's explanation of a failed copy.
	Reason string
}

// WaitForCopies waits, with the SDK's image-available waiter, until no
// copy this connector started is pending any more, then reports each
// copy's state. Accounts and Regions are waited for concurrently, each
// with one paginated describe of its copies per round. It returns an error
// when the wait timed out (the outcomes still say where each copy stood)
// or a describe failed.
func (c *Connector) WaitForCopies(ctx context.Context, o WaitOptions) ([]CopyOutcome, error) {
	if o.Timeout <= 0 {
		return nil, errors.New("wait for copies: the timeout must be positive")
	}
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
	in := &ec2.DescribeImagesInput{
		Owners: []string{"self"},
		// A filter, not ImageIds: a copy just started may not be
		// visible yet, which ImageIds answers with NotFound.
		Filters: []types.Filter{{Name: aws.String("image-id"), Values: ids}},
	}
	waiter := ec2.NewImageAvailableWaiter(api, func(w *ec2.ImageAvailableWaiterOptions) {
		if o.MinDelay > 0 {
			w.MinDelay = o.MinDelay
		}
		if o.MaxDelay > 0 {
			w.MaxDelay = o.MaxDelay
		}
		// The stock waiter gives up on the first failed image; keep
		// waiting until none is pending, so one bad copy does not hide
		// how the others end.
		w.Retryable = func(_ context.Context, _ *ec2.DescribeImagesInput, out *ec2.DescribeImagesOutput, err error) (bool, error) {
			if err != nil {
				return false, err
			}
			if len(out.Images) < len(ids) {
				return true, nil
			}
			for _, im := range out.Images {
				if im.State == types.ImageStatePending {
					return true, nil
				}
			}
			return false, nil
		}
	})
	last, waitErr := waiter.WaitForOutput(ctx, in, o.Timeout)
	if waitErr != nil {
		// Timed out (or a describe failed): look once more, so the
		// outcome says where every copy stands.
		var err error
		last, err = api.DescribeImages(ctx, in)
		if err != nil {
			return outcomes(copies, nil), fmt.Errorf("wait for %d copies in account %s, %s: %w", len(copies), account, region, apiError("DescribeImages", err))
		}
		waitErr = fmt.Errorf("wait for %d copies in account %s, %s: %w", len(copies), account, region, waitErr)
	}
	return outcomes(copies, last), waitErr
}

func outcomes(copies []StartedCopy, out *ec2.DescribeImagesOutput) []CopyOutcome {
	seen := map[string]*types.Image{}
	if out != nil {
		for i := range out.Images {
			seen[aws.ToString(out.Images[i].ImageId)] = &out.Images[i]
		}
	}
	res := make([]CopyOutcome, len(copies))
	for i, sc := range copies {
		res[i] = CopyOutcome{StartedCopy: sc}
		if im := seen[sc.ImageID]; im != nil {
			res[i].State = cloud.ImageState(im.State)
			if im.StateReason != nil {
				res[i].Reason = aws.ToString(im.StateReason.Message)
			}
		}
	}
	return res
}
