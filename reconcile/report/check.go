package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/termtable"
)

// CheckSchema identifies the JSON format of a preflight check report; it
// changes only with a breaking change of the fields below.
const CheckSchema = "amicopier.check/v1"

// FindingKind is the kind of problem a preflight check found. The names
// are part of the JSON schema.
type FindingKind string

// Finding kinds, in report order: what blocks the most first.
const (
	// RoleNotAssumable: the copier role of the account cannot be assumed.
	RoleNotAssumable FindingKind = "role_not_assumable"
	// KeyNotFound: the configured key does not exist in the Region (or
	// names another Region).
	KeyNotFound FindingKind = "key_not_found"
	// KeyDisabled: the configured key is disabled.
	KeyDisabled FindingKind = "key_disabled"
	// KeyPendingDeletion: the configured key is scheduled for deletion.
	KeyPendingDeletion FindingKind = "key_pending_deletion"
	// KeyUnavailable: the configured key is in another state that cannot
	// encrypt (PendingImport, Unavailable, Creating, Updating,
	// PendingReplicaDeletion).
	KeyUnavailable FindingKind = "key_unavailable"
	// KeyNotSymmetric: the configured key is not a symmetric encryption
	// key, the only kind EBS can use.
	KeyNotSymmetric FindingKind = "key_not_symmetric"
	// KeyUseDenied: the copier role may not use the configured key.
	KeyUseDenied FindingKind = "key_use_denied"
	// SourceKeyUnusable: the customer managed key of a source AMI's
	// snapshots is not usable by the target account.
	SourceKeyUnusable FindingKind = "source_key_unusable"
	// AutoScalingGrantMissing: the key does not let the Auto Scaling
	// service-linked role use it, so Auto Scaling groups cannot launch
	// instances from the copies.
	AutoScalingGrantMissing FindingKind = "auto_scaling_grant_missing"
	// CopyNotAuthorized: EC2 refused a CopyImage dry run (IAM: the copier
	// role lacks ec2:CopyImage, or ec2:CreateTags on the copy).
	CopyNotAuthorized FindingKind = "copy_not_authorized"
)

// FindingKinds lists every kind in report order.
var FindingKinds = []FindingKind{
	RoleNotAssumable, KeyNotFound, KeyDisabled, KeyPendingDeletion, KeyUnavailable,
	KeyNotSymmetric, KeyUseDenied, SourceKeyUnusable, AutoScalingGrantMissing, CopyNotAuthorized,
}

// Finding is one problem in one target account (and Region), with the fix.
type Finding struct {
	Kind        FindingKind `json:"kind"`
	Account     string      `json:"account"`
	AccountName string      `json:"account_name,omitempty"`
	// Region is where the problem is; empty for the whole account (a
	// role that cannot be assumed).
	Region string `json:"region,omitempty"`
	// Key is the KMS key concerned, as configured or as EC2 reports it.
	Key string `json:"key,omitempty"`
	// SourceImages are the source AMIs whose copies the problem stops
	// (all of the account's or Region's when it stops every copy).
	SourceImages []string `json:"source_images,omitempty"`
	// Pairs is how many pairs (source AMI, account, Region) it affects.
	Pairs int `json:"pairs"`
	// Problem says what is wrong, Fix what to do about it.
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
	// Error is AWS's answer, when one shows the problem.
	Error string `json:"error,omitempty"`
}

// CheckedTarget is one account and Region the check looked at.
type CheckedTarget struct {
	Account     string `json:"account"`
	AccountName string `json:"account_name,omitempty"`
	Region      string `json:"region"`
	// Key is the key configured for copies there ("" for the account's
	// default EBS key).
	Key string `json:"key,omitempty"`
	// Pairs is how many pairs are wanted there.
	Pairs int `json:"pairs"`
	// Findings is how many findings concern it (account-wide ones
	// included).
	Findings int `json:"findings"`
}

// CheckReport is the result of a preflight check.
type CheckReport struct {
	Schema        string    `json:"schema"`
	GeneratedAt   time.Time `json:"generated_at"`
	RunID         string    `json:"run_id"`
	Trigger       string    `json:"trigger"`
	SourceAccount string    `json:"source_account"`
	Regions       []string  `json:"regions"`
	Scope         Scope     `json:"scope"`
	// Status is StatusSucceeded when every check could be made,
	// StatusPartial when some could not (see Notes).
	Status string `json:"status"`
	// Accounts and Targets count the accounts and the account/Regions
	// checked; Pairs the pairs they hold.
	Accounts int `json:"accounts"`
	Targets  int `json:"targets"`
	Pairs    int `json:"pairs"`
	// Counts holds the findings per kind, every kind present.
	Counts   map[FindingKind]int `json:"counts"`
	Findings []Finding           `json:"findings"`
	Checked  []CheckedTarget     `json:"checked"`
	// Notes say what could not be checked and why (a call that failed for
	// another reason than the problem it looks for, a check turned off).
	Notes []string `json:"notes,omitempty"`
	// APICalls counts AWS calls by operation, MutatingCalls the ones that
	// changed anything (always 0), DryRuns the CopyImage dry runs.
	APICalls        map[string]int64 `json:"api_calls"`
	MutatingCalls   int64            `json:"mutating_calls"`
	DryRuns         int64            `json:"dry_runs"`
	DurationSeconds float64          `json:"duration_seconds"`
}

