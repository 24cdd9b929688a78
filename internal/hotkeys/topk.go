package hotkeys

import (
	"cmp"
	"hash/maphash"
	"slices"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// TopDenied finds the keys a node denies most often with the Space-Saving
// algorithm, in shards by key so that denials of different keys do not
// share a lock: each shard counts at most topDeniedPerShard keys, and a
// denial of a key it does not count replaces its least-counted key,
// inheriting that count as its possible overestimate. Within a shard, any
// key denied more than a 1/topDeniedPerShard share of the shard's denials
// is always in the table. Counts halve every TopDeniedHalfLife, so the
// list says what is limited lately, not since start.
//
// It lives on the node a check enters through, the only one that knows the
// key's ids (owners hold only hashes), and it never becomes a metric label.
type TopDenied struct {
	clock bucket.Clock
	t     *Table[deniedID, *deniedCount]
}

// TopDeniedHalfLife is how often the counts halve.
const TopDeniedHalfLife = time.Minute

const topDeniedPerShard = 16

type deniedID struct{ user, action string }

type deniedCount struct{ n, err uint64 }

// NewTopDenied returns an empty table that reads time from clock.
func NewTopDenied(clock bucket.Clock) *TopDenied {
	seed := maphash.MakeSeed()
	hash := func(id deniedID) uint64 {
		return maphash.String(seed, id.user) ^ maphash.String(seed, id.action)*0x9e3779b97f4a7c15
	}
	t := &TopDenied{clock: clock, t: NewTable[deniedID, *deniedCount](topDeniedPerShard, hash)}
	now := clock.Now()
	t.t.Each(func(sh *Shard[deniedID, *deniedCount]) { sh.Stamp = now })
	return t
}

// Record counts one denial of (user, action).
func (t *TopDenied) Record(user, action string) {
	id := deniedID{user, action}
	sh := t.t.Lock(id)
	defer sh.Unlock()
	decay(sh, t.clock.Now())
	if c, ok := sh.Get(id); ok {
		c.n++
		return
	}
	// The ids are copied: they may point into a request buffer.
	id = deniedID{clone(user), clone(action)}
	if sh.Len() < topDeniedPerShard {
		sh.Put(id, &deniedCount{n: 1}, nil)
		return
	}
	var minID deniedID
	var minC *deniedCount
	sh.All(func(k deniedID, c *deniedCount) bool {
		if minC == nil || c.n < minC.n {
			minID, minC = k, c
		}
		return true
	})
	sh.Delete(minID)
	sh.Put(id, &deniedCount{n: minC.n + 1, err: minC.n}, nil)
}

func clone(s string) string { return string([]byte(s)) }

// decay halves every count once per half-life passed since sh.Stamp.
// Requires sh locked.
func decay(sh *Shard[deniedID, *deniedCount], now time.Duration) {
	for now-sh.Stamp >= TopDeniedHalfLife {
		sh.Stamp += TopDeniedHalfLife
		sh.DeleteFunc(func(_ deniedID, c *deniedCount) bool {
			c.n /= 2
			c.err /= 2
			return c.n == 0
		})
		if sh.Len() == 0 {
			sh.Stamp = now
		}
	}
}

// Top returns the n most-denied keys, most first.
func (t *TopDenied) Top(n int) []drl.DeniedKey {
	var out []drl.DeniedKey
	now := t.clock.Now()
	t.t.Each(func(sh *Shard[deniedID, *deniedCount]) {
		decay(sh, now)
		sh.All(func(id deniedID, c *deniedCount) bool {
			out = append(out, drl.DeniedKey{UserID: id.user, Action: id.action, Denied: c.n, Error: c.err})
			return true
		})
	})
	slices.SortFunc(out, func(a, b drl.DeniedKey) int {
		if c := cmp.Compare(b.Denied, a.Denied); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.Action, b.Action))
	})
	return out[:min(n, len(out))]
}

// Forget drops a key, after a reset.
func (t *TopDenied) Forget(user, action string) {
	id := deniedID{user, action}
	sh := t.t.Lock(id)
	sh.Delete(id)
	sh.Unlock()
}
