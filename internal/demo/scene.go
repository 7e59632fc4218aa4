// Package demo builds the simulated organisation that `amicopier demo`
// reconciles, and runs the demo loop: drift report, reconcile, time
// passes, clean report. It needs no AWS account and no credentials.
package demo

import (
	_ "embed"
	"fmt"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
)

//go:embed config.yaml
var configYAML []byte

// ConfigYAML returns the demo's embedded configuration file.
func ConfigYAML() []byte { return append([]byte(nil), configYAML...) }

// The demo organisation's accounts.
const (
	SourceAccount   = "111111111111"
	ProdWeb         = "200000000001"
	ProdAPI         = "200000000002"
	ProdData        = "200000000003"
	StagingWeb      = "200000000004"
	StagingAPI      = "200000000005"
	Analytics       = "200000000006"
	SecurityTooling = "200000000007"
	SandboxAlice    = "200000000008"
	SandboxBob      = "200000000009"
	LegacyBatch     = "200000000010" // suspended
	CIRunners       = "200000000011" // excluded in the config
	// Foreign is named by an AMI tag but is not in the organisation.
	Foreign = "999999999999"
)

// Scene is the simulated world and the configuration that reconciles it.
type Scene struct {
	Cloud  *sim.Cloud
	Config *config.Config
	// Images holds the source AMIs by recipe name.
	Images map[string]cloud.Image
	// Previous is the previous build of ubuntu-jammy-web, superseded by
	// source.keep_latest: its copies are what the parameters of three
	// accounts name until the run moves them to the new build's.
	Previous cloud.Image
	// Bus is the event bus the runs publish to.
	Bus string
}

// The demo's parameter of ubuntu-jammy-web, and the one a person made by
// hand in sandbox-bob.
const (
	WebParameter  = "/golden/ubuntu-jammy-web/latest"
	BaseParameter = "/golden/ubuntu-noble-base/latest"
)

