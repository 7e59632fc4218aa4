package sim

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

// Parameter Store, per account and Region: the parameters amicopier
// publishes the copies in (publish.ssm), with AWS's rules where the engine
// relies on them. Every behaviour cites the page it follows; where the
// documentation is silent the model says so and takes the safe reading.
//
// A PutParameter of data type aws:ec2:image is not applied when it
// answers: "If you call PutParameter with aws:ec2:image data type, a
// successful HTTP 200 response does not guarantee that your parameter was
// successfully created or updated. The aws:ec2:image value is validated
// asynchronously, and the PutParameter call returns before the validation
// is complete. If you submit an invalid AMI value, the PutParameter
// operation will return success, but the asynchronous validation will fail
// and the parameter will not be created or updated" (PutParameter
// DataType, AWS Systems Manager API Reference,
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html),
// and "A parameter version number might be generated before the
// validation operation is complete" (Native parameter support for Amazon
// Machine Image IDs, AWS Systems Manager User Guide,
// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html).
// The simulator keeps such a write pending until WithParameterValidation's
// delay has passed on its clock (by default the next read), then checks
// that the value names an AMI available to the account in the Region
// ("validates ... that the specified AMI is available in your Amazon Web
// Services account", same page) and that the caller could describe it
// ("To create an aws:ec2:image data type parameter, the user must have
// both ssm:PutParameter and ec2:DescribeImages permissions", same user
// guide page); only then does the value (and the version PutParameter
// returned) appear. Whether a failed validation consumes its version
// number is not documented: the model does not, so the next write that
// succeeds may show a version above the last one seen, never below.

// maxStandardParameters is the most standard parameters an account holds
// in a Region ("Standard parameters (default tier) ... support up to
// 10,000 parameters per Region, with values up to 4 KB", Changing
// Parameter Store throughput, AWS Systems Manager User Guide,
// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-throughput.html).
const (
	maxStandardParameters = 10000
	maxStandardValue      = 4096
	// maxParameterTags: "Most resources can have a maximum of 50 tags"
	// (add-tags-to-resource, AWS CLI Command Reference,
	// https://docs.aws.amazon.com/cli/latest/reference/ssm/add-tags-to-resource.html).
	maxParameterTags = 50
)

// simParameter is one parameter.
type simParameter struct {
	value, typ, dataType, description string
	version                           int64
	modified                          time.Time
	tags                              map[string]string
}

// pendingWrite is an aws:ec2:image write awaiting its validation.
type pendingWrite struct {
	name, value, description string
	version                  int64
	create                   bool
	tags                     map[string]string
	due                      time.Time
	// mayDescribe: the caller was allowed ec2:DescribeImages, which the
	// validation needs.
	mayDescribe bool
}

type paramZone struct {
	params  map[string]*simParameter
	pending []pendingWrite
	// reserved is the highest version handed out per name, applied or
	// not.
	reserved map[string]int64
}

// paramRegistry holds every zone's parameters. Its lock is a leaf: no
// zone lock is taken while it is held.
type paramRegistry struct {
	mu    sync.Mutex
	zones map[zoneKey]*paramZone
}

// zone returns the parameters of account and region. Caller holds r.mu.
func (r *paramRegistry) zone(account, region string) *paramZone {
	if r.zones == nil {
		r.zones = map[zoneKey]*paramZone{}
	}
	k := zoneKey{account, region}
	z := r.zones[k]
	if z == nil {
		z = &paramZone{params: map[string]*simParameter{}, reserved: map[string]int64{}}
		r.zones[k] = z
	}
	return z
}

// WithParameterValidation sets how long (simulated time) SSM takes to
// validate an aws:ec2:image value after PutParameter answered. Default 0:
// the write is validated on the next read, never during the call. It
// panics on a negative duration.
func WithParameterValidation(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("sim: WithParameterValidation(%s): negative duration", d))
	}
	return func(s *settings) { s.paramValidation = d }
}

