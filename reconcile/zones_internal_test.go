package reconcile

import (
	"fmt"
	"testing"
)

// TestZoneMarks: each fact of each account and Region is kept apart,
// however many Regions there are (past the 64 bits of one word).
func TestZoneMarks(t *testing.T) {
	var z zoneMarks
	regions := make([]string, 40) // 80 facts: two words
	for i := range regions {
		regions[i] = fmt.Sprintf("xx-test-%d", i)
	}
	z.set("111111111111", regions[0], factObserved)
	z.set("111111111111", regions[39], factDescribed)
	z.set("222222222222", regions[39], factObserved)
	tests := []struct {
		account, region string
		f               zoneFact
		want            bool
	}{
		{"111111111111", regions[0], factObserved, true},
		{"111111111111", regions[0], factDescribed, false},
		{"111111111111", regions[39], factDescribed, true},
		{"111111111111", regions[39], factObserved, false},
		{"222222222222", regions[39], factObserved, true},
		{"222222222222", regions[0], factObserved, false},
		{"333333333333", regions[0], factObserved, false},
		{"111111111111", "never-seen-1", factObserved, false},
	}
	for _, tt := range tests {
		if got := z.has(tt.account, tt.region, tt.f); got != tt.want {
			t.Errorf("has(%s, %s, %d) = %v, want %v", tt.account, tt.region, tt.f, got, tt.want)
		}
	}
}
