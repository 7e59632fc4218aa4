package awsapi

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/amicopier/amicopier/internal/cloud"
)

const (
	// RecipeTag is the AMI tag AMIgo writes the recipe name into; it is
	// the key (id) of the recipes table.
	RecipeTag = "Recipe"
	// maxEncryptFor bounds how many encryptFor entries of one recipe are
	// read: the table is writable by every AMIgo user, so it is input.
	maxEncryptFor = 1000
)

// recipeReader is the one DynamoDB call the recipes source makes.
type recipeReader interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// recipeTargets reads target accounts from AMIgo's recipes table (README,
// targets): the item whose id is the AMI's Recipe tag lists accounts in
// encryptFor, as maps {"accountNumber": "..."} or as plain strings. Each
// value is parsed like an AMI tag (cloud.ParseTargetList); anything
// else is reported as an invalid target naming the recipe and the entry.
//
// It remembers for its lifetime (one run: Connector.TargetSources makes
// one per call) every recipe read and every failure that retrying cannot
// cure (access denied, no such table): one GetItem per distinct recipe.
// A transient failure (throttling the SDK could not absorb, a network
// error, a cancelled caller) is not remembered, so the next image of that
// recipe reads it again instead of losing its targets for the whole run.
// Concurrent lookups of one recipe share one read; lookups of different
// recipes run in parallel (no lock is held during I/O).
type recipeTargets struct {
	table string
	open  func(ctx context.Context) (recipeReader, error)

	mu    sync.Mutex
	reads map[string]*recipeRead
}

// recipeRead is one read of a recipe: done is closed when spec and err
// are set; cached says whether later lookups reuse it.
type recipeRead struct {
	done   chan struct{}
	spec   cloud.TargetSpec
	err    error
	cached bool
}

func newRecipeTargets(table string, open func(ctx context.Context) (recipeReader, error)) *recipeTargets {
	return &recipeTargets{table: table, open: open, reads: map[string]*recipeRead{}}
}

// Targets implements TargetSource. An image without a Recipe
// tag, or whose recipe is not in the table, has no targets from here.
func (r *recipeTargets) Targets(ctx context.Context, img *cloud.Image) (cloud.TargetSpec, error) {
	recipe := img.Tags[RecipeTag]
	if recipe == "" {
		return cloud.TargetSpec{}, nil
	}
	for {
		r.mu.Lock()
		rd, ok := r.reads[recipe]
		if !ok {
			rd = &recipeRead{done: make(chan struct{})}
			r.reads[recipe] = rd
		}
		r.mu.Unlock()
		if !ok {
			// This caller reads; the others wait for it.
			rd.spec, rd.err = r.read(ctx, recipe)
			rd.cached = cacheable(rd.err)
			if !rd.cached {
				r.mu.Lock()
				delete(r.reads, recipe)
				r.mu.Unlock()
			}
			close(rd.done)
			return cloneSpec(rd.spec), rd.err
		}
		select {
		case <-rd.done:
		case <-ctx.Done():
			return cloud.TargetSpec{}, fmt.Errorf("read AMIgo recipe %q from the AMIgo recipes table %s: %w", recipe, r.table, context.Cause(ctx))
		}
		if rd.cached {
			return cloneSpec(rd.spec), rd.err
		}
		// The read this caller waited for failed transiently (perhaps
		// only because its caller gave up): read again.
	}
}

// cacheable reports whether a read's outcome holds for the rest of the
// run: a success (an absent item included), or an error retrying cannot
// cure.
func cacheable(err error) bool {
	if err == nil {
		return true
	}
	switch cloud.ClassOf(err) {
	case cloud.ClassAccessDenied, cloud.ClassNotFound, cloud.ClassPermanent:
		return true
	}
	return false
}

func cloneSpec(s cloud.TargetSpec) cloud.TargetSpec {
	return cloud.TargetSpec{
		Refs:    append([]cloud.TargetRef(nil), s.Refs...),
		Regions: append([]string(nil), s.Regions...),
		Invalid: append([]cloud.InvalidTarget(nil), s.Invalid...),
	}
}

