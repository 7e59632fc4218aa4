package lambdafn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile"
)

// Kind is what an event asks for.
type Kind string

// Event kinds.
const (
	// KindSchedule is a scheduled full reconcile.
	KindSchedule Kind = "schedule"
	// KindSNS is AMIgo's SNS message about one baked AMI.
	KindSNS Kind = "sns"
	// KindAMIStateChange is EventBridge's "EC2 AMI State Change".
	KindAMIStateChange Kind = "ami-state-change"
	// KindCheck is a scheduled preflight check ({"mode": "check"}).
	KindCheck Kind = "check"
)

// ModeCheck is the mode of the preflight check payload.
const ModeCheck = "check"

// Detail types the handler recognises.
const (
	DetailTypeScheduled      = "Scheduled Event"
	DetailTypeAMIStateChange = "EC2 AMI State Change"
)

const (
	// maxEventBytes bounds the payload read: Lambda's own limit for an
	// asynchronous invocation is 256 KiB (1 MiB since 2025).
	maxEventBytes = 1 << 20
	// maxTargetEntries bounds the targetAccounts of one AMIgo message.
	maxTargetEntries = 1000
)

// Event is a parsed, validated invocation payload.
type Event struct {
	Kind Kind
	// Mode is the run mode: ModeRun, or ModePlan when a scheduled
	// event asks for a dry run ("detail": {"mode": "plan"}).
	Mode reconcile.Mode
	// Shard is the part of the organisation a sharded scheduled run
	// covers ({"shard": "I/N"}); zero: all of it.
	Shard reconcile.Shard
	// ImageID and Region name the one image of an SNS or AMI State
	// Change event.
	ImageID string
	Region  string
	// Account is the account an AMI State Change event comes from.
	Account string
	// State is the image state an AMI State Change event reports.
	State string
	// Targets and Invalid are the parsed targetAccounts of an AMIgo
	// message: references still to be checked against the organisation,
	// and entries that are no target at all.
	Targets []cloud.TargetRef
	Invalid []cloud.InvalidTarget
}

// AmigoMessage is what amicopier reads of the message AMIgo publishes to
// SNS for a baked AMI (README, "Events the function accepts"). AMIgo also sends name, description and
// tags; amicopier does not use them (the image's own tags are read from
// EC2), so they are neither kept nor type-checked: an AMIgo release that
// changes their shape cannot make amicopier refuse its messages.
type AmigoMessage struct {
	SourceAMI    string
	SourceRegion string
	// TargetAccounts are the entries of targetAccounts, in order.
	TargetAccounts []string
}

// FieldError is a malformed event: Field is the path of the offending
// value in the payload ("sns.Records[0].Sns.Message.sourceAmi").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// quote renders an untrusted value for an error message: quoted,
// escaped, and at most 64 bytes of it.
func quote(s string) string {
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") + "..."
	}
	return fmt.Sprintf("%q", s)
}

// decodeInto decodes JSON into v, naming the field of a type mismatch.
func decodeInto(data []byte, v any, prefix string) error {
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := prefix
		if te.Field != "" {
			field += "." + te.Field
		}
		return fieldErr(field, "a JSON %s where %s is expected", te.Value, describeGoType(te.Type.String()))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fieldErr(prefix, "not valid JSON (offset %d): %v", se.Offset, err)
	}
	return fieldErr(prefix, "%v", err)
}

func describeGoType(t string) string {
	switch {
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "struct"), strings.HasPrefix(t, "lambdafn."):
		return "an object"
	}
	return t
}