// NewCheckReport returns an empty check report with every kind counted as
// zero.
func NewCheckReport(runID, trigger, sourceAccount string, regions []string, at time.Time) *CheckReport {
	r := &CheckReport{
		Schema: CheckSchema, GeneratedAt: at.UTC(), RunID: runID, Trigger: trigger,
		SourceAccount: sourceAccount, Regions: slices.Clone(regions), Status: StatusSucceeded,
		Counts: make(map[FindingKind]int, len(FindingKinds)), Findings: []Finding{}, Checked: []CheckedTarget{},
		APICalls: map[string]int64{},
	}
	for _, k := range FindingKinds {
		r.Counts[k] = 0
	}
	return r
}

func kindRank(k FindingKind) int {
	if i := slices.Index(FindingKinds, k); i >= 0 {
		return i
	}
	return len(FindingKinds)
}

// Sort puts findings and targets in their canonical order and counts
// the findings of each target, so two checks of the same world render
// identically.
func (r *CheckReport) Sort() {
	slices.SortFunc(r.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region),
			cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Problem, b.Problem))
	})
	slices.SortFunc(r.Checked, func(a, b CheckedTarget) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region))
	})
	for i := range r.Checked {
		t := &r.Checked[i]
		t.Findings = 0
		for _, f := range r.Findings {
			if f.Account == t.Account && (f.Region == "" || f.Region == t.Region) {
				t.Findings++
			}
		}
	}
	for _, k := range FindingKinds {
		r.Counts[k] = 0
	}
	for _, f := range r.Findings {
		r.Counts[f.Kind]++
	}
}

// WriteCheck renders a check report in format (FormatTable, FormatJSON,
// FormatMarkdown or FormatHTML); tables fit o.Width.
func WriteCheck(w io.Writer, r *CheckReport, format string, o Options) error {
	switch format {
	case FormatTable:
		return WriteCheckTable(w, r, o)
	case FormatJSON:
		return WriteJSON(w, r)
	case FormatMarkdown:
		return WriteCheckMarkdown(w, r)
	case FormatHTML:
		return WriteCheckHTML(w, r)
	}
	return fmt.Errorf("unknown report format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

func checkHeadline(r *CheckReport) string {
	verdict := "no problem found"
	if n := len(r.Findings); n > 0 {
		verdict = fmt.Sprintf("%d finding(s)", n)
	}
	s := fmt.Sprintf("Preflight check for source account %s, regions %s: %d account(s), %d account/Region(s), %d pair(s); %s.",
		r.SourceAccount, strings.Join(r.Regions, ", "), r.Accounts, r.Targets, r.Pairs, verdict)
	if r.Status != StatusSucceeded {
		s += " Incomplete: some checks could not be made (see the notes)."
	}
	return s
}

func findingCountLine(counts map[FindingKind]int) string {
	var parts []string
	for _, k := range FindingKinds {
		if n := counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func findingAccount(f Finding) string {
	if f.AccountName == "" {
		return f.Account
	}
	return f.Account + " (" + f.AccountName + ")"
}

// WriteCheckTable renders a check report for a terminal, fitted to
// o.Width as WriteTable is: the findings, each with its fix, then the
// notes.
func WriteCheckTable(w io.Writer, r *CheckReport, o Options) error {
	var b strings.Builder
	writeWrapped(&b, checkHeadline(r), o.Width, 0)
	writeWrapped(&b, "Findings: "+findingCountLine(r.Counts), o.Width, 2)
	if len(r.Findings) > 0 {
		b.WriteByte('\n')
		cols := []termtable.Column{
			{Header: "KIND", Min: 99},
			{Header: "ACCOUNT", Min: 12, Clip: clipAccount},
			{Header: "REGION", Min: 99},
			{Header: "PAIRS", Min: 99},
			{Header: "PROBLEM AND FIX", Min: 50, Wrap: true, Below: true},
		}
		rows := make([][]string, len(r.Findings))
		for i, f := range r.Findings {
			account := f.Account
			if o.Width > 0 && f.AccountName != "" {
				account += " " + f.AccountName
			} else {
				account = findingAccount(f)
			}
			rows[i] = []string{string(f.Kind), account, cmp.Or(f.Region, "all"), strconv.Itoa(f.Pairs), f.Problem + ". Fix: " + f.Fix}
		}
		if err := termtable.Write(&b, o.Width, cols, rows); err != nil {
			return err
		}
	}
	for _, n := range r.Notes {
		writeWrapped(&b, "Note: "+n, o.Width, 2)
	}
	writeWrapped(&b, fmt.Sprintf("AWS calls: %d (%d mutating, %d CopyImage dry runs): %s", sumCalls(r.APICalls), r.MutatingCalls, r.DryRuns, mapLine(r.APICalls)), o.Width, 2)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCheckMarkdown renders a check report for a ticket.
func WriteCheckMarkdown(w io.Writer, r *CheckReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## amicopier preflight check\n\n%s\n\n", checkHeadline(r))
	fmt.Fprintln(&b, "| finding | count |")
	fmt.Fprintln(&b, "|---|---:|")
	for _, k := range FindingKinds {
		fmt.Fprintf(&b, "| `%s` | %d |\n", k, r.Counts[k])
	}
	if len(r.Findings) > 0 {
		fmt.Fprintln(&b, "\n| finding | account | region | pairs | problem | fix |")
		fmt.Fprintln(&b, "|---|---|---|---:|---|---|")
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %d | %s | %s |\n", f.Kind, mdCell(findingAccount(f)),
				mdCell(cmp.Or(f.Region, "all")), f.Pairs, mdCell(f.Problem), mdCell(f.Fix))
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(&b, "\nNotes:")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "\n- %s", mdCell(n))
		}
		fmt.Fprintln(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sumCalls(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
