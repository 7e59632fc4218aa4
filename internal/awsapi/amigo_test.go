package awsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
)

func accountMap(id string) types.AttributeValue {
	return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"accountNumber": &types.AttributeValueMemberS{Value: id}}}
}

func refIDs(spec cloud.TargetSpec) []string {
	var ids []string
	for _, r := range spec.Refs {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestParseEncryptFor(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	long := make([]types.AttributeValue, maxEncryptFor+5)
	for i := range long {
		long[i] = s(fmt.Sprintf("%012d", i+1))
	}
	for _, tc := range []struct {
		name        string
		av          types.AttributeValue
		refs        []string
		invalid     int
		invalidText string
	}{
		{"maps", &types.AttributeValueMemberL{Value: []types.AttributeValue{accountMap(acctA), accountMap(acctB)}}, []string{acctA, acctB}, 0, ""},
		{"strings", &types.AttributeValueMemberL{Value: []types.AttributeValue{s(acctA), s(acctB + ", " + acctC)}}, []string{acctA, acctB, acctC}, 0, ""},
		{"string set", &types.AttributeValueMemberSS{Value: []string{acctA}}, []string{acctA}, 0, ""},
		{"number keeps leading zeros", &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "12345678901"}}}, []string{"012345678901"}, 0, ""},
		{"absent", nil, nil, 0, ""},
		{"null", &types.AttributeValueMemberNULL{Value: true}, nil, 0, ""},
		{"not a list", s(acctA), nil, 1, "string, not a list"},
		{"bad token", &types.AttributeValueMemberL{Value: []types.AttributeValue{s("12345"), accountMap(acctA)}}, []string{acctA}, 1, `"12345"`},
		{"map without accountNumber", &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"account": s(acctA)}},
			&types.AttributeValueMemberBOOL{Value: true},
		}}, nil, 2, "encryptFor[1]"},
		{"too many", &types.AttributeValueMemberL{Value: long}, nil, 1, "more than 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := parseEncryptFor(tc.av, `AMIgo recipe "r" encryptFor`)
			if tc.name == "too many" {
				if len(spec.Refs) != maxEncryptFor {
					t.Errorf("%d refs, want %d", len(spec.Refs), maxEncryptFor)
				}
			} else if got := refIDs(spec); !slices.Equal(got, tc.refs) {
				t.Errorf("refs %v, want %v", got, tc.refs)
			}
			if len(spec.Invalid) != tc.invalid {
				t.Fatalf("invalid %+v, want %d", spec.Invalid, tc.invalid)
			}
			if tc.invalid > 0 {
				text := fmt.Sprintf("%+v", spec.Invalid)
				if !strings.Contains(text, tc.invalidText) || !strings.Contains(text, `AMIgo recipe "r"`) {
					t.Errorf("invalid %s: want it to name %s and the recipe", text, tc.invalidText)
				}
			}
			for _, r := range spec.Refs {
				if !strings.HasPrefix(r.Origin, `AMIgo recipe "r" encryptFor[`) {
					t.Errorf("origin %q must name the recipe and the entry", r.Origin)
				}
			}
		})
	}
}

// countingReader serves recipes from memory and counts the reads.
type countingReader struct {
	items map[string]map[string]types.AttributeValue
	err   error
	calls []string
}

func (c *countingReader) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	id := in.Key["id"].(*types.AttributeValueMemberS).Value
	c.calls = append(c.calls, aws.ToString(in.TableName)+"/"+id)
	if c.err != nil {
		return nil, c.err
	}
	return &dynamodb.GetItemOutput{Item: c.items[id]}, nil
}

