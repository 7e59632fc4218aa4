package reconcile

// zoneMarks remembers, for each account and Region a run visits, which of
// a few facts hold (observed, described). At 10,000 accounts in several
// Regions a set keyed by (account, Region) costs a key of two strings per
// Region; this keeps one small bitmask per account instead, a bit per
// Region and fact, the Regions numbered as they come. Not safe for
// concurrent use: observation guards it with its lock.
type zoneMarks struct {
	regions   map[string]int
	byAccount map[string][]uint64
}

// zoneFact is one fact zoneMarks keeps.
type zoneFact int

const (
	// factObserved: the run visited the account and Region (whether or
	// not its copies could be listed).
	factObserved zoneFact = iota
	// factDescribed: its copies were listed.
	factDescribed
	numZoneFacts
)

func (z *zoneMarks) bit(region string, f zoneFact, add bool) (word int, mask uint64, ok bool) {
	i, known := z.regions[region]
	if !known {
		if !add {
			return 0, 0, false
		}
		if z.regions == nil {
			z.regions = map[string]int{}
		}
		i = len(z.regions)
		z.regions[region] = i
	}
	n := i*int(numZoneFacts) + int(f)
	return n / 64, 1 << (n % 64), true
}

func (z *zoneMarks) set(account, region string, f zoneFact) {
	word, mask, _ := z.bit(region, f, true)
	if z.byAccount == nil {
		z.byAccount = map[string][]uint64{}
	}
	w := z.byAccount[account]
	if len(w) <= word {
		w = append(w, make([]uint64, word+1-len(w))...)
	}
	w[word] |= mask
	z.byAccount[account] = w
}

func (z *zoneMarks) has(account, region string, f zoneFact) bool {
	word, mask, ok := z.bit(region, f, false)
	if !ok {
		return false
	}
	w := z.byAccount[account]
	return word < len(w) && w[word]&mask != 0
}
