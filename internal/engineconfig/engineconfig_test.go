package engineconfig

import (
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/reconcile"
)

const base = "source:\n  account_id: \"111111111111\"\n  regions: [eu-west-1]\n"

// settingsOf parses and validates doc and translates it.
func settingsOf(t *testing.T, doc string) reconcile.Settings {
	t.Helper()
	c, err := config.Parse([]byte(doc), "config.yaml")
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := Settings(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("the engine refuses the settings of a valid configuration: %v", err)
	}
	return s
}

// TestSettings: what the file says reaches the engine as configured.
func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      func(s reconcile.Settings) bool
	}{
		{"defaults: nothing published, no events", "", func(s reconcile.Settings) bool {
			return s.Publish.ParameterName == nil && s.Publish.DataType == cloud.DataTypeEC2Image && s.Publish.VerifyFor == 10*time.Second &&
				s.Events.Bus == "" && s.Events.Source == "amicopier" && s.Check.SkipCopyDryRun == !config.Default().Check.CopyDryRun
		}},
		{"a template and a bus ARN", "publish:\n  ssm:\n    name_template: /golden/{{.Tags.Recipe}}/latest\n    data_type: text\n    overwrite_foreign: true\n    verify_timeout: 0s\n" +
			"events:\n  bus: arn:aws:events:us-east-1:111111111111:event-bus/images\n  source: com.example.images\n", func(s reconcile.Settings) bool {
			return s.Publish.ParameterName != nil && s.Publish.DataType == cloud.DataTypeText && s.Publish.OverwriteForeign && s.Publish.VerifyFor == 0 &&
				s.Events.Region == "us-east-1" && s.Events.Source == "com.example.images"
		}},
		{"a bus name is in aws.region", "events:\n  bus: images\naws:\n  region: eu-west-1\n", func(s reconcile.Settings) bool {
			return s.Events.Bus == "images" && s.Events.Region == "eu-west-1"
		}},
		{"check off", "check:\n  auto_scaling_role: \"\"\n  copy_dry_run: false\n  in_plan: false\n", func(s reconcile.Settings) bool {
			return s.Check.AutoScalingRole == "" && s.Check.SkipCopyDryRun && !s.Check.InPlan
		}},
		{"rules, limits and retention", "targets:\n  rules:\n    - name: web\n      match: {Recipe: web}\n      accounts: [\"222222222222\"]\n" +
			"limits:\n  concurrency: 7\n  max_attempts: 4\nstate:\n  run_retention: 48h\n", func(s reconcile.Settings) bool {
			return len(s.Rules) == 1 && s.Rules[0].Name == "web" && s.Rules[0].Match["Recipe"] == "web" && s.Rules[0].Accounts[0] == "222222222222" &&
				s.Concurrency == 7 && s.Pairs.MaxAttempts == 4 && s.RunRetention == 48*time.Hour
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s := settingsOf(t, base+tc.doc); !tc.want(s) {
				t.Fatalf("settings %+v", s)
			}
		})
	}
}

// TestKeyPolicy: the most specific override wins (account and Region,
// then account, then Region), else encryption.kms_key; among overrides
// equally specific the first listed; no key at all means the account's
// default EBS encryption key.
func TestKeyPolicy(t *testing.T) {
	c := config.Default()
	c.Encryption.KMSKey = "alias/default"
	c.Encryption.Overrides = []config.KeyOverride{
		{Region: "eu-central-1", KMSKey: "alias/region"},
		{Account: "222222222222", Region: "eu-central-1", KMSKey: "alias/account-region"},
		{Account: "222222222222", KMSKey: "alias/account"},
		{Account: "333333333333", KMSKey: "alias/account-333"},
		{Region: "eu-central-1", KMSKey: "alias/region-second"},
	}
	p := keyPolicy(c.Encryption)
	for _, tc := range []struct{ account, region, want string }{
		{"222222222222", "eu-central-1", "alias/account-region"},
		{"222222222222", "us-east-1", "alias/account"},
		{"333333333333", "eu-central-1", "alias/account-333"},
		{"444444444444", "eu-central-1", "alias/region"},
		{"444444444444", "us-east-1", "alias/default"},
		{"", "", "alias/default"},
	} {
		if got := p.For(tc.account, tc.region); got != tc.want {
			t.Errorf("For(%q, %q) = %q, want %q", tc.account, tc.region, got, tc.want)
		}
	}
	if got := keyPolicy(config.Default().Encryption).For("222222222222", "eu-west-1"); got != "" {
		t.Errorf("no key configured: got %q, want the account default", got)
	}
}

// TestExampleConfig: the commented config.yaml translates, and its
// override is used.
func TestExampleConfig(t *testing.T) {
	c, err := config.Load("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Settings(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Keys.For("333333333333", "eu-central-1"); got == c.Encryption.KMSKey {
		t.Errorf("the example's override is not used: %q", got)
	}
}
