package cloud

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Parameter Store: amicopier publishes the copy each target account and
// Region should use in a Systems Manager parameter there (publish.ssm).
// Its ports are apart from EC2 and Connector, like the preflight check's:
// a connector without an SSM client does not implement them, and the
// engine says no parameter was read.

// Operation names of the Parameter Store calls, as AWS spells them.
const (
	OpGetParameters       = "GetParameters"
	OpPutParameter        = "PutParameter"
	OpListTagsForResource = "ListTagsForResource"
	OpAddTagsToResource   = "AddTagsToResource"
)

// Parameter data types amicopier writes ("Parameter data types in
// Parameter Store", AWS Systems Manager User Guide,
// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-data-types.html):
// text is not validated; aws:ec2:image is validated asynchronously, after
// PutParameter has answered, and a parameter cannot be changed to or from
// it.
const (
	DataTypeText     = "text"
	DataTypeEC2Image = "aws:ec2:image"
	// ParameterTypeString is the only parameter type aws:ec2:image
	// supports, and the one amicopier writes.
	ParameterTypeString = "String"
)

// Limits of Parameter Store the engine, the adapters and the simulator
// respect.
const (
	// MaxGetParameters is the most names one GetParameters call takes:
	// "Names ... Array Members: Minimum number of 1 item. Maximum number of
	// 10 items" (GetParameters, AWS Systems Manager API Reference,
	// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameters.html).
	MaxGetParameters = 10

	// MaxParameterNameLength is the longest name a caller may give: "The
	// reported maximum length of 2048 characters for a parameter name
	// includes 1037 characters that are reserved for internal use by
	// Systems Manager. The maximum length for a parameter name that you
	// specify is 1011 characters" (PutParameter, AWS Systems Manager API
	// Reference,
	// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html).
	MaxParameterNameLength = 1011

	// MaxParameterLevels is the deepest hierarchy: "Parameter hierarchies
	// are limited to a maximum depth of fifteen levels" (same page; AWS
	// answers HierarchyLevelLimitExceededException).
	MaxParameterLevels = 15
)

// parameterNameChars are the characters a name may hold: "a-zA-Z0-9_.-",
// and "/" between the levels of a hierarchy (same page).
var parameterNameChars = regexp.MustCompile(`^[a-zA-Z0-9_./-]+$`)

// CheckParameterName says why name is not a parameter name SSM accepts,
// or returns nil. The rules are those of PutParameter's Name ("Naming
// Constraints", AWS Systems Manager API Reference,
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html):
// only a-zA-Z0-9_.- and /, no spaces, at most MaxParameterNameLength
// characters and MaxParameterLevels levels, a leading / for a name in a
// hierarchy, and no prefix "aws" or "ssm" (case-insensitive; those are
// reserved). The page says nothing of empty levels ("/a//b") or a
// trailing "/": they are refused here, since such a name could not be
// told apart from another one by a person reading it.
func CheckParameterName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("a parameter name cannot be empty")
	case len(name) > MaxParameterNameLength:
		return fmt.Errorf("%d characters, SSM takes at most %d", len(name), MaxParameterNameLength)
	case strings.ContainsAny(name, " \t\r\n"):
		return fmt.Errorf("parameter names cannot contain spaces")
	case !parameterNameChars.MatchString(name):
		bad := strings.Map(func(r rune) rune {
			if strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/", r) {
				return -1
			}
			return r
		}, name)
		return fmt.Errorf("character %q is not allowed: only letters, digits, _ . - and / between levels", string([]rune(bad)[0]))
	case strings.Contains(name, "/") && !strings.HasPrefix(name, "/"):
		return fmt.Errorf("a name in a hierarchy must start with /")
	case strings.Contains(name, "//") || (len(name) > 1 && strings.HasSuffix(name, "/")) || name == "/":
		return fmt.Errorf("a level of the hierarchy is empty")
	}
	levels := strings.Split(strings.TrimPrefix(name, "/"), "/")
	if len(levels) > MaxParameterLevels {
		return fmt.Errorf("%d levels, SSM takes at most %d", len(levels), MaxParameterLevels)
	}
	if first := strings.ToLower(levels[0]); strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return fmt.Errorf("names starting with %q are reserved by AWS", levels[0][:3])
	}
	return nil
}

// Parameter is a Parameter Store parameter as GetParameters returns it.
type Parameter struct {
	Name  string
	Value string
	// Type is String, StringList or SecureString; DataType text or
	// aws:ec2:image (empty reads as text).
	Type, DataType string
	Version        int64
	Modified       time.Time
}

// PutParameterInput is a PutParameter call.
type PutParameterInput struct {
	Name, Value, Description string
	// DataType is DataTypeEC2Image or DataTypeText; the type is always
	// String.
	DataType string
	// Overwrite replaces an existing parameter's value; without it, a
	// parameter that exists is refused (ParameterAlreadyExists).
	Overwrite bool
	// Tags are applied to a new parameter only: SSM refuses tags together
	// with Overwrite ("To add tags to an existing Systems Manager
	// parameter, use the AddTagsToResource operation", PutParameter).
	Tags map[string]string
}

// ParameterStore reads and writes the parameters of one account and
// Region, as the copier role there.
type ParameterStore interface {
	// GetParameters reads at most MaxGetParameters names in one call;
	// names that do not exist are absent from the result, not an error.
	GetParameters(ctx context.Context, names []string) (map[string]Parameter, error)
	// ParameterTags lists a parameter's tags (ListTagsForResource).
	ParameterTags(ctx context.Context, name string) (map[string]string, error)
	// PutParameter creates or overwrites a parameter and returns the
	// version SSM gave it. For aws:ec2:image the value is validated
	// after the call has answered: the version may never appear.
	PutParameter(ctx context.Context, in PutParameterInput) (version int64, err error)
	// TagParameter adds tags to an existing parameter
	// (AddTagsToResource).
	TagParameter(ctx context.Context, name string, tags map[string]string) error
}

// ParameterConnector hands out parameter stores acting as the copier role
// of a target account in a Region, through the account's session as
// Connector.Target.
type ParameterConnector interface {
	TargetParameters(ctx context.Context, accountID, region string) (ParameterStore, error)
}
