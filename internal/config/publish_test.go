package config

import (
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile"
)

// TestPublishAndEventsSettings: publish.ssm and events are validated, each
// bad value named with its line, and reach the engine as configured.
func TestPublishAndEventsSettings(t *testing.T) {
	for _, tc := range []struct {
		name, doc, message string
		want               func(s reconcile.Settings) bool
	}{
		{"defaults: nothing published, no events", "", "", func(s reconcile.Settings) bool {
			return s.Publish.ParameterName == nil && s.Publish.DataType == cloud.DataTypeEC2Image && s.Publish.VerifyFor == 10*time.Second &&
				s.Events.Bus == "" && s.Events.Source == "amicopier"
		}},
		{"a template and a bus ARN", "publish:\n  ssm:\n    name_template: /golden/{{.Tags.Recipe}}/latest\n    data_type: text\n    overwrite_foreign: true\n    verify_timeout: 0s\n" +
			"events:\n  bus: arn:aws:events:us-east-1:111111111111:event-bus/images\n  source: com.example.images\n", "", func(s reconcile.Settings) bool {
			return s.Publish.ParameterName != nil && s.Publish.DataType == cloud.DataTypeText && s.Publish.OverwriteForeign && s.Publish.VerifyFor == 0 &&
				s.Events.Region == "us-east-1" && s.Events.Source == "com.example.images"
		}},
		{"a bus name is in aws.region", "events:\n  bus: images\naws:\n  region: eu-west-1\n", "", func(s reconcile.Settings) bool {
			return s.Events.Bus == "images" && s.Events.Region == "eu-west-1"
		}},
		{"template syntax", "publish:\n  ssm:\n    name_template: /golden/{{.Tags.Recipe # <-\n", "invalid template", nil},
		{"template names a field that does not exist", "publish:\n  ssm:\n    name_template: /golden/{{.Recipe}} # <-\n", "cannot render", nil},
		{"renders a space", "publish:\n  ssm:\n    name_template: \"/golden/{{.Name}} latest\" # <-\n", `renders to "/golden/ubuntu-jammy latest"`, nil},
		{"renders without the leading slash", "publish:\n  ssm:\n    name_template: golden/{{.Tags.Recipe}} # <-\n", "must start with /", nil},
		{"too deep", "publish:\n  ssm:\n    name_template: " + strings.Repeat("/x", 15) + "/{{.Tags.Recipe}} # <-\n", "at most 15", nil},
		{"reserved", "publish:\n  ssm:\n    name_template: /aws/{{.Tags.Recipe}} # <-\n", "reserved", nil},
		{"data type", "publish:\n  ssm:\n    data_type: integer # <-\n", `"integer" is not a data type`, nil},
		{"verify timeout", "publish:\n  ssm:\n    verify_timeout: 1h # <-\n", "at most 5m", nil},
		{"overwrite without a template", "publish:\n  ssm:\n    overwrite_foreign: true # <-\n", "needs publish.ssm.name_template", nil},
		{"a misspelt key", "publish:\n  ssm:\n    name_templat: /x # <-\n", "unknown key", nil},
		{"bus name", "events:\n  bus: \"my bus\" # <-\n", "not an event bus name", nil},
		{"bus ARN", "events:\n  bus: arn:aws:sns:eu-west-1:111111111111:topic # <-\n", "not an event bus ARN", nil},
		{"bus Region", "events:\n  bus: arn:aws:events:eu-wset-1:111111111111:event-bus/x # <-\n", "eu-west-1", nil},
		{"reserved source", "events:\n  source: aws.ec2 # <-\n", "reserved for AWS", nil},
		{"parameter read rate", "limits:\n  parameter_read_rate: 0 # <-\n", "above 0", nil},
		{"ssm endpoint", "aws:\n  endpoints:\n    ssm: http://example.com # <-\n", "ssm", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := parseCase(t, base+tc.doc, tc.message)
			if !ok {
				return
			}
			s, err := c.EngineSettings()
			if err != nil || !tc.want(s) {
				t.Fatalf("settings %+v %+v, %v", s.Publish, s.Events, err)
			}
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
	if err := tpl.Execute(&b, reconcile.ParameterNameData{Tags: map[string]string{"Recipe": "web"}}); err != nil || b.String() != "/golden/web/latest" {
		t.Fatalf("%q, %v", b.String(), err)
	}
	if err := tpl.Execute(&b, reconcile.ParameterNameData{Tags: map[string]string{}}); err == nil {
		t.Fatal("a source without the tag rendered")
	}
}
