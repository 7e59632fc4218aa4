package report

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// NaturalCompare orders names as people read them: runs of digits by
// their value ("golden-2" before "golden-10"), letters without regard to
// case, and, only to break a tie, byte by byte. It returns -1, 0 or +1
// like strings.Compare.
func NaturalCompare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if isDigit(ca) && isDigit(cb) {
			ea, eb := digitsEnd(a, i), digitsEnd(b, j)
			// Leading zeros do not change the value.
			na, nb := strings.TrimLeft(a[i:ea], "0"), strings.TrimLeft(b[j:eb], "0")
			if len(na) != len(nb) {
				return sign(len(na) - len(nb))
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			i, j = ea, eb
			continue
		}
		ra, sa := utf8.DecodeRuneInString(a[i:])
		rb, sb := utf8.DecodeRuneInString(b[j:])
		if fa, fb := unicode.ToLower(ra), unicode.ToLower(rb); fa != fb {
			return sign(int(fa) - int(fb))
		}
		i, j = i+sa, j+sb
	}
	switch {
	case len(a)-i != len(b)-j:
		return sign((len(a) - i) - (len(b) - j))
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitsEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
