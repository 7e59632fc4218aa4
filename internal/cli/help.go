package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// usageDoc is what a command's --help says besides its flags, which are
// listed from the flag set itself so that the usage line and the flag
// list can never leave one out.
type usageDoc struct {
	// args names the positional arguments after the flags ("" for none).
	args string
	// description is the paragraph after the usage line.
	description string
	// examples are command lines, each with an optional "# comment".
	examples []string
	// exits are the command's own exit codes; usage and signal codes are
	// added by exitCodes.
	exits []exitDoc
	// epilogue follows the flags (AWS access, environment variables).
	epilogue string
}

type exitDoc struct {
	code    int
	meaning string
}

// Exit codes every working command shares.
var (
	exitDocUsage = exitDoc{ExitUsage, "bad command line: an unknown flag, or a bad or empty value"}
	exitDocInt   = exitDoc{ExitInterrupted, "interrupted by SIGINT (Ctrl-C); a second Ctrl-C exits at once"}
	exitDocTerm  = exitDoc{ExitTerminated, "terminated by SIGTERM"}
)

// exitCodes is the exit-code section of a command: its own codes, then
// the bad command line and the signals.
func (d usageDoc) exitCodes() []exitDoc {
	return append(slices.Clone(d.exits), exitDocUsage, exitDocInt, exitDocTerm)
}

// newFlags builds a command's flag set. Parse errors are reported by
// parseFlags, one line each; --help prints writeHelp.
func newFlags(name string, doc usageDoc, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() { writeHelp(fs.Output(), fs, doc) }
	return fs
}

// writeHelp prints a command's help: the usage line with every flag, the
// description, the flags in the README's double-dash style, examples and
// exit codes.
func writeHelp(w io.Writer, fs *flag.FlagSet, doc usageDoc) {
	line := usageLine(fs)
	if doc.args != "" {
		line += " " + doc.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", line, strings.TrimRight(doc.description, "\n"))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nFlags:")
		printFlags(w, fs)
	}
	if len(doc.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range doc.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	writeExitCodes(w, doc.exitCodes())
	if doc.epilogue != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(doc.epilogue, "\n"))
	}
}

// writeExitCodes prints an exit-code section.
func writeExitCodes(w io.Writer, codes []exitDoc) {
	fmt.Fprintln(w, "\nExit codes:")
	for _, e := range codes {
		fmt.Fprintf(w, "  %-4d %s\n", e.code, e.meaning)
	}
}

// repeatable marks flag values that may be given more than once.
type repeatable interface{ repeatable() }

func (*listFlag) repeatable() {}

// flagSyntax is "--name VALUE" ("--name" for a boolean), VALUE being the
// back-quoted word of the flag's usage text.
func flagSyntax(f *flag.Flag) string {
	name, _ := flag.UnquoteUsage(f)
	if isBool(f) {
		return "--" + f.Name
	}
	if name == "" || name == "value" {
		name = "VALUE"
	}
	return "--" + f.Name + " " + name
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// usageLine is "amicopier NAME [--flag VALUE]..." wrapped at 100
// columns, every flag in it.
func usageLine(fs *flag.FlagSet) string {
	var b strings.Builder
	head := "amicopier " + fs.Name()
	b.WriteString(head)
	col := len("Usage: ") + len(head)
	indent := strings.Repeat(" ", len("Usage: ")+len(head))
	fs.VisitAll(func(f *flag.Flag) {
		part := "[" + flagSyntax(f) + "]"
		if _, ok := f.Value.(repeatable); ok {
			part += "..."
		}
		if col+1+len(part) > 100 {
			b.WriteString("\n" + indent)
			col = len(indent)
		}
		b.WriteString(" " + part)
		col += 1 + len(part)
	})
	return b.String()
}

// printFlags lists the flags as "  --name VALUE" over their usage and
// default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		_, usage := flag.UnquoteUsage(f)
		if def := defaultText(f); def != "" {
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(w, "  %s\n", flagSyntax(f))
		for _, line := range strings.Split(usage, "\n") {
			fmt.Fprintf(w, "        %s\n", line)
		}
	})
}

