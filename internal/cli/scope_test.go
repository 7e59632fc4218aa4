package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cli"
)

// TestEmptyScopeIsAUsageError: an empty or blank scope value (an unset
// shell variable, a stray comma) must never widen a run to everything.
func TestEmptyScopeIsAUsageError(t *testing.T) {
	w := newAWSWorld(t, false)
	env := awsEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--only-ami", ""}, `--only-ami "": empty value`},
		{[]string{"plan", "--only-ami", ""}, `--only-ami "": empty value`},
		{[]string{"run", "--only-ami", "   "}, `--only-ami "   ": empty value`},
		{[]string{"run", "--only-account", ","}, `--only-account ",": empty value`},
		{[]string{"plan", "--only-account", " , "}, `--only-account " , ": empty value`},
		{[]string{"run", "--only-ami", w.img1.ID + ","}, `--only-ami "` + w.img1.ID + `,": empty value`},
		{[]string{"run", "--only-account", awsAcctA + ",," + awsAcctB}, `empty value`},
		{[]string{"plan", "--shard", ""}, `--shard ""`},
		{[]string{"run", "--shard", " "}, `--shard " "`},
	} {
		args := append(tc.args, "--config", w.cfgPath)
		res := runBinary(t, env, time.Minute, args...)
		if res.code != cli.ExitUsage || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("amicopier %q: exit %d, stderr %q: want exit %d and %q", args, res.code, res.stderr, cli.ExitUsage, tc.want)
		}
	}
	if n := w.fake.Calls(""); n != 0 {
		t.Errorf("%d AWS calls for refused command lines", n)
	}
	if n := w.fake.Calls("CopyImage"); n != 0 {
		t.Fatalf("an empty scope copied %d images", n)
	}
}
