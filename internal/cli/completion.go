package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/amicopier/amicopier/reconcile/report"
)

// completionShells are the shells `amicopier completion` writes for.
func completionShells() []string { return []string{"bash", "zsh", "fish"} }

func runCompletion(ctx context.Context, args []string, env Env) int {
	fs := newFlags("completion", usageDoc{
		args: "bash|zsh|fish",
		description: "Print a shell completion script: commands, the flags of each command, and the values of\n" +
			"--output, --log-level and --log-format; --config and other files complete as file names.",
		examples: []string{
			"amicopier completion bash > /etc/bash_completion.d/amicopier          # bash, every shell",
			"source <(amicopier completion bash)                                   # bash, this shell",
			"amicopier completion zsh > \"${fpath[1]}/_amicopier\"                   # zsh (then compinit)",
			"amicopier completion fish > ~/.config/fish/completions/amicopier.fish # fish",
		},
		exits: []exitDoc{{ExitOK, "the script was printed"}},
	}, env)
	if code, ok := parseFlagsArgs(fs, args, env, 1); !ok {
		return code
	}
	shell := fs.Arg(0)
	if !slices.Contains(completionShells(), shell) {
		fmt.Fprintf(env.Stderr, "amicopier completion: shell %q: want one of %s\n", shell, strings.Join(completionShells(), ", "))
		fmt.Fprintln(env.Stderr, "Run 'amicopier help completion' for how to install the script.")
		return ExitUsage
	}
	cmds := completionCommands(ctx)
	switch shell {
	case "bash":
		writeBashCompletion(env.Stdout, cmds)
	case "zsh":
		writeZshCompletion(env.Stdout, cmds)
	case "fish":
		writeFishCompletion(env.Stdout, cmds)
	}
	return ExitOK
}

// completionCommand is a command as completion sees it.
type completionCommand struct {
	// name is "plan", or "state init" for a subcommand.
	name    string
	summary string
	flags   []completionFlag
	// args are the values of its positional argument, if any.
	args []string
}

type completionFlag struct {
	name, summary string
	// takesValue is false for a boolean flag.
	takesValue bool
	// file: the value is a file name; choices: one of these; neither:
	// free text (a duration, an id), nothing to offer.
	file    bool
	choices []string
}

// completionCommands lists every command with its flags, read from the
// flag sets the commands themselves build (Env.inspect), so a new flag
// completes without touching this file.
func completionCommands(ctx context.Context) []completionCommand {
	var out []completionCommand
	for _, c := range commands() {
		cc := completionCommand{name: c.name, summary: c.summary}
		switch c.name {
		case "help":
			for _, o := range commands() {
				cc.args = append(cc.args, o.name)
			}
			out = append(out, cc)
			continue
		case "completion":
			cc.args = completionShells()
		}
		run := c.run
		args := []string(nil)
		if c.name == "state" {
			// state has subcommands: complete them, and their flags.
			out = append(out, completionCommand{name: "state", summary: c.summary, args: []string{"init"}})
			cc = completionCommand{name: "state init", summary: "create the state store the configuration names"}
			args = []string{"init"}
		}
		var fs *flag.FlagSet
		run(ctx, args, Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" },
			inspect: func(f *flag.FlagSet) { fs = f }})
		if fs != nil {
			fs.VisitAll(func(f *flag.Flag) { cc.flags = append(cc.flags, describeFlag(c.name, f)) })
		}
		out = append(out, cc)
	}
	return out
}

func describeFlag(cmd string, f *flag.Flag) completionFlag {
	meta, usage := flag.UnquoteUsage(f)
	cf := completionFlag{name: f.Name, summary: strings.SplitN(usage, "\n", 2)[0], takesValue: !isBool(f)}
	switch {
	case !cf.takesValue:
	case meta == "FILE":
		cf.file = true
	case f.Name == "output" && cmd == "status":
		cf.choices = []string{"table", "json"}
	case f.Name == "output":
		cf.choices = report.Formats
	case f.Name == "log-level":
		cf.choices = logLevels()
	case f.Name == "log-format":
		cf.choices = logFormats()
	}
	return cf
}

func writeBashCompletion(w io.Writer, cmds []completionCommand) {
	var top []string
	for _, c := range cmds {
		if !strings.Contains(c.name, " ") {
			top = append(top, c.name)
		}
	}
	fmt.Fprintf(w, `# bash completion for amicopier; load it with: source <(amicopier completion bash)
_amicopier() {
    local cur prev cmd
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W %q -- "$cur"))
        return
    fi
    cmd="${COMP_WORDS[1]}"
    if [[ $cmd == state && $COMP_CWORD -gt 2 ]]; then
        cmd="state ${COMP_WORDS[2]}"
    fi
    case "$cmd" in
`, strings.Join(append(top, "--help", "--version"), " "))
	for _, c := range cmds {
		if len(c.args) > 0 {
			fmt.Fprintf(w, "    %q)\n        [[ $COMP_CWORD -eq %d ]] && COMPREPLY=($(compgen -W %q -- \"$cur\"))\n        return ;;\n",
				c.name, len(strings.Fields(c.name))+1, strings.Join(c.args, " "))
		}
	}
	fmt.Fprint(w, "    esac\n    case \"$prev\" in\n")
	// Values: the same flag takes the same values in every command but
	// --output (status has two formats), so that one goes by command.
	values := map[string]string{}
	var order []string
	for _, c := range cmds {
		for _, f := range c.flags {
			if !f.takesValue {
				continue
			}
			key := "--" + f.name
			action := "return ;;"
			switch {
			case f.file:
				action = "compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\")); return ;;"
			case len(f.choices) > 0 && f.name == "output":
				action = "case \"$cmd\" in status) COMPREPLY=($(compgen -W \"table json\" -- \"$cur\")) ;; *) COMPREPLY=($(compgen -W " +
					fmt.Sprintf("%q", strings.Join(report.Formats, " ")) + " -- \"$cur\")) ;; esac; return ;;"
			case len(f.choices) > 0:
				action = fmt.Sprintf("COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;", strings.Join(f.choices, " "))
			}
			if _, seen := values[key]; !seen {
				order = append(order, key)
			}
			values[key] = action
		}
	}
	for _, key := range order {
		fmt.Fprintf(w, "    %s) %s\n", key, values[key])
	}
	fmt.Fprint(w, "    esac\n    case \"$cmd\" in\n")
	for _, c := range cmds {
		if len(c.flags) == 0 && len(c.args) > 0 {
			continue
		}
		names := []string{"--help"}
		for _, f := range c.flags {
			names = append(names, "--"+f.name)
		}
		fmt.Fprintf(w, "    %q) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", c.name, strings.Join(names, " "))
	}
	fmt.Fprint(w, "    esac\n}\ncomplete -F _amicopier amicopier\n")
}

