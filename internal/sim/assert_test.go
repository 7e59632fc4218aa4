package sim_test

import (
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
)

// The simulator implements the engine's ports.
var (
	_ cloud.EC2          = (*sim.EC2)(nil)
	_ cloud.Organization = (*sim.Organization)(nil)
	_ cloud.Connector    = (*sim.Connector)(nil)
	_ cloud.CallCounter  = (*sim.Connector)(nil)
	_ reconcile.Clock    = (*sim.Cloud)(nil)
	_ reconcile.Clock    = (*sim.Clock)(nil)
)
