package state

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DefaultDynamoDBRegion is the Region of the state table when neither the
// options nor the environment (AWS_REGION, the shared config profile)
// name one.
const DefaultDynamoDBRegion = "us-east-1"

// localAccessKey is the static credential used against a loopback
// endpoint when the environment has none: local emulators check the
// signature's shape, not the key.
const localAccessKey = "amicopier-local"

// DynamoDBOptions say which table to use and how to reach it.
type DynamoDBOptions struct {
	// Table is the state table's name (required).
	Table string
	// Region of the table; empty: AWS_REGION or the shared config
	// profile's Region, else DefaultDynamoDBRegion.
	Region string
	// Endpoint overrides the DynamoDB endpoint URL (local emulators such
	// as dynalite). Empty: AWS's endpoint for the Region. For a loopback
	// endpoint (localhost, 127.0.0.0/8, ::1) without credentials in the
	// environment, static dummy credentials are used; no other endpoint
	// ever gets them.
	Endpoint string
	// PageSize is the Limit of each Query page; 0 lets DynamoDB fill 1 MB
	// pages. Tests set it low to prove pagination.
	PageSize int32
	// MaxAttempts is how many times the SDK's retryer tries each request
	// that DynamoDB answers with a retryable error (throttling, 5xx; see
	// dynamoDBVerdict) or that fails to connect; 0: AWS_MAX_ATTEMPTS, else
	// DefaultDynamoDBMaxAttempts. A failed condition is never retried.
	MaxAttempts int
	// MaxBackoff caps the SDK retryer's wait between attempts; 0 keeps the
	// SDK's 20 s.
	MaxBackoff time.Duration
	// Logger receives the few notable events (dummy local credentials,
	// time to live unsupported); default slog.Default().
	Logger *slog.Logger
	// ClientOptions are applied to the DynamoDB client's options after
	// the endpoint: the CLI sets its HTTP timeouts and call log here.
	ClientOptions []func(*dynamodb.Options)
}

var tableNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

func (o DynamoDBOptions) validate() error {
	switch {
	case o.Table == "":
		return fmt.Errorf("%w: DynamoDB state table name is empty", ErrInvalid)
	case !tableNamePattern.MatchString(o.Table):
		return fmt.Errorf("%w: %q is not a DynamoDB table name (3-255 characters of letters, digits, _ . -)", ErrInvalid, o.Table)
	case o.PageSize < 0:
		return fmt.Errorf("%w: DynamoDB table %s: page size must not be negative, got %d", ErrInvalid, o.Table, o.PageSize)
	case o.MaxAttempts < 0:
		return fmt.Errorf("%w: DynamoDB table %s: max attempts must not be negative, got %d", ErrInvalid, o.Table, o.MaxAttempts)
	case o.MaxBackoff < 0:
		return fmt.Errorf("%w: DynamoDB table %s: max backoff must not be negative, got %s", ErrInvalid, o.Table, o.MaxBackoff)
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: DynamoDB endpoint %q is not an http(s) URL", ErrInvalid, o.Endpoint)
		}
	}
	return nil
}

