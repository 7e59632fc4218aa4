package awsapi

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
)

// TestCallsToAnEndpointThatNeverAnswersFail: EC2, STS, Organizations and
// DynamoDB calls against an endpoint that accepts connections and never
// answers give up after their attempts, each bounded by the response
// header timeout, with an error naming the service, the operation and
// the endpoint; a warning is logged for every attempt.
func TestCallsToAnEndpointThatNeverAnswersFail(t *testing.T) {
	fakeEnv(t)
	silent, err := awsfake.NewSilent()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(silent.Close)
	hole := silent.URL()
	cfg := config.Default()
	cfg.Source.AccountID = srcAccount
	cfg.Source.Regions = []string{region1}
	cfg.Targets.AmigoRecipesTable = "amigo-recipes"
	cfg.AWS.Region = region1
	cfg.AWS.Endpoints.EC2, cfg.AWS.Endpoints.STS = hole, hole
	cfg.AWS.Endpoints.Organizations, cfg.AWS.Endpoints.DynamoDB = hole, hole
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&lockedBuffer{b: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const attempts = 2
	sess, err := NewSession(context.Background(), cfg, Options{
		Logger: log, MaxAttempts: attempts, MaxBackoff: time.Millisecond,
		Timeouts: Timeouts{ResponseHeader: 300 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	conn := sess.Connect(runID, ConnectOptions{ReadOnly: true})
	ctx := context.Background()
	calls := map[string]func() error{
		"EC2 DescribeImages": func() error {
			src, err := conn.Source(ctx, region1)
			if err != nil {
				return err
			}
			_, err = src.DescribeImages(ctx, cloud.ImageQuery{})
			return err
		},
		"STS AssumeRole": func() error {
			_, err := conn.Target(ctx, acctA, region1)
			return err
		},
		"Organizations ListAccounts": func() error {
			org, err := conn.Organization(ctx)
			if err != nil {
				return err
			}
			_, err = org.ListAccounts(ctx)
			return err
		},
		"DynamoDB GetItem": func() error {
			r, err := conn.dynamoDB(ctx)
			if err != nil {
				return err
			}
			src := newRecipeTargets("amigo-recipes", func(context.Context) (recipeReader, error) { return r, nil })
			_, err = src.Targets(ctx, &cloud.Image{ID: "ami-0123456789abcdef0", Tags: map[string]string{"Recipe": "web"}})
			return err
		},
	}
	for name, call := range calls {
		service, op, _ := strings.Cut(name, " ")
		start := time.Now()
		err := call()
		elapsed := time.Since(start)
		if err == nil {
			t.Fatalf("%s: no error from an endpoint that never answers", name)
		}
		// Two attempts of 300 ms, and no more than scheduling noise.
		if elapsed > 20*time.Second {
			t.Errorf("%s took %s: the attempts are not bounded", name, elapsed)
		}
		var na *NoAnswerError
		if !errors.As(err, &na) {
			t.Errorf("%s: %T %v, want a *NoAnswerError", name, err, err)
			continue
		}
		if na.Service != service || !strings.Contains(err.Error(), op) || na.Endpoint != hole || na.Attempts != attempts {
			t.Errorf("%s: %+v (%v): want service %s, operation %s, endpoint %s and %d attempts", name, na, err, service, op, hole, attempts)
		}
		if !strings.Contains(err.Error(), hole) || !strings.Contains(err.Error(), "timeout awaiting response headers") {
			t.Errorf("%s: %q does not say which endpoint did not answer", name, err)
		}
	}
	out := logs.String()
	for name := range calls {
		service, op, _ := strings.Cut(name, " ")
		for _, want := range []string{
			"level=WARN msg=\"no answer from AWS in time; the call is retried until its attempts run out\" service=" + service + " operation=" + op,
			"level=DEBUG msg=\"aws call\" service=" + service + " operation=" + op,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in the log:\n%s", want, out)
			}
		}
	}
	if !strings.Contains(out, "endpoint="+hole+" attempt=2") {
		t.Errorf("the timed-out attempts are not numbered:\n%s", out)
	}
}

// TestCallLog: --log-level debug shows every call with its account,
// Region, duration, attempts and outcome, and never a credential.
func TestCallLog(t *testing.T) {
	c := newCloud(t)
	c.DenyAssumeRole(acctB)
	c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "web"})
	f := newFixture(t, c, awsfake.Options{}, nil)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&lockedBuffer{b: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sess, err := NewSession(context.Background(), f.cfg, Options{Logger: log, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	conn := sess.Connect(runID, ConnectOptions{})
	ctx := context.Background()
	src, err := conn.Source(ctx, region1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.DescribeImages(ctx, cloud.ImageQuery{}); err != nil {
		t.Fatal(err)
	}
	tgt, err := conn.Target(ctx, acctA, region1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tgt.DescribeImages(ctx, cloud.ImageQuery{}); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Target(ctx, acctB, region1); err == nil {
		t.Fatal("the denied role was assumed")
	}
	out := logs.String()
	for _, want := range []string{
		`"msg":"aws call","service":"EC2","operation":"DescribeImages","account":"` + srcAccount + `","region":"` + region1 + `","duration_ms":`,
		`"msg":"aws call","service":"EC2","operation":"DescribeImages","account":"` + acctA + `","region":"` + region1 + `","duration_ms":`,
		`"msg":"aws call","service":"STS","operation":"AssumeRole","account":"` + acctA + `"`,
		`"msg":"aws call","service":"STS","operation":"AssumeRole","account":"` + acctB + `"`,
		`"attempts":1,"outcome":"ok"`,
		`"outcome":"error","error_code":"AccessDenied"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in the log:\n%s", want, out)
		}
	}
	for _, s := range append(f.fake.Secrets(), awsfake.BaseSecretAccessKey, awsfake.BaseSessionToken) {
		if strings.Contains(out, s) {
			t.Errorf("a credential reached the log: %q", s)
		}
	}
}

// lockedBuffer serialises concurrent log writes into one buffer.
type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