func TestRecipeTargetsReadsEachRecipeOnce(t *testing.T) {
	rd := &countingReader{items: map[string]map[string]types.AttributeValue{
		"ubuntu": {"id": &types.AttributeValueMemberS{Value: "ubuntu"}, "encryptFor": &types.AttributeValueMemberL{Value: []types.AttributeValue{accountMap(acctA)}}},
	}}
	src := newRecipeTargets("amigo-PROD-recipes", func(context.Context) (recipeReader, error) { return rd, nil })
	ctx := context.Background()
	img := func(recipe string) *cloud.Image {
		return &cloud.Image{ID: "ami-00000001", Tags: map[string]string{RecipeTag: recipe}}
	}
	for range 3 {
		spec, err := src.Targets(ctx, img("ubuntu"))
		if err != nil || !slices.Equal(refIDs(spec), []string{acctA}) {
			t.Fatalf("spec %+v, %v", spec, err)
		}
		spec.Refs[0].ID = "mutated" // the cache hands out copies
	}
	if spec, err := src.Targets(ctx, img("unknown")); err != nil || len(spec.Refs)+len(spec.Invalid) != 0 {
		t.Errorf("recipe not in the table: %+v, %v", spec, err)
	}
	if _, err := src.Targets(ctx, &cloud.Image{ID: "ami-00000002"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"amigo-PROD-recipes/ubuntu", "amigo-PROD-recipes/unknown"}; !slices.Equal(rd.calls, want) {
		t.Errorf("reads %v, want %v", rd.calls, want)
	}

	// A failure retrying cannot cure is remembered for the run; a
	// transient one is not: the next image of the recipe reads it again.
	for _, tc := range []struct {
		name  string
		err   error
		reads int
	}{
		{"access denied", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}, 1},
		{"no such table", &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "no table"}, 1},
		{"throttled", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "slow down"}, 3},
		{"network", errors.New("connection reset by peer"), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failing := &countingReader{err: tc.err}
			src := newRecipeTargets("t", func(context.Context) (recipeReader, error) { return failing, nil })
			for range 3 {
				if _, err := src.Targets(ctx, img("x")); err == nil || !strings.Contains(err.Error(), `"x"`) {
					t.Errorf("error %v must name the recipe", err)
				}
			}
			if len(failing.calls) != tc.reads {
				t.Errorf("%d reads of a failing recipe, want %d", len(failing.calls), tc.reads)
			}
		})
	}
	// Once the transient failure passes, the recipe's targets are back.
	flaky := &countingReader{err: &smithy.GenericAPIError{Code: "ThrottlingException"}, items: rd.items}
	src = newRecipeTargets("t", func(context.Context) (recipeReader, error) { return flaky, nil })
	if _, err := src.Targets(ctx, img("ubuntu")); err == nil {
		t.Fatal("throttled read succeeded")
	}
	flaky.err = nil
	if spec, err := src.Targets(ctx, img("ubuntu")); err != nil || !slices.Equal(refIDs(spec), []string{acctA}) {
		t.Errorf("after the throttle: %+v, %v", spec, err)
	}
}

// gatedReader blocks reads of one recipe until released, and counts reads.
type gatedReader struct {
	items   map[string]map[string]types.AttributeValue
	blocked string
	entered chan struct{}
	release chan struct{}

	mu    sync.Mutex
	calls map[string]int
}

func (g *gatedReader) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	id := in.Key["id"].(*types.AttributeValueMemberS).Value
	g.mu.Lock()
	g.calls[id]++
	g.mu.Unlock()
	if id == g.blocked {
		g.entered <- struct{}{}
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &dynamodb.GetItemOutput{Item: g.items[id]}, nil
}

// TestRecipeTargetsConcurrentLookups: lookups of one recipe share one
// read, and a slow read does not hold up lookups of other recipes.
func TestRecipeTargetsConcurrentLookups(t *testing.T) {
	item := func(acct string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"encryptFor": &types.AttributeValueMemberL{Value: []types.AttributeValue{accountMap(acct)}}}
	}
	g := &gatedReader{
		items:   map[string]map[string]types.AttributeValue{"slow": item(acctA), "fast": item(acctB)},
		blocked: "slow", entered: make(chan struct{}, 1), release: make(chan struct{}), calls: map[string]int{},
	}
	src := newRecipeTargets("t", func(context.Context) (recipeReader, error) { return g, nil })
	ctx := context.Background()
	img := func(recipe string) *cloud.Image {
		return &cloud.Image{ID: "ami-00000001", Tags: map[string]string{RecipeTag: recipe}}
	}
	const waiters = 8
	var wg sync.WaitGroup
	results := make([][]string, waiters)
	errs := make([]error, waiters)
	for i := range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec, err := src.Targets(ctx, img("slow"))
			results[i], errs[i] = refIDs(spec), err
		}()
	}
	<-g.entered // one read of "slow" is in flight
	fast := make(chan error, 1)
	go func() {
		spec, err := src.Targets(ctx, img("fast"))
		if err == nil && !slices.Equal(refIDs(spec), []string{acctB}) {
			err = fmt.Errorf("fast recipe: %v", refIDs(spec))
		}
		fast <- err
	}()
	select {
	case err := <-fast:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lookup of another recipe waited for the slow read")
	}
	close(g.release)
	wg.Wait()
	for i := range waiters {
		if errs[i] != nil || !slices.Equal(results[i], []string{acctA}) {
			t.Errorf("waiter %d: %v, %v", i, results[i], errs[i])
		}
	}
	if g.calls["slow"] != 1 || g.calls["fast"] != 1 {
		t.Errorf("reads %v, want one per recipe", g.calls)
	}
}

