package engine

import (
	"math/bits"
	"time"
)

// table is one shard's hash table: open addressing with linear probing,
// entries stored inline (48 bytes each) beside a one-byte tag per slot.
//
// Why not a Go map: a map[Key]entry costs about 117 bytes per key at a
// million keys (its tables split one at a time and sit half empty after
// each split), and an update needs a second hash and probe to store the
// value back. Here a lookup scans tags (64 per cache line) and touches one
// slot; the update is in place; and the table grows by 25% at 90% load, so
// it stays between 72% and 90% full: 49/0.9 to 49/0.72 bytes per key.
// Deletion shifts the following entries back (no tombstones), so probe
// sequences never degrade.
//
// A table is not safe for concurrent use; its shard's mutex guards it.
type table struct {
	tags  []uint8 // 0: empty; otherwise 0x80 | 7 bits of the key
	slots []slot
	used  int
}

type slot struct {
	key Key
	entry
}

const (
	maxLoadPercent = 92
	growPercent    = 120
	minSlots       = 8
)

// home is the slot where k's probe sequence starts. It maps k.Lo onto the
// table's size without a modulo, so the size need not be a power of two.
func (t *table) home(k Key) int {
	hi, _ := bits.Mul64(k.Lo, uint64(len(t.slots)))
	return int(hi)
}

// tagOf takes its bits from Hi's low end: the shard was chosen by Hi's top
// bits and the home slot by Lo, so these are independent of both.
func tagOf(k Key) uint8 { return 0x80 | uint8(k.Hi&0x7f) }

// find returns the slot index holding k, or -1.
func (t *table) find(k Key) int {
	n := len(t.slots)
	if n == 0 {
		return -1
	}
	tag := tagOf(k)
	for i := t.home(k); ; {
		switch t.tags[i] {
		case 0:
			return -1
		case tag:
			if t.slots[i].key == k {
				return i
			}
		}
		if i++; i == n {
			i = 0
		}
	}
}

// insert adds k, which must be absent, with a zero entry and returns its
// slot index.
func (t *table) insert(k Key) int {
	if (t.used+1)*100 > len(t.slots)*maxLoadPercent {
		t.resize(max(len(t.slots)*growPercent/100, len(t.slots)+minSlots))
	}
	n := len(t.slots)
	for i := t.home(k); ; {
		if t.tags[i] == 0 {
			t.tags[i] = tagOf(k)
			t.slots[i] = slot{key: k}
			t.used++
			return i
		}
		if i++; i == n {
			i = 0
		}
	}
}

// removeAt empties slot i and shifts later entries of the same probe run
// back into the gap, so that every entry stays reachable from its home.
func (t *table) removeAt(i int) {
	n := len(t.slots)
	t.used--
	for j := i; ; {
		if j++; j == n {
			j = 0
		}
		if t.tags[j] == 0 {
			break
		}
		if h := t.home(t.slots[j].key); cyclicBetween(i, h, j) {
			continue // j's entry is at or past its home with i behind it: it stays
		}
		t.tags[i], t.slots[i] = t.tags[j], t.slots[j]
		i = j
	}
	t.tags[i] = 0
	t.slots[i] = slot{}
}

// cyclicBetween reports whether h lies in the cyclic interval (i, j].
func cyclicBetween(i, h, j int) bool {
	if i <= j {
		return i < h && h <= j
	}
	return i < h || h <= j
}

// resize rehashes every entry into a table of n slots.
func (t *table) resize(n int) {
	old := *t
	*t = table{tags: make([]uint8, n), slots: make([]slot, n)}
	for i, tag := range old.tags {
		if tag != 0 {
			j := t.insert(old.slots[i].key)
			t.slots[j].entry = old.slots[i].entry
		}
	}
}

// maybeShrink gives memory back once the table is mostly empty, as after a
// burst of keys has expired.
func (t *table) maybeShrink() {
	if n := len(t.slots); n > 64 && t.used*100 < n*30 {
		t.resize(max(t.used*100/70, minSlots))
	}
}

// sample returns the occupied slot, among up to count found scanning from
// start, whose entry is fresh soonest; -1 if the table is empty.
func (t *table) sample(start, count int, now time.Duration) int {
	n := len(t.slots)
	best, seen := -1, 0
	for k := 0; k < n && seen < count; k++ {
		i := (start + k) % n
		if t.tags[i] == 0 {
			continue
		}
		seen++
		if best < 0 || t.slots[i].freshAt < t.slots[best].freshAt {
			best = i
		}
		if t.slots[best].freshAt <= now {
			break
		}
	}
	return best
}