// NewScene builds the demo organisation, with its simulated clock at now
// (the AMIs were baked a week earlier): a dozen accounts in nested OUs
// (one suspended, one excluded), two Regions, four golden AMIs whose
// targets come from rules and tags (the web server's scheduled for
// deprecation), the previous build of the web server, which
// source.keep_latest supersedes, and the leftovers of earlier tools and
// runs: a good copy made by AMIgo's Image Copier, an unencrypted copy
// made by hand, amicopier's copies of the previous web build (which
// three accounts' SSM parameters name), a hand-made parameter, and a copy
// that failed because its KMS key was disabled (enabled again since, but
// with a key policy that no longer lets Auto Scaling use it: the
// preflight check finds that).
func NewScene(now time.Time) (*Scene, error) {
	cfg, err := config.Parse(configYAML, "demo config.yaml")
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := sim.New(sim.WithStartTime(now))
	s := &Scene{Cloud: c, Config: cfg, Images: map[string]cloud.Image{}}

	// OU ids are handed out in creation order; the config names them.
	workloads := c.AddOU("", "Workloads")          // ou-sim0-00000001
	production := c.AddOU(workloads, "Production") // ou-sim0-00000002
	staging := c.AddOU(workloads, "Staging")       // ou-sim0-00000003
	security := c.AddOU("", "Security")            // ou-sim0-00000004
	sandbox := c.AddOU("", "Sandbox")              // ou-sim0-00000005
	accounts := []struct {
		id, name, parent string
		state            cloud.AccountState
	}{
		{SourceAccount, "golden-images", "", cloud.AccountActive},
		{ProdWeb, "prod-web", production, cloud.AccountActive},
		{ProdAPI, "prod-api", production, cloud.AccountActive},
		{ProdData, "prod-data", production, cloud.AccountActive},
		{StagingWeb, "staging-web", staging, cloud.AccountActive},
		{StagingAPI, "staging-api", staging, cloud.AccountActive},
		{Analytics, "analytics", workloads, cloud.AccountActive},
		{LegacyBatch, "legacy-batch", workloads, cloud.AccountSuspended},
		{CIRunners, "ci-runners", workloads, cloud.AccountActive},
		{SecurityTooling, "security-tooling", security, cloud.AccountActive},
		{SandboxAlice, "sandbox-alice", sandbox, cloud.AccountActive},
		{SandboxBob, "sandbox-bob", sandbox, cloud.AccountActive},
	}
	regions := []string{"eu-west-1", "us-east-1"}
	keys := map[[2]string]string{}
	for _, a := range accounts {
		if err := c.AddAccount(a.id, a.name, a.parent, a.state); err != nil {
			return nil, err
		}
		for _, r := range regions {
			k := c.AddKey(a.id, r, "amicopier")
			keys[[2]string{a.id, r}] = k
			// The member StackSet's key: Auto Scaling may use it.
			c.AllowAutoScaling(k, true)
		}
	}
	// The key the failed copy below was made with was disabled at the
	// time; someone enabled it again but replaced its policy with the
	// default one on the way, so Auto Scaling groups cannot launch from
	// copies encrypted with it. Copies work; `check` finds it.
	c.AllowAutoScaling(keys[[2]string{StagingWeb, "eu-west-1"}], false)

	baked := now.Add(-7 * 24 * time.Hour)
	amigo := func(recipe, build string, extra map[string]string) map[string]string {
		t := map[string]string{
			"BuiltBy": "amigo", "AmigoStage": "PROD", "Name": recipe, "Recipe": recipe,
			"BuildNumber": build, "SourceAMI": "ami-0aaaabbbbccccdddd",
		}
		for k, v := range extra {
			t[k] = v
		}
		return t
	}
	goldenKey := c.AddKey(SourceAccount, "eu-west-1", "golden-images")
	c.AllowKeyUseByOrganization(goldenKey)
	add := func(region, recipe string, spec sim.ImageSpec) cloud.Image {
		img := c.AddImage(SourceAccount, region, spec)
		s.Images[recipe] = img
		return img
	}
	web := add("eu-west-1", "ubuntu-jammy-web", sim.ImageSpec{
		Name: "ubuntu-jammy-web-412", Description: "Ubuntu 22.04 web server", CreationDate: baked,
		Tags: amigo("ubuntu-jammy-web", "412", nil), DeprecationTime: now.Add(90 * 24 * time.Hour),
	})
	add("eu-west-1", "ubuntu-noble-base", sim.ImageSpec{
		Name: "ubuntu-noble-base-88", Description: "Ubuntu 24.04 base", CreationDate: baked.Add(24 * time.Hour),
		Tags:    amigo("ubuntu-noble-base", "88", map[string]string{"amicopier:targets": "ou-sim0-00000005"}),
		Devices: []sim.DeviceSpec{{Size: 8, KMSKeyARN: goldenKey}, {Size: 50, KMSKeyARN: goldenKey}},
	})
	ecs := add("eu-west-1", "al2023-ecs", sim.ImageSpec{
		Name: "al2023-ecs-1207", Description: "Amazon Linux 2023 ECS node", CreationDate: baked.Add(48 * time.Hour),
		Tags: amigo("al2023-ecs", "1207", map[string]string{
			"amicopier:targets": fmt.Sprintf("%s, %s %s", Analytics, SandboxAlice, Foreign),
		}),
	})
	add("us-east-1", "windows-2022-base", sim.ImageSpec{
		Name: "windows-2022-base-31", Description: "Windows Server 2022", CreationDate: baked.Add(72 * time.Hour),
		Tags:    amigo("windows-2022-base", "31", nil),
		Devices: []sim.DeviceSpec{{Size: 30}},
	})
	// The previous build of the web recipe: source.keep_latest keeps only
	// the newest build of each recipe, so it is superseded (its pipeline
	// had scheduled its deprecation in three weeks). Its copies, made by
	// an earlier amicopier run, are what prod-api, prod-data and
	// staging-api launch from, by the parameter that run published: the
	// run moves those to the new build's copies, and reports the old
	// copies superseded (pruning is off), deprecated like their source.
	prev := c.AddImage(SourceAccount, "eu-west-1", sim.ImageSpec{
		Name: "ubuntu-jammy-web-411", Description: "Ubuntu 22.04 web server", CreationDate: baked.Add(-14 * 24 * time.Hour),
		Tags: amigo("ubuntu-jammy-web", "411", nil), DeprecationTime: now.Add(21 * 24 * time.Hour),
	})
	s.Previous = prev
	s.Images["ubuntu-jammy-web-411"] = prev
	for _, a := range []string{ProdAPI, ProdData, StagingAPI} {
		cp := c.AddImage(a, "eu-west-1", sim.ImageSpec{
			Name: "ubuntu-jammy-web-411-encrypted-" + prev.ID, CreationDate: baked.Add(-13 * 24 * time.Hour),
			Tags: map[string]string{
				"CopiedFromAMI": prev.ID, "Encrypted": "true", "Recipe": "ubuntu-jammy-web", "amicopier:managed": "true",
				"amicopier:source-account": SourceAccount, "amicopier:source-region": "eu-west-1",
				"amicopier:kms-key": "alias/amicopier", "amicopier:attempt": "1",
			},
			Devices: []sim.DeviceSpec{{Size: 8, KMSKeyARN: keys[[2]string{a, "eu-west-1"}]}},
		})
		c.SetParameter(a, "eu-west-1", sim.ParameterSpec{
			Name: WebParameter, Value: cp.ID, DataType: cloud.DataTypeEC2Image,
			Tags: map[string]string{"amicopier:managed": "true", "amicopier:source-account": SourceAccount},
		})
	}
	// A parameter someone made by hand, naming an AMI of their own:
	// amicopier reports it and leaves it alone.
	c.SetParameter(SandboxBob, "eu-west-1", sim.ParameterSpec{Name: BaseParameter, Value: "ami-0123456789abcdef0", DataType: cloud.DataTypeEC2Image})
	s.Bus = c.AddEventBus(SourceAccount, "eu-west-1", "golden-images")

	// Not baked by AMIgo: the source filter leaves it alone.
	c.AddImage(SourceAccount, "eu-west-1", sim.ImageSpec{Name: "scratch-experiment", Tags: map[string]string{"Owner": "alice"}})

	longAgo := now.Add(-5 * 24 * time.Hour)
	// A good copy AMIgo's Image Copier made: adopted, never copied again.
	c.AddImage(ProdWeb, "eu-west-1", sim.ImageSpec{
		Name: "ubuntu-jammy-web-412-encrypted", CreationDate: longAgo,
		Tags:    map[string]string{"CopiedFromAMI": web.ID, "Encrypted": "true", "Recipe": "ubuntu-jammy-web"},
		Devices: []sim.DeviceSpec{{Size: 8, KMSKeyARN: keys[[2]string{ProdWeb, "eu-west-1"}]}},
	})
	// A copy someone made by hand without encryption: reported, never deleted.
	c.AddImage(Analytics, "eu-west-1", sim.ImageSpec{
		Name: "al2023-ecs-manual-copy", CreationDate: longAgo,
		Tags:    map[string]string{"CopiedFromAMI": ecs.ID},
		Devices: []sim.DeviceSpec{{Size: 8}},
	})
	// A copy an earlier amicopier run started with a key that was
	// disabled at the time: it failed, and is retried.
	c.AddImage(StagingWeb, "eu-west-1", sim.ImageSpec{
		Name: "ubuntu-jammy-web-412-encrypted-" + web.ID, CreationDate: longAgo,
		State:       cloud.ImageFailed,
		StateReason: "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state",
		Tags: map[string]string{
			"CopiedFromAMI": web.ID, "Encrypted": "true", "amicopier:managed": "true",
			"amicopier:source-account": SourceAccount, "amicopier:source-region": "eu-west-1",
			"amicopier:kms-key": "alias/amicopier-old", "amicopier:attempt": "1",
		},
		Devices: []sim.DeviceSpec{{Size: 8, KMSKeyARN: keys[[2]string{StagingWeb, "eu-west-1"}]}},
	})
	return s, nil
}
