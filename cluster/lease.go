package cluster

import (
	"sync"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/peer"
)

// Token leases for hot keys (Config.Leases; off by default). A forwarder
// that keeps sending admitted checks on one key asks the owner, with the
// next one, for a few more identical checks. The owner spends them from
// the bucket right then, so nothing is admitted that the bucket did not
// allow, and the forwarder answers the next checks itself, without a hop,
// until the lease is used up or its TTL passes. Unused leased checks are
// not returned: they stay spent, which can deny others early (at most one
// lease per forwarder per key per TTL) but never admits too much. That is
// why leases are opt-in: by default the cluster admits exactly the limit.
// A lease is sized by the forwarder's recent rate on the key, at most 64,
// and the owner caps it at an eighth of the bucket's capacity (no leases
// below 8). Leases belong to a view: a ring change drops them.

const (
	leaseTTL          = 250 * time.Millisecond
	leaseMinRecent    = 4  // admitted forwards per TTL before asking
	leaseMax          = 64 // checks per lease
	leaseShards       = 16
	leasesPerShard    = 4096
	leaseShareOfBurst = 8 // an owner grants at most capacity/8
)

type leaseTable struct {
	clock  bucket.Clock
	shards [leaseShards]leaseShard
}

type leaseShard struct {
	// mu guards entries.
	mu      sync.Mutex
	entries map[bucket.CheckID]*leaseEntry
}

type leaseEntry struct {
	left    int             // leased checks not yet answered
	expires time.Duration   // when the unused ones lapse
	d       bucket.Decision // the owner's answer at the grant
	period  time.Duration   // start of the current rate period
	recent  int             // admitted forwards in it
	asking  bool            // a lease request is on its way
}

func newLeaseTable(clock bucket.Clock) *leaseTable {
	t := &leaseTable{clock: clock}
	for i := range t.shards {
		t.shards[i].entries = map[bucket.CheckID]*leaseEntry{}
	}
	return t
}

// lock locks the shard of a check's entry and returns it, the entry's key
// and now. The caller unlocks.
func (t *leaseTable) lock(key bucket.Key, req bucket.Request) (*leaseShard, bucket.CheckID, time.Duration) {
	k := bucket.IDOf(key, req)
	sh := &t.shards[k.Key.Lo%leaseShards]
	now := t.clock.Now()
	sh.mu.Lock()
	return sh, k, now
}

// take answers a check from a live lease, if there is one.
func (t *leaseTable) take(key bucket.Key, req bucket.Request) (bucket.Decision, bool) {
	sh, k, now := t.lock(key, req)
	defer sh.mu.Unlock()
	e := sh.entries[k]
	if e == nil || e.left == 0 || now >= e.expires {
		return bucket.Decision{}, false
	}
	e.left--
	d := e.d
	// What the owner had left after the grant, plus what this lease still
	// holds: the best this node knows.
	d.Remaining += int64(e.left) * req.Hits
	return d, true
}

// want returns how many leased checks to ask for with the next forward.
func (t *leaseTable) want(key bucket.Key, req bucket.Request) int {
	sh, k, now := t.lock(key, req)
	defer sh.mu.Unlock()
	e := sh.entries[k]
	if e == nil {
		return 0
	}
	if now-e.period >= leaseTTL {
		e.period, e.recent, e.asking = now, 0, false
	}
	if e.recent < leaseMinRecent || e.asking {
		return 0 // one request at a time: concurrent ones would each be granted
	}
	e.asking = true
	return min(2*e.recent, leaseMax)
}

// admitted records an admitted forward and the lease that came with it.
func (t *leaseTable) admitted(key bucket.Key, req bucket.Request, d bucket.Decision, leased int) {
	sh, k, now := t.lock(key, req)
	defer sh.mu.Unlock()
	e := sh.entries[k]
	if e == nil {
		if len(sh.entries) >= leasesPerShard {
			for ek, old := range sh.entries { // make room from lapsed entries
				if now >= old.expires && now-old.period >= leaseTTL {
					delete(sh.entries, ek)
				}
			}
			if len(sh.entries) >= leasesPerShard {
				return
			}
		}
		e = &leaseEntry{period: now}
		sh.entries[k] = e
	}
	e.recent++
	if leased > 0 {
		e.asking = false
		if now >= e.expires {
			e.left = 0 // the old lease lapsed
		}
		e.left += leased
		e.expires, e.d = now+leaseTTL, d
	}
}

// failed clears a lease request whose forward got no answer.
func (t *leaseTable) failed(key bucket.Key, req bucket.Request) {
	sh, k, _ := t.lock(key, req)
	defer sh.mu.Unlock()
	if e := sh.entries[k]; e != nil {
		e.asking = false
	}
}

// grantLease spends up to want more identical checks on a key this node
// owns and has just admitted, for the forwarder to answer itself.
func (n *Node) grantLease(c peer.OwnedCheck, want int) int {
	capacity := c.Request.Limit
	if c.Request.Burst > 0 {
		capacity = c.Request.Burst
	}
	want = min(want, int(capacity/leaseShareOfBurst/max(c.Request.Hits, 1)), leaseMax)
	if want <= 0 {
		return 0
	}
	rep, err := n.store.CheckKey(c.Key, c.Request, want)
	if err != nil {
		return 0
	}
	n.leasesGranted.Add(uint64(rep.Admitted))
	return rep.Admitted
}

// forget drops every lease on key; its unused checks lapse spent.
func (t *leaseTable) forget(key bucket.Key) {
	sh := &t.shards[key.Lo%leaseShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for k := range sh.entries {
		if k.Key == key {
			delete(sh.entries, k)
		}
	}
}
