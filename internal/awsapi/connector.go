package awsapi

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/pacing"
)

// ConnectOptions tune one run's connector.
type ConnectOptions struct {
	// ReadOnly refuses every mutating call before it is sent: plan runs
	// with it, so even a bug in the engine cannot change anything.
	ReadOnly bool
	// Shards is how many runs share the source account's buckets at once
	// (a sharded run: --shard I/N gives N); each paces the source account
	// at 1/N of the configured rates. 0 or 1: the whole organisation.
	Shards int
}

// Connector is the AWS access of one run. It implements
// Connector and CallCounter; it assumes each role at
// most once (while the credentials live) and keeps one client per account
// and Region. Safe for concurrent use.
type Connector struct {
	s        *Session
	runID    string
	session  string // STS role session name
	readOnly bool
	counts   callCounts
	pace     *pacing.Pacer
	sts      *sts.Client
	// bodies are the buffers DescribeImages answers are read into.
	bodies sync.Pool

	mu      sync.Mutex
	roles   map[string]*role // by role ARN
	clients map[[2]string]*ec2.Client
	// kmsClients are the check's KMS clients, by account and Region;
	// ssmClients the Parameter Store clients (ssm.go), eventClients the
	// EventBridge clients of the job's own identity, by Region
	// (events.go; the account part of the key is empty).
	kmsClients   map[[2]string]*kms.Client
	ssmClients   map[[2]string]*ssm.Client
	eventClients map[[2]string]*eventbridge.Client
	org          *organizations.Client
	ddb          *dynamodb.Client
}

// role is one assumed role: credentials cached and refreshed by the SDK,
// plus the run's memory of a refusal, so a role that cannot be assumed
// costs one AssumeRole per run, not one per Region.
type role struct {
	arn   string
	creds *aws.CredentialsCache

	mu     sync.Mutex
	ok     bool
	denied error
}

// Connect starts a run: a connector whose role sessions are named after
// runID. It makes no call until a client is used.
func (s *Session) Connect(runID string, o ConnectOptions) *Connector {
	// The session checked the rates: New cannot fail on them.
	pace, _ := pacing.New(s.opt.Rates, s.cfg.Source.AccountID, o.Shards)
	c := &Connector{
		s: s, runID: runID, session: SessionName(runID), readOnly: o.ReadOnly,
		pace:    pace,
		roles:   map[string]*role{},
		clients: map[[2]string]*ec2.Client{},
	}
	c.sts = sts.NewFromConfig(s.base, func(o *sts.Options) {
		if ep := s.cfg.AWS.Endpoints.STS; ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
		o.APIOptions = append(o.APIOptions, stackOptions(&c.counts, c.pace, "", "", false))
	})
	return c
}

// ConnectFunc returns a function handing out this connector, whatever run
// id the engine passes (the caller chose it: give the engine the same one
// in Request.RunID); it is a reconcile.ConnectFunc.
func (c *Connector) ConnectFunc() func(context.Context, string) (cloud.Connector, error) {
	return func(context.Context, string) (cloud.Connector, error) { return c, nil }
}

// RunID is the run the connector serves.
func (c *Connector) RunID() string { return c.runID }

// CallCounts returns the attempts made through this connector, retries
// included, by operation name (it is a CallCounter).
func (c *Connector) CallCounts() map[string]int64 {
	m := c.counts.snapshot()
	if m == nil {
		m = map[string]int64{}
	}
	return m
}

// Throttles returns how many attempts AWS throttled, retried by the SDK or
// not, and how many calls still failed throttled after the last attempt
// (the connector is a CallCounter).
func (c *Connector) Throttles() (attempts, surfaced int64) { return c.counts.throttles() }

var sessionNameInvalid = regexp.MustCompile(`[^\w+=,.@-]`)

// SessionName is the STS role session name of a run: "amicopier-<run
// id>", with characters STS refuses replaced and cut to its 64-character
// limit. CloudTrail shows it on every call the run makes.
func SessionName(runID string) string {
	name := "amicopier-" + sessionNameInvalid.ReplaceAllString(runID, "-")
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// assume returns the role for arn, creating its credentials cache once.
func (c *Connector) assume(arn string) *role {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.roles[arn]; r != nil {
		return r
	}
	provider := stscreds.NewAssumeRoleProvider(c.sts, arn, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = c.session
		o.Duration = c.s.opt.SessionDuration
		if id := c.s.cfg.Targets.ExternalID; id != "" {
			o.ExternalID = aws.String(id)
		}
	})
	r := &role{arn: arn, creds: aws.NewCredentialsCache(provider, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = refreshWindow
		o.ExpiryWindowJitterFrac = 0.2
	})}
	c.roles[arn] = r
	return r
}

// ready assumes the role now if it never was: the engine learns at once
// that an account is unreachable, instead of on its first EC2 call. A
// refusal that retrying cannot cure (access denied, a malformed role) is
// remembered for the run; transient failures (the SDK already retried
// them) are tried again by the next caller.
func (r *role) ready(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ok {
		return nil
	}
	if r.denied != nil {
		return r.denied
	}
	if _, err := r.creds.Retrieve(ctx); err != nil {
		err = apiError("AssumeRole", err)
		switch cloud.ClassOf(err) {
		case cloud.ClassAccessDenied, cloud.ClassPermanent, cloud.ClassNotFound:
			r.denied = fmt.Errorf("assume role %s: %w", r.arn, err)
			return r.denied
		}
		return fmt.Errorf("assume role %s: %w", r.arn, err)
	}
	r.ok = true
	return nil
}

