package cloud

import (
	"errors"
	"fmt"
	"testing"
)

func TestIsShareRefused(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{Errorf(OpModifyImageAttribute, "InvalidParameter", "backed by aws/ebs"), true},
		{fmt.Errorf("share ami-1: %w", Errorf(OpModifySnapshotAttribute, "OperationNotPermitted", "default key")), true},
		// The same codes from other calls, or other codes, may pass.
		{Errorf(OpModifySnapshotAttribute, "InvalidParameter", "x"), false},
		{Errorf(OpModifyImageAttribute, "OperationNotPermitted", "x"), false},
		{Errorf(OpCopyImage, "InvalidParameter", "x"), false},
		{Errorf(OpModifyImageAttribute, "UnauthorizedOperation", "x"), false},
		{errors.New("InvalidParameter"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := IsShareRefused(tt.err); got != tt.want {
			t.Errorf("IsShareRefused(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