func (r *recipeTargets) read(ctx context.Context, recipe string) (cloud.TargetSpec, error) {
	origin := fmt.Sprintf("AMIgo recipe %q", recipe)
	// The connector hands out one client (and assumes the source role
	// once); asking each time costs nothing and keeps no state here.
	reader, err := r.open(ctx)
	if err != nil {
		return cloud.TargetSpec{}, fmt.Errorf("open the AMIgo recipes table %s for %s: %w", r.table, origin, err)
	}
	out, err := reader.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:            aws.String(r.table),
		Key:                  map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: recipe}},
		ProjectionExpression: aws.String("#e"),
		// encryptFor is not a reserved word today; the placeholder
		// keeps it working if it becomes one.
		ExpressionAttributeNames: map[string]string{"#e": "encryptFor"},
	})
	if err != nil {
		return cloud.TargetSpec{}, fmt.Errorf("read %s from the AMIgo recipes table %s: %w", origin, r.table, apiError("GetItem", err))
	}
	if out.Item == nil {
		return cloud.TargetSpec{}, nil
	}
	return parseEncryptFor(out.Item["encryptFor"], origin+" encryptFor"), nil
}

// parseEncryptFor reads the encryptFor attribute: a list of maps with an
// accountNumber, of strings, or a string set. Numbers are accepted too
// (left-padded to 12 digits: a number loses an account id's leading
// zeros).
func parseEncryptFor(av types.AttributeValue, origin string) cloud.TargetSpec {
	var spec cloud.TargetSpec
	if av == nil {
		return spec
	}
	var entries []types.AttributeValue
	switch v := av.(type) {
	case *types.AttributeValueMemberL:
		entries = v.Value
	case *types.AttributeValueMemberSS:
		for _, s := range v.Value {
			entries = append(entries, &types.AttributeValueMemberS{Value: s})
		}
	case *types.AttributeValueMemberNULL:
		return spec
	default:
		spec.Invalid = append(spec.Invalid, cloud.InvalidTarget{
			Token: "encryptFor", Origin: origin,
			Reason: fmt.Sprintf("encryptFor is a %s, not a list", attributeKind(av)),
		})
		return spec
	}
	if len(entries) > maxEncryptFor {
		spec.Invalid = append(spec.Invalid, cloud.InvalidTarget{
			Token: fmt.Sprintf("encryptFor[%d:]", maxEncryptFor), Origin: origin,
			Reason: fmt.Sprintf("more than %d entries; the rest are ignored", maxEncryptFor),
		})
		entries = entries[:maxEncryptFor]
	}
	for i, e := range entries {
		at := fmt.Sprintf("%s[%d]", origin, i)
		value, ok := entryValue(e)
		if !ok {
			spec.Invalid = append(spec.Invalid, cloud.InvalidTarget{
				Token: fmt.Sprintf("entry %d", i), Origin: at,
				Reason: fmt.Sprintf("a %s, not an account number string or a map with accountNumber", attributeKind(e)),
			})
			continue
		}
		refs, invalid := cloud.ParseTargetList(value, at)
		spec.Refs = append(spec.Refs, refs...)
		spec.Invalid = append(spec.Invalid, invalid...)
	}
	return spec
}

func entryValue(e types.AttributeValue) (string, bool) {
	switch v := e.(type) {
	case *types.AttributeValueMemberS:
		return v.Value, true
	case *types.AttributeValueMemberN:
		return padAccount(v.Value), true
	case *types.AttributeValueMemberM:
		if inner, ok := v.Value["accountNumber"]; ok {
			switch n := inner.(type) {
			case *types.AttributeValueMemberS:
				return n.Value, true
			case *types.AttributeValueMemberN:
				return padAccount(n.Value), true
			}
		}
	}
	return "", false
}

// padAccount restores the leading zeros a number dropped, when what is
// left is all digits and short enough to be an account id.
func padAccount(n string) string {
	if n == "" || len(n) > 12 || strings.Trim(n, "0123456789") != "" {
		return n
	}
	return strings.Repeat("0", 12-len(n)) + n
}

func attributeKind(av types.AttributeValue) string {
	switch av.(type) {
	case *types.AttributeValueMemberS:
		return "string"
	case *types.AttributeValueMemberN:
		return "number"
	case *types.AttributeValueMemberB:
		return "binary value"
	case *types.AttributeValueMemberBOOL:
		return "boolean"
	case *types.AttributeValueMemberNULL:
		return "null"
	case *types.AttributeValueMemberM:
		return "map"
	case *types.AttributeValueMemberL:
		return "list"
	case *types.AttributeValueMemberSS:
		return "string set"
	case *types.AttributeValueMemberNS:
		return "number set"
	case *types.AttributeValueMemberBS:
		return "binary set"
	}
	return fmt.Sprintf("%T", av)
}
