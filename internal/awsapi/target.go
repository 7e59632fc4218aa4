package awsapi

import (
	"context"
	"fmt"

	"github.com/amicopier/amicopier/internal/cloud"
)

// targetRole checks accountID and region and assumes the copier role of
// the account for a what client (key, parameter) there, once per run.
func (c *Connector) targetRole(ctx context.Context, what, accountID, region string) (*role, error) {
	if !cloud.IsAccountID(accountID) {
		return nil, fmt.Errorf("%s client: account %q is not a 12-digit account id", what, accountID)
	}
	if !cloud.IsRegion(region) {
		return nil, fmt.Errorf("%s client in account %s: region %q is not an AWS Region name", what, accountID, region)
	}
	r := c.assume(c.s.cfg.TargetRoleARN(accountID))
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// cachedClient returns (*clients)[k], made by mk the first time: one
// client per account and Region, whose buckets its calls share.
func cachedClient[T any](c *Connector, clients *map[[2]string]T, k [2]string, mk func() T) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := (*clients)[k]; ok {
		return cl
	}
	if *clients == nil {
		*clients = map[[2]string]T{}
	}
	cl := mk()
	(*clients)[k] = cl
	return cl
}