// settle validates and applies the pending writes of account and region
// that are due. The writes are taken off the list under the registry's
// lock, judged without it (image lookups take zone locks), and applied
// under it again, in the order they were made.
func (c *Cloud) settleParameters(account, region string) {
	now := c.clock.Now()
	c.params.mu.Lock()
	pz := c.params.zone(account, region)
	var due []pendingWrite
	keep := pz.pending[:0]
	for _, w := range pz.pending {
		if !w.due.After(now) {
			due = append(due, w)
		} else {
			keep = append(keep, w)
		}
	}
	pz.pending = keep
	c.params.mu.Unlock()
	if len(due) == 0 {
		return
	}
	valid := make([]bool, len(due))
	for i, w := range due {
		valid[i] = w.mayDescribe && c.imageAvailableTo(account, region, w.value)
	}
	c.params.mu.Lock()
	defer c.params.mu.Unlock()
	pz = c.params.zone(account, region)
	for i, w := range due {
		if !valid[i] {
			continue // "the parameter will not be created or updated"
		}
		p := pz.params[w.name]
		switch {
		case p == nil && !w.create:
			continue // deleted meanwhile: an overwrite creates nothing
		case p != nil && w.create:
			continue // created by someone else meanwhile: already exists
		case p == nil:
			p = &simParameter{typ: cloud.ParameterTypeString, dataType: cloud.DataTypeEC2Image, tags: w.tags}
			pz.params[w.name] = p
		case w.version <= p.version:
			continue // a later write already landed
		}
		p.value, p.version, p.modified = w.value, w.version, now
		if w.description != "" {
			p.description = w.description
		}
	}
}

// imageAvailableTo reports whether account may use image id in region: an
// available image it owns, or one its owner shares with it. The user guide
// says "available in your AWS account"; that an AMI shared with the account
// passes is the reading that matches launching from it.
func (c *Cloud) imageAvailableTo(account, region, id string) bool {
	zid, _, ok := parseID(prefixImage, id)
	if !ok {
		return false
	}
	owner := c.zoneByID(zid)
	if owner == nil || owner.region != region {
		return false
	}
	img, ok := c.Image(owner.account, region, id)
	if !ok || img.State != cloud.ImageAvailable {
		return false
	}
	return owner.account == account || c.AccountCanLaunch(owner.account, region, id, account)
}

// SSM is a Parameter Store client acting as one account in one Region, as
// Connector.TargetParameters returns it (the copier role) or
// Cloud.ParameterClient (the account's administrator). It implements
// cloud.ParameterStore; every method is one API call through the Cloud's
// gate.
type SSM struct {
	cloud           *Cloud
	conn            *Connector
	account, region string
	calls           *cell
	assumed         bool
}

// ParameterClient returns a Parameter Store client acting as account's
// administrator in region, with no connector: for test setup and
// assertions. Its calls are counted by the Cloud.
func (c *Cloud) ParameterClient(account, region string) *SSM {
	c.mustZone("ParameterClient", account, region)
	return &SSM{cloud: c, account: account, region: region, calls: c.calls.cell(account, region)}
}

// RoleParameterClient is ParameterClient acting as the copier role: the
// fake AWS endpoint serves assumed-role requests through it, so
// DenyCopierActions applies.
func (c *Cloud) RoleParameterClient(account, region string) *SSM {
	s := c.ParameterClient(account, region)
	s.assumed = true
	return s
}

// TargetParameters returns a Parameter Store client acting as the copier
// role of accountID in region, through the account's session as Target
// (the connector is a cloud.ParameterConnector).
func (k *Connector) TargetParameters(ctx context.Context, accountID, region string) (cloud.ParameterStore, error) {
	if !cloud.IsRegion(region) {
		return nil, fmt.Errorf("parameter client in account %s: region %q is not an AWS Region name", accountID, region)
	}
	if err := k.assume(ctx, accountID); err != nil {
		return nil, err
	}
	if _, err := k.cloud.zone(accountID, region); err != nil {
		return nil, fmt.Errorf("parameter client in account %s: %w", accountID, err)
	}
	return &SSM{cloud: k.cloud, conn: k, account: accountID, region: region, calls: k.cloud.calls.cell(accountID, region), assumed: true}, nil
}

func (s *SSM) do(ctx context.Context, op opCode, resource string, fn func() error) error {
	return s.cloud.do(ctx, s.conn, s.calls, op, s.account, s.region, resource, fn)
}