// IsLoopbackEndpoint reports whether endpoint is an http(s) URL whose host
// is localhost or a loopback address: the only endpoints that may be used
// with dummy credentials, and the only ones tests may talk to.
func IsLoopbackEndpoint(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dynamoAPI is the part of the DynamoDB client the store uses; tests wrap
// it to inject unprocessed batch items.
type dynamoAPI interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTimeToLive(context.Context, *dynamodb.DescribeTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(context.Context, *dynamodb.UpdateTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// DynamoDB is the production Store: one DynamoDB table (see
// DynamoDBTableDefinition) holding pair, run and lease items. Every write
// is conditional where two writers could meet; a lost condition is
// reported as ErrConflict or a *LeaseHeldError, never retried blindly.
//
// Pair reads of UnsettledPairs go through a global secondary index, which
// DynamoDB updates asynchronously: a pair written a moment ago may be
// missing or stale there. Runs read it once at their start, long after
// the previous run's writes; a stale version makes the next PutPair fail
// with ErrConflict rather than overwrite.
type DynamoDB struct {
	tableRef
	api      dynamoAPI
	pageSize int32
	opts     options
	log      *slog.Logger
	closed   atomic.Bool

	// maxAttempts is the SDK retryer's attempts per request, for Faulty's
	// errors.
	maxAttempts int
	// batchRetries bounds the rounds BatchGetItem's unprocessed keys are
	// retried; batchBackoff is the first wait between rounds.
	batchRetries int
	batchBackoff time.Duration
}

var _ Store = (*DynamoDB)(nil)

// OpenDynamoDB connects to the state table and checks that it exists with
// amicopier's definition. A missing table gives an error wrapping
// ErrTableNotFound that says to run `amicopier state init`; an endpoint
// that cannot be reached, one wrapping ErrEndpointUnreachable that names
// it. WithClock sets the clock of lease expiry, UpdatedAt and run expiry.
func OpenDynamoDB(ctx context.Context, o DynamoDBOptions, opts ...Option) (*DynamoDB, error) {
	d, err := connectDynamoDB(ctx, o, opts)
	if err != nil {
		return nil, err
	}
	if err := d.checkTable(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// connectDynamoDB builds the client without touching the table.
func connectDynamoDB(ctx context.Context, o DynamoDBOptions, opts []Option) (*DynamoDB, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	var load []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		load = append(load, awsconfig.WithRegion(o.Region))
	}
	loopback := o.Endpoint != "" && IsLoopbackEndpoint(o.Endpoint)
	if loopback {
		// A local emulator never needs the instance metadata service, and
		// probing it off EC2 costs seconds before the fallback below.
		load = append(load, awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("DynamoDB table %s: load the AWS configuration: %w", o.Table, err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultDynamoDBRegion
	}
	if loopback && !hasCredentials(ctx, cfg) {
		log.Debug("no AWS credentials in the environment; using dummy credentials for the loopback endpoint",
			"endpoint", o.Endpoint)
		cfg.Credentials = credentials.NewStaticCredentialsProvider(localAccessKey, localAccessKey, "")
	}
	attempts := o.MaxAttempts
	if attempts == 0 {
		attempts = cfg.RetryMaxAttempts // AWS_MAX_ATTEMPTS, the shared config's max_attempts
	}
	if attempts == 0 {
		attempts = DefaultDynamoDBMaxAttempts
	}
	client := dynamodb.NewFromConfig(cfg, func(do *dynamodb.Options) {
		if o.Endpoint != "" {
			do.BaseEndpoint = aws.String(o.Endpoint)
		}
		do.Retryer = newDynamoDBRetryer(attempts, o.MaxBackoff)
		// The retryer above has the attempts; a second count from the
		// environment would wrap it.
		do.RetryMaxAttempts = 0
		for _, f := range o.ClientOptions {
			f(do)
		}
	})
	d := newDynamoDB(client, o, opts)
	d.maxAttempts = attempts
	d.region = cfg.Region
	d.log = log
	return d, nil
}

func hasCredentials(ctx context.Context, cfg aws.Config) bool {
	if cfg.Credentials == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := cfg.Credentials.Retrieve(ctx)
	return err == nil
}

// newDynamoDB wraps an API client; o must be valid.
func newDynamoDB(api dynamoAPI, o DynamoDBOptions, opts []Option) *DynamoDB {
	region := o.Region
	if region == "" {
		region = DefaultDynamoDBRegion
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &DynamoDB{
		tableRef: tableRef{table: o.Table, region: region, endpoint: o.Endpoint},
		api:      api, pageSize: o.PageSize,
		opts: buildOptions(opts), log: log,
		maxAttempts: DefaultDynamoDBMaxAttempts, batchRetries: 8, batchBackoff: 50 * time.Millisecond,
	}
}

// Table returns the table's name.
func (d *DynamoDB) Table() string { return d.table }

// Region returns the table's Region.
func (d *DynamoDB) Region() string { return d.region }

// Endpoint returns the endpoint override, empty for AWS's own.
func (d *DynamoDB) Endpoint() string { return d.endpoint }

// ready fails fast on a done context or a closed store.
func (d *DynamoDB) ready(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.closed.Load() {
		return fmt.Errorf("DynamoDB table %s: %s: %w", d.table, op, ErrClosed)
	}
	return nil
}

// UnsettledPairs implements Store with a Query of the sparse unsettled
// index, page by page; settled pairs are not in the index, so they are
// never read. Pairs come ordered by key.
func (d *DynamoDB) UnsettledPairs(ctx context.Context, source string) ([]Pair, error) {
	if err := validateSource(source); err != nil {
		return nil, err
	}
	op := opUnsettledPairs(source)
	if err := d.ready(ctx, op); err != nil {
		return nil, err
	}
	// The index also holds the grants records of the source account.
	return queryUnsettled(ctx, d, op, source, pkPairPrefix, unmarshalPair)
}

// queryUnsettled reads, page by page, the items of the sparse unsettled
// index that belong to source and whose pk starts with prefix (pairs and
// sharing ledgers share the index), decoding each with decode.
func queryUnsettled[T any](ctx context.Context, d *DynamoDB, op, source, prefix string, decode func(map[string]types.AttributeValue) (T, error)) ([]T, error) {
	key := expression.Key(attrUnsettledSource).Equal(expression.Value(source)).
		And(expression.Key(attrPK).BeginsWith(prefix))
	expr, err := expression.NewBuilder().WithKeyCondition(key).Build()
	if err != nil {
		return nil, fmt.Errorf("DynamoDB table %s: %s: build query: %w", d.table, op, err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(d.table),
		IndexName:                 aws.String(DynamoDBUnsettledIndex),
		KeyConditionExpression:    expr.KeyCondition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	}
	if d.pageSize > 0 {
		in.Limit = aws.Int32(d.pageSize)
	}
	var out []T
	pages := dynamodb.NewQueryPaginator(d.api, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, d.apiError(op, err)
		}
		for _, item := range page.Items {
			v, err := decode(item)
			if err != nil {
				return nil, fmt.Errorf("DynamoDB table %s: %s: decode: %w", d.table, op, err)
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// GetPair implements Store with a strongly consistent read.
func (d *DynamoDB) GetPair(ctx context.Context, key PairKey) (Pair, bool, error) {
	if err := validatePairKey(key); err != nil {
		return Pair{}, false, err
	}
	op := opGetPair(key)
	if err := d.ready(ctx, op); err != nil {
		return Pair{}, false, err
	}
	out, err := d.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(d.table), Key: pairKeyAttrs(key), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Pair{}, false, d.apiError(op, err)
	}
	if len(out.Item) == 0 {
		return Pair{}, false, nil
	}
	p, err := unmarshalPair(out.Item)
	if err != nil {
		return Pair{}, false, fmt.Errorf("DynamoDB table %s: %s: decode: %w", d.table, op, err)
	}
	return p, true, nil
}

// PutPair implements Store with one conditional PutItem: the stored
// version must equal p.Version (0: no item). On a lost condition the
// error names both versions; the stored one comes from the failed
// request (ReturnValuesOnConditionCheckFailure) or, on servers that
// ignore that parameter, from a consistent read right after.
//
// A condition can also fail against this very write: an attempt that
// DynamoDB applied but answered with a retryable error (a 500 after the
// write, a lost response) is retried by the SDK, and the retry finds the
// version already advanced. When the stored item is exactly the one this
// call wrote (version, content, update time and run), the write is
// reported as done, not as a conflict.
func (d *DynamoDB) PutPair(ctx context.Context, p Pair) (Pair, error) {
	if err := validatePair(p); err != nil {
		return Pair{}, err
	}
	op := opPutPair(p.Key)
	if err := d.ready(ctx, op); err != nil {
		return Pair{}, err
	}
	next := normPair(p)
	next.Version = p.Version + 1
	next.UpdatedAt = d.opts.now()
	item, err := marshalPair(next)
	if err != nil {
		return Pair{}, fmt.Errorf("DynamoDB table %s: %s: encode: %w", d.table, op, err)
	}
	cond := expression.AttributeNotExists(expression.Name(attrPK))
	if p.Version > 0 {
		cond = expression.Name(attrVersion).Equal(expression.Value(p.Version))
	}
	old, lost, err := d.conditionalPut(ctx, op, item, cond)
	if err != nil {
		return Pair{}, err
	}
	if lost {
		stored, found, rerr := d.storedPair(ctx, p.Key, old)
		if rerr != nil {
			return Pair{}, fmt.Errorf("put pair %s: writer expected version %d, stored version unknown (%v): %w",
				p.Key, p.Version, rerr, ErrConflict)
		}
		if found && sameWrite(stored, next) {
			d.log.Debug("conditional write found its own earlier attempt applied", "table", d.table, "pair", p.Key.String())
			return next, nil
		}
		return Pair{}, conflictError(p.Key, stored.Version, p.Version)
	}
	return next, nil
}

// sameWrite reports whether stored is exactly the record written as w.
func sameWrite(stored, w Pair) bool {
	return stored.Version == w.Version && stored.SameContent(w) &&
		stored.UpdatedAt.Equal(w.UpdatedAt) && stored.RunID == w.RunID
}

// conditionalPut writes item under cond. lost reports a failed condition,
// with the item that beat the write when the server returned it (servers
// that ignore ReturnValuesOnConditionCheckFailure return none).
func (d *DynamoDB) conditionalPut(ctx context.Context, op string, item map[string]types.AttributeValue, cond expression.ConditionBuilder) (old map[string]types.AttributeValue, lost bool, err error) {
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return nil, false, fmt.Errorf("DynamoDB table %s: %s: build condition: %w", d.table, op, err)
	}
	_, err = d.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(d.table),
		Item:                                item,
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if ccf, ok := conditionFailed(err); ok {
		return ccf.Item, true, nil
	}
	if err != nil {
		return nil, false, d.apiError(op, err)
	}
	return nil, false, nil
}

// storedPair is the item that beat a write: the one the failed request
// returned, or read afresh (found is false when there is none).
func (d *DynamoDB) storedPair(ctx context.Context, key PairKey, old map[string]types.AttributeValue) (Pair, bool, error) {
	if len(old) == 0 {
		return d.GetPair(ctx, key)
	}
	p, err := unmarshalPair(old)
	if err != nil {
		return Pair{}, false, err
	}
	return p, true, nil
}

// PutRun implements Store: runs are keyed by scope and id, so a replaced
// run keeps one item; its expiry becomes the TTL attribute.
func (d *DynamoDB) PutRun(ctx context.Context, r Run) error {
	if err := validateRun(r); err != nil {
		return err
	}
	op := opPutRun(r)
	if err := d.ready(ctx, op); err != nil {
		return err
	}
	item, err := marshalRun(cloneRun(r))
	if err != nil {
		return fmt.Errorf("DynamoDB table %s: %s: encode: %w", d.table, op, err)
	}
	if _, err := d.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: item}); err != nil {
		return d.apiError(op, err)
	}
	return nil
}

// RecentRuns implements Store with a descending Query of the scope's runs
// on the runs_by_start index. DynamoDB deletes expired items lazily (and
// emulators may not at all), so expired runs are skipped here by the
// store's clock.
func (d *DynamoDB) RecentRuns(ctx context.Context, scope string, limit int) ([]Run, error) {
	if err := validateRecent(scope, limit); err != nil {
		return nil, err
	}
	op := opRecentRuns(scope)
	if err := d.ready(ctx, op); err != nil {
		return nil, err
	}
	expr, err := expression.NewBuilder().
		WithKeyCondition(expression.Key(attrPK).Equal(expression.Value(runPK(scope)))).Build()
	if err != nil {
		return nil, fmt.Errorf("DynamoDB table %s: %s: build query: %w", d.table, op, err)
	}
	page := d.pageSize
	if page <= 0 {
		page = int32(min(limit, 1000))
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(d.table),
		IndexName:                 aws.String(DynamoDBRunsIndex),
		KeyConditionExpression:    expr.KeyCondition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ScanIndexForward:          aws.Bool(false),
		ConsistentRead:            aws.Bool(true),
		Limit:                     aws.Int32(page),
	}
	now := d.opts.now()
	var out []Run
	pages := dynamodb.NewQueryPaginator(d.api, in)
	for pages.HasMorePages() && len(out) < limit {
		p, err := pages.NextPage(ctx)
		if err != nil {
			return nil, d.apiError(op, err)
		}
		for _, item := range p.Items {
			r, err := unmarshalRun(item)
			if err != nil {
				return nil, fmt.Errorf("DynamoDB table %s: %s: decode: %w", d.table, op, err)
			}
			if !runExpired(r, now) && len(out) < limit {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// leaseAttempts bounds how often a lease call is retried when the
// condition failed but the lease, read right after, turned out free (it
// was released in between). A lease that is really held is reported at
// once.
const leaseAttempts = 3

// AcquireLease implements Store with a PutItem conditional on the lease
// being absent, expired by the store's clock, or already the holder's.
func (d *DynamoDB) AcquireLease(ctx context.Context, scope, holder string, ttl time.Duration) (Lease, error) {
	if err := validateLease(scope, holder, ttl); err != nil {
		return Lease{}, err
	}
	op := opAcquireLease(scope)
	if err := d.ready(ctx, op); err != nil {
		return Lease{}, err
	}
	for range leaseAttempts {
		now := d.opts.now()
		l := Lease{Scope: scope, Holder: holder, Expires: now.Add(ttl)}
		cond := expression.AttributeNotExists(expression.Name(attrPK)).Or(
			expression.Name(attrExpiresNS).LessThanEqual(expression.Value(now.UnixNano())),
			expression.Name(attrHolder).Equal(expression.Value(holder)),
		)
		old, lost, err := d.putLease(ctx, op, l, cond)
		if err != nil {
			return Lease{}, err
		}
		if !lost {
			return l, nil
		}
		cur, found, err := d.leaseAfterConflict(ctx, scope, old)
		if err != nil {
			return Lease{}, err
		}
		if _, err := acquireLease(cur, found, scope, holder, ttl, now); err != nil {
			return Lease{}, err
		}
	}
	return Lease{}, fmt.Errorf("DynamoDB table %s: %s: the lease changed hands %d times while taking it: %w", d.table, op, leaseAttempts, ErrConflict)
}

// RenewLease implements Store with a PutItem conditional on the caller
// still being the holder.
func (d *DynamoDB) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if err := validateLease(l.Scope, l.Holder, ttl); err != nil {
		return Lease{}, err
	}
	op := opRenewLease(l.Scope)
	if err := d.ready(ctx, op); err != nil {
		return Lease{}, err
	}
	for range leaseAttempts {
		now := d.opts.now()
		next := Lease{Scope: l.Scope, Holder: l.Holder, Expires: now.Add(ttl)}
		old, lost, err := d.putLease(ctx, op, next, expression.Name(attrHolder).Equal(expression.Value(l.Holder)))
		if err != nil {
			return Lease{}, err
		}
		if !lost {
			return next, nil
		}
		cur, found, err := d.leaseAfterConflict(ctx, l.Scope, old)
		if err != nil {
			return Lease{}, err
		}
		if _, err := renewLease(cur, found, l, ttl, now); err != nil {
			return Lease{}, err
		}
	}
	return Lease{}, fmt.Errorf("DynamoDB table %s: %s: the lease changed hands %d times while renewing it: %w", d.table, op, leaseAttempts, ErrConflict)
}

// putLease writes a lease item under cond; lost reports a failed
// condition, with the item that won when the server returned it.
func (d *DynamoDB) putLease(ctx context.Context, op string, l Lease, cond expression.ConditionBuilder) (old map[string]types.AttributeValue, lost bool, err error) {
	item, err := marshalLease(l)
	if err != nil {
		return nil, false, fmt.Errorf("DynamoDB table %s: %s: encode: %w", d.table, op, err)
	}
	return d.conditionalPut(ctx, op, item, cond)
}

// leaseAfterConflict decodes the lease that beat a write, reading it when
// the server did not return it.
func (d *DynamoDB) leaseAfterConflict(ctx context.Context, scope string, old map[string]types.AttributeValue) (Lease, bool, error) {
	if len(old) == 0 {
		out, err := d.api.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(d.table), Key: leaseKeyAttrs(scope), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return Lease{}, false, d.apiError("read lease of scope "+scope, err)
		}
		if len(out.Item) == 0 {
			return Lease{}, false, nil
		}
		old = out.Item
	}
	l, err := unmarshalLease(old)
	if err != nil {
		return Lease{}, false, fmt.Errorf("DynamoDB table %s: decode lease of scope %s: %w", d.table, scope, err)
	}
	return l, true, nil
}

// ReleaseLease implements Store with a DeleteItem conditional on the
// caller still being the holder; a lease someone else took over is left
// alone without error.
func (d *DynamoDB) ReleaseLease(ctx context.Context, l Lease) error {
	if err := validateRelease(l); err != nil {
		return err
	}
	op := opReleaseLease(l.Scope)
	if err := d.ready(ctx, op); err != nil {
		return err
	}
	expr, err := expression.NewBuilder().
		WithCondition(expression.Name(attrHolder).Equal(expression.Value(l.Holder))).Build()
	if err != nil {
		return fmt.Errorf("DynamoDB table %s: %s: build condition: %w", d.table, op, err)
	}
	_, err = d.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(d.table),
		Key:                       leaseKeyAttrs(l.Scope),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	if _, lost := conditionFailed(err); lost {
		return nil
	}
	if err != nil {
		return d.apiError(op, err)
	}
	return nil
}

// Close implements Store. The SDK client holds nothing that needs
// closing; calls after Close fail with ErrClosed. Closing twice is not an
// error.
func (d *DynamoDB) Close() error {
	d.closed.Store(true)
	return nil
}
