package cluster

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// topDenied finds the keys a node denies most often with the Space-Saving
// algorithm, in shards by key so that denials of different keys do not
// share a lock: each shard counts at most topDeniedPerShard keys, and a
// denial of a key it does not count replaces its least-counted key,
// inheriting that count as its possible overestimate. Within a shard, any
// key denied more than a 1/topDeniedPerShard share of the shard's denials
// is always in the table. Counts halve every topDeniedHalfLife, so the
// list says what is limited lately, not since start.
//
// It lives on the node a check enters through, the only one that knows the
// key's ids (owners hold only hashes), and it never becomes a metric label.
type topDenied struct {
	clock  bucket.Clock
	seed   maphash.Seed
	shards [topDeniedShards]deniedShard
}

const (
	topDeniedShards   = 16
	topDeniedPerShard = 16
	topDeniedHalfLife = time.Minute
)

type deniedShard struct {
	// mu guards the fields below. It is taken only on denials.
	mu      sync.Mutex
	entries map[deniedID]*deniedCount
	halved  time.Duration // when counts last halved
}

type deniedID struct{ user, action string }

type deniedCount struct{ n, err uint64 }

func newTopDenied(clock bucket.Clock) *topDenied {
	t := &topDenied{clock: clock, seed: maphash.MakeSeed()}
	now := clock.Now()
	for i := range t.shards {
		t.shards[i].entries = make(map[deniedID]*deniedCount, topDeniedPerShard)
		t.shards[i].halved = now
	}
	return t
}

func (t *topDenied) shard(user, action string) *deniedShard {
	h := maphash.String(t.seed, user) ^ maphash.String(t.seed, action)*0x9e3779b97f4a7c15
	return &t.shards[h%topDeniedShards]
}

// record counts one denial of (user, action).
func (t *topDenied) record(user, action string) {
	id := deniedID{user, action}
	sh := t.shard(user, action)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.decay(t.clock.Now())
	if c := sh.entries[id]; c != nil {
		c.n++
		return
	}
	// The ids are copied: they may point into a request buffer.
	id = deniedID{clone(user), clone(action)}
	if len(sh.entries) < topDeniedPerShard {
		sh.entries[id] = &deniedCount{n: 1}
		return
	}
	var minID deniedID
	var minC *deniedCount
	for k, c := range sh.entries {
		if minC == nil || c.n < minC.n {
			minID, minC = k, c
		}
	}
	delete(sh.entries, minID)
	sh.entries[id] = &deniedCount{n: minC.n + 1, err: minC.n}
}

func clone(s string) string { return string([]byte(s)) }

// decay halves every count once per half-life passed. Requires sh.mu held.
func (sh *deniedShard) decay(now time.Duration) {
	for now-sh.halved >= topDeniedHalfLife {
		sh.halved += topDeniedHalfLife
		for id, c := range sh.entries {
			c.n /= 2
			c.err /= 2
			if c.n == 0 {
				delete(sh.entries, id)
			}
		}
		if len(sh.entries) == 0 {
			sh.halved = now
		}
	}
}

// top returns the n most-denied keys, most first.
func (t *topDenied) top(n int) []drl.DeniedKey {
	var out []drl.DeniedKey
	now := t.clock.Now()
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.decay(now)
		for id, c := range sh.entries {
			out = append(out, drl.DeniedKey{UserID: id.user, Action: id.action, Denied: c.n, Error: c.err})
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b drl.DeniedKey) int {
		if c := cmp.Compare(b.Denied, a.Denied); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.Action, b.Action))
	})
	return out[:min(n, len(out))]
}

// forget drops a key, after a reset.
func (t *topDenied) forget(user, action string) {
	sh := t.shard(user, action)
	sh.mu.Lock()
	delete(sh.entries, deniedID{user, action})
	sh.mu.Unlock()
}
