package bench

import "github.com/amicopier/amicopier/state"

// chaosStateFaults is what the chaos runs' state store does wrong
// (state.Faulty), beside the AWS faults: every failure a DynamoDB table
// shows, at rates that hit each run many times. The table disappears
// once, in the middle of a run, and is restored after that run.
func chaosStateFaults() state.FaultPlan {
	return state.FaultPlan{Seed: 2026, Rules: []state.FaultRule{
		{Kind: state.FaultTableMissing, Rate: 1, Count: 1, After: chaosTableMissingAfter},
		{Kind: state.FaultConditional, Rate: 0.02},
		{Kind: state.FaultTimeoutLanded, Rate: 0.03},
		{Kind: state.FaultTimeout, Rate: 0.02},
		{Kind: state.FaultThroughput, Rate: 0.02},
		{Kind: state.FaultThrottling, Rate: 0.02},
		{Kind: state.FaultUnprocessed, Rate: 0.3},
	}}
}

// chaosTableMissingAfter is how many store calls of the chaos runs go by
// before the table disappears: within the first run, which makes about
// 3,000 (its first copies and the answers of those in flight fail to be
// recorded, and the rest of the run fails to write anything).
const chaosTableMissingAfter = 2000

// withStateFaults puts the chaos runs' state store behind
// chaosStateFaults.
func (w *chaosWorld) withStateFaults() error {
	f, err := state.NewFaulty(w.clean, chaosStateFaults())
	if err != nil {
		return err
	}
	w.faulty, w.store = f, f
	return nil
}
