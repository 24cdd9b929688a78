package cluster

import (
	"sync"
	"time"

	"github.com/drlimit/drl/bucket"
)

// denyCache remembers, on a node that forwards checks, the denials owners
// sent back: until the owner's RetryAfter has passed, the same check would
// be denied again, so the node answers it without a hop. That is exact:
// nothing can be admitted before RetryAfter except through a ring change,
// and every view starts with an empty cache. The time is taken from before
// the forward was sent, so the cache can only expire early, never late.
//
// Hot keys under attack are the ones that send the most denied checks;
// this is where the cache pays.
type denyCache struct {
	clock  bucket.Clock
	shards [denyShards]denyShard
}

const (
	denyShards   = 16
	denyPerShard = 4096 // ~64k denied keys per node; beyond that, no caching
)

type denyShard struct {
	// mu guards entries.
	mu      sync.Mutex
	entries map[bucket.CheckID]denial
}

type denial struct {
	d     bucket.Decision
	at    time.Duration // when the forward was sent
	until time.Duration // at + d.RetryAfter
}

func newDenyCache(clock bucket.Clock) *denyCache {
	c := &denyCache{clock: clock}
	for i := range c.shards {
		c.shards[i].entries = map[bucket.CheckID]denial{}
	}
	return c
}

func (c *denyCache) shard(k bucket.CheckID) *denyShard { return &c.shards[k.Key.Lo%denyShards] }

// lookup returns the cached denial for the check, with its waits counted
// down to now.
func (c *denyCache) lookup(key bucket.Key, req bucket.Request) (bucket.Decision, bool) {
	k := bucket.IDOf(key, req)
	sh := c.shard(k)
	now := c.clock.Now()
	sh.mu.Lock()
	e, ok := sh.entries[k]
	if ok && now >= e.until {
		delete(sh.entries, k)
		ok = false
	}
	sh.mu.Unlock()
	if !ok {
		return bucket.Decision{}, false
	}
	d := e.d
	d.RetryAfter = e.until - now
	d.ResetAfter = max(d.ResetAfter-(now-e.at), d.RetryAfter)
	return d, true
}

// store remembers a denial for a check forwarded at sentAt.
func (c *denyCache) store(key bucket.Key, req bucket.Request, d bucket.Decision, sentAt time.Duration) {
	if d.Allowed || d.RetryAfter < time.Millisecond {
		return
	}
	k := bucket.IDOf(key, req)
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.entries) >= denyPerShard {
		now := c.clock.Now()
		for ek, e := range sh.entries {
			if now >= e.until {
				delete(sh.entries, ek)
			}
		}
		if len(sh.entries) >= denyPerShard {
			return
		}
	}
	sh.entries[k] = denial{d: d, at: sentAt, until: sentAt + d.RetryAfter}
}

// forget drops every cached denial of key.
func (c *denyCache) forget(key bucket.Key) {
	sh := &c.shards[key.Lo%denyShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for k := range sh.entries {
		if k.Key == key {
			delete(sh.entries, k)
		}
	}
}
