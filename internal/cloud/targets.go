package cloud

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// TargetKind says what a target reference names.
type TargetKind int

// Target kinds.
const (
	TargetAccount TargetKind = iota + 1
	TargetOU
	// TargetOrganization is "*": every ACTIVE account of the organisation.
	TargetOrganization
)

// TargetRef is one target named by metadata, before it is checked against
// the organisation.
type TargetRef struct {
	Kind TargetKind
	// ID is the account, OU or root id; empty for TargetOrganization.
	ID string
	// Origin says where the reference came from ("tag amicopier:targets",
	// "rule ubuntu"), so a rejection can name it.
	Origin string
}

// InvalidTarget is a token of target metadata that is not a target at all.
type InvalidTarget struct {
	// Token is the offending value, quoted and shortened for display.
	Token  string
	Origin string
	Reason string
}

// TargetSpec is what one metadata source says about an image.
type TargetSpec struct {
	Refs    []TargetRef
	Regions []string
	Invalid []InvalidTarget
}

// TargetSource reads target metadata for an image: the AMI tag, the
// config rules, AMIgo's recipes table. Sources are combined by union.
type TargetSource interface {
	Targets(ctx context.Context, img *Image) (TargetSpec, error)
}

// maxTargetTokens bounds how much of an (untrusted) tag value is read.
// A 256-character tag value holds at most 19 account ids.
const maxTargetTokens = 64

// ParseTargetList parses a list of targets as written in an AMI tag or
// an event: account ids, OU ids, root ids or "*", separated by commas
// and/or white space. Everything else comes back as InvalidTarget naming
// the token. The input is untrusted (anyone with ec2:CreateTags in the
// source account can write the tag), so it is bounded and never trusted
// beyond its shape: membership of the organisation is checked later.
func ParseTargetList(value, origin string) (refs []TargetRef, invalid []InvalidTarget) {
	tokens := strings.FieldsFunc(value, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(tokens) > maxTargetTokens {
		invalid = append(invalid, InvalidTarget{
			Token:  displayToken(strings.Join(tokens[maxTargetTokens:], ",")),
			Origin: origin,
			Reason: fmt.Sprintf("more than %d targets; the rest are ignored", maxTargetTokens),
		})
		tokens = tokens[:maxTargetTokens]
	}
	seen := make(map[string]bool, len(tokens))
	for _, tok := range tokens {
		if seen[tok] {
			continue
		}
		seen[tok] = true
		switch {
		case tok == "*":
			refs = append(refs, TargetRef{Kind: TargetOrganization, Origin: origin})
		case IsAccountID(tok):
			refs = append(refs, TargetRef{Kind: TargetAccount, ID: tok, Origin: origin})
		case IsOUID(tok) || IsRootID(tok):
			refs = append(refs, TargetRef{Kind: TargetOU, ID: tok, Origin: origin})
		default:
			invalid = append(invalid, InvalidTarget{
				Token:  displayToken(tok),
				Origin: origin,
				Reason: "not a 12-digit account id, an OU id (ou-...), a root id (r-...) or *",
			})
		}
	}
	return refs, invalid
}

// displayToken makes an untrusted token safe to print: quoted, escaped,
// and at most 64 characters of it.
func displayToken(tok string) string {
	const limit = 64
	if len(tok) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(tok[cut]) {
			cut--
		}
		tok = tok[:cut] + "..."
	}
	return fmt.Sprintf("%q", tok)
}
