package state

import (
	"context"
	"fmt"
)

// Lease reads the run lease of scope as the table holds it (a consistent
// read), expired or not: ok is false when there is none. It is for
// checkers and operators, who want to know who holds the lease and until
// when; a run takes the lease with AcquireLease, never by reading it.
// An expired lease stays in the table until a run takes it over or
// DynamoDB's time to live removes it.
func (d *DynamoDB) Lease(ctx context.Context, scope string) (l Lease, ok bool, err error) {
	if scope == "" {
		return Lease{}, false, fmt.Errorf("%w: lease: scope is empty", ErrInvalid)
	}
	if err := d.ready(ctx, "read lease of scope "+scope); err != nil {
		return Lease{}, false, err
	}
	return d.leaseAfterConflict(ctx, scope, nil)
}
