package sim

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

func TestIDRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		zone  uint32
		index int
	}{{1, 0}, {1, 1}, {0xfffffff, maxPerZone - 1}, {4000, 799}} {
		id := formatID(prefixImage, tt.zone, tt.index)
		if !cloud.IsImageID(id) || len(id) != len("ami-")+17 {
			t.Fatalf("%q is not an AMI id", id)
		}
		z, i, ok := parseID(prefixImage, id)
		if !ok || z != tt.zone || i != tt.index {
			t.Fatalf("parseID(%q) = %d, %d, %v", id, z, i, ok)
		}
		snap := formatID(prefixSnapshot, tt.zone, tt.index)
		if !snapshotIDPattern.MatchString(snap) {
			t.Fatalf("%q is not a snapshot id", snap)
		}
	}
	for _, bad := range []string{"", "ami-", "ami-0123abcd", "ami-0000000000000000g", "ami-00000000000000000", "snap-00000010000000000", "ami-0000001000000000A"} {
		if _, _, ok := parseID(prefixImage, bad); ok {
			t.Errorf("parseID(%q) accepted", bad)
		}
	}
}

func TestKeyUUIDShape(t *testing.T) {
	seen := map[string]bool{}
	for n := range uint64(1000) {
		id := keyUUID(n)
		parts := strings.Split(id, "-")
		if len(id) != 36 || len(parts) != 5 || parts[2][0] != '4' || !strings.ContainsRune("89ab", rune(parts[3][0])) {
			t.Fatalf("keyUUID(%d) = %q", n, id)
		}
		if seen[id] {
			t.Fatalf("keyUUID(%d) repeats %q", n, id)
		}
		seen[id] = true
	}
}

func TestTagInterning(t *testing.T) {
	var in tagInterner
	a := in.intern(map[string]string{"A": "1", "B": "2"})
	b := in.intern(map[string]string{"B": "2", "A": "1"})
	c := in.intern(map[string]string{"A": "1", "B": "3"})
	d := in.intern(map[string]string{"A": "1B", "": "2"})
	if a != b || a == c || a == d || in.intern(nil) != nil || in.intern(map[string]string{}) != nil {
		t.Fatal("interning does not identify equal sets exactly")
	}
	if v, ok := a.lookup("B"); !ok || v != "2" || a.len() != 2 {
		t.Fatal("lookup")
	}
	var empty *tagSet
	if _, ok := empty.lookup("A"); ok || empty.len() != 0 || empty.toMap() == nil {
		t.Fatal("nil set")
	}
}

func TestClock(t *testing.T) {
	start := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	c := New(WithStartTime(start))
	if !c.Now().Equal(start) {
		t.Fatalf("start %s", c.Now())
	}
	c.Advance(90 * time.Second)
	if got := c.Clock().Now(); !got.Equal(start.Add(90 * time.Second)) {
		t.Fatalf("after advance %s", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("negative Advance did not panic")
		}
	}()
	c.Advance(-time.Second)
}

// TestImageFootprint keeps the per-image cost of a bulk-built copy (the
// benchmark scene: a million of them) in check.
func TestImageFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates")
	}
	const n = 100_000
	c := New()
	// The caller's own strings (names, tag values) are not the simulator's
	// cost: build them before measuring.
	names := make([]string, n)
	tags := make([]map[string]string, 200)
	for i := range names {
		names[i] = fmt.Sprintf("copy-of-ami-%017x", i%200)
	}
	for i := range tags {
		tags[i] = map[string]string{"CopiedFromAMI": fmt.Sprintf("ami-%017x", i), "amicopier:managed": "true", "Encrypted": "true", "Recipe": "base"}
	}
	key := "arn:aws:kms:eu-west-1:000000000000:key/x"
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		acct := fmt.Sprintf("%012d", i/200)
		if i%200 == 0 {
			key = c.AddKey(acct, "eu-west-1", "")
		}
		c.AddImage(acct, "eu-west-1", ImageSpec{Name: names[i], Tags: tags[i%200], Devices: []DeviceSpec{{KMSKeyARN: key}}})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes of heap per image (with its snapshot)", per)
	if per > 320 {
		t.Fatalf("%.0f bytes per image; the million-image benchmark needs this small", per)
	}
	runtime.KeepAlive(names)
	runtime.KeepAlive(c)
}

func BenchmarkAddImage(b *testing.B) {
	c := New()
	tags := map[string]string{"CopiedFromAMI": "ami-00000010000000000", "amicopier:managed": "true"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.AddImage(fmt.Sprintf("%012d", i%1000), "eu-west-1", ImageSpec{Name: "copy", Tags: tags})
	}
}

func BenchmarkDescribeImages(b *testing.B) {
	c := New()
	for i := range 200 {
		c.AddImage("111111111111", "eu-west-1", ImageSpec{Name: fmt.Sprint(i), Tags: map[string]string{"CopiedFromAMI": fmt.Sprint(i)}})
	}
	e := c.Client("111111111111", "eu-west-1")
	q := cloud.ImageQuery{TagKeys: []string{"CopiedFromAMI"}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.DescribeImages(context.Background(), q); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGate(b *testing.B) {
	c := New()
	e := c.Client("111111111111", "eu-west-1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = e.do(context.Background(), opDescribeImages, "", nil)
		}
	})
}
