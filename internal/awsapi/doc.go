// Package awsapi connects the engine to real AWS with aws-sdk-go-v2: EC2,
// Organizations and STS adapters implementing the ports of package
// reconcile, the AMIgo recipes table as a target metadata source, and the
// image waiter behind `run --wait`. SDK types stop here: everything this
// package exports speaks the engine's types (package cloud) and plain Go.
//
// # Sessions, connectors and credentials
//
// A Session is built once per process from the default credential chain
// (environment, AWS_PROFILE and the shared files, web identity, container
// and instance roles), the configured home Region (aws.region, else
// AWS_REGION or the profile's, else us-east-1) and the per-service
// endpoint overrides of aws.endpoints (local emulators only).
//
// A Connector is one run. It assumes every role at most once for that run
// (the session name is "amicopier-<run id>") and keeps the credentials in
// an aws.CredentialsCache that refreshes them before they expire, so one
// session per account serves every Region. Target roles come from
// targets.role_name or targets.role_arn_template; source.role_arn and
// organization.role_arn, when set, are assumed the same way. The external
// id (targets.external_id) is passed on every AssumeRole: a trust policy
// that does not ask for it ignores it.
//
// # Retries, rate limits and counting
//
// Every client uses the SDK's standard retryer (MaxAttempts attempts,
// throttling and transient errors retried with jittered exponential
// backoff; limits.call_retries + 1 attempts). Its own retry quota is
// switched off: under a throttling storm across hundreds of accounts it
// would fail calls outright, and the rate limiters below already bound how
// fast retries go out. The connector is the one owner of retries and
// pacing: the engine does neither. Each account, Region and EC2 API has its
// own client-side token bucket (package pacing), as EC2 meters each API
// separately; a shard of N paces the source account at 1/N. Every attempt,
// retries and pages included, waits for a token and is then counted by
// operation name (Connector.CallCounts), throttled attempts apart
// (Connector.Throttles).
//
// Failed calls come back as *cloud.APIError carrying the AWS error code,
// so the one classification table in package cloud decides what they
// mean.
package awsapi
