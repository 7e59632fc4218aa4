package config

import (
	"time"

	"github.com/amicopier/amicopier/reconcile/report"
)

// Default values that other packages and the documentation refer to.
const (
	// DefaultTagKey is the AMI tag naming an image's targets.
	DefaultTagKey = "amicopier:targets"
	// DefaultRoleName is the copier role deployed by the member StackSet.
	DefaultRoleName = "amicopier-copier"
	// DefaultNameTemplate names copies after the source, keeping the
	// source id so names stay unique per account and Region.
	DefaultNameTemplate = "{{.Name}}-encrypted-{{.ID}}"
	// DefaultDescriptionTemplate says where a copy comes from.
	DefaultDescriptionTemplate = "Encrypted copy of {{.ID}} ({{.Name}}) from {{.Region}}"
	// DefaultStatePath is the embedded store's file, relative to the
	// working directory.
	DefaultStatePath = "amicopier-state.db"
	// FallbackRegion is the home Region used when neither aws.region nor
	// the environment names one; the wiring applies it, not this package.
	FallbackRegion = "us-east-1"
)

// Default returns a configuration with every field at its default. Only
// source.account_id has no usable default, so Default().Validate() fails
// until it is set.
func Default() *Config {
	return &Config{
		Targets: Targets{
			TagKey:   DefaultTagKey,
			RoleName: DefaultRoleName,
		},
		Copy: Copy{
			NameTemplate:        DefaultNameTemplate,
			DescriptionTemplate: DefaultDescriptionTemplate,
			EncryptedTagValue:   "true",
		},
		State: State{
			Backend:      BackendFile,
			Path:         DefaultStatePath,
			RunRetention: Duration(90 * 24 * time.Hour),
			LeaseTTL:     Duration(10 * time.Minute),
		},
		Limits: Limits{
			Concurrency:    16,
			InFlightCopies: 20,
			MaxAttempts:    3,
			RetryBackoff:   Duration(time.Hour),
			TimeBudget:     0,
			DeadlineMargin: Duration(60 * time.Second),
			CallRetries:    4,
			// The rates equal EC2's refill rates and the bursts stay a
			// tenth under EC2's, so client and server buckets never
			// disagree by more than that margin.
			DescribeRate:   20,
			DescribeBurst:  90,
			MutatingRate:   5,
			MutatingBurst:  45,
			AssumeRoleRate: 500,
			// A quarter of Parameter Store's standard throughput of 40
			// reads a second (the account's launches share it), and a
			// cautious 2 writes a second (internal/pacing).
			ParameterReadRate:  10,
			ParameterWriteRate: 2,
		},
		Sharing: Sharing{OrganizationalUnits: true},
		Prune: Prune{
			Enabled:     false,
			GracePeriod: Duration(7 * 24 * time.Hour),
		},
		Report:  Report{Format: report.FormatTable},
		Check:   defaultCheck(),
		Publish: defaultPublish(),
		Events:  defaultEvents(),
		// AWS.Region stays empty: the wiring takes it from the
		// environment (AWS_REGION), else FallbackRegion.
	}
}

// State backends.
const (
	BackendFile     = "file"
	BackendMemory   = "memory"
	BackendDynamoDB = "dynamodb"
)
