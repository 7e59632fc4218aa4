package sim

import (
	"slices"
	"strings"
	"sync"
)

type tag struct{ key, value string }

// tagSet is an immutable, key-sorted set of tags. Sets are interned per
// Cloud, so the thousands of copies of one source that carry the same tags
// share one set, and two sets are equal exactly when the pointers are. A nil
// *tagSet is the empty set.
type tagSet struct {
	tags []tag
}

func (s *tagSet) len() int {
	if s == nil {
		return 0
	}
	return len(s.tags)
}

func (s *tagSet) lookup(key string) (string, bool) {
	if s == nil {
		return "", false
	}
	for _, t := range s.tags {
		if t.key == key {
			return t.value, true
		}
	}
	return "", false
}

// toMap returns a fresh map the caller may mutate; never nil.
func (s *tagSet) toMap() map[string]string {
	m := make(map[string]string, s.len())
	if s != nil {
		for _, t := range s.tags {
			m[t.key] = t.value
		}
	}
	return m
}

type tagInterner struct {
	mu   sync.Mutex
	sets map[uint64][]*tagSet
}

// intern returns the shared set equal to m (nil for no tags).
func (in *tagInterner) intern(m map[string]string) *tagSet {
	if len(m) == 0 {
		return nil
	}
	tags := make([]tag, 0, len(m))
	for k, v := range m {
		tags = append(tags, tag{k, v})
	}
	slices.SortFunc(tags, func(a, b tag) int { return strings.Compare(a.key, b.key) })
	h := hashTags(tags)
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, s := range in.sets[h] {
		if slices.Equal(s.tags, tags) {
			return s
		}
	}
	if in.sets == nil {
		in.sets = make(map[uint64][]*tagSet)
	}
	s := &tagSet{tags: tags}
	in.sets[h] = append(in.sets[h], s)
	return s
}

// hashTags is FNV-1a over the sorted tags, with a separator byte no valid
// UTF-8 string contains so that ("ab","c") and ("a","bc") differ.
func hashTags(tags []tag) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	mix := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
		h ^= 0xff
		h *= prime
	}
	for _, t := range tags {
		mix(t.key)
		mix(t.value)
	}
	return h
}
