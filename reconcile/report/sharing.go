package report

import (
	"fmt"
	"strings"
)

// sharingLines describes, one line per image, what a run granted and took
// back (a dry run: would), the grants of other tools it found, and the
// copies waiting for room in the sharing quota; then the images of the
// source account that are not sources. Nothing when there is nothing to
// say.
func sharingLines(r *Report) []string {
	var out []string
	verb := func(done, would string) string {
		if r.Mode == "plan" {
			return would
		}
		return done
	}
	for _, s := range r.Sharing {
		var parts []string
		if s.GrantedAccounts+s.GrantedOUs+s.GrantedVolume > 0 {
			parts = append(parts, fmt.Sprintf("%s launch permission to %d account(s) and %d OU(s), create-volume permission to %d account(s)",
				verb("granted", "would grant"), s.GrantedAccounts, s.GrantedOUs, s.GrantedVolume))
		}
		if len(s.Revoked) > 0 {
			parts = append(parts, fmt.Sprintf("%s %d grant(s) amicopier made: %s", verb("took back", "would take back"), len(s.Revoked), listSome(s.Revoked, 10)))
		}
		if len(s.Foreign) > 0 {
			parts = append(parts, fmt.Sprintf("%d grant(s) by other tools to non-targets: %s", len(s.Foreign), listSome(s.Foreign, 10)))
		}
		if s.Deferred > 0 {
			parts = append(parts, fmt.Sprintf("%d account(s) wait for room in the sharing quota", s.Deferred))
		}
		if len(parts) == 0 {
			continue
		}
		line := fmt.Sprintf("%s (%s): %s", s.Image, s.Region, strings.Join(parts, "; "))
		if s.Entities > 0 {
			line += fmt.Sprintf(" (shared with %d of at most 1,000 entities)", s.Entities)
		}
		out = append(out, line)
	}
	return out
}

// skippedLines lists the source account's images that are not sources.
func skippedLines(r *Report) []string {
	var out []string
	for _, s := range r.Skipped {
		name := s.ID
		if s.Name != "" {
			name += " (" + s.Name + ")"
		}
		out = append(out, fmt.Sprintf("%s %s: %s", name, s.Region, s.Reason))
	}
	if r.CopiesInSource > 0 {
		out = append(out, fmt.Sprintf("%d copy AMI(s) in the source account (CopiedFromAMI or amicopier's marker): never taken for sources", r.CopiesInSource))
	}
	return out
}

func listSome(xs []string, n int) string {
	if len(xs) <= n {
		return strings.Join(xs, ", ")
	}
	return strings.Join(xs[:n], ", ") + fmt.Sprintf(" and %d more", len(xs)-n)
}

// writeSharingText appends the sharing and skipped-source sections of
// the table output.
func writeSharingText(b *strings.Builder, r *Report, width int) {
	for _, sec := range []struct {
		title string
		lines []string
	}{{"Sharing:", sharingLines(r)}, {"Deprecation:", deprecationLines(r)}, {"Not sources:", skippedLines(r)}} {
		if len(sec.lines) == 0 {
			continue
		}
		b.WriteString("\n" + sec.title + "\n")
		for _, l := range sec.lines {
			writeWrapped(b, l, width, 2)
		}
	}
}

// writeSharingMarkdown is writeSharingText for Markdown.
func writeSharingMarkdown(b *strings.Builder, r *Report, heading string) {
	for _, sec := range []struct {
		title string
		lines []string
	}{{"Sharing", sharingLines(r)}, {"Deprecation", deprecationLines(r)}, {"Not sources", skippedLines(r)}} {
		if len(sec.lines) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n%s %s\n\n", heading, sec.title)
		for _, l := range sec.lines {
			fmt.Fprintf(b, "- %s\n", mdText(l))
		}
	}
}
