package report

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// ParameterState is where an SSM parameter stands against the copy it
// should name (publish.ssm). The names are part of the JSON schema.
type ParameterState string

// Parameter states, what needs a person first.
const (
	// ParamMissing: no parameter; run creates it.
	ParamMissing ParameterState = "missing"
	// ParamStale: it names a copy of an older build of its group; run
	// moves it to the newest available copy.
	ParamStale ParameterState = "stale"
	// ParamElsewhere: it names an image that is not a copy of its group in
	// the account and Region (another image, one that no longer exists, a
	// copy of a withdrawn build, or a copy that is no longer usable); run
	// points it at the newest available copy.
	ParamElsewhere ParameterState = "elsewhere"
	// ParamForeign: amicopier did not create it and it differs from what
	// it should name; reported, never overwritten (unless
	// publish.ssm.overwrite_foreign).
	ParamForeign ParameterState = "foreign"
	// ParamConflict: it cannot hold the value (another parameter type, or
	// a data type SSM does not let it change to); reported.
	ParamConflict ParameterState = "conflict"
	// ParamAhead: it names a copy of a newer build than the newest
	// available one, or of a build amicopier cannot date; it is never
	// moved backwards.
	ParamAhead ParameterState = "ahead"
	// ParamWaiting: no copy of the group is available in the account and
	// Region yet (pending, failed, unencrypted...); nothing to publish.
	ParamWaiting ParameterState = "waiting"
	// ParamUnreachable: the parameters could not be read.
	ParamUnreachable ParameterState = "unreachable"
	// ParamOK: it names the newest available copy.
	ParamOK ParameterState = "ok"
)

// ParameterStates lists every state in report order.
var ParameterStates = []ParameterState{
	ParamMissing, ParamStale, ParamElsewhere, ParamForeign, ParamConflict,
	ParamAhead, ParamWaiting, ParamUnreachable, ParamOK,
}

// IsDrift reports whether a parameter state is drift: anything but ok and
// waiting (nothing could be published yet, and nothing is wrong with the
// parameter).
func (s ParameterState) IsDrift() bool { return s != ParamOK && s != ParamWaiting }

// Validation outcomes of a parameter the run wrote (Parameter.Validation).
const (
	// ValidationDone: the value read back is the one written.
	ValidationDone = "validated"
	// ValidationPending: SSM validates aws:ec2:image values after
	// PutParameter answered, and had not shown the new value by the end of
	// the run; the next run reads it again (and writes again if it never
	// showed).
	ValidationPending = "pending"
)

// Parameter is one SSM parameter in one target account and Region.
type Parameter struct {
	Account     string         `json:"account"`
	AccountName string         `json:"account_name,omitempty"`
	Region      string         `json:"region"`
	Name        string         `json:"name"`
	State       ParameterState `json:"state"`
	// Value is what the parameter holds (empty when it is missing);
	// ValueSource the source AMI of the copy it names, when it names one.
	Value       string `json:"value,omitempty"`
	ValueSource string `json:"value_source,omitempty"`
	// Want is the copy it should name (the newest available one of its
	// group) and WantSource that copy's source AMI; empty while none is
	// available.
	Want       string `json:"want,omitempty"`
	WantSource string `json:"want_source,omitempty"`
	// Managed: amicopier created it (its tags say so); known only when
	// the parameter had to be changed.
	Managed bool `json:"managed,omitempty"`
	// Action is what run does (plan) or did (run): create, update,
	// take_over, none; created, updated, taken_over, failed, deferred.
	Action string `json:"action"`
	// Version is the parameter's version (after the run's write: the one
	// SSM gave it); Validation says whether the written value showed.
	Version    int64  `json:"version,omitempty"`
	Validation string `json:"validation,omitempty"`
	Reason     string `json:"reason"`
	Error      string `json:"error,omitempty"`
}

// sortParameters puts parameters in their canonical order.
func sortParameters(ps []Parameter) {
	slices.SortFunc(ps, func(a, b Parameter) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region), cmp.Compare(a.Name, b.Name))
	})
}

// ParameterDrift counts the parameters in a drift state.
func (r *Report) ParameterDrift() int {
	n := 0
	for s, k := range r.ParameterCounts {
		if s.IsDrift() {
			n += k
		}
	}
	return n
}

