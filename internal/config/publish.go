package config

import (
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// Publish says where the copies are published for their consumers.
type Publish struct {
	SSM PublishSSM `yaml:"ssm"`
}

// PublishSSM publishes, in every target account and Region, an SSM
// parameter naming the newest available copy of each group of sources.
type PublishSSM struct {
	// NameTemplate is a Go text/template of the parameter name over the
	// source's .Name, .ID, .Region and .Tags, e.g.
	// /golden/{{.Tags.Recipe}}/latest; the sources it renders the same
	// name for are one group. Empty publishes nothing.
	NameTemplate string `yaml:"name_template"`
	// DataType is aws:ec2:image (SSM checks the value is an AMI of the
	// account, after the write) or text.
	DataType string `yaml:"data_type"`
	// OverwriteForeign lets run overwrite parameters amicopier did not
	// create (and tag them as its own); off, they are only reported.
	OverwriteForeign bool `yaml:"overwrite_foreign"`
	// VerifyTimeout is how long run waits, at most, for SSM to show the
	// aws:ec2:image values it wrote.
	VerifyTimeout Duration `yaml:"verify_timeout"`
}

// Events says where a run reports what it did.
type Events struct {
	// Bus is the EventBridge bus (a name in aws.region, or an ARN) the
	// run's events go to; empty sends none.
	Bus string `yaml:"bus"`
	// Source is the Source of the events.
	Source string `yaml:"source"`
}

// Defaults of publish and events.
const (
	DefaultParameterDataType = cloud.DataTypeEC2Image
	DefaultVerifyTimeout     = 10 * time.Second
	maxVerifyTimeout         = 5 * time.Minute
)

func defaultPublish() Publish {
	return Publish{SSM: PublishSSM{DataType: DefaultParameterDataType, VerifyTimeout: Duration(DefaultVerifyTimeout)}}
}

func defaultEvents() Events { return Events{Source: cloud.DefaultEventSource} }

// ParameterTemplate parses the parameter name template (nil when it is
// empty), with missingkey=error: a source without a tag the template
// names fails loudly instead of publishing "<no value>".
func (p PublishSSM) ParameterTemplate() (*template.Template, error) {
	if p.NameTemplate == "" {
		return nil, nil
	}
	return parseTemplate("publish.ssm.name_template", p.NameTemplate)
}

// sampleParameterData is what Validate renders the name template with.
func sampleParameterData() cloud.ParameterNameData {
	s := sampleCopyNameData()
	return cloud.ParameterNameData{Name: s.Name, ID: s.ID, Region: s.Region, Tags: s.Tags}
}

func (v *validator) publish(p *Publish) {
	s := &p.SSM
	if s.NameTemplate != "" {
		t, err := newTemplate("publish.ssm.name_template", s.NameTemplate)
		if err != nil {
			v.add("publish.ssm.name_template", "invalid template: %s", templateError(err))
		} else {
			var w cappedWriter
			if err := t.Execute(&w, sampleParameterData()); err != nil {
				v.add("publish.ssm.name_template", "cannot render with a sample image: %s (refer to tags an image may lack as {{index .Tags \"Key\"}})", templateError(err))
			} else if name := w.b.String(); cloud.CheckParameterName(name) != nil {
				v.add("publish.ssm.name_template", "renders to %q with a sample image, which is not an SSM parameter name: %v", name, cloud.CheckParameterName(name))
			}
		}
	}
	switch s.DataType {
	case cloud.DataTypeEC2Image, cloud.DataTypeText:
	default:
		v.add("publish.ssm.data_type", "%q is not a data type amicopier writes: use %s (SSM checks the value is an AMI of the account) or %s", s.DataType, cloud.DataTypeEC2Image, cloud.DataTypeText)
	}
	switch d := s.VerifyTimeout.D(); {
	case d < 0:
		v.add("publish.ssm.verify_timeout", "must not be negative (got %s)", s.VerifyTimeout)
	case d > maxVerifyTimeout:
		v.add("publish.ssm.verify_timeout", "must be at most %s (got %s): the next run reads the parameters again anyway", Duration(maxVerifyTimeout), s.VerifyTimeout)
	}
	if s.OverwriteForeign && s.NameTemplate == "" {
		v.add("publish.ssm.overwrite_foreign", "needs publish.ssm.name_template: without it no parameter is published")
	}
}

// Event bus names and ARNs: "[/\.\-_A-Za-z0-9]+", 1 to 256 characters
// (EventBusName of PutEventsRequestEntry, Amazon EventBridge API
// Reference), and the ARN arn:PARTITION:events:REGION:ACCOUNT:event-bus/NAME.
var (
	busNamePattern = regexp.MustCompile(`^[/.\-_A-Za-z0-9]{1,256}$`)
	busARNPattern  = regexp.MustCompile(`^arn:aws[a-z-]*:events:([a-z0-9-]+):([0-9]{12}):event-bus/([/.\-_A-Za-z0-9]{1,256})$`)
)

func (v *validator) events(e *Events) {
	switch b := e.Bus; {
	case b == "":
	case strings.HasPrefix(b, "arn:"):
		m := busARNPattern.FindStringSubmatch(b)
		if m == nil {
			v.add("events.bus", "%q is not an event bus ARN (arn:aws:events:REGION:ACCOUNT:event-bus/NAME)", b)
		} else if !isKnownRegion(m[1]) {
			v.add("events.bus", "%q: %s", b, regionProblem(m[1]))
		}
	case !busNamePattern.MatchString(b):
		v.add("events.bus", "%q is not an event bus name (1-256 letters, digits and / . - _) or ARN", b)
	}
	if err := cloud.CheckEventSource(e.Source); err != nil {
		v.add("events.source", "%q: %v", e.Source, err)
	}
}
