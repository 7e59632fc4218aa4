package state

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// testGrants: the grants records of a source account round-trip, sorted
// and versioned like pairs; an empty record is deleted; the records of
// other sources and the unsettled pairs are kept apart.
func testGrants(t *testing.T, open openFunc) {
	s, clock := open(t)
	ctx := context.Background()
	const src, other = "111111111111", "999999999999"
	k := GrantsKey{Image: "ami-0000000000000000a", Scope: src}
	g := Grants{Key: k, Source: src, Region: "eu-west-1",
		Launch: []string{"222222222222", "arn:aws:organizations::000000000000:ou/o-abcdefghij/ou-ab12-cdefghij", "222222222222"},
		Volume: []string{"333333333333", "222222222222"}, Snapshots: []string{"snap-0000000000000000b", "snap-0000000000000000a"}}
	got, err := s.PutGrants(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || !got.UpdatedAt.Equal(clock.Now()) ||
		!slices.Equal(got.Launch, []string{"222222222222", "arn:aws:organizations::000000000000:ou/o-abcdefghij/ou-ab12-cdefghij"}) ||
		!slices.Equal(got.Volume, []string{"222222222222", "333333333333"}) ||
		!slices.Equal(got.Snapshots, []string{"snap-0000000000000000a", "snap-0000000000000000b"}) {
		t.Fatalf("stored %+v", got)
	}
	// A pair of the same source does not show among its grants, nor the
	// grants among its unsettled pairs.
	mustPut(t, s, newPair(key("ami-0000000000000000a", "222222222222", "eu-west-1"), src, PairCopying))
	if ps, err := s.UnsettledPairs(ctx, src); err != nil || len(ps) != 1 {
		t.Fatalf("unsettled pairs %+v, %v", ps, err)
	}
	other1 := Grants{Key: GrantsKey{Image: "ami-0000000000000000b", Scope: other}, Source: other, Volume: []string{"444444444444"}}
	if _, err := s.PutGrants(ctx, other1); err != nil {
		t.Fatal(err)
	}
	shard := Grants{Key: GrantsKey{Image: k.Image, Scope: src + "/shard-1-of-2"}, Source: src, Volume: []string{"555555555555"}}
	if _, err := s.PutGrants(ctx, shard); err != nil {
		t.Fatal(err)
	}
	all, err := s.GrantsOf(ctx, src)
	if err != nil || len(all) != 2 || all[0].Key != k || all[1].Key != shard.Key {
		t.Fatalf("grants of %s: %+v, %v", src, all, err)
	}
	if !all[0].SameContent(got) || all[0].Version != 1 {
		t.Fatalf("read back %+v, stored %+v", all[0], got)
	}
	// The version guards the write, as for pairs.
	stale := got
	stale.Version = 0
	if _, err := s.PutGrants(ctx, stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("write with version 0 over version 1: %v", err)
	}
	clock.Advance(1)
	next := got
	next.Launch = next.Launch[:1]
	if got, err = s.PutGrants(ctx, next); err != nil || got.Version != 2 || len(got.Launch) != 1 {
		t.Fatalf("rewrite: %+v, %v", got, err)
	}
	// Emptied, the record goes.
	empty := got
	empty.Launch, empty.Volume = nil, nil
	if gone, err := s.PutGrants(ctx, empty); err != nil || gone.Version != 0 {
		t.Fatalf("emptying: %+v, %v", gone, err)
	}
	if all, err := s.GrantsOf(ctx, src); err != nil || len(all) != 1 || all[0].Key != shard.Key {
		t.Fatalf("after emptying: %+v, %v", all, err)
	}
	// Writing an empty record that was never stored is no error.
	if _, err := s.PutGrants(ctx, Grants{Key: GrantsKey{Image: "ami-0000000000000000c", Scope: src}, Source: src}); err != nil {
		t.Fatalf("empty new record: %v", err)
	}
	if _, err := s.PutGrants(ctx, Grants{Key: GrantsKey{Image: "ami-x#y", Scope: src}, Source: src, Volume: []string{"1"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("image with '#': %v", err)
	}
	if all, err := s.GrantsOf(ctx, "888888888888"); err != nil || len(all) != 0 {
		t.Fatalf("grants of a source with none: %+v, %v", all, err)
	}
}
