package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// EnvVar is an environment variable that overrides one configuration
// value.
type EnvVar struct {
	// Name of the variable.
	Name string
	// Path of the overridden value in config.yaml ("state.table").
	Path string
	// Description for --help.
	Description string
	// Secret values are not printed (validate shows their length only).
	Secret bool
}

// EnvOverrides lists the environment overrides, in the order --help
// prints them. They are the values that differ between deployments of
// one configuration file (accounts, state location, secrets).
var EnvOverrides = []EnvVar{
	{Name: "AMICOPIER_SOURCE_ACCOUNT_ID", Path: "source.account_id", Description: "12-digit id of the account the AMIs are baked in"},
	{Name: "AMICOPIER_STATE_BACKEND", Path: "state.backend", Description: "state store: file, memory or dynamodb"},
	{Name: "AMICOPIER_STATE_PATH", Path: "state.path", Description: "file of the embedded state store"},
	{Name: "AMICOPIER_STATE_TABLE", Path: "state.table", Description: "DynamoDB table of the state store"},
	{Name: "AMICOPIER_STATE_REGION", Path: "state.region", Description: "Region of the DynamoDB state table"},
	{Name: "AMICOPIER_STATE_ENDPOINT", Path: "state.endpoint", Description: "DynamoDB endpoint URL (local emulators only)"},
	{Name: "AMICOPIER_EXTERNAL_ID", Path: "targets.external_id", Description: "external id passed when assuming target roles", Secret: true},
	{Name: "AMICOPIER_KMS_KEY", Path: "encryption.kms_key", Description: "default KMS key of the copies"},
	{Name: "AMICOPIER_TARGET_ROLE_NAME", Path: "targets.role_name", Description: "copier role name in each target account"},
	{Name: "AMICOPIER_SOURCE_ROLE_ARN", Path: "source.role_arn", Description: "role assumed in the source account"},
	{Name: "AMICOPIER_ORGANIZATION_ROLE_ARN", Path: "organization.role_arn", Description: "role assumed to read the organisation"},
}

// OtherEnvVars are the AMICOPIER_* variables that override no value of
// the file: read by the Lambda function and the command line, or by the
// project's tests and scripts. UnknownEnv knows them, so that validate
// reports only names that nothing reads.
var OtherEnvVars = []EnvVar{
	{Name: "AMICOPIER_CONFIG_YAML", Description: "Lambda: the whole config.yaml inline"},
	{Name: "AMICOPIER_CONFIG", Description: "Lambda: path of the config file"},
	{Name: "AMICOPIER_LOG_LEVEL", Description: "log level: debug, info, warn or error"},
	{Name: "AMICOPIER_CPUPROFILE", Description: "debugging: write a CPU profile of the whole process to this file"},
	{Name: "AMICOPIER_DYNAMODB_ENDPOINT", Description: "tests: a DynamoDB-compatible server on loopback"},
	{Name: "AMICOPIER_REQUIRE_DYNAMODB", Description: "tests: fail rather than skip without that server"},
	{Name: "AMICOPIER_REQUIRE_BROWSER", Description: "scripts/render-html.sh: fail rather than skip without a browser"},
	{Name: "AMICOPIER_HTML_DOM", Description: "tests: the report page as a browser rendered it"},
	{Name: "AMICOPIER_HTML_JSON", Description: "tests: the report that page was rendered from"},
	{Name: "AMICOPIER_HTML_LAYOUT", Description: "tests: the layout probe's measures of that page"},
	{Name: "AMICOPIER_FUZZ_TIME", Description: "scripts/test.sh: fuzzing time per target"},
	{Name: "AMICOPIER_ARTEFACT_TEST", Description: "tests: build and run the Lambda artefact"},
	{Name: "AMICOPIER_STATE_HELPER_PATH", Description: "tests: the state file a helper process shares"},
	{Name: "AMICOPIER_STATE_HELPER_ID", Description: "tests: which helper process this is"},
	{Name: "AMICOPIER_STATE_HELPER_ROUNDS", Description: "tests: how many writes the helper process makes"},
	{Name: "AMICOPIER_TEST_BINARY", Description: "tests: the amicopier binary the CLI tests run, instead of building one"},
	{Name: "AMICOPIER_KILL_TEST", Description: "tests: run the kill -9 test of the built binary (scripts/test.sh sets it)"},
	{Name: "AMICOPIER_KILL_SEED", Description: "kill test and bench soak: replay the kill moments of this seed"},
	{Name: "AMICOPIER_KILL_DIR", Description: "kill test: keep every round's files in this directory"},
}

