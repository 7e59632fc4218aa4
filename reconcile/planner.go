package reconcile

import (
	"cmp"
	"fmt"
	"slices"
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
	// VisibilityGrace is how long a copy CopyImage started may stay
	// unlisted by DescribeImages before it counts as gone: EC2 is
	// eventually consistent ("resources might not be immediately
	// visible", Eventual consistency in the Amazon EC2 API,
	// https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html),
	// and the documentation gives no bound, so the grace is generous.
	// Zero means DefaultVisibilityGrace (the engine fills it in).
	VisibilityGrace time.Duration
	Now             time.Time
}

// DefaultVisibilityGrace is PairPolicy.VisibilityGrace unless set.
const DefaultVisibilityGrace = 15 * time.Minute

// repeatsAttempt reports whether rec's attempt is made again as it is,
// with its ClientToken: a request whose answer never came back (the run
// died between the write-ahead record and the answer) or was deferred.
func repeatsAttempt(rec *state.Pair) bool {
	return rec != nil && ((rec.Status == state.PairCopying && rec.CopyImageID == "") || rec.Status == state.PairDeferred)
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
	// Failure, set when the attempt in flight failed and a new attempt is
	// due (Copy), is the record that counts the failure: status failed,
	// due now. It is written before the failed copy is deregistered,
	// since the copy is the only proof of the failure, and Record only
	// when the new copy really starts: a copy deferred (or a run killed)
	// in between then loses nothing.
	Failure *state.Pair
	// Unlisted: the pair's copy was started moments ago and is not
	// listed yet; it is in flight (and counts against the cap).
	Unlisted bool
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
	// copyFailed: the copy failed, or (one of amicopier's) ended in the
	// error or invalid state, which are as final.
	copyFailed
	copyUnencrypted
	copyWrongKey
	// copyDisabled: its owner disabled it; it is not copied over.
	copyDisabled
	// copyUnusable: any other state; nothing is copied while it exists
	// (its name is taken, and it may yet come back).
	copyUnusable
	// copyGone: deregistered, as good as absent.
	copyGone
)

// EC2 image states the engine names but internal/cloud does not.
const (
	imageError   cloud.ImageState = "error"
	imageInvalid cloud.ImageState = "invalid"
)

// classifyCopy judges a copy against the wanted key; detail explains a
// bad verdict.
func classifyCopy(img *cloud.Image, wantKey string) (cls copyClass, detail string) {
	switch img.State {
	case cloud.ImagePending:
		return copyPending, ""
	case cloud.ImageFailed:
		return copyFailed, img.StateReason
	case imageError, imageInvalid:
		detail = "state " + string(img.State)
		if img.StateReason != "" {
			detail += ": " + img.StateReason
		}
		if Managed(img) {
			// As final as failed, and amicopier's own: clean up and retry.
			return copyFailed, detail
		}
		return copyUnusable, detail
	case cloud.ImageDisabled:
		return copyDisabled, ""
	case cloud.ImageDeregistered:
		return copyGone, ""
	case cloud.ImageAvailable:
	default:
		detail = "state " + string(img.State)
		if img.StateReason != "" {
			detail += ": " + img.StateReason
		}
		return copyUnusable, detail
	}
	for _, bd := range img.BlockDevices {
		if !bd.Encrypted {
			return copyUnencrypted, fmt.Sprintf("volume %s (%s) is not encrypted", bd.DeviceName, bd.SnapshotID)
		}
	}
	if wantKey == "" {
		return copyGood, ""
	}
	if asked := img.Tags[TagKMSKey]; asked != "" {
		// amicopier's own copy records the key it was asked for.
		if !sameKey(asked, wantKey) {
			return copyWrongKey, fmt.Sprintf("it was made with key %s, configured key is %s", asked, wantKey)
		}
		return copyGood, ""
	}
	for _, bd := range img.BlockDevices {
		if !sameKey(bd.KMSKeyID, wantKey) {
			return copyWrongKey, fmt.Sprintf("volume %s is encrypted with %s, configured key is %s",
				bd.DeviceName, bd.KMSKeyID, wantKey)
		}
	}
	return copyGood, ""
}

