package cli

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/amicopier/amicopier/internal/termtable"
	"github.com/amicopier/amicopier/reconcile/report"
)

// Widths of text output when stdout is not a terminal.
const (
	// defaultWidth is used when stdout is not a terminal and COLUMNS is
	// not set: a file or a pipe gets tables a pager or an editor shows
	// without horizontal scrolling.
	defaultWidth = 100
	// minWidth is the narrowest layout; a narrower terminal gets lines
	// it wraps itself.
	minWidth = 40
)

// viewFlags are the flags that choose how much of a report the text
// formats show.
type viewFlags struct {
	wide      bool
	includeOK bool
}

// register adds --wide, and for the commands that print drift reports
// (inventory) --include-ok.
func (v *viewFlags) register(fs *flag.FlagSet, inventory bool) {
	if !inventory {
		fs.BoolVar(&v.wide, "wide", false, "print the tables whole: one line per row, every error in full, however wide (for grep and scripts)")
		return
	}
	fs.BoolVar(&v.wide, "wide", false, "print everything: tables one line per pair with every id in full, however wide (for grep and scripts), and Markdown with every pair instead of a summary")
	fs.BoolVar(&v.includeOK, "include-ok", false, "list ok pairs too, with each pair's copy AMI id, state and KMS key: the inventory (JSON lists only drifted pairs without it)")
}

// textWidth is the width tables fit: the terminal's when stdout is one,
// else $COLUMNS when it is a number, else defaultWidth; no limit with
// --wide.
func textWidth(env Env, wide bool) int {
	if wide {
		return 0
	}
	w := env.TerminalWidth
	if w <= 0 {
		if n, err := strconv.Atoi(strings.TrimSpace(env.Getenv("COLUMNS"))); err == nil && n > 0 {
			w = n
		}
	}
	if w <= 0 {
		w = defaultWidth
	}
	return max(w, minWidth)
}

// options are the text renderers' options for this command line.
func (v *viewFlags) options(env Env) report.Options {
	o := report.Options{Width: textWidth(env, v.wide)}
	if v.wide {
		o.MarkdownItems = -1
	}
	return o
}

// printWrapped prints text (after its leading newlines) wrapped to width.
func printWrapped(w io.Writer, width int, text string) {
	trimmed := strings.TrimLeft(text, "\n")
	fmt.Fprint(w, text[:len(text)-len(trimmed)])
	for _, line := range termtable.Wrap(trimmed, width) {
		fmt.Fprintln(w, line)
	}
}

// widthHelp is the part of --help that says how wide tables are.
const widthHelp = `Tables fit the terminal's width (on a terminal), else $COLUMNS, else 100 columns: source AMIs
are shown by name (their ids are listed under the table), account names are clipped, and reasons
wrap, or go under their row when the table is narrow. --wide prints one line per pair instead,
every id in full. Markdown is a summary for a ticket: the counts, the drift per account and the
first 20 pairs of each category (--wide: every pair).`
