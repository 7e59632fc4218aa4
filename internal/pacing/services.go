package pacing

import "github.com/amicopier/amicopier/internal/cloud"

// Parameter Store and EventBridge are paced per account, Region and API
// like EC2, with buckets of their own size.
//
// Parameter Store's throughput quota is per account and Region: "Parameter
// Store throughput defines the number of API transactions per second
// (TPS) that Systems Manager can process. This applies to GetParameter,
// GetParameters, and PutParameter API calls for your AWS account and AWS
// Region" (GetParameters, AWS Systems Manager API Reference,
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameters.html;
// "Changing Parameter Store throughput", AWS Systems Manager User Guide,
// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-throughput.html).
// AWS Systems Manager endpoints and quotas gives the standard throughput
// of GetParameter, GetParameters and GetParametersByPath together as 40
// transactions per second; the pages amicopier was written from give no
// figure for PutParameter, ListTagsForResource or AddTagsToResource.
// Those 40 are the target account's own: the instances and Auto Scaling
// groups that resolve their AMI from a parameter at launch draw on them
// too, so amicopier keeps to a quarter of them (DefaultParameterRead), and
// writes at a cautious 2 per second (DefaultParameterWrite).
//
// EventBridge meters PutEvents per Region of the calling account, in the
// thousands of requests per second ("Amazon EventBridge quotas",
// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html;
// the smallest Regions allow a few hundred): a run sends a handful of
// calls, and DefaultEvents stays far below any of them.
var (
	DefaultParameterRead  = Bucket{PerSecond: 10, Burst: 10}
	DefaultParameterWrite = Bucket{PerSecond: 2, Burst: 2}
	DefaultEvents         = Bucket{PerSecond: 50, Burst: 50}
)

// serviceBucket is the bucket size of a Parameter Store or EventBridge
// API, zero for any other operation.
func (r Rates) serviceBucket(op string) Bucket {
	switch op {
	case cloud.OpGetParameters, cloud.OpListTagsForResource:
		return r.ParameterRead
	case cloud.OpPutParameter, cloud.OpAddTagsToResource:
		return r.ParameterWrite
	case cloud.OpPutEvents:
		return r.Events
	}
	return Bucket{}
}

// fillServices gives the service buckets left zero their defaults.
func (r *Rates) fillServices() {
	if r.ParameterRead == (Bucket{}) {
		r.ParameterRead = DefaultParameterRead
	}
	if r.ParameterWrite == (Bucket{}) {
		r.ParameterWrite = DefaultParameterWrite
	}
	if r.Events == (Bucket{}) {
		r.Events = DefaultEvents
	}
}
