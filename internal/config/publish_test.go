package config

import (
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
)

// TestPublishAndEventsSettings: publish.ssm and events are validated, each
// bad value named with its line (engineconfig's tests show what reaches
// the engine).
func TestPublishAndEventsSettings(t *testing.T) {
	for _, tc := range []struct {
		name, doc, message string
	}{
		{"template syntax", "publish:\n  ssm:\n    name_template: /golden/{{.Tags.Recipe # <-\n", "invalid template"},
		{"template names a field that does not exist", "publish:\n  ssm:\n    name_template: /golden/{{.Recipe}} # <-\n", "cannot render"},
		{"renders a space", "publish:\n  ssm:\n    name_template: \"/golden/{{.Name}} latest\" # <-\n", `renders to "/golden/ubuntu-jammy latest"`},
		{"renders without the leading slash", "publish:\n  ssm:\n    name_template: golden/{{.Tags.Recipe}} # <-\n", "must start with /"},
		{"too deep", "publish:\n  ssm:\n    name_template: " + strings.Repeat("/x", 15) + "/{{.Tags.Recipe}} # <-\n", "at most 15"},
		{"reserved", "publish:\n  ssm:\n    name_template: /aws/{{.Tags.Recipe}} # <-\n", "reserved"},
		{"data type", "publish:\n  ssm:\n    data_type: integer # <-\n", `"integer" is not a data type`},
		{"verify timeout", "publish:\n  ssm:\n    verify_timeout: 1h # <-\n", "at most 5m"},
		{"overwrite without a template", "publish:\n  ssm:\n    overwrite_foreign: true # <-\n", "needs publish.ssm.name_template"},
		{"a misspelt key", "publish:\n  ssm:\n    name_templat: /x # <-\n", "unknown key"},
		{"bus name", "events:\n  bus: \"my bus\" # <-\n", "not an event bus name"},
		{"bus ARN", "events:\n  bus: arn:aws:sns:eu-west-1:111111111111:topic # <-\n", "not an event bus ARN"},
		{"bus Region", "events:\n  bus: arn:aws:events:eu-wset-1:111111111111:event-bus/x # <-\n", "eu-west-1"},
		{"reserved source", "events:\n  source: aws.ec2 # <-\n", "reserved for AWS"},
		{"parameter read rate", "limits:\n  parameter_read_rate: 0 # <-\n", "above 0"},
		{"ssm endpoint", "aws:\n  endpoints:\n    ssm: http://example.com # <-\n", "ssm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parseCase(t, base+tc.doc, tc.message)
		})
	}
}

// TestParameterTemplateRendersLikeTheEngine: the template the engine gets
// renders a source's tags, and fails on a source without the tag.
func TestParameterTemplateRendersLikeTheEngine(t *testing.T) {
	tpl, err := PublishSSM{NameTemplate: "/golden/{{.Tags.Recipe}}/latest"}.ParameterTemplate()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tpl.Execute(&b, cloud.ParameterNameData{Tags: map[string]string{"Recipe": "web"}}); err != nil || b.String() != "/golden/web/latest" {
		t.Fatalf("%q, %v", b.String(), err)
	}
	if err := tpl.Execute(&b, cloud.ParameterNameData{Tags: map[string]string{}}); err == nil {
		t.Fatal("a source without the tag rendered")
	}
}