// zshQuote makes s safe inside a single-quoted zsh _arguments spec.
func zshQuote(s string) string {
	r := strings.NewReplacer("'", "'\\''", "[", "(", "]", ")", ":", "\\:", "`", "")
	return r.Replace(s)
}

func writeZshCompletion(w io.Writer, cmds []completionCommand) {
	fmt.Fprint(w, "#compdef amicopier\n# zsh completion for amicopier; save it as _amicopier in a directory of $fpath\n\n_amicopier() {\n")
	fmt.Fprint(w, "    local -a commands\n    commands=(\n")
	for _, c := range cmds {
		if !strings.Contains(c.name, " ") {
			fmt.Fprintf(w, "        '%s:%s'\n", c.name, zshQuote(c.summary))
		}
	}
	fmt.Fprint(w, "    )\n    if (( CURRENT == 2 )); then\n        _describe -t commands 'amicopier command' commands\n        return\n    fi\n")
	fmt.Fprint(w, "    local cmd=${words[2]}\n    if [[ $cmd == state ]] && (( CURRENT > 3 )); then\n        cmd=\"state ${words[3]}\"\n        words=(${words[3,-1]})\n        (( CURRENT -= 2 ))\n    else\n        words=(${words[2,-1]})\n        (( CURRENT -= 1 ))\n    fi\n    case $cmd in\n")
	for _, c := range cmds {
		fmt.Fprintf(w, "    %q)\n        _arguments \\\n            '--help[show the help of the command]'", c.name)
		for _, f := range c.flags {
			spec := fmt.Sprintf("'--%s[%s]", f.name, zshQuote(f.summary))
			switch {
			case !f.takesValue:
			case f.file:
				spec += ":file:_files"
			case len(f.choices) > 0:
				spec += ":value:(" + strings.Join(f.choices, " ") + ")"
			default:
				spec += ":value: "
			}
			fmt.Fprintf(w, " \\\n            %s'", spec)
		}
		if len(c.args) > 0 {
			fmt.Fprintf(w, " \\\n            '1:argument:(%s)'", strings.Join(c.args, " "))
		}
		fmt.Fprint(w, " ;;\n")
	}
	fmt.Fprint(w, "    esac\n}\n\ncompdef _amicopier amicopier 2>/dev/null\n")
}

// fishQuote makes s safe inside a single-quoted fish string.
func fishQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, "'", `\'`, "`", "").Replace(s)
}

func writeFishCompletion(w io.Writer, cmds []completionCommand) {
	fmt.Fprint(w, "# fish completion for amicopier; save it as ~/.config/fish/completions/amicopier.fish\ncomplete -c amicopier -f\n")
	for _, c := range cmds {
		if !strings.Contains(c.name, " ") {
			fmt.Fprintf(w, "complete -c amicopier -n '__fish_use_subcommand' -a %s -d '%s'\n", c.name, fishQuote(c.summary))
		}
	}
	fmt.Fprint(w, "complete -c amicopier -n '__fish_use_subcommand' -l version -d 'print the version'\n")
	for _, c := range cmds {
		cond := fmt.Sprintf("__fish_seen_subcommand_from %s", c.name)
		if parent, sub, ok := strings.Cut(c.name, " "); ok {
			cond = fmt.Sprintf("__fish_seen_subcommand_from %s; and __fish_seen_subcommand_from %s", parent, sub)
		} else if len(c.args) > 0 {
			cond += "; and not __fish_seen_subcommand_from " + strings.Join(c.args, " ")
		}
		if len(c.args) > 0 {
			fmt.Fprintf(w, "complete -c amicopier -n '%s' -a '%s'\n", cond, strings.Join(c.args, " "))
		}
		if c.name == "state" {
			continue // its flags are those of state init
		}
		fmt.Fprintf(w, "complete -c amicopier -n '%s' -l help -d 'show the help of the command'\n", cond)
		for _, f := range c.flags {
			line := fmt.Sprintf("complete -c amicopier -n '%s' -l %s", cond, f.name)
			switch {
			case !f.takesValue:
			case f.file:
				line += " -r -F"
			case len(f.choices) > 0:
				line += fmt.Sprintf(" -x -a '%s'", strings.Join(f.choices, " "))
			default:
				line += " -x"
			}
			fmt.Fprintf(w, "%s -d '%s'\n", line, fishQuote(f.summary))
		}
	}
}
