package cli

import (
	"strings"
	"testing"

	"github.com/amicopier/amicopier/reconcile"
)

func TestParseShard(t *testing.T) {
	tests := []struct {
		in      string
		want    reconcile.Shard
		wantErr string
	}{
		{in: "2/8", want: reconcile.Shard{Index: 2, Count: 8}},
		{in: "1/1", want: reconcile.Shard{Index: 1, Count: 1}},
		{in: "", wantErr: `--shard "": want I/N`},
		{in: "8", wantErr: `--shard "8": want I/N`},
		{in: "0/4", wantErr: `--shard "0/4": the shard number must be between 1 and 4 (got 0)`},
		{in: "x/4", wantErr: `--shard "x/4": I and N must be whole numbers`},
	}
	for _, tt := range tests {
		got, err := parseShard(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseShard(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseShard(%q) = %+v, %v", tt.in, got, err)
		}
	}
	var f shardFlag
	if err := f.Set("3/4"); err != nil || f.String() != "3/4" {
		t.Fatalf("shardFlag: %v %q", err, f.String())
	}
}