// envPrefix starts the name of every variable amicopier reads.
const envPrefix = "AMICOPIER_"

// ApplyEnv overrides c with the EnvOverrides variables that getenv
// (os.Getenv when nil) returns non-empty; an empty variable leaves the
// file's value, and surrounding white space is dropped (secrets mounted
// from files often end with a newline). Values are not checked here: Validate does, and names the
// variable a bad value came from.
func ApplyEnv(c *Config, getenv func(string) string) error {
	if c == nil {
		return errors.New("apply environment overrides: no configuration")
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, e := range EnvOverrides {
		val := getenv(e.Name)
		if val == "" {
			continue
		}
		f, ok := fieldByPath(reflect.ValueOf(c).Elem(), e.Path)
		if !ok || f.Kind() != reflect.String {
			return fmt.Errorf("apply %s: %s is not a string setting", e.Name, e.Path)
		}
		f.SetString(strings.TrimSpace(val))
		c.ensureOrigin().env[e.Path] = e.Name
	}
	return nil
}

// FromEnvironment lists the overrides that ApplyEnv took from the
// environment, in the order of EnvOverrides.
func (c *Config) FromEnvironment() []EnvVar {
	var set []EnvVar
	if c == nil || c.origin == nil {
		return nil
	}
	for _, e := range EnvOverrides {
		if c.origin.env[e.Path] == e.Name {
			set = append(set, e)
		}
	}
	return set
}

// UnknownEnv returns a problem for each variable of environ (as
// os.Environ gives it, NAME=value) named like amicopier's, AMICOPIER_...
// in any case, that nothing reads: a misspelt override changes nothing,
// and the file's value stays in force without a word. Each problem names
// the closest variables amicopier reads, if some are close.
func UnknownEnv(environ []string) []FieldError {
	var names []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if _, known := envVar(name); !known && strings.HasPrefix(strings.ToUpper(name), envPrefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	names = slices.Compact(names)
	problems := make([]FieldError, 0, len(names))
	for _, name := range names {
		msg := "not a variable amicopier reads, so it changes nothing"
		near := closestEnvVars(name)
		if name != strings.ToUpper(name) && len(near) > 0 && near[0].Name == strings.ToUpper(name) {
			msg += " (names are case-sensitive)"
		}
		if len(near) == 0 {
			msg += " (`amicopier validate --help` lists those it reads)"
		} else {
			described := make([]string, len(near))
			for i, e := range near {
				described[i] = e.Name
				if e.Path != "" {
					described[i] += " (" + e.Path + ")"
				}
			}
			msg += "; did you mean " + orList(described) + "?"
		}
		problems = append(problems, FieldError{Path: name + " (environment)", Message: msg})
	}
	return problems
}

// closestEnvVars returns the known variables within three edits of name
// (ignoring case), the closest first; failing that, those whose name ends
// as name does after the prefix (a name ending _TABLE: _STATE_TABLE); at
// most three.
func closestEnvVars(name string) []EnvVar {
	upper := strings.ToUpper(name)
	known := slices.Concat(EnvOverrides, OtherEnvVars)
	best, near := 4, []EnvVar(nil)
	for _, e := range known {
		switch d := editDistance(upper, e.Name); {
		case d < best:
			best, near = d, []EnvVar{e}
		case d == best:
			near = append(near, e)
		}
	}
	if len(near) == 0 {
		if rest := strings.TrimPrefix(upper, envPrefix); rest != "" {
			for _, e := range known {
				if strings.HasSuffix(e.Name, "_"+rest) {
					near = append(near, e)
				}
			}
		}
	}
	return near[:min(len(near), 3)]
}

// envVar finds a variable amicopier reads by its name.
func envVar(name string) (EnvVar, bool) {
	for _, e := range slices.Concat(EnvOverrides, OtherEnvVars) {
		if e.Name == name {
			return e, true
		}
	}
	return EnvVar{}, false
}

// envVarFor returns the variable that may override path, if any.
func envVarFor(path string) (string, bool) {
	for _, e := range EnvOverrides {
		if e.Path == path {
			return e.Name, true
		}
	}
	return "", false
}

// fieldByPath finds a struct field by its dotted yaml key path.
func fieldByPath(v reflect.Value, path string) (reflect.Value, bool) {
	for _, key := range strings.Split(path, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		idx, ok := yamlFields(v.Type())[key]
		if !ok {
			return reflect.Value{}, false
		}
		v = v.Field(idx)
	}
	return v, true
}
