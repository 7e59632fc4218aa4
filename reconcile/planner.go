package reconcile

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// The planner is pure: it turns what was observed (copies in EC2) and what
// was remembered (the pair's state record) into a category, a reason and
// the actions to take. It does no I/O and reads no clock, so every
// decision is reproducible in a table test.

// PairFacts is everything known about one pair.
type PairFacts struct {
	Key state.PairKey
	// Copies are the images in the pair's account and Region whose
	// CopiedFromAMI tag names the pair's source.
	Copies []cloud.Image
	// Record is the pair's unsettled state record, nil if none.
	Record *state.Pair
	// WantKey is the configured KMS key for the pair ("" = any key).
	WantKey string
	// Fingerprint of the copy the engine would make now.
	Fingerprint string
	// Source is the source account id recorded on new state records.
	Source string
}

// PairPolicy is the configuration the planner applies.
type PairPolicy struct {
	MaxAttempts  int
	RetryBackoff time.Duration
	Now          time.Time
}

// PairDecision is what to do about a pair.
type PairDecision struct {
	Category   report.Category
	Reason     string
	CopyImages []string
	// Deregister lists failed copies made by amicopier to remove.
	Deregister []string
	// Copy is set when a copy must be started, with the attempt number
	// and token of the write-ahead Record.
	Copy bool
	// Record is the state record to write before acting (nil: unchanged).
	Record *state.Pair
	// Attempts and LastError are for the report.
	Attempts  int
	LastError string
}

