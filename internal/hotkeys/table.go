// Package hotkeys holds the per-node tables about hot keys: the cache of
// owners' denials, token leases and the most-denied keys. Each is a
// Table: a bounded map split into shards by key, so that checks on
// different keys rarely share a lock.
package hotkeys

import (
	"sync"
	"time"
)

// Shards is the number of shards of every Table.
const Shards = 16

// Table is a map from K to V split into Shards shards by hash(key), each
// behind its own mutex and holding at most perShard entries. It is safe for
// concurrent use through Lock.
type Table[K comparable, V any] struct {
	hash   func(K) uint64
	shards [Shards]Shard[K, V]
}

// Shard is one shard of a Table, returned locked by Table.Lock.
type Shard[K comparable, V any] struct {
	// mu guards entries and Stamp.
	mu      sync.Mutex
	entries map[K]V
	max     int
	// Stamp is a time kept per shard for the table's owner, such as when
	// its counts last decayed.
	Stamp time.Duration
}

// NewTable returns an empty table that places key in shard hash(key) mod
// Shards and holds at most perShard entries in each.
func NewTable[K comparable, V any](perShard int, hash func(K) uint64) *Table[K, V] {
	t := &Table[K, V]{hash: hash}
	for i := range t.shards {
		t.shards[i].entries = make(map[K]V, min(perShard, 64))
		t.shards[i].max = perShard
	}
	return t
}

// Lock locks and returns the shard that holds key. The caller unlocks it,
// and does no I/O while it holds it.
func (t *Table[K, V]) Lock(key K) *Shard[K, V] {
	sh := &t.shards[t.hash(key)%Shards]
	sh.mu.Lock()
	return sh
}

// Each calls f on every shard in turn, each locked while f runs.
func (t *Table[K, V]) Each(f func(sh *Shard[K, V])) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		f(sh)
		sh.mu.Unlock()
	}
}

// DeleteIf deletes the entries of the shard that hash value h selects for
// which match is true: the entries of one key that several table keys
// derive from.
func (t *Table[K, V]) DeleteIf(h uint64, match func(K) bool) {
	sh := &t.shards[h%Shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for k := range sh.entries {
		if match(k) {
			delete(sh.entries, k)
		}
	}
}

// Unlock unlocks the shard.
func (sh *Shard[K, V]) Unlock() { sh.mu.Unlock() }

// Get returns key's entry. Requires the shard locked.
func (sh *Shard[K, V]) Get(key K) (V, bool) {
	v, ok := sh.entries[key]
	return v, ok
}

// Delete drops key's entry. Requires the shard locked.
func (sh *Shard[K, V]) Delete(key K) { delete(sh.entries, key) }

// Len returns the number of entries. Requires the shard locked.
func (sh *Shard[K, V]) Len() int { return len(sh.entries) }

// Put stores key's entry. When the shard is full and key is new, it looks
// at a few entries (in map order, which is random) and drops those that
// stale says are of no more use, or else the first it saw: a full table
// costs O(1) per insert, never a scan. It returns false only when nothing
// could be dropped. Requires the shard locked.
func (sh *Shard[K, V]) Put(key K, v V, stale func(K, V) bool) bool {
	// The lookup is paid only when the shard is full: below its bound one
	// map operation stores a new key or replaces an old one alike.
	if len(sh.entries) < sh.max {
		sh.entries[key] = v
		return true
	}
	if _, ok := sh.entries[key]; !ok {
		const look = 8
		seen, dropped := 0, false
		var first K
		for k, e := range sh.entries {
			if seen == 0 {
				first = k
			}
			if stale != nil && stale(k, e) {
				delete(sh.entries, k)
				dropped = true
			}
			if seen++; seen == look {
				break
			}
		}
		if !dropped {
			if seen == 0 {
				return false
			}
			delete(sh.entries, first)
		}
	}
	sh.entries[key] = v
	return true
}

// DeleteFunc drops every entry for which del is true. Requires the shard
// locked.
func (sh *Shard[K, V]) DeleteFunc(del func(K, V) bool) {
	for k, v := range sh.entries {
		if del(k, v) {
			delete(sh.entries, k)
		}
	}
}

// All calls f on every entry until f returns false. Requires the shard
// locked.
func (sh *Shard[K, V]) All(f func(K, V) bool) {
	for k, v := range sh.entries {
		if !f(k, v) {
			return
		}
	}
}