// sameKey compares a key as known for a copy (the key its snapshots are
// encrypted with, as an ARN, or the key amicopier was asked to use, as
// configured) with the configured key. Key ids and key ARNs compare by the
// key id. An alias cannot be resolved without KMS, and a key EC2 did not
// report is unknown: both get the benefit of the doubt unless the two
// sides are written the same way.
func sameKey(actual, want string) bool {
	if actual == "" || actual == want {
		return true
	}
	if isAlias(actual) || isAlias(want) {
		// An alias is only judged against the alias amicopier recorded.
		return !(isAlias(actual) && isAlias(want))
	}
	return keyID(actual) == keyID(want)
}

func isAlias(k string) bool { return strings.HasPrefix(k, "alias/") || strings.Contains(k, ":alias/") }

// keyID is the key id of a key id or key ARN.
func keyID(k string) string {
	if i := strings.LastIndex(k, ":key/"); i >= 0 {
		return k[i+len(":key/"):]
	}
	return k
}

// needsSnapshotKeys reports whether judging img against wantKey needs the
// keys of its snapshots, which DescribeImages does not report: a copy made
// by another tool (no recorded key), available and encrypted, when a key
// id or ARN is configured.
func needsSnapshotKeys(img *cloud.Image, wantKey string) bool {
	if wantKey == "" || isAlias(wantKey) || img.State != cloud.ImageAvailable || img.Tags[TagKMSKey] != "" {
		return false
	}
	for _, bd := range img.BlockDevices {
		if bd.Encrypted && bd.KMSKeyID == "" {
			return true
		}
	}
	return false
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

// compareCopies orders copies by creation, then id. The order of a
// describe is not stable; the decision (the copy named in a reason, the
// time a backoff starts from) must be.
func compareCopies(a, b cloud.Image) int {
	return cmp.Or(a.CreationDate.Compare(b.CreationDate), strings.Compare(a.ID, b.ID))
}

// attemptOf is the attempt number an amicopier copy records in its tag, 0
// when it records none.
func attemptOf(img *cloud.Image) int {
	n, err := strconv.Atoi(img.Tags[TagAttempt])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// failedAttempt returns the failed copy of the attempt in flight, nil if
// that attempt did not fail: only its failure is new. A failed copy of
// another tool, or one of amicopier's from an earlier attempt (left by a
// deregistration that failed), says nothing about the attempt in flight.
// stored is the pair's record as loaded, rec the same when it describes
// the current copy request (else nil).
func failedAttempt(stored, rec *state.Pair, failedOurs []*cloud.Image) *cloud.Image {
	switch {
	case rec != nil:
		if rec.Status != state.PairCopying {
			return nil // failed or stuck: the failure is counted already
		}
		for _, c := range failedOurs {
			if (rec.CopyImageID != "" && c.ID == rec.CopyImageID) || (rec.Attempts > 0 && attemptOf(c) == rec.Attempts) {
				return c
			}
		}
		return nil
	case stored == nil:
		// Nothing remembered (the record was lost, or the pair was
		// settled before): the latest attempt the tags name is the one
		// that was in flight.
		var last *cloud.Image
		for _, c := range failedOurs {
			if n := attemptOf(c); n > 0 && (last == nil || n >= attemptOf(last)) {
				last = c
			}
		}
		return last
	}
	// The record describes another copy request (another fingerprint):
	// its copies failed under settings that no longer apply.
	return nil
}

// PlanPair decides about one pair: it classifies the copies found, judges
// whether one of them settles the pair (or forbids a new copy), and else
// plans the retry.
func PlanPair(f PairFacts, p PairPolicy) PairDecision {
	copies := f.Copies
	if !slices.IsSortedFunc(copies, compareCopies) {
		copies = slices.SortedFunc(slices.Values(copies), compareCopies) // sorted apart: the facts stay as given
	}
	cs := classifyCopies(copies, f.WantKey)
	// The record counts only while it describes the same copy request.
	var rec *state.Pair
	if f.Record != nil && f.Record.Fingerprint == f.Fingerprint && f.Record.Status != state.PairRejected {
		r := *f.Record
		rec = &r
	}
	d := PairDecision{CopyImages: imageIDs(copies)}
	if rec != nil {
		d.Attempts, d.LastError = rec.Attempts, rec.LastError
	}
	for _, c := range cs.failedOurs {
		d.Deregister = append(d.Deregister, c.ID)
	}
	if judgeCopies(&d, cs, copies, f, rec, p) {
		return d
	}
	if f.Record != nil && f.Record.Status == state.PairRejected && f.Record.Fingerprint == f.Fingerprint {
		// EC2 refused to share this very source with the account; the
		// same request cannot succeed, so do not hammer the source account.
		d.Category = report.RejectedTarget
		d.Reason = orUnknownReason(f.Record.LastError)
		return d
	}
	planRetry(&d, cs, f, rec, p)
	return d
}

// copySet is a pair's copies by how they stand (classifyCopy); each
// detail explains the first copy of its kind, and attemptTag is the
// highest attempt a failed copy of amicopier's records.
type copySet struct {
	good, pending, failedOurs, failed, unencrypted, wrongKey, disabled, unusable []*cloud.Image
	unencDetail, wrongDetail, unusableDetail                                     string
	attemptTag                                                                   int
}

func classifyCopies(copies []cloud.Image, wantKey string) copySet {
	var cs copySet
	for i := range copies {
		c := &copies[i]
		cls, detail := classifyCopy(c, wantKey)
		switch cls {
		case copyGood:
			cs.good = append(cs.good, c)
		case copyPending:
			cs.pending = append(cs.pending, c)
		case copyFailed:
			cs.failed = append(cs.failed, c)
			if Managed(c) {
				cs.failedOurs = append(cs.failedOurs, c)
				cs.attemptTag = max(cs.attemptTag, attemptOf(c))
			}
		case copyUnencrypted:
			if len(cs.unencrypted) == 0 {
				cs.unencDetail = detail
			}
			cs.unencrypted = append(cs.unencrypted, c)
		case copyWrongKey:
			if len(cs.wrongKey) == 0 {
				cs.wrongDetail = detail
			}
			cs.wrongKey = append(cs.wrongKey, c)
		case copyDisabled:
			cs.disabled = append(cs.disabled, c)
		case copyUnusable:
			if len(cs.unusable) == 0 {
				cs.unusableDetail = detail
			}
			cs.unusable = append(cs.unusable, c)
		}
	}
	return cs
}

// judgeCopies decides the pairs one of whose copies settles them (a good
// copy, one in flight) or forbids a new copy (one another tool made
// wrong, a disabled or unusable one); it reports whether it decided.
func judgeCopies(d *PairDecision, cs copySet, copies []cloud.Image, f PairFacts, rec *state.Pair, p PairPolicy) bool {
	switch {
	case len(cs.good) > 1:
		d.Category = report.Duplicate
		d.Reason = fmt.Sprintf("%d good copies of the same source: %s; remove all but one by hand",
			len(cs.good), strings.Join(imageIDs(deref(cs.good)), ", "))
		d.Record = settle(f.Record, cs.good[0].ID)
	case len(cs.good) == 1:
		d.Category = report.OK
		d.Reason = "encrypted copy " + cs.good[0].ID + " is available"
		d.Record = settle(f.Record, cs.good[0].ID)
	case unlisted(rec, copies, p):
		// Just started, not listed yet: in flight, not gone.
		d.Category = report.InProgress
		d.Unlisted = true
		d.Reason = fmt.Sprintf("copy %s was started at %s and is not listed yet (EC2 is eventually consistent); it counts as in flight until %s",
			rec.CopyImageID, rec.UpdatedAt.UTC().Format(time.RFC3339), rec.UpdatedAt.Add(p.VisibilityGrace).UTC().Format(time.RFC3339))
	case len(cs.pending) > 0:
		d.Category = report.InProgress
		d.Reason = fmt.Sprintf("copy %s is pending since %s", cs.pending[0].ID, cs.pending[0].CreationDate.UTC().Format(time.RFC3339))
		if f.Record != nil && f.Record.Status != state.PairCopying && f.Record.Status != state.PairSettled {
			r := *f.Record
			r.Status = state.PairCopying
			r.CopyImageID = cs.pending[0].ID
			d.Record = &r
		}
	case len(cs.wrongKey) > 0:
		d.Category = report.WrongKey
		d.Reason = fmt.Sprintf("copy %s: %s; amicopier does not replace copies it did not make wrong, fix or remove it by hand", cs.wrongKey[0].ID, cs.wrongDetail)
	case len(cs.unencrypted) > 0:
		d.Category = report.Unencrypted
		d.Reason = fmt.Sprintf("copy %s: %s; amicopier never deletes such a copy, remove it by hand to get an encrypted one", cs.unencrypted[0].ID, cs.unencDetail)
	case len(cs.disabled) > 0:
		// A disabled copy can be enabled again; a second copy would take
		// its place for nothing (and its name is taken anyway).
		d.Category = report.Failed
		d.Reason = fmt.Sprintf("copy %s is disabled: enable it (or deregister it) — amicopier does not copy again while it exists", cs.disabled[0].ID)
	case len(cs.unusable) > 0:
		d.Category = report.Failed
		d.Reason = fmt.Sprintf("copy %s is in %s; amicopier does not copy again while it exists (deregister it to get a new copy)", cs.unusable[0].ID, cs.unusableDetail)
	default:
		return false
	}
	return true
}

// retryFacts is what planRetry knows of the pair's attempts.
type retryFacts struct {
	attempts, failures int
	// inFlight is the failed copy of the attempt in flight (nil: that
	// attempt did not fail), detail its reason.
	inFlight *cloud.Image
	detail   string
	lastErr  string
}

// next is the pair's record in status, with the attempts as counted.
func (rf retryFacts) next(f PairFacts, status state.PairStatus) *state.Pair {
	r := state.Pair{Key: f.Key, Source: f.Source, Fingerprint: f.Fingerprint}
	if f.Record != nil {
		r = *f.Record
		r.Fingerprint = f.Fingerprint
	}
	r.Status = status
	r.Attempts, r.Failures = rf.attempts, rf.failures
	r.LastError = rf.lastErr
	if rf.inFlight != nil {
		r.LastErrorCode = "CopyFailed"
	}
	return &r
}

// planRetry decides a pair with no usable copy: stuck, waiting for its
// backoff, or due for a copy (a new attempt, or the same one again).
func planRetry(d *PairDecision, cs copySet, f PairFacts, rec *state.Pair, p PairPolicy) {
	var rf retryFacts
	if rec != nil {
		rf.attempts, rf.failures, rf.lastErr = rec.Attempts, rec.Failures, rec.LastError
	}
	rf.attempts = max(rf.attempts, cs.attemptTag)
	if rf.inFlight = failedAttempt(f.Record, rec, cs.failedOurs); rf.inFlight != nil {
		// The attempt in flight turned failed.
		rf.failures++
		_, rf.detail = classifyCopy(rf.inFlight, f.WantKey)
		rf.lastErr = "copy " + rf.inFlight.ID + " failed: " + orUnknownReason(rf.detail)
	}
	d.LastError, d.Attempts = rf.lastErr, rf.attempts

	if rf.failures >= p.MaxAttempts && p.MaxAttempts > 0 {
		d.Category = report.Stuck
		d.Reason = fmt.Sprintf("gave up after %d failed attempts (last: %s); change the source or the pair's configuration to try again",
			rf.failures, orUnknownReason(rf.lastErr))
		d.Record = changed(f.Record, rf.next(f, state.PairStuck))
		return
	}
	var due time.Time
	switch {
	case rf.inFlight != nil:
		// Back off from when the failed attempt started.
		due = rf.inFlight.CreationDate.Add(backoff(p.RetryBackoff, rf.failures))
	case rec != nil && rec.Status == state.PairFailed:
		due = rec.NextRetry
	}
	if p.Now.Before(due) {
		d.Category = report.Failed
		d.Reason = fmt.Sprintf("attempt %d of %d failed (%s); next attempt after %s",
			rf.failures, p.MaxAttempts, orUnknownReason(rf.lastErr), due.UTC().Format(time.RFC3339))
		r := rf.next(f, state.PairFailed)
		r.NextRetry = due
		d.Record = changed(f.Record, r)
		return
	}

	// Start (or repeat) a copy. A copying record whose call never
	// returned an image id repeats the same attempt: the same ClientToken
	// makes that safe whether or not the first call reached AWS. Every
	// other case is a new attempt with a new token.
	attempt := rf.attempts + 1
	if repeatsAttempt(rec) && rf.inFlight == nil && cs.attemptTag < rec.Attempts {
		attempt = rec.Attempts
	}
	r := rf.next(f, state.PairCopying)
	r.Attempts = attempt
	r.ClientToken = ClientToken(f.Key, f.Fingerprint, attempt)
	r.CopyImageID = ""
	r.NextRetry = time.Time{}
	d.Copy = true
	d.Record = changed(f.Record, r)
	d.Attempts = attempt
	if rf.inFlight != nil {
		// Counted now, due now: what the run stores before it removes
		// the failed copy, whether or not the new copy starts.
		fr := rf.next(f, state.PairFailed)
		fr.CopyImageID = ""
		fr.NextRetry = p.Now
		d.Failure = fr
	}
	d.Category, d.Reason = retryReason(cs, f, rec, rf, attempt, p)
}

// retryReason says why a copy is due.
func retryReason(cs copySet, f PairFacts, rec *state.Pair, rf retryFacts, attempt int, p PairPolicy) (report.Category, string) {
	switch {
	case rf.inFlight != nil:
		return report.Failed, fmt.Sprintf("copy %s failed (%s); attempt %d of %d is due", rf.inFlight.ID,
			orUnknownReason(rf.detail), attempt, p.MaxAttempts)
	case len(cs.failed) > 0:
		last := cs.failed[len(cs.failed)-1]
		_, detail := classifyCopy(last, f.WantKey)
		return report.Failed, fmt.Sprintf("copy %s failed (%s); attempt %d of %d is due", last.ID,
			orUnknownReason(detail), attempt, p.MaxAttempts)
	case rec != nil && rec.Status == state.PairFailed:
		return report.Failed, fmt.Sprintf("attempt %d failed (%s); attempt %d of %d is due", rf.failures,
			orUnknownReason(rf.lastErr), attempt, p.MaxAttempts)
	case rec != nil && rec.Status == state.PairDeferred:
		return report.Missing, fmt.Sprintf("attempt %d was deferred, nothing failed (%s); it is made again, with the same request",
			rec.Attempts, orUnknownReason(rec.LastError))
	case rec != nil && rec.CopyImageID != "":
		return report.Missing, fmt.Sprintf("copy %s recorded earlier is gone", rec.CopyImageID)
	}
	return report.Missing, "no encrypted copy in the account and Region"
}

// unlisted reports whether rec names a copy CopyImage started that the
// describe did not list, recently enough that EC2 may not list it yet.
func unlisted(rec *state.Pair, copies []cloud.Image, p PairPolicy) bool {
	if rec == nil || rec.Status != state.PairCopying || rec.CopyImageID == "" || p.Now.After(rec.UpdatedAt.Add(p.VisibilityGrace)) {
		return false
	}
	for i := range copies {
		if copies[i].ID == rec.CopyImageID {
			return false
		}
	}
	return true
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
