package report

import (
	"slices"
	"testing"
)

func TestNaturalCompare(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{[]string{"golden-10", "golden-2", "golden-1"}, []string{"golden-1", "golden-2", "golden-10"}},
		{[]string{"web-010", "web-9", "web-10"}, []string{"web-9", "web-010", "web-10"}},
		{[]string{"Prod", "dev", "Dev", "alpha"}, []string{"alpha", "Dev", "dev", "Prod"}},
		{[]string{"a10b2", "a10b10", "a9"}, []string{"a9", "a10b2", "a10b10"}},
		{[]string{"ami-b", "ami-a", "ami"}, []string{"ami", "ami-a", "ami-b"}},
		{[]string{"ü2", "u10", "u2"}, []string{"u2", "u10", "ü2"}},
	}
	for _, tt := range tests {
		got := slices.Clone(tt.in)
		slices.SortFunc(got, NaturalCompare)
		if !slices.Equal(got, tt.want) {
			t.Errorf("sorted %q = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, s := range []string{"", "a", "x-1"} {
		if NaturalCompare(s, s) != 0 {
			t.Errorf("NaturalCompare(%q, %q) != 0", s, s)
		}
	}
}

func FuzzNaturalCompare(f *testing.F) {
	for _, s := range []string{"golden-2", "golden-10", "A", "a", "007", "7", "\xff"} {
		f.Add(s, "golden-10")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		x, y := NaturalCompare(a, b), NaturalCompare(b, a)
		if x != -y {
			t.Fatalf("not antisymmetric: (%q, %q) = %d, reversed %d", a, b, x, y)
		}
		if (x == 0) != (a == b) {
			t.Fatalf("NaturalCompare(%q, %q) = %d", a, b, x)
		}
	})
}
