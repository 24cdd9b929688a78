package engine

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// The table agrees with a Go map through random inserts, removals,
// growth and shrinking; clustered keys (equal Lo) stress the probe runs.
func TestTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var tab table
	want := map[Key]int64{}
	keys := []Key{}
	newKey := func() Key {
		k := Key{Hi: rng.Uint64(), Lo: rng.Uint64()}
		if rng.IntN(4) == 0 && len(keys) > 0 {
			k.Lo = keys[rng.IntN(len(keys))].Lo // same home slot as another key
		}
		return k
	}
	for step := range 200_000 {
		switch r := rng.IntN(10); {
		case r < 5 || len(keys) == 0:
			k := newKey()
			if _, ok := want[k]; ok {
				continue
			}
			i := tab.insert(k)
			tab.slots[i].a = int64(step)
			want[k] = int64(step)
			keys = append(keys, k)
		case r < 9:
			j := rng.IntN(len(keys))
			k := keys[j]
			i := tab.find(k)
			if i < 0 {
				t.Fatalf("step %d: find(%v) = -1, want present", step, k)
			}
			tab.removeAt(i)
			delete(want, k)
			keys[j] = keys[len(keys)-1]
			keys = keys[:len(keys)-1]
			if step%64 == 0 {
				tab.maybeShrink()
			}
		default:
			if i := tab.find(newKey()); i >= 0 {
				if _, ok := want[tab.slots[i].key]; !ok {
					t.Fatalf("step %d: find returned a slot for an absent key", step)
				}
			}
		}
		if tab.used != len(want) {
			t.Fatalf("step %d: used = %d, want %d", step, tab.used, len(want))
		}
	}
	for k, v := range want {
		i := tab.find(k)
		if i < 0 || tab.slots[i].a != v {
			t.Fatalf("find(%v) = %d, want the entry with a=%d", k, i, v)
		}
	}
	if load := float64(tab.used) / float64(len(tab.slots)); load > 0.9 {
		t.Fatalf("load %.2f above 0.9", load)
	}
}

func TestTableSampleFindsSoonestFresh(t *testing.T) {
	var tab table
	for i := range 5 {
		j := tab.insert(Key{Hi: uint64(i), Lo: uint64(i) << 60})
		tab.slots[j].freshAt = time.Duration(10 - i)
	}
	i := tab.sample(0, 100, 0)
	if got := tab.slots[i].freshAt; got != 6 {
		t.Fatalf("sample picked freshAt %v, want 6", got)
	}
	var empty table
	if i := empty.sample(0, 8, 0); i != -1 {
		t.Fatalf("sample on an empty table = %d, want -1", i)
	}
}

// Keys of one shard (equal top bits of Hi) must still spread over the
// whole table: a hasher whose Lo followed Hi once crowded them together.
func TestHasherKeysSpreadWithinAShard(t *testing.T) {
	hash := NewKeyHasher()
	var tab table
	for i := 0; tab.used < 20_000; i++ {
		k := hash("user-"+strconv.Itoa(i), "api")
		if k.Hi>>56 != 7 { // keep one shard's worth, as with 256 shards
			continue
		}
		tab.insert(k)
	}
	total := 0
	for i, tag := range tab.tags {
		if tag != 0 {
			total += (i - tab.home(tab.slots[i].key) + len(tab.slots)) % len(tab.slots)
		}
	}
	if mean := float64(total) / float64(tab.used); mean > 8 {
		t.Fatalf("mean displacement %.1f slots at load %.2f, want <= 8", mean, float64(tab.used)/float64(len(tab.slots)))
	}
}