// allowed refuses an action the copier role's IAM policy lacks, as SSM
// does: AccessDeniedException.
func (s *SSM) allowed(op, action, name string) error {
	if s.assumed && !s.cloud.copierAllows(s.account, action) {
		return cloud.Errorf(op, "AccessDeniedException",
			"User: arn:aws:sts::%s:assumed-role/copier is not authorized to perform: %s on resource: arn:aws:ssm:%s:%s:parameter%s",
			s.account, action, s.region, s.account, parameterARNPath(name))
	}
	return nil
}

// parameterARNPath is the resource part of a parameter's ARN after
// "parameter": a name in a hierarchy brings its own leading slash.
func parameterARNPath(name string) string {
	if strings.HasPrefix(name, "/") {
		return name
	}
	return "/" + name
}

// nameError is SSM's refusal of a malformed name: ValidationException,
// or HierarchyLevelLimitExceededException for one too deep ("A hierarchy
// can have a maximum of 15 levels", PutParameter Errors).
func nameError(op, name string) error {
	err := cloud.CheckParameterName(name)
	if err == nil {
		return nil
	}
	if strings.Count(strings.Trim(name, "/"), "/")+1 > cloud.MaxParameterLevels {
		return cloud.Errorf(op, "HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of 15 levels: %s", name)
	}
	return cloud.Errorf(op, "ValidationException", "Parameter name %q is not valid: %v", name, err)
}