// defaultText is the default worth showing, "" for a zero value.
func defaultText(f *flag.Flag) string {
	switch f.DefValue {
	case "", "0", "0s", "false":
		return ""
	}
	if g, ok := f.Value.(flag.Getter); ok {
		if _, isString := g.Get().(string); isString {
			return fmt.Sprintf("%q", f.DefValue)
		}
	}
	return f.DefValue
}

// parseFlags parses args; it returns an exit code and false when the
// command must stop (help asked for, or a bad command line). A bad flag
// gets one line saying what is wrong and one line of hint, not the whole
// help. Commands take no positional arguments unless they parse them
// with parseFlagsArgs.
func parseFlags(fs *flag.FlagSet, args []string, env Env) (int, bool) {
	return parseFlagsArgs(fs, args, env, 0)
}

// parseFlagsArgs is parseFlags for a command taking up to maxArgs
// positional arguments (fs.Args()).
func parseFlagsArgs(fs *flag.FlagSet, args []string, env Env, maxArgs int) (int, bool) {
	if env.inspect != nil {
		// Shell completion only wants the flag set.
		env.inspect(fs)
		return ExitOK, false
	}
	// The flag package prints its error and the usage itself; say it
	// once, in one line, instead.
	usage := fs.Usage
	fs.Usage = func() {}
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(env.Stdout)
		fs.Usage()
		return ExitOK, false
	case err != nil:
		msg, hint := explainFlagError(fs, err)
		fmt.Fprintf(env.Stderr, "amicopier %s: %s\n", fs.Name(), msg)
		fmt.Fprintf(env.Stderr, "%s\n", hint)
		return ExitUsage, false
	case fs.NArg() > maxArgs:
		fmt.Fprintf(env.Stderr, "amicopier %s: unexpected argument %q\n", fs.Name(), fs.Arg(maxArgs))
		fmt.Fprintf(env.Stderr, "See 'amicopier help %s' for what it takes.\n", fs.Name())
		return ExitUsage, false
	}
	return ExitOK, true
}

// The flag package's error messages (flag.FlagSet.failf callers).
var (
	errUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	errNoValue   = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
	errBadValue  = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-+([^:]*): (.*)$`)
)

// explainFlagError rewrites a flag package error in the README's
// double-dash style and adds a hint.
func explainFlagError(fs *flag.FlagSet, err error) (msg, hint string) {
	hint = fmt.Sprintf("Run 'amicopier help %s' for its flags.", fs.Name())
	text := err.Error()
	if m := errUndefined.FindStringSubmatch(text); m != nil {
		msg = "unknown flag --" + m[1]
		if s := suggestFlag(fs, m[1]); s != "" {
			hint = fmt.Sprintf("Did you mean --%s? Run 'amicopier help %s' for its flags.", s, fs.Name())
		}
		return msg, hint
	}
	if m := errNoValue.FindStringSubmatch(text); m != nil {
		if f := fs.Lookup(m[1]); f != nil {
			return fmt.Sprintf("%s: the value is missing", flagSyntax(f)), hint
		}
		return "--" + m[1] + ": the value is missing", hint
	}
	if m := errBadValue.FindStringSubmatch(text); m != nil {
		value, name, why := m[1], m[2], m[3]
		if strings.HasPrefix(why, "--") {
			// Our own flag values name themselves.
			return why, hint
		}
		if f := fs.Lookup(name); f != nil {
			if g, ok := f.Value.(flag.Getter); ok {
				switch g.Get().(type) {
				case bool:
					why = "want true or false"
				case time.Duration:
					why = "not a duration (for example 90s, 15m or 2h)"
				case int, int64, uint, uint64:
					why = "not a whole number"
				}
			}
		}
		return fmt.Sprintf("--%s %s: %s", name, value, why), hint
	}
	return text, hint
}

// suggestFlag returns the flag whose name shares the longest prefix with
// typed (at least three characters, or typed is a part of it), "" when
// none is close.
func suggestFlag(fs *flag.FlagSet, typed string) string {
	best, bestLen := "", 0
	fs.VisitAll(func(f *flag.Flag) {
		n := commonPrefix(f.Name, typed)
		if strings.Contains(f.Name, typed) || strings.Contains(typed, f.Name) {
			n = max(n, min(len(f.Name), len(typed)))
		}
		if n > bestLen {
			best, bestLen = f.Name, n
		}
	})
	if bestLen < 3 {
		return ""
	}
	return best
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
