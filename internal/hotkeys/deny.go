package hotkeys

import (
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// DenyCache remembers, on a node that forwards checks, the denials owners
// sent back: until the owner's RetryAfter has passed, the same check would
// be denied again, so the node answers it without a hop. That is exact:
// nothing can be admitted before RetryAfter except through a ring change,
// and every ring gets an empty cache. The time is taken from before the
// forward was sent, so the cache can only expire early, never late.
//
// Hot keys under attack are the ones that send the most denied checks;
// this is where the cache pays.
type DenyCache struct {
	clock bucket.Clock
	t     *Table[engine.CheckID, denial]
}

// denyPerShard bounds the cache: ~64k denied keys per node; beyond that a
// new denial replaces an expired one, or a random one.
const denyPerShard = 4096

type denial struct {
	d     bucket.Decision
	at    time.Duration // when the forward was sent
	until time.Duration // at + d.RetryAfter
}

// NewDenyCache returns an empty cache that reads time from clock.
func NewDenyCache(clock bucket.Clock) *DenyCache {
	return &DenyCache{clock: clock, t: NewTable[engine.CheckID, denial](denyPerShard, checkShard)}
}

func checkShard(k engine.CheckID) uint64 { return k.Key.Lo }

// Lookup returns the cached denial for the check, with its waits counted
// down to now.
func (c *DenyCache) Lookup(key bucket.Key, req bucket.Request) (bucket.Decision, bool) {
	k := engine.IDOf(key, req)
	now := c.clock.Now()
	sh := c.t.Lock(k)
	e, ok := sh.Get(k)
	if ok && now >= e.until {
		sh.Delete(k)
		ok = false
	}
	sh.Unlock()
	if !ok {
		return bucket.Decision{}, false
	}
	d := e.d
	d.RetryAfter = e.until - now
	d.ResetAfter = max(d.ResetAfter-(now-e.at), d.RetryAfter)
	return d, true
}

// Store remembers a denial for a check forwarded at sentAt.
func (c *DenyCache) Store(key bucket.Key, req bucket.Request, d bucket.Decision, sentAt time.Duration) {
	if d.Allowed || d.RetryAfter < time.Millisecond {
		return
	}
	k := engine.IDOf(key, req)
	sh := c.t.Lock(k)
	defer sh.Unlock()
	// sentAt stands for now, as in LastAnswers.Store.
	sh.Put(k, denial{d: d, at: sentAt, until: sentAt + d.RetryAfter}, func(_ engine.CheckID, e denial) bool { return sentAt >= e.until })
}

// Forget drops every cached denial of key.
func (c *DenyCache) Forget(key bucket.Key) {
	c.t.DeleteIf(key.Lo, func(k engine.CheckID) bool { return k.Key == key })
}