// parameterCountLine renders the non-zero parameter counts in order.
func parameterCountLine(counts map[ParameterState]int) string {
	var parts []string
	for _, s := range ParameterStates {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
	}
	return strings.Join(parts, ", ")
}

// listedParameters are the parameters a text report lists: those in
// drift or waiting, and the ok ones too when the report is an inventory.
func listedParameters(r *Report) []Parameter {
	var out []Parameter
	for _, p := range r.Parameters {
		if p.State != ParamOK || r.IncludesOK {
			out = append(out, p)
		}
	}
	return out
}

// parameterLine is one parameter in words.
func parameterLine(p Parameter) string {
	acct := p.Account
	if p.AccountName != "" {
		acct += " (" + p.AccountName + ")"
	}
	line := fmt.Sprintf("%s %s %s: %s", acct, p.Region, p.Name, p.State)
	if p.Action != "" && p.Action != "none" {
		line += " [" + p.Action + "]"
	}
	if p.Reason != "" {
		line += ": " + p.Reason
	}
	if p.Validation == ValidationPending {
		line += " (SSM has not validated the new value yet)"
	}
	if p.Error != "" {
		line += "; error: " + p.Error
	}
	return line
}

// parametersHeadline sums the parameters up, "" when the report has none.
func parametersHeadline(r *Report) string {
	if len(r.ParameterCounts) == 0 {
		return ""
	}
	total := 0
	for _, n := range r.ParameterCounts {
		total += n
	}
	return fmt.Sprintf("%d SSM parameter(s): %s.", total, parameterCountLine(r.ParameterCounts))
}

// writeParametersText appends the parameters section of the table output.
func writeParametersText(b *strings.Builder, r *Report, width int) {
	head := parametersHeadline(r)
	if head == "" {
		return
	}
	b.WriteString("\nParameters (SSM):\n")
	writeWrapped(b, head, width, 2)
	for _, p := range listedParameters(r) {
		writeWrapped(b, parameterLine(p), width, 2)
	}
}

// writeParametersMarkdown is writeParametersText for Markdown: the counts,
// then the first limit parameters of each state but ok (every one when
// limit is negative).
func writeParametersMarkdown(b *strings.Builder, r *Report, heading string, limit int) {
	head := parametersHeadline(r)
	if head == "" {
		return
	}
	fmt.Fprintf(b, "\n%s SSM parameters\n\n%s\n", heading, mdText(head))
	listed := listedParameters(r)
	for _, s := range ParameterStates {
		var of []Parameter
		for _, p := range listed {
			if p.State == s {
				of = append(of, p)
			}
		}
		if len(of) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n**%s** (%d)\n\n", s, len(of))
		shown := of
		if limit >= 0 && len(shown) > limit {
			shown = shown[:limit]
		}
		for _, p := range shown {
			fmt.Fprintf(b, "- %s\n", mdText(parameterLine(p)))
		}
		if rest := len(of) - len(shown); rest > 0 {
			fmt.Fprintf(b, "- _… and %d more_\n", rest)
		}
	}
}

// EventCounts says what a run published to its event bus (events.bus),
// or, in a dry run, would.
type EventCounts struct {
	Bus string `json:"bus"`
	// Published counts the events EventBridge accepted, by detail type;
	// WouldPublish, in a dry run, the events run would send.
	Published    map[string]int `json:"published,omitempty"`
	WouldPublish map[string]int `json:"would_publish,omitempty"`
	// Failed counts the events that could not be sent (after retrying
	// the entries EventBridge calls retryable).
	Failed int `json:"failed,omitempty"`
}

// eventsLine describes the events in words, "" when there are none.
func eventsLine(e *EventCounts, mode string) string {
	if e == nil {
		return ""
	}
	counts, verb := e.Published, "published"
	if mode == "plan" {
		counts, verb = e.WouldPublish, "would publish"
	}
	line := fmt.Sprintf("Events to %s: %s %s", e.Bus, verb, strings.Join(mapEntries(counts), ", "))
	if e.Failed > 0 {
		line += fmt.Sprintf("; %d could not be sent", e.Failed)
	}
	return line
}