// ParseEvent recognises and parses an invocation payload: an SNS event
// (a "Records" list), a scheduled event ("detail-type": "Scheduled
// Event"), an EC2 AMI State Change event, one shard of a sharded
// scheduled run ({"shard": "I/N"}, from the Step Functions map of the
// deployment), or a scheduled preflight check ({"mode": "check"}). Anything else is an error naming what is wrong.
func ParseEvent(raw []byte) (Event, error) {
	if len(raw) > maxEventBytes {
		return Event{}, fieldErr("event", "%d bytes, more than the %d this handler reads", len(raw), maxEventBytes)
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Event{}, fieldErr("event", "not a JSON object")
	}
	var probe struct {
		Records    json.RawMessage `json:"Records"`
		DetailType *string         `json:"detail-type"`
		Shard      json.RawMessage `json:"shard"`
		Mode       *string         `json:"mode"`
	}
	if err := decodeInto(trimmed, &probe, "event"); err != nil {
		return Event{}, err
	}
	switch {
	case probe.Records != nil && probe.DetailType != nil:
		// Which one was meant? Guessing could reconcile the wrong thing.
		return Event{}, fieldErr("event", `both "Records" (an SNS event) and "detail-type" (an EventBridge event): an event is one or the other`)
	case probe.Records != nil:
		return ParseSNS(trimmed)
	case probe.DetailType == nil && probe.Mode != nil && *probe.Mode == ModeCheck:
		return ParseCheck(trimmed)
	case probe.DetailType == nil && probe.Shard != nil:
		return ParseShardRun(trimmed)
	case probe.DetailType == nil && probe.Mode != nil:
		return ParseCheck(trimmed)
	case probe.DetailType == nil:
		return Event{}, fieldErr("event", `neither an SNS event ("Records") nor an EventBridge event ("detail-type"): amicopier handles scheduled events, AMIgo's SNS message, EC2 AMI State Change, {"shard": "I/N"} and {"mode": "check"}`)
	case *probe.DetailType == DetailTypeScheduled:
		return ParseScheduled(trimmed)
	case *probe.DetailType == DetailTypeAMIStateChange:
		return ParseAMIStateChange(trimmed)
	}
	return Event{}, fieldErr("event.detail-type", "%s is not an event amicopier handles (%q or %q)", quote(*probe.DetailType), DetailTypeScheduled, DetailTypeAMIStateChange)
}

// ParseScheduled parses a scheduled event: the payload of an EventBridge
// schedule rule, or of an EventBridge Scheduler schedule whose input is
// {"detail-type": "Scheduled Event"}. An optional "detail": {"mode":
// "plan"} asks for a dry run instead of a reconcile.
func ParseScheduled(raw []byte) (Event, error) {
	var ev struct {
		DetailType string          `json:"detail-type"`
		Detail     json.RawMessage `json:"detail"`
	}
	if err := decodeInto(raw, &ev, "event"); err != nil {
		return Event{}, err
	}
	if ev.DetailType != DetailTypeScheduled {
		return Event{}, fieldErr("event.detail-type", "%s, want %q", quote(ev.DetailType), DetailTypeScheduled)
	}
	out := Event{Kind: KindSchedule, Mode: reconcile.ModeRun}
	if len(ev.Detail) == 0 || string(ev.Detail) == "null" {
		return out, nil
	}
	var detail struct {
		Mode *string `json:"mode"`
	}
	if err := decodeInto(ev.Detail, &detail, "event.detail"); err != nil {
		return Event{}, err
	}
	if detail.Mode != nil {
		switch reconcile.Mode(*detail.Mode) {
		case reconcile.ModeRun, reconcile.ModePlan:
			out.Mode = reconcile.Mode(*detail.Mode)
		default:
			return Event{}, fieldErr("event.detail.mode", "%s is not %q or %q", quote(*detail.Mode), reconcile.ModeRun, reconcile.ModePlan)
		}
	}
	return out, nil
}

// ParseCheck parses the payload of a scheduled preflight check:
// {"mode": "check"}, optionally with "shard": "I/N" for one shard of the
// accounts. Other fields are refused: a payload meant for something else
// must not run a check by accident.
func ParseCheck(raw []byte) (Event, error) {
	var ev map[string]json.RawMessage
	if err := decodeInto(raw, &ev, "event"); err != nil {
		return Event{}, err
	}
	var mode string
	if err := decodeInto(ev["mode"], &mode, "event.mode"); err != nil {
		return Event{}, err
	}
	if mode != ModeCheck {
		return Event{}, fieldErr("event.mode", "%s: a payload without detail-type or shard is a preflight check, {\"mode\": %q}", quote(mode), ModeCheck)
	}
	out := Event{Kind: KindCheck}
	for k, v := range ev {
		switch k {
		case "mode":
		case "shard":
			var s string
			if err := decodeInto(v, &s, "event.shard"); err != nil {
				return Event{}, err
			}
			sh, err := reconcile.ParseShard(s)
			if err != nil || sh.Count == 0 {
				return Event{}, fieldErr("event.shard", "%s is not a shard I/N with 1 <= I <= N <= %d", quote(s), reconcile.MaxShards)
			}
			out.Shard = sh
		default:
			return Event{}, fieldErr("event."+k, "not a field of the preflight check payload (mode, shard)")
		}
	}
	return out, nil
}

