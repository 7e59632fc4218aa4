package sim

import (
	"context"
	"slices"

	"github.com/amicopier/amicopier/internal/cloud"
)

// The two child listings one at a time, for a caller that serves each
// Organizations API on its own (awsfake answers one HTTP request with one
// of them): ListChildren makes both listings for every call, so serving a
// single request with it would count, delay and throttle two.

// ListOUsForParent returns the OUs directly under a root or OU, as
// ListOrganizationalUnitsForParent does
// (https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListOrganizationalUnitsForParent.html):
// one counted call per page; an unknown parent fails with
// ParentNotFoundException.
func (o *Organization) ListOUsForParent(ctx context.Context, parentID string) ([]cloud.OU, error) {
	var out []cloud.OU
	err := o.paged(ctx, opListOrganizationalUnitsForParent, parentID, func() (int, error) {
		o.cloud.mu.RLock()
		defer o.cloud.mu.RUnlock()
		node := o.cloud.nodes[parentID]
		if node == nil {
			return 0, parentNotFound(cloud.OpListOrganizationalUnitsForParent, parentID)
		}
		for _, id := range node.ous {
			out = append(out, cloud.OU{ID: id, Name: o.cloud.nodes[id].name})
		}
		return len(out), nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListAccountsForParent returns the accounts directly under a root or OU,
// as ListAccountsForParent does
// (https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccountsForParent.html):
// one counted call per page; an unknown parent fails with
// ParentNotFoundException.
func (o *Organization) ListAccountsForParent(ctx context.Context, parentID string) ([]string, error) {
	var out []string
	err := o.paged(ctx, opListAccountsForParent, parentID, func() (int, error) {
		o.cloud.mu.RLock()
		defer o.cloud.mu.RUnlock()
		node := o.cloud.nodes[parentID]
		if node == nil {
			return 0, parentNotFound(cloud.OpListAccountsForParent, parentID)
		}
		out = slices.Clone(node.accounts)
		return len(out), nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func parentNotFound(op, parentID string) error {
	return cloud.Errorf(op, "ParentNotFoundException", "parent %q does not exist in the organisation", parentID)
}
