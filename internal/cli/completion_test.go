package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cli"
)

// completionScript writes `amicopier completion SHELL` to a file.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	res := runBinary(t, awsEnv(t), time.Minute, "completion", shell)
	if res.code != cli.ExitOK || res.stderr != "" || res.stdout == "" {
		t.Fatalf("completion %s: exit %d, stderr %q", shell, res.code, res.stderr)
	}
	path := filepath.Join(t.TempDir(), "amicopier."+shell)
	if err := os.WriteFile(path, []byte(res.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func needShell(t *testing.T, shell string) string {
	t.Helper()
	path, err := exec.LookPath(shell)
	if err != nil {
		t.Skipf("%s is not installed", shell)
	}
	return path
}

func TestBashCompletion(t *testing.T) {
	bash := needShell(t, "bash")
	script := completionScript(t, "bash")
	complete := func(line string) []string {
		t.Helper()
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		prog := "source " + script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "\n_amicopier\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", line, err, out)
		}
		return strings.Fields(string(out))
	}
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"amicopier pl", []string{"plan"}},
		{"amicopier st", []string{"state", "status"}},
		{"amicopier comp", []string{"completion"}},
		{"amicopier completion ", []string{"bash", "zsh", "fish"}},
		{"amicopier help pl", []string{"plan"}},
		{"amicopier state ", []string{"init"}},
		{"amicopier state init --t", []string{"--timeout"}},
		{"amicopier run --sh", []string{"--shard"}},
		{"amicopier run --wait-t", []string{"--wait-timeout"}},
		{"amicopier plan --output ", []string{"table", "json", "markdown", "html"}},
		{"amicopier status --output ", []string{"table", "json"}},
		{"amicopier run --log-level d", []string{"debug"}},
		{"amicopier run --wait-timeout ", nil},
	} {
		if got := complete(tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("%q completes to %q, want %q", tc.line, got, tc.want)
		}
	}
	for cmd, flags := range commandFlags {
		got := complete("amicopier " + cmd + " --")
		for _, f := range flags {
			if !slices.Contains(got, "--"+f) {
				t.Errorf("amicopier %s --<TAB> lacks --%s: %q", cmd, f, got)
			}
		}
	}
}

func TestFishCompletion(t *testing.T) {
	fish := needShell(t, "fish")
	script := completionScript(t, "fish")
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"amicopier pl", []string{"plan"}},
		{"amicopier completion ", []string{"bash", "fish", "zsh"}},
		{"amicopier run --sh", []string{"--shard"}},
		{"amicopier status --output ", []string{"json", "table"}},
		{"amicopier state init --t", []string{"--timeout"}},
	} {
		out, err := exec.Command(fish, "--no-config", "-c", "source "+script+"; complete -C '"+tc.line+"'").CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tc.line, err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" {
				got = append(got, strings.SplitN(l, "\t", 2)[0])
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q completes to %q, want %q", tc.line, got, tc.want)
		}
	}
}

// TestZshCompletion types into an interactive zsh (zpty) and reads back
// what the TAB key made of the line.
func TestZshCompletion(t *testing.T) {
	zsh := needShell(t, "zsh")
	script := completionScript(t, "zsh")
	home := t.TempDir()
	for _, tc := range []struct{ typed, want string }{
		{"amicopier pl", "amicopier plan "},
		{"amicopier run --wait-t", "amicopier run --wait-timeout "},
		{"amicopier state init --ti", "amicopier state init --timeout "},
		{"amicopier plan --output ht", "amicopier plan --output html "},
	} {
		prog := `zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z 'autoload -U compinit; compinit -u -d ` + home + `/.zcompdump; source ` + script + `; PS1="%BREADY%b> "; amicopier() { print -r -- "RAN""[amicopier $*]" }'
out=""
# Wait for the prompt before typing (zsh drops what is typed while the
# setup runs), then for the line to run (zle handles the TAB, then the
# Enter), however slow a busy machine makes the shell.
wait_for() {
  for i in {1..300}; do
    while zpty -r -t z line; do out+=$line; done
    [[ $out == *"$1"* ]] && return 0
    sleep 0.1
  done
  return 1
}
wait_for $'\e[1mREADY'
zpty -w -n z $'` + tc.typed + `\t\n'
wait_for 'RAN['
print -r -- $out
zpty -d z
`
		cmd := exec.Command(zsh, "-f", "-c", prog)
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tc.typed, err, out)
		}
		if want := "RAN[" + strings.TrimSpace(tc.want) + "]"; !strings.Contains(string(out), want) {
			t.Errorf("%q<TAB> did not become %q:\n%q", tc.typed, tc.want, out)
		}
	}
}

func TestCompletionRefusesAnUnknownShell(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		code, out, errOut := run(t, args...)
		if code != cli.ExitUsage || out != "" || !strings.Contains(errOut, "amicopier completion:") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