// ParseShardRun parses the payload of one shard of a sharded scheduled
// run: {"shard": "I/N"}, optionally with "mode": "plan".
func ParseShardRun(raw []byte) (Event, error) {
	var ev struct {
		Shard *string `json:"shard"`
		Mode  *string `json:"mode"`
	}
	if err := decodeInto(raw, &ev, "event"); err != nil {
		return Event{}, err
	}
	if ev.Shard == nil {
		return Event{}, fieldErr("event.shard", "missing")
	}
	sh, err := reconcile.ParseShard(*ev.Shard)
	if err != nil || sh.Count == 0 {
		return Event{}, fieldErr("event.shard", "%s is not a shard I/N with 1 <= I <= N <= %d", quote(*ev.Shard), reconcile.MaxShards)
	}
	out := Event{Kind: KindSchedule, Mode: reconcile.ModeRun, Shard: sh}
	if ev.Mode != nil {
		switch reconcile.Mode(*ev.Mode) {
		case reconcile.ModeRun, reconcile.ModePlan:
			out.Mode = reconcile.Mode(*ev.Mode)
		default:
			return Event{}, fieldErr("event.mode", "%s is not %q or %q", quote(*ev.Mode), reconcile.ModeRun, reconcile.ModePlan)
		}
	}
	return out, nil
}

// ParseSNS parses an SNS event carrying AMIgo's message. SNS delivers one
// record per invocation; a payload with another number of records is
// refused rather than half handled. The envelope is decoded level by
// level, so an error names the offending value with its list index
// ("sns.Records[0].Sns.Message").
func ParseSNS(raw []byte) (Event, error) {
	var ev struct {
		Records json.RawMessage `json:"Records"`
	}
	if err := decodeInto(raw, &ev, "sns"); err != nil {
		return Event{}, err
	}
	var records []json.RawMessage
	if err := decodeInto(ev.Records, &records, "sns.Records"); err != nil {
		return Event{}, err
	}
	switch n := len(records); {
	case n == 0:
		return Event{}, fieldErr("sns.Records", "no record")
	case n > 1:
		return Event{}, fieldErr("sns.Records", "%d records; SNS delivers one per invocation", n)
	}
	const at = "sns.Records[0]"
	var rec struct {
		EventSource string          `json:"EventSource"`
		Sns         json.RawMessage `json:"Sns"`
	}
	if err := decodeInto(records[0], &rec, at); err != nil {
		return Event{}, err
	}
	var sns struct {
		Message *string `json:"Message"`
	}
	if len(rec.Sns) > 0 {
		if err := decodeInto(rec.Sns, &sns, at+".Sns"); err != nil {
			return Event{}, err
		}
	}
	if rec.EventSource != "aws:sns" {
		return Event{}, fieldErr(at+".EventSource", "%s, want \"aws:sns\"", quote(rec.EventSource))
	}
	if sns.Message == nil {
		return Event{}, fieldErr(at+".Sns.Message", "missing")
	}
	msg, err := ParseAmigoMessage(*sns.Message, at+".Sns.Message")
	if err != nil {
		return Event{}, err
	}
	out := Event{Kind: KindSNS, Mode: reconcile.ModeRun, ImageID: msg.SourceAMI, Region: msg.SourceRegion}
	if len(msg.TargetAccounts) > maxTargetEntries {
		out.Invalid = append(out.Invalid, cloud.InvalidTarget{
			Token:  fmt.Sprintf("targetAccounts[%d:]", maxTargetEntries),
			Origin: "SNS message of " + msg.SourceAMI,
			Reason: fmt.Sprintf("more than %d targets; the rest are ignored", maxTargetEntries),
		})
	}
	for i, entry := range msg.TargetAccounts[:min(len(msg.TargetAccounts), maxTargetEntries)] {
		refs, invalid := cloud.ParseTargetList(entry, fmt.Sprintf("SNS message targetAccounts[%d]", i))
		out.Targets = append(out.Targets, refs...)
		out.Invalid = append(out.Invalid, invalid...)
	}
	return out, nil
}