// credentials returns the credentials for an optional role ARN: the
// session's own when arn is empty.
func (c *Connector) credentials(ctx context.Context, arn string) (aws.CredentialsProvider, error) {
	if arn == "" {
		return c.s.base.Credentials, nil
	}
	r := c.assume(arn)
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	return r.creds, nil
}

// ec2Client returns the client named key in region, creating it with
// creds the first time. Clients of one account share its buckets (keyed
// by account, Region and operation) whatever credentials they use.
func (c *Connector) ec2Client(key, account, region string, creds aws.CredentialsProvider) *ec2.Client {
	ck := [2]string{key, region}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl := c.clients[ck]; cl != nil {
		return cl
	}
	cl := ec2.NewFromConfig(c.s.base, func(o *ec2.Options) {
		o.Region = region
		o.Credentials = creds
		if ep := c.s.cfg.AWS.Endpoints.EC2; ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
		o.APIOptions = append(o.APIOptions, stackOptions(&c.counts, c.pace, account, region, c.readOnly), withAccount(account))
	})
	c.clients[ck] = cl
	return cl
}

// Source returns the source account's EC2 client in region, through
// source.role_arn when it is set.
func (c *Connector) Source(ctx context.Context, region string) (cloud.EC2, error) {
	if !cloud.IsRegion(region) {
		return nil, fmt.Errorf("source client: region %q is not an AWS Region name", region)
	}
	account := c.s.cfg.Source.AccountID
	creds, err := c.credentials(ctx, c.s.cfg.Source.RoleARN)
	if err != nil {
		return nil, err
	}
	return &ec2Adapter{c: c, api: c.ec2Client("source", account, region, creds), account: account, region: region}, nil
}

// Target returns a client acting as accountID in region through the
// copier role. The role is assumed on the first call for the account and
// the session reused in every Region; an error of class
// cloud.ClassAccessDenied makes the account unreachable.
func (c *Connector) Target(ctx context.Context, accountID, region string) (cloud.EC2, error) {
	if !cloud.IsAccountID(accountID) {
		return nil, fmt.Errorf("target client: account %q is not a 12-digit account id", accountID)
	}
	if !cloud.IsRegion(region) {
		return nil, fmt.Errorf("target client in account %s: region %q is not an AWS Region name", accountID, region)
	}
	r := c.assume(c.s.cfg.TargetRoleARN(accountID))
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	return &ec2Adapter{c: c, api: c.ec2Client(accountID, accountID, region, r.creds), account: accountID, region: region}, nil
}

// Organization returns the Organizations client, through
// organization.role_arn when it is set.
func (c *Connector) Organization(ctx context.Context) (cloud.Organization, error) {
	creds, err := c.credentials(ctx, c.s.cfg.Organization.RoleARN)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.org == nil {
		c.org = organizations.NewFromConfig(c.s.base, func(o *organizations.Options) {
			o.Credentials = creds
			if ep := c.s.cfg.AWS.Endpoints.Organizations; ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
			// Paced in the identity's one Organizations bucket.
			o.APIOptions = append(o.APIOptions, stackOptions(&c.counts, c.pace, "", "", c.readOnly))
		})
	}
	return &orgAdapter{api: c.org}, nil
}

// dynamoDB returns the DynamoDB client the AMIgo recipes table is read
// with: the source account's credentials (AMIgo runs there) in the home
// Region.
func (c *Connector) dynamoDB(ctx context.Context) (*dynamodb.Client, error) {
	creds, err := c.credentials(ctx, c.s.cfg.Source.RoleARN)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ddb == nil {
		c.ddb = dynamodb.NewFromConfig(c.s.base, func(o *dynamodb.Options) {
			o.Credentials = creds
			if ep := c.s.cfg.AWS.Endpoints.DynamoDB; ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
			o.APIOptions = append(o.APIOptions, stackOptions(&c.counts, nil, "", "", false), withAccount(c.s.cfg.Source.AccountID))
		})
	}
	return c.ddb, nil
}

// TargetSources returns the target metadata sources that need AWS: the
// AMIgo recipes table when targets.amigo_recipes_table is set. They read
// through this connector, so their calls are counted with the run's.
func (c *Connector) TargetSources() []cloud.TargetSource {
	table := strings.TrimSpace(c.s.cfg.Targets.AmigoRecipesTable)
	if table == "" {
		return nil
	}
	return []cloud.TargetSource{newRecipeTargets(table, func(ctx context.Context) (recipeReader, error) {
		return c.dynamoDB(ctx)
	})}
}

// Compile-time checks of the ports.
var (
	_ cloud.Connector    = (*Connector)(nil)
	_ cloud.CallCounter  = (*Connector)(nil)
	_ cloud.EC2          = (*ec2Adapter)(nil)
	_ cloud.Organization = (*orgAdapter)(nil)
)
