// Package sim is an in-memory AWS organisation: accounts and OUs, and per
// account and Region the images, snapshots, KMS keys and instances the
// engine reasons about. It implements the engine's narrow ports (the EC2,
// Organization and Connector interfaces of package reconcile, the
// CallCounter and the Clock) with AWS semantics where the engine relies on
// them, and fails with AWS error codes (*cloud.APIError) where AWS would.
//
// The simulator keeps time on a manual Clock, so a copy started by CopyImage
// stays pending until the test (or the demo) advances the clock past its
// copy duration; states are evaluated lazily on read, so nothing runs in the
// background.
//
// Every simulated API call passes one gate (Cloud.do) that counts it, applies
// the optional realism (latency and token buckets), gives the fault hook a
// chance to fail it, and only then lets it take effect.
//
// Realism is off by default, so unit tests run instantly. WithLatency makes
// each call take a round trip per class of operation (DefaultLatency: 25 ms);
// WithThrottling enforces AWS's request token buckets (DefaultThrottling:
// one bucket per EC2 API, account and Region, 100 burst / 20 per second for
// non-mutating APIs and 50 / 5 for mutating ones, unfiltered describes
// 50 / 5, and STS and Organizations buckets per calling account), answering RequestLimitExceeded (EC2), Throttling
// (STS) or TooManyRequestsException (Organizations) when a bucket is empty.
// Both run on the real clock: latency is a real sleep and buckets refill in
// real time, so a benchmark's wall time is measured, not modelled. Goroutines
// sleeping cost nothing, so thousands of accounts at 25 ms a call still take
// seconds. The manual Clock below is only about copy completion.
// Builder methods (AddAccount, AddImage, ShareImage...) set the scene and are
// not API calls: they are neither counted nor subject to faults.
//
// Images are stored compactly because benchmarks build about a million of
// them: ids are not stored but derived from the image's place in its zone
// (the account and Region holding it), tags are interned so images with the
// same tags share one immutable set, and rarely used fields (launch
// permission, copy progress, state reason) sit behind one pointer.
package sim