// ParseAmigoMessage parses AMIgo's SNS message (a JSON document in a
// string); field prefixes the path in errors. targetAccounts is decoded
// entry by entry, so an entry that is not a string is named by its index
// ("....targetAccounts[2]"). Only sourceAmi, sourceRegion and
// targetAccounts are read (see AmigoMessage).
func ParseAmigoMessage(message, field string) (AmigoMessage, error) {
	var out AmigoMessage
	trimmed := strings.TrimSpace(message)
	if !strings.HasPrefix(trimmed, "{") {
		return out, fieldErr(field, "not a JSON object (AMIgo publishes {\"sourceAmi\": ..., \"sourceRegion\": ..., \"targetAccounts\": [...]})")
	}
	var msg struct {
		SourceAMI      string          `json:"sourceAmi"`
		SourceRegion   string          `json:"sourceRegion"`
		TargetAccounts json.RawMessage `json:"targetAccounts"`
	}
	if err := decodeInto([]byte(trimmed), &msg, field); err != nil {
		return out, err
	}
	switch {
	case msg.SourceAMI == "":
		return out, fieldErr(field+".sourceAmi", "missing")
	case !cloud.IsImageID(msg.SourceAMI):
		return out, fieldErr(field+".sourceAmi", "%s is not an AMI id", quote(msg.SourceAMI))
	case msg.SourceRegion == "":
		return out, fieldErr(field+".sourceRegion", "missing")
	case !cloud.IsRegion(msg.SourceRegion):
		return out, fieldErr(field+".sourceRegion", "%s is not an AWS Region name", quote(msg.SourceRegion))
	}
	out.SourceAMI, out.SourceRegion = msg.SourceAMI, msg.SourceRegion
	if len(msg.TargetAccounts) == 0 {
		return out, nil
	}
	var entries []json.RawMessage
	if err := decodeInto(msg.TargetAccounts, &entries, field+".targetAccounts"); err != nil {
		return out, err
	}
	out.TargetAccounts = make([]string, 0, len(entries))
	for i, e := range entries {
		var entry string
		if err := decodeInto(e, &entry, fmt.Sprintf("%s.targetAccounts[%d]", field, i)); err != nil {
			return out, err
		}
		out.TargetAccounts = append(out.TargetAccounts, entry)
	}
	return out, nil
}

// ParseAMIStateChange parses an EventBridge "EC2 AMI State Change" event.
// Every state parses; the handler acts on "available" only.
func ParseAMIStateChange(raw []byte) (Event, error) {
	var ev struct {
		DetailType string `json:"detail-type"`
		Source     string `json:"source"`
		Account    string `json:"account"`
		Region     string `json:"region"`
		Detail     *struct {
			ImageID string `json:"ImageId"`
			State   string `json:"State"`
		} `json:"detail"`
	}
	if err := decodeInto(raw, &ev, "event"); err != nil {
		return Event{}, err
	}
	switch {
	case ev.DetailType != DetailTypeAMIStateChange:
		return Event{}, fieldErr("event.detail-type", "%s, want %q", quote(ev.DetailType), DetailTypeAMIStateChange)
	case ev.Source != "aws.ec2":
		return Event{}, fieldErr("event.source", "%s, want \"aws.ec2\"", quote(ev.Source))
	case !cloud.IsAccountID(ev.Account):
		return Event{}, fieldErr("event.account", "%s is not a 12-digit account id", quote(ev.Account))
	case !cloud.IsRegion(ev.Region):
		return Event{}, fieldErr("event.region", "%s is not an AWS Region name", quote(ev.Region))
	case ev.Detail == nil:
		return Event{}, fieldErr("event.detail", "missing")
	case !cloud.IsImageID(ev.Detail.ImageID):
		return Event{}, fieldErr("event.detail.ImageId", "%s is not an AMI id", quote(ev.Detail.ImageID))
	case ev.Detail.State == "":
		return Event{}, fieldErr("event.detail.State", "missing")
	}
	return Event{
		Kind: KindAMIStateChange, Mode: reconcile.ModeRun, ImageID: ev.Detail.ImageID,
		Region: ev.Region, Account: ev.Account, State: ev.Detail.State,
	}, nil
}
