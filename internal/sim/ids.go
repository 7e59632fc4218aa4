package sim

import "fmt"

// Resource ids are derived, not stored: 17 lowercase hex digits after the
// prefix, the first 7 naming the zone (account and Region) that holds the
// resource and the last 10 its position in that zone. Ids are therefore
// deterministic (they depend only on the order resources are created),
// unique across the Cloud, and resolve to their resource without any index.
const (
	prefixImage    = "ami-"
	prefixSnapshot = "snap-"
	prefixInstance = "i-"

	idZoneDigits  = 7
	idIndexDigits = 10
	idDigits      = idZoneDigits + idIndexDigits
	maxZones      = 1<<(4*idZoneDigits) - 1
	maxPerZone    = 1 << (4 * idIndexDigits)
)

const hexDigits = "0123456789abcdef"

func formatID(prefix string, zone uint32, index int) string {
	var b [24]byte
	n := copy(b[:], prefix)
	putHex(b[n:n+idZoneDigits], uint64(zone))
	putHex(b[n+idZoneDigits:n+idDigits], uint64(index))
	return string(b[:n+idDigits])
}

func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// parseID splits an id made by formatID; ok is false for anything the
// simulator cannot have issued.
func parseID(prefix, s string) (zone uint32, index int, ok bool) {
	if len(s) != len(prefix)+idDigits || s[:len(prefix)] != prefix {
		return 0, 0, false
	}
	z, ok1 := parseHex(s[len(prefix) : len(prefix)+idZoneDigits])
	i, ok2 := parseHex(s[len(prefix)+idZoneDigits:])
	if !ok1 || !ok2 || z == 0 {
		return 0, 0, false
	}
	return uint32(z), int(i), true
}

func parseHex(s string) (uint64, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// splitmix64 scrambles a counter into random-looking but deterministic
// bits for KMS key ids.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// keyUUID returns the n-th KMS key id, shaped like a version-4 UUID.
func keyUUID(n uint64) string {
	a, b := splitmix64(n), splitmix64(n^0x5eed)
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x",
		uint32(a>>32), uint16(a>>16), uint16(a)&0xfff, 0x8000|uint16(b>>48)&0x3fff, b&0xffffffffffff)
}
