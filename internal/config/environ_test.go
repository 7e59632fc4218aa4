package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// pre spells the prefix apart, so that the misspelt names below are not
// taken for variables by TestEveryVariableIsKnown.
const pre = "AMICOPIER" + "_"

func TestUnknownEnv(t *testing.T) {
	environ := []string{
		"HOME=/root",
		pre + "STATE_TABLE=amicopier-prod",
		pre + "STATE_TABEL=amicopier-prod",
		pre + "TABLE=x",
		pre + "ROLE_ARN=arn:aws:iam::111111111111:role/x",
		strings.ToLower(pre) + "state_path=x.db",
		pre + "CONFIG_YAML=source: {}",
		pre + "DYNAMODB_ENDPOINT=http://127.0.0.1:4567",
		pre + "FROBNICATE=1",
		pre + "EMPTY=",
		"XAMICOPIER_STATE=1",
		"NO_EQUALS_SIGN",
	}
	got := UnknownEnv(environ)
	want := []FieldError{
		{Path: pre + "EMPTY (environment)", Message: "not a variable amicopier reads, so it changes nothing (`amicopier validate --help` lists those it reads)"},
		{Path: pre + "FROBNICATE (environment)", Message: "not a variable amicopier reads, so it changes nothing (`amicopier validate --help` lists those it reads)"},
		{Path: pre + "ROLE_ARN (environment)", Message: "not a variable amicopier reads, so it changes nothing; did you mean " + pre + "SOURCE_ROLE_ARN (source.role_arn) or " + pre + "ORGANIZATION_ROLE_ARN (organization.role_arn)?"},
		{Path: pre + "STATE_TABEL (environment)", Message: "not a variable amicopier reads, so it changes nothing; did you mean " + pre + "STATE_TABLE (state.table)?"},
		{Path: pre + "TABLE (environment)", Message: "not a variable amicopier reads, so it changes nothing; did you mean " + pre + "STATE_TABLE (state.table)?"},
		{Path: strings.ToLower(pre) + "state_path (environment)", Message: "not a variable amicopier reads, so it changes nothing (names are case-sensitive); did you mean " + pre + "STATE_PATH (state.path)?"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", (&ValidationError{Errors: got}).Error(), (&ValidationError{Errors: want}).Error())
	}
	if got := UnknownEnv(nil); len(got) != 0 {
		t.Errorf("empty environment: %v", got)
	}
}

// TestCheck: validate's view lists the file's problems and the unknown
// variables together; the variables alone make a configuration invalid.
func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(base+"limits:\n  concurrency: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{pre + "STATE_TABLE": "prod", pre + "STATE_TABEL": "prod"}
	getenv := func(k string) string { return env[k] }
	environ := []string{pre + "STATE_TABLE=prod", pre + "STATE_TABEL=prod"}

	c, err := CheckFile(good, getenv, nil)
	if err != nil || c.State.Table != "prod" {
		t.Fatalf("no environ: %v, %+v", err, c)
	}
	_, err = CheckFile(good, getenv, environ)
	errs := validationErrors(t, err)
	if len(errs) != 1 || errs[0].Path != pre+"STATE_TABEL (environment)" {
		t.Errorf("good file, misspelt variable: %v", err)
	}
	_, err = CheckFile(bad, getenv, environ)
	errs = validationErrors(t, err)
	if len(errs) != 2 || errs[0].Path != "limits.concurrency" || errs[1].Path != pre+"STATE_TABEL (environment)" {
		t.Errorf("bad file, misspelt variable: %v", err)
	}
	if !strings.Contains(err.Error(), "limits.concurrency ("+bad+":5)") {
		t.Errorf("the file's name is lost: %v", err)
	}
	if _, err := CheckFile(filepath.Join(dir, "missing.yaml"), getenv, environ); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestFromEnvironment(t *testing.T) {
	c := mustParse(t, base)
	if got := c.FromEnvironment(); len(got) != 0 {
		t.Errorf("nothing set: %v", got)
	}
	env := map[string]string{pre + "STATE_TABLE": "prod", pre + "EXTERNAL_ID": "s3cret", pre + "SOURCE_ACCOUNT_ID": "222222222222"}
	if err := ApplyEnv(c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range c.FromEnvironment() {
		names = append(names, e.Name)
	}
	if want := []string{pre + "SOURCE_ACCOUNT_ID", pre + "STATE_TABLE", pre + "EXTERNAL_ID"}; !slices.Equal(names, want) {
		t.Errorf("got %v, want %v", names, want)
	}
	if v, ok := envVar(pre + "EXTERNAL_ID"); !ok || !v.Secret {
		t.Errorf("the external id is not marked secret: %+v", v)
	}
}

var variableName = regexp.MustCompile(`\bAMICOPIER_[A-Z0-9_]*[A-Z0-9]`)

// TestEveryVariableIsKnown: every AMICOPIER_* name the repository's code,
// scripts and documents use is one validate knows, so validate never
// calls a variable that something reads misspelt. A new variable goes
// into EnvOverrides or OtherEnvVars.
func TestEveryVariableIsKnown(t *testing.T) {
	root := "../.."
	seen := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".tools", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".sh", ".md", ".yaml", ".yml", ".js", ".json":
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, name := range variableName.FindAllString(string(data), -1) {
			if _, ok := seen[name]; !ok {
				seen[name] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < len(EnvOverrides) {
		t.Fatalf("found only %d variable names: %v", len(seen), seen)
	}
	for name, path := range seen {
		if _, ok := envVar(name); !ok {
			t.Errorf("%s (used in %s) is not in EnvOverrides or OtherEnvVars", name, path)
		}
	}
}
