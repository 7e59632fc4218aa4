package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
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
	{Name: "AMICOPIER_EXTERNAL_ID", Path: "targets.external_id", Description: "external id passed when assuming target roles"},
	{Name: "AMICOPIER_KMS_KEY", Path: "encryption.kms_key", Description: "default KMS key of the copies"},
	{Name: "AMICOPIER_TARGET_ROLE_NAME", Path: "targets.role_name", Description: "copier role name in each target account"},
	{Name: "AMICOPIER_SOURCE_ROLE_ARN", Path: "source.role_arn", Description: "role assumed in the source account"},
	{Name: "AMICOPIER_ORGANIZATION_ROLE_ARN", Path: "organization.role_arn", Description: "role assumed to read the organisation"},
}

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