// TestRecipeTargetsWaiterOutlivesACancelledReader: the caller whose read
// is cut by its own context does not pass that failure to callers that
// still have time: they read again.
func TestRecipeTargetsWaiterOutlivesACancelledReader(t *testing.T) {
	g := &gatedReader{
		items:   map[string]map[string]types.AttributeValue{"r": {"encryptFor": &types.AttributeValueMemberL{Value: []types.AttributeValue{accountMap(acctA)}}}},
		blocked: "r", entered: make(chan struct{}, 2), release: make(chan struct{}), calls: map[string]int{},
	}
	src := newRecipeTargets("t", func(context.Context) (recipeReader, error) { return g, nil })
	img := &cloud.Image{ID: "ami-00000001", Tags: map[string]string{RecipeTag: "r"}}
	first, cancel := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() {
		_, err := src.Targets(first, img)
		firstDone <- err
	}()
	<-g.entered
	second := make(chan error, 1)
	go func() {
		spec, err := src.Targets(context.Background(), img)
		if err == nil && !slices.Equal(refIDs(spec), []string{acctA}) {
			err = fmt.Errorf("targets %v", refIDs(spec))
		}
		second <- err
	}()
	cancel()
	if err := <-firstDone; err == nil {
		t.Fatal("the cancelled read succeeded")
	}
	<-g.entered // the second caller reads again
	close(g.release)
	if err := <-second; err != nil {
		t.Fatalf("the second caller got %v", err)
	}
}

// dynamoEndpoint returns the DynamoDB-compatible test server, or skips
// (fails with AMICOPIER_REQUIRE_DYNAMODB=1) when there is none.
func dynamoEndpoint(t *testing.T) string {
	t.Helper()
	ep := strings.TrimSpace(os.Getenv("AMICOPIER_DYNAMODB_ENDPOINT"))
	how := "run scripts/test.sh (it starts dynalite), or start one (npx dynalite@4.0.0 --port 4567) and export AMICOPIER_DYNAMODB_ENDPOINT=http://127.0.0.1:4567"
	if ep == "" {
		if os.Getenv("AMICOPIER_REQUIRE_DYNAMODB") == "1" {
			t.Fatalf("AMICOPIER_REQUIRE_DYNAMODB=1 but AMICOPIER_DYNAMODB_ENDPOINT is not set: %s", how)
		}
		t.Skipf("SKIPPED: the AMIgo recipes table test needs a DynamoDB-compatible server. AMICOPIER_DYNAMODB_ENDPOINT is not set: %s", how)
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost" && u.Hostname() != "::1") {
		t.Fatalf("AMICOPIER_DYNAMODB_ENDPOINT=%q is not a loopback URL: tests must never talk to a real DynamoDB", ep)
	}
	return ep
}

func TestRecipeTargetsAgainstDynamoDB(t *testing.T) {
	ep := dynamoEndpoint(t)
	ctx := context.Background()
	var b [4]byte
	_, _ = rand.Read(b[:])
	table := "amigo-TEST-recipes-" + hex.EncodeToString(b[:])
	fakeEnv(t)
	cfg := config.Default()
	cfg.Source.AccountID = srcAccount
	cfg.Source.Regions = []string{region1}
	cfg.Targets.AmigoRecipesTable = table
	cfg.AWS.Region = region1
	cfg.AWS.Endpoints.DynamoDB = ep
	sess, err := NewSession(ctx, cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	admin := dynamodb.NewFromConfig(sess.base, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep) })
	_, err = admin.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	if err := dynamodb.NewTableExistsWaiter(admin, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, time.Second
	}).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	put := func(id string, attrs map[string]types.AttributeValue) {
		t.Helper()
		item := map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}, "description": &types.AttributeValueMemberS{Value: "a recipe"}}
		for k, v := range attrs {
			item[k] = v
		}
		if _, err := admin.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	put("ubuntu-jammy-web", map[string]types.AttributeValue{"encryptFor": &types.AttributeValueMemberL{Value: []types.AttributeValue{accountMap(acctA), accountMap(acctB)}}})
	put("windows", map[string]types.AttributeValue{"encryptFor": &types.AttributeValueMemberL{Value: []types.AttributeValue{
		&types.AttributeValueMemberS{Value: acctC}, &types.AttributeValueMemberS{Value: "not-an-account"},
	}}})
	put("no-targets", nil)

	conn := sess.Connect(runID, ConnectOptions{ReadOnly: true})
	sources := conn.TargetSources()
	if len(sources) != 1 {
		t.Fatalf("%d target sources, want the AMIgo table", len(sources))
	}
	for _, tc := range []struct {
		recipe  string
		refs    []string
		invalid int
	}{
		{"ubuntu-jammy-web", []string{acctA, acctB}, 0},
		{"windows", []string{acctC}, 1},
		{"no-targets", nil, 0},
		{"not-in-table", nil, 0},
		{"ubuntu-jammy-web", []string{acctA, acctB}, 0},
	} {
		spec, err := sources[0].Targets(ctx, &cloud.Image{ID: "ami-00000001", Tags: map[string]string{"Recipe": tc.recipe}})
		if err != nil {
			t.Fatalf("%s: %v", tc.recipe, err)
		}
		if got := refIDs(spec); !slices.Equal(got, tc.refs) || len(spec.Invalid) != tc.invalid {
			t.Errorf("%s: refs %v invalid %+v, want %v and %d invalid", tc.recipe, got, spec.Invalid, tc.refs, tc.invalid)
		}
	}
	if n := conn.CallCounts()["GetItem"]; n != 4 {
		t.Errorf("%d GetItem calls, want one per distinct recipe (4)", n)
	}
}