// GetParameters reads up to ten parameters as GetParameters does
// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameters.html):
// "Names ... Maximum number of 10 items", more is a ValidationException;
// names that do not exist come back in InvalidParameters, which the port
// leaves out of the result. Values of aws:ec2:image writes still being
// validated do not show.
func (s *SSM) GetParameters(ctx context.Context, names []string) (map[string]cloud.Parameter, error) {
	const op = cloud.OpGetParameters
	out := map[string]cloud.Parameter{}
	err := s.do(ctx, opGetParameters, strings.Join(names, ","), func() error {
		if err := s.allowed(op, "ssm:GetParameters", strings.Join(names, ",")); err != nil {
			return err
		}
		switch {
		case len(names) == 0:
			return cloud.Errorf(op, "ValidationException", "1 validation error detected: Value null at 'names' failed to satisfy constraint: Member must not be null")
		case len(names) > cloud.MaxGetParameters:
			return cloud.Errorf(op, "ValidationException",
				"1 validation error detected: Value '%v' at 'names' failed to satisfy constraint: Member must have length less than or equal to %d", names, cloud.MaxGetParameters)
		}
		for _, n := range names {
			if err := nameError(op, n); err != nil {
				return err
			}
		}
		s.cloud.settleParameters(s.account, s.region)
		s.cloud.params.mu.Lock()
		defer s.cloud.params.mu.Unlock()
		pz := s.cloud.params.zone(s.account, s.region)
		for _, n := range names {
			if p := pz.params[n]; p != nil {
				out[n] = cloud.Parameter{Name: n, Value: p.value, Type: p.typ, DataType: p.dataType, Version: p.version, Modified: p.modified}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ParameterTags lists a parameter's tags as ListTagsForResource with
// ResourceType Parameter does
// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListTagsForResource.html);
// a parameter that does not exist is InvalidResourceId.
func (s *SSM) ParameterTags(ctx context.Context, name string) (map[string]string, error) {
	const op = cloud.OpListTagsForResource
	var out map[string]string
	err := s.do(ctx, opListTagsForResource, name, func() error {
		return s.withParameter(op, "ssm:ListTagsForResource", name, func(p *simParameter) error {
			out = maps.Clone(p.tags)
			if out == nil {
				out = map[string]string{}
			}
			return nil
		})
	})
	return out, err
}

// withParameter runs fn on an existing parameter, under the registry's
// lock, once the caller's IAM allows action: a parameter that does not
// exist is InvalidResourceId, as the tagging operations answer.
func (s *SSM) withParameter(op, action, name string, fn func(p *simParameter) error) error {
	if err := s.allowed(op, action, name); err != nil {
		return err
	}
	s.cloud.settleParameters(s.account, s.region)
	s.cloud.params.mu.Lock()
	defer s.cloud.params.mu.Unlock()
	p := s.cloud.params.zone(s.account, s.region).params[name]
	if p == nil {
		return cloud.Errorf(op, "InvalidResourceId", "The resource ID %q is not valid. Verify the ID and try again.", name)
	}
	return fn(p)
}

// PutParameter writes a parameter as PutParameter does
// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html):
// a name that exists needs Overwrite (else ParameterAlreadyExists); Tags
// go with a new parameter only ("To add tags to an existing Systems
// Manager parameter, use the AddTagsToResource operation": tags with
// Overwrite are a ValidationException); a parameter cannot change type
// (HierarchyTypeMismatchException) nor change to or from aws:ec2:image
// ("You can't change a parameter to or from either of these data types",
// Parameter data types in Parameter Store,
// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-data-types.html;
// the error is not named there: ValidationException). Tagging on create
// needs ssm:AddTagsToResource too, as the AWS::SSM::Parameter resource's
// documentation says of creating a parameter with tags. An aws:ec2:image
// write is validated asynchronously (see the top of this file).
func (s *SSM) PutParameter(ctx context.Context, in cloud.PutParameterInput) (int64, error) {
	const op = cloud.OpPutParameter
	var version int64
	err := s.do(ctx, opPutParameter, in.Name, func() error {
		if err := s.allowed(op, "ssm:PutParameter", in.Name); err != nil {
			return err
		}
		if len(in.Tags) > 0 {
			if err := s.allowed(op, "ssm:AddTagsToResource", in.Name); err != nil {
				return err
			}
		}
		if err := nameError(op, in.Name); err != nil {
			return err
		}
		dataType := in.DataType
		if dataType == "" {
			dataType = cloud.DataTypeText
		}
		switch {
		case dataType != cloud.DataTypeText && dataType != cloud.DataTypeEC2Image:
			return cloud.Errorf(op, "ValidationException", "The following data type is not supported: %s (valid data types are: [text, aws:ec2:image, aws:ssm:integration])", dataType)
		case in.Value == "":
			return cloud.Errorf(op, "ValidationException", "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1")
		case len(in.Value) > maxStandardValue:
			return cloud.Errorf(op, "ValidationException", "Standard tier parameters support a maximum parameter value of 4096 characters.")
		case len(in.Tags) > 0 && in.Overwrite:
			return cloud.Errorf(op, "ValidationException", "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.")
		case len(in.Tags) > maxParameterTags:
			return cloud.Errorf(op, "TooManyTagsError", "The Tags parameter contains more than %d tags", maxParameterTags)
		}
		mayDescribe := !s.assumed || s.cloud.copierAllows(s.account, "ec2:DescribeImages")
		now := s.cloud.clock.Now()
		s.cloud.settleParameters(s.account, s.region)
		c := s.cloud
		c.params.mu.Lock()
		defer c.params.mu.Unlock()
		pz := c.params.zone(s.account, s.region)
		p := pz.params[in.Name]
		switch {
		case p != nil && !in.Overwrite:
			return cloud.Errorf(op, "ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
		case p != nil && p.typ != cloud.ParameterTypeString:
			return cloud.Errorf(op, "HierarchyTypeMismatchException", "The parameter type can't be changed from %s to %s.", p.typ, cloud.ParameterTypeString)
		case p != nil && p.dataType != dataType && (p.dataType == cloud.DataTypeEC2Image || dataType == cloud.DataTypeEC2Image):
			return cloud.Errorf(op, "ValidationException", "The data type of parameter %s can't be changed from %s to %s.", in.Name, p.dataType, dataType)
		case p == nil && len(pz.params) >= maxStandardParameters:
			return cloud.Errorf(op, "ParameterLimitExceeded", "You have exceeded the number of parameters for this AWS account. Delete unnecessary parameters and try again.")
		}
		current := pz.reserved[in.Name]
		if p != nil {
			current = max(current, p.version)
		}
		version = current + 1
		pz.reserved[in.Name] = version
		if dataType == cloud.DataTypeEC2Image {
			pz.pending = append(pz.pending, pendingWrite{
				name: in.Name, value: in.Value, description: in.Description, version: version,
				create: p == nil, tags: maps.Clone(in.Tags), due: now.Add(c.cfg.paramValidation), mayDescribe: mayDescribe,
			})
			return nil
		}
		if p == nil {
			p = &simParameter{typ: cloud.ParameterTypeString, dataType: dataType, tags: maps.Clone(in.Tags)}
			pz.params[in.Name] = p
		}
		p.value, p.version, p.modified = in.Value, version, now
		if in.Description != "" {
			p.description = in.Description
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// TagParameter adds tags to a parameter as AddTagsToResource with
// ResourceType Parameter does
// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html):
// a parameter that does not exist is InvalidResourceId, more than 50 tags
// TooManyTagsError.
func (s *SSM) TagParameter(ctx context.Context, name string, tags map[string]string) error {
	const op = cloud.OpAddTagsToResource
	return s.do(ctx, opAddTagsToResource, name, func() error {
		return s.withParameter(op, "ssm:AddTagsToResource", name, func(p *simParameter) error {
			merged := maps.Clone(p.tags)
			if merged == nil {
				merged = map[string]string{}
			}
			maps.Copy(merged, tags)
			if len(merged) > maxParameterTags {
				return cloud.Errorf(op, "TooManyTagsError", "The Tags parameter contains more than %d tags", maxParameterTags)
			}
			p.tags = merged
			return nil
		})
	})
}

// SimParameter is a parameter as the builder methods show it: its value,
// types, version and tags.
type SimParameter struct {
	cloud.Parameter
	Description string
	Tags        map[string]string
}

// ParameterSpec describes a parameter for SetParameter.
type ParameterSpec struct {
	Name, Value, Description string
	// Type defaults to String, DataType to text.
	Type, DataType string
	Tags           map[string]string
}

// SetParameter creates or replaces a parameter directly, with no
// validation and no call: a parameter another tool or a person made, for
// scenes. The version goes up by one. It panics on a malformed name.
func (c *Cloud) SetParameter(account, region string, p ParameterSpec) {
	c.mustZone("SetParameter", account, region)
	if err := cloud.CheckParameterName(p.Name); err != nil {
		panic(fmt.Sprintf("sim: SetParameter(%s, %s, %q): %v", account, region, p.Name, err))
	}
	dataType := p.DataType
	if dataType == "" {
		dataType = cloud.DataTypeText
	}
	typ := p.Type
	if typ == "" {
		typ = cloud.ParameterTypeString
	}
	c.params.mu.Lock()
	defer c.params.mu.Unlock()
	pz := c.params.zone(account, region)
	old := pz.params[p.Name]
	v := pz.reserved[p.Name]
	if old != nil {
		v = max(v, old.version)
	}
	pz.reserved[p.Name] = v + 1
	pz.params[p.Name] = &simParameter{
		value: p.Value, typ: typ, dataType: dataType, description: p.Description,
		version: v + 1, modified: c.clock.Now(), tags: maps.Clone(p.Tags),
	}
}

// Parameter returns a parameter of account in region as it stands now
// (pending aws:ec2:image writes that are due are validated first).
func (c *Cloud) Parameter(account, region, name string) (SimParameter, bool) {
	c.settleParameters(account, region)
	c.params.mu.Lock()
	defer c.params.mu.Unlock()
	p := c.params.zone(account, region).params[name]
	if p == nil {
		return SimParameter{}, false
	}
	return SimParameter{
		Parameter:   cloud.Parameter{Name: name, Value: p.value, Type: p.typ, DataType: p.dataType, Version: p.version, Modified: p.modified},
		Description: p.description, Tags: maps.Clone(p.tags),
	}, true
}

// Parameters returns the names of account's parameters in region, sorted.
func (c *Cloud) Parameters(account, region string) []string {
	c.settleParameters(account, region)
	c.params.mu.Lock()
	defer c.params.mu.Unlock()
	return slices.Sorted(maps.Keys(c.params.zone(account, region).params))
}

// PendingParameterWrites counts the aws:ec2:image writes of account in
// region SSM has not validated yet.
func (c *Cloud) PendingParameterWrites(account, region string) int {
	c.params.mu.Lock()
	defer c.params.mu.Unlock()
	return len(c.params.zone(account, region).pending)
}

var (
	_ cloud.ParameterStore     = (*SSM)(nil)
	_ cloud.ParameterConnector = (*Connector)(nil)
)
