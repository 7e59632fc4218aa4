package sim_test

import (
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
)

// The simulator implements the engine's ports.
var (
	_ reconcile.EC2               = (*sim.EC2)(nil)
	_ reconcile.Organization      = (*sim.Organization)(nil)
	_ reconcile.Connector         = (*sim.Connector)(nil)
	_ reconcile.RetryingConnector = sim.RetryingConnector{}
	_ reconcile.CallCounter       = (*sim.Connector)(nil)
	_ reconcile.CallCounter       = (*sim.Cloud)(nil)
	_ reconcile.Clock             = (*sim.Cloud)(nil)
	_ reconcile.Clock             = (*sim.Clock)(nil)
)
