package config

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"testing"

	"gopkg.in/yaml.v3"
)

const examplePath = "../../config.yaml"

func TestExampleConfigValidates(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load:\n%v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate:\n%v", err)
	}
	// A few values the comments and the documentation rely on.
	if c.Source.AccountID != "111111111111" || len(c.Targets.Rules) != 2 || c.State.Backend != BackendFile {
		t.Errorf("unexpected example: %+v", c)
	}
}

// TestExampleConfigIsComplete fails when a field is added to the schema
// without being shown in config.yaml.
func TestExampleConfigIsComplete(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	collectKeys("", &doc, present)
	var missing []string
	for _, leaf := range schemaLeaves("", reflect.TypeFor[Config]()) {
		if !present[leaf] {
			missing = append(missing, leaf)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("config.yaml does not show these settings: %v", missing)
	}
	if len(schemaLeaves("", reflect.TypeFor[Config]())) < 40 {
		t.Error("schema walk found too few leaves")
	}
}

// schemaLeaves lists the yaml paths of every setting; list items are
// written "[]".
func schemaLeaves(prefix string, t reflect.Type) []string {
	var leaves []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, ok := yamlName(f)
		if !ok {
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		switch {
		case f.Type.Kind() == reflect.Struct:
			leaves = append(leaves, schemaLeaves(p, f.Type)...)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			leaves = append(leaves, schemaLeaves(p+"[]", f.Type.Elem())...)
		default:
			leaves = append(leaves, p)
		}
	}
	return leaves
}

func collectKeys(prefix string, n *yaml.Node, present map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			collectKeys(prefix, c, present)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			collectKeys(prefix+"[]", c, present)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if prefix != "" {
				p = prefix + "." + p
			}
			present[p] = true
			collectKeys(p, n.Content[i+1], present)
		}
	}
}

func ExampleValidationError() {
	doc := []byte(`source:
  account_id: "111111111111"
  regionz: [eu-west-1]
limits:
  retry_backoff: 1 hour
`)
	_, err := Parse(doc, "config.yaml")
	fmt.Println(err)
	// Output:
	// source.regionz (config.yaml:3): unknown key; did you mean "regions"?
	// limits.retry_backoff (config.yaml:5): invalid duration "1 hour": use a number with a unit, such as 90s, 15m, 1h30m or 7d
}

func ExampleConfig_Validate() {
	doc := []byte(`source:
  account_id: "111111111111"
  regions: [eu-west-1]
targets:
  rules:
    - name: windows
      match: {Recipe: "windows-*"}
      accounts: ["22222222222"]
`)
	c, err := Parse(doc, "config.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = ApplyEnv(c, func(name string) string {
		if name == "AMICOPIER_STATE_BACKEND" {
			return "s3"
		}
		return ""
	})
	fmt.Println(c.Validate())
	// Output:
	// targets.rules[0].accounts[0] (config.yaml:8): "22222222222" is not a 12-digit account id or "*" (every ACTIVE account)
	// state.backend (from AMICOPIER_STATE_BACKEND): "s3" is not a state backend: use file, memory or dynamodb
}
