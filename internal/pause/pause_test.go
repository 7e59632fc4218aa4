package pause

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	if err := For(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("a short pause: %v", err)
	}
	if err := For(context.Background(), 0); err != nil {
		t.Fatalf("no pause: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := For(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled pause: %v, want context.Canceled", err)
	}
	if time.Since(start) > time.Minute {
		t.Fatal("a cancelled pause waited")
	}
	if err := For(ctx, 0); err != nil {
		t.Fatalf("no pause on a done context: %v, want nil (nothing was cut short)", err)
	}
}
