package config

import (
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"AMICOPIER_SOURCE_ACCOUNT_ID": "222222222222",
		"AMICOPIER_STATE_BACKEND":     "dynamodb",
		"AMICOPIER_STATE_PATH":        "/var/lib/amicopier.db",
		"AMICOPIER_STATE_TABLE":       "amicopier-prod",
		"AMICOPIER_STATE_REGION":      "eu-west-2",
		"AMICOPIER_STATE_ENDPOINT":    "http://localhost:8000",
		"AMICOPIER_EXTERNAL_ID":       "secret-id\n",
		"AMICOPIER_KMS_KEY":           "alias/prod",
		"AMICOPIER_TARGET_ROLE_NAME":  "prod-copier",
		pre + "UNRELATED":             "x",
	}
	c := mustParse(t, base+"state:\n  backend: file\n")
	if err := ApplyEnv(c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"source.account_id":   "222222222222",
		"state.backend":       "dynamodb",
		"state.path":          "/var/lib/amicopier.db",
		"state.table":         "amicopier-prod",
		"state.region":        "eu-west-2",
		"state.endpoint":      "http://localhost:8000",
		"targets.external_id": "secret-id",
		"encryption.kms_key":  "alias/prod",
		"targets.role_name":   "prod-copier",
	}
	for path, w := range want {
		f, ok := fieldByPath(reflect.ValueOf(c).Elem(), path)
		if !ok || f.String() != w {
			t.Errorf("%s = %q, want %q", path, f, w)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestApplyEnvKeepsFileWhenUnset(t *testing.T) {
	c := mustParse(t, base+"state:\n  path: x.db\n")
	if err := ApplyEnv(c, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if c.State.Path != "x.db" || c.Source.AccountID != "111111111111" {
		t.Errorf("empty variables changed the file's values: %+v", c.State)
	}
	if len(c.origin.env) != 0 {
		t.Errorf("recorded env origins %v", c.origin.env)
	}
}

func TestApplyEnvErrorsNameTheVariable(t *testing.T) {
	env := map[string]string{
		"AMICOPIER_STATE_BACKEND":    "sqlite",
		"AMICOPIER_KMS_KEY":          "my key",
		"AMICOPIER_TARGET_ROLE_NAME": "a/b",
	}
	c := mustParse(t, base+"state:\n  backend: file\nencryption:\n  kms_key: alias/x\n")
	if err := ApplyEnv(c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	errs := validationErrors(t, c.Validate())
	want := []string{
		"targets.role_name (from AMICOPIER_TARGET_ROLE_NAME)",
		"encryption.kms_key (from AMICOPIER_KMS_KEY)",
		"state.backend (from AMICOPIER_STATE_BACKEND)",
	}
	if len(errs) != len(want) {
		t.Fatalf("got %+v", errs)
	}
	for i, w := range want {
		if errs[i].Path != w || errs[i].Line != 0 {
			t.Errorf("error %d: %s line %d, want %s without a line", i, errs[i].Path, errs[i].Line, w)
		}
	}

	// Works on a configuration built in code as well.
	d := Default()
	if err := ApplyEnv(d, func(k string) string {
		if k == "AMICOPIER_SOURCE_ACCOUNT_ID" {
			return "12"
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "source.account_id (from AMICOPIER_SOURCE_ACCOUNT_ID): \"12\" is not") {
		t.Errorf("got %v", err)
	}
}

func TestApplyEnvDefaultsToOSGetenv(t *testing.T) {
	t.Setenv("AMICOPIER_STATE_PATH", "from-os.db")
	c := Default()
	if err := ApplyEnv(c, nil); err != nil {
		t.Fatal(err)
	}
	if c.State.Path != "from-os.db" {
		t.Errorf("state.path = %q", c.State.Path)
	}
	if err := ApplyEnv(nil, nil); err == nil {
		t.Error("nil config accepted")
	}
}

// TestEnvOverridesDocumented keeps the table, the package documentation
// and the example file in step.
func TestEnvOverridesDocumented(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "schema.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	doc := f.Doc.Text()
	example, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range EnvOverrides {
		if seen[e.Name] {
			t.Errorf("%s listed twice", e.Name)
		}
		seen[e.Name] = true
		if !strings.HasPrefix(e.Name, "AMICOPIER_") || e.Description == "" {
			t.Errorf("%+v: want an AMICOPIER_ name and a description", e)
		}
		f, ok := fieldByPath(reflect.ValueOf(Default()).Elem(), e.Path)
		if !ok || f.Kind() != reflect.String {
			t.Errorf("%s: path %q is not a string setting", e.Name, e.Path)
		}
		if !docListsVar(doc, e.Name, e.Path) {
			t.Errorf("package doc does not list %s with %s", e.Name, e.Path)
		}
		if !strings.Contains(string(example), e.Name) {
			t.Errorf("config.yaml does not mention %s", e.Name)
		}
	}
}

func docListsVar(doc, name, path string) bool {
	for _, l := range strings.Split(doc, "\n") {
		fields := strings.Fields(l)
		if len(fields) == 2 && fields[0] == name && fields[1] == path {
			return true
		}
	}
	return false
}