// Action names the decision's actions for the report.
func (d PairDecision) Action() string {
	var parts []string
	if len(d.Deregister) > 0 {
		parts = append(parts, "deregister_failed")
	}
	if d.Copy {
		parts = append(parts, "copy")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// copyClass is how one observed copy stands.
type copyClass int

const (
	copyGood copyClass = iota
	copyPending
	copyFailed
	copyUnencrypted
	copyWrongKey
	copyUnusable
)

// classifyCopy judges a copy against the wanted key; detail explains a
// bad verdict.
func classifyCopy(img *cloud.Image, wantKey string) (cls copyClass, detail string) {
	switch img.State {
	case cloud.ImagePending:
		return copyPending, ""
	case cloud.ImageFailed:
		return copyFailed, img.StateReason
	case cloud.ImageAvailable:
	default:
		return copyUnusable, "state " + string(img.State)
	}
	for _, bd := range img.BlockDevices {
		if !bd.Encrypted {
			return copyUnencrypted, fmt.Sprintf("volume %s (%s) is not encrypted", bd.DeviceName, bd.SnapshotID)
		}
	}
	if wantKey == "" {
		return copyGood, ""
	}
	for _, bd := range img.BlockDevices {
		if !keyMatches(bd.KMSKeyID, wantKey, img.Tags[TagKMSKey]) {
			return copyWrongKey, fmt.Sprintf("volume %s is encrypted with %s, configured key is %s",
				bd.DeviceName, orUnknown(bd.KMSKeyID), wantKey)
		}
	}
	return copyGood, ""
}

func orUnknown(s string) string {
	if s == "" {
		return "an unreported key"
	}
	return s
}

// keyMatches compares the key EC2 reports for a snapshot (a key ARN) with
// the configured key. Key ids and key ARNs compare directly. An alias
// cannot be resolved from EC2 alone: a copy made by amicopier records the
// configured key in a tag, which is compared instead; a copy made by
// another tool under an alias setting is given the benefit of the doubt.
func keyMatches(actual, want, taggedWant string) bool {
	switch {
	case strings.HasPrefix(want, "alias/") || strings.Contains(want, ":alias/"):
		return taggedWant == "" || taggedWant == want
	case strings.HasPrefix(want, "arn:"):
		return actual == "" || actual == want
	default: // key id
		return actual == "" || actual == want || strings.HasSuffix(actual, ":key/"+want)
	}
}

// backoff is the wait after the n-th failure: base, 2*base, 4*base ...
func backoff(base time.Duration, failures int) time.Duration {
	if failures < 1 {
		return 0
	}
	d := base
	for i := 1; i < failures && d < 30*24*time.Hour; i++ {
		d *= 2
	}
	return d
}

// PlanPair decides about one pair.
func PlanPair(f PairFacts, p PairPolicy) PairDecision {
	var good, pending, failedOurs, failed, unencrypted, wrongKey []*cloud.Image
	var unencDetail, wrongDetail, failDetail string
	attemptTag := 0
	for i := range f.Copies {
		c := &f.Copies[i]
		cls, detail := classifyCopy(c, f.WantKey)
		switch cls {
		case copyGood:
			good = append(good, c)
		case copyPending:
			pending = append(pending, c)
		case copyFailed:
			failed = append(failed, c)
			failDetail = detail
			if Managed(c) {
				failedOurs = append(failedOurs, c)
				if n, err := strconv.Atoi(c.Tags[TagAttempt]); err == nil && n > attemptTag {
					attemptTag = n
				}
			}
		case copyUnencrypted:
			unencrypted = append(unencrypted, c)
			unencDetail = detail
		case copyWrongKey:
			wrongKey = append(wrongKey, c)
			wrongDetail = detail
		}
	}

	// The record counts only while it describes the same copy request.
	var rec *state.Pair
	if f.Record != nil && f.Record.Fingerprint == f.Fingerprint && f.Record.Status != state.PairRejected {
		r := *f.Record
		rec = &r
	}
	d := PairDecision{CopyImages: imageIDs(f.Copies)}
	if rec != nil {
		d.Attempts, d.LastError = rec.Attempts, rec.LastError
	}
	for _, c := range failedOurs {
		d.Deregister = append(d.Deregister, c.ID)
	}

	switch {
	case len(good) > 1:
		d.Category = report.Duplicate
		d.Reason = fmt.Sprintf("%d good copies of the same source: %s; remove all but one by hand",
			len(good), strings.Join(imageIDs(deref(good)), ", "))
		d.Record = settle(f.Record, good[0].ID)
		return d
	case len(good) == 1:
		d.Category = report.OK
		d.Reason = "encrypted copy " + good[0].ID + " is available"
		d.Record = settle(f.Record, good[0].ID)
		return d
	case len(pending) > 0:
		d.Category = report.InProgress
		d.Reason = fmt.Sprintf("copy %s is pending since %s", pending[0].ID, pending[0].CreationDate.UTC().Format(time.RFC3339))
		if f.Record != nil && f.Record.Status != state.PairCopying && f.Record.Status != state.PairSettled {
			r := *f.Record
			r.Status = state.PairCopying
			r.CopyImageID = pending[0].ID
			d.Record = &r
		}
		return d
	case len(wrongKey) > 0:
		d.Category = report.WrongKey
		d.Reason = fmt.Sprintf("copy %s: %s; amicopier does not replace copies it did not make wrong, fix or remove it by hand", wrongKey[0].ID, wrongDetail)
		return d
	case len(unencrypted) > 0:
		d.Category = report.Unencrypted
		d.Reason = fmt.Sprintf("copy %s: %s; amicopier never deletes such a copy, remove it by hand to get an encrypted one", unencrypted[0].ID, unencDetail)
		return d
	}

	if f.Record != nil && f.Record.Status == state.PairRejected && f.Record.Fingerprint == f.Fingerprint {
		// EC2 refused to share this very source with the account; the
		// same request cannot succeed, so do not hammer the source account.
		d.Category = report.RejectedTarget
		d.Reason = orUnknownReason(f.Record.LastError)
		return d
	}

	// No usable copy: decide whether to (re)try.
	attempts, failures := 0, 0
	if rec != nil {
		attempts, failures = rec.Attempts, rec.Failures
	}
	attempts = max(attempts, attemptTag)
	newFailure := false
	if len(failed) > 0 && (rec == nil || rec.Status == state.PairCopying) {
		// The attempt in flight turned failed.
		failures++
		newFailure = true
	}
	lastErr := ""
	if rec != nil {
		lastErr = rec.LastError
	}
	if newFailure {
		lastErr = "copy " + failed[0].ID + " failed: " + orUnknownReason(failDetail)
	}
	d.LastError = lastErr
	d.Attempts = attempts

	next := func(status state.PairStatus) *state.Pair {
		r := state.Pair{Key: f.Key, Source: f.Source, Fingerprint: f.Fingerprint}
		if f.Record != nil {
			r = *f.Record
			r.Fingerprint = f.Fingerprint
		}
		r.Status = status
		r.Attempts, r.Failures = attempts, failures
		r.LastError = lastErr
		if newFailure {
			r.LastErrorCode = "CopyFailed"
		}
		return &r
	}

	if failures >= p.MaxAttempts && p.MaxAttempts > 0 {
		d.Category = report.Stuck
		d.Reason = fmt.Sprintf("gave up after %d failed attempts (last: %s); change the source or the pair's configuration to try again",
			failures, orUnknownReason(lastErr))
		d.Record = changed(f.Record, next(state.PairStuck))
		return d
	}

	var due time.Time
	switch {
	case newFailure:
		// Back off from when the failed attempt started.
		due = failed[0].CreationDate.Add(backoff(p.RetryBackoff, failures))
	case rec != nil && rec.Status == state.PairFailed:
		due = rec.NextRetry
	}
	if p.Now.Before(due) {
		d.Category = report.Failed
		d.Reason = fmt.Sprintf("attempt %d of %d failed (%s); next attempt after %s",
			failures, p.MaxAttempts, orUnknownReason(lastErr), due.UTC().Format(time.RFC3339))
		r := next(state.PairFailed)
		r.NextRetry = due
		d.Record = changed(f.Record, r)
		return d
	}

	// Start (or repeat) a copy. A copying record whose call never
	// returned an image id repeats the same attempt: the same ClientToken
	// makes that safe whether or not the first call reached AWS. Every
	// other case is a new attempt with a new token.
	attempt := attempts + 1
	if rec != nil && rec.Status == state.PairCopying && rec.CopyImageID == "" && !newFailure && attemptTag < rec.Attempts {
		attempt = rec.Attempts
	}
	r := next(state.PairCopying)
	r.Attempts = attempt
	r.ClientToken = ClientToken(f.Key, f.Fingerprint, attempt)
	r.CopyImageID = ""
	r.NextRetry = time.Time{}
	d.Copy = true
	d.Record = changed(f.Record, r)
	d.Attempts = attempt
	switch {
	case len(failed) > 0:
		d.Category = report.Failed
		d.Reason = fmt.Sprintf("copy %s failed (%s); attempt %d of %d is due", failed[0].ID,
			orUnknownReason(failDetail), attempt, p.MaxAttempts)
	case rec != nil && rec.Status == state.PairFailed:
		d.Category = report.Failed
		d.Reason = fmt.Sprintf("attempt %d failed (%s); attempt %d of %d is due", failures,
			orUnknownReason(lastErr), attempt, p.MaxAttempts)
	case rec != nil && rec.CopyImageID != "":
		d.Category = report.Missing
		d.Reason = fmt.Sprintf("copy %s recorded earlier is gone", rec.CopyImageID)
	default:
		d.Category = report.Missing
		d.Reason = "no encrypted copy in the account and Region"
	}
	return d
}

func orUnknownReason(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// settle returns the settled audit record for a pair that has a good copy,
// or nil when nothing changes: pairs without an unsettled record (adopted
// copies, pairs settled in earlier runs) are not written again.
func settle(rec *state.Pair, copyID string) *state.Pair {
	if rec == nil || rec.Status == state.PairSettled {
		return nil
	}
	r := *rec
	r.Status = state.PairSettled
	r.CopyImageID = copyID
	r.NextRetry = time.Time{}
	return &r
}

// changed returns want unless it stores the same as old.
func changed(old, want *state.Pair) *state.Pair {
	if old != nil && old.SameContent(*want) {
		return nil
	}
	return want
}

func imageIDs(imgs []cloud.Image) []string {
	if len(imgs) == 0 {
		return nil
	}
	ids := make([]string, len(imgs))
	for i := range imgs {
		ids[i] = imgs[i].ID
	}
	return ids
}

func deref(imgs []*cloud.Image) []cloud.Image {
	out := make([]cloud.Image, len(imgs))
	for i, p := range imgs {
		out[i] = *p
	}
	return out
}

// AfterCopy is the pair's record once CopyImage answered: the new image id
// on success. A refused request counts as a failed attempt; a throttled,
// transient or unknown outcome keeps the attempt (and its ClientToken)
// open, so the next run repeats the very same call.
func AfterCopy(rec state.Pair, imageID string, err error, p PairPolicy) state.Pair {
	if err == nil {
		rec.Status = state.PairCopying
		rec.CopyImageID = imageID
		rec.LastErrorCode, rec.LastError = "", ""
		return rec
	}
	rec.LastErrorCode = cloud.CodeOf(err)
	if rec.LastErrorCode == "" {
		rec.LastErrorCode = "Error"
	}
	rec.LastError = err.Error()
	switch cloud.ClassOf(err) {
	case cloud.ClassThrottled, cloud.ClassRetryable, cloud.ClassLimit, cloud.ClassUnknown:
		rec.Status = state.PairCopying
		rec.CopyImageID = ""
		return rec
	}
	rec.Failures++
	if p.MaxAttempts > 0 && rec.Failures >= p.MaxAttempts {
		rec.Status = state.PairStuck
		return rec
	}
	rec.Status = state.PairFailed
	rec.NextRetry = p.Now.Add(backoff(p.RetryBackoff, rec.Failures))
	return rec
}
