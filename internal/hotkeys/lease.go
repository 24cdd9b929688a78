package hotkeys

import (
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// Token leases for hot keys (cluster.Config.Leases; off by default). A
// forwarder that keeps sending admitted checks on one key asks the owner,
// with the next one, for a few more identical checks. The owner spends
// them from the bucket right then, so nothing is admitted that the bucket
// did not allow, and the forwarder answers the next checks itself, without
// a hop, until the lease is used up or its TTL passes. Unused leased checks
// are not returned: they stay spent, which can deny others early (at most
// one lease per forwarder per key per TTL) but never admits too much. That
// is why leases are opt-in: by default the cluster admits exactly the
// limit. A lease is sized by the forwarder's recent rate on the key, at
// most LeaseMax, and the owner caps it at 1/LeaseShareOfBurst of the
// bucket's capacity. Leases belong to a ring: a ring change drops them.
const (
	// LeaseTTL is how long a lease's unused checks stay usable.
	LeaseTTL = 250 * time.Millisecond
	// LeaseMax is the most checks in one lease.
	LeaseMax = 64
	// LeaseShareOfBurst: an owner grants at most capacity/LeaseShareOfBurst.
	LeaseShareOfBurst = 8

	leaseMinRecent = 4 // admitted forwards per TTL before asking
	leasesPerShard = 4096
)

// Leases is a forwarder's table of token leases, one per check shape on a
// key.
type Leases struct {
	clock bucket.Clock
	t     *Table[engine.CheckID, *leaseEntry]
}

type leaseEntry struct {
	left    int             // leased checks not yet answered
	expires time.Duration   // when the unused ones lapse
	d       bucket.Decision // the owner's answer at the grant
	period  time.Duration   // start of the current rate period
	recent  int             // admitted forwards in it
	asking  bool            // a lease request is on its way
}

// NewLeases returns an empty table that reads time from clock.
func NewLeases(clock bucket.Clock) *Leases {
	return &Leases{clock: clock, t: NewTable[engine.CheckID, *leaseEntry](leasesPerShard, checkShard)}
}

// lock locks the shard of a check's entry and returns it, the entry's key,
// the entry (nil if none) and now. The caller unlocks.
func (l *Leases) lock(key bucket.Key, req bucket.Request) (*Shard[engine.CheckID, *leaseEntry], engine.CheckID, *leaseEntry, time.Duration) {
	k := engine.IDOf(key, req)
	now := l.clock.Now()
	sh := l.t.Lock(k)
	e, _ := sh.Get(k)
	return sh, k, e, now
}

// Take answers a check from a live lease, if there is one.
func (l *Leases) Take(key bucket.Key, req bucket.Request) (bucket.Decision, bool) {
	sh, _, e, now := l.lock(key, req)
	defer sh.Unlock()
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

// Want returns how many leased checks to ask for with the next forward.
func (l *Leases) Want(key bucket.Key, req bucket.Request) int {
	sh, _, e, now := l.lock(key, req)
	defer sh.Unlock()
	if e == nil {
		return 0
	}
	if now-e.period >= LeaseTTL {
		e.period, e.recent, e.asking = now, 0, false
	}
	if e.recent < leaseMinRecent || e.asking {
		return 0 // one request at a time: concurrent ones would each be granted
	}
	e.asking = true
	return min(2*e.recent, LeaseMax)
}

// Admitted records an admitted forward and the lease that came with it.
func (l *Leases) Admitted(key bucket.Key, req bucket.Request, d bucket.Decision, leased int) {
	sh, k, e, now := l.lock(key, req)
	defer sh.Unlock()
	if e == nil {
		e = &leaseEntry{period: now}
		lapsed := func(_ engine.CheckID, old *leaseEntry) bool {
			return now >= old.expires && now-old.period >= LeaseTTL
		}
		if !sh.Put(k, e, lapsed) {
			return
		}
	}
	e.recent++
	if leased > 0 {
		e.asking = false
		if now >= e.expires {
			e.left = 0 // the old lease lapsed
		}
		e.left += leased
		e.expires, e.d = now+LeaseTTL, d
	}
}

// Failed clears a lease request whose forward got no answer.
func (l *Leases) Failed(key bucket.Key, req bucket.Request) {
	sh, _, e, _ := l.lock(key, req)
	defer sh.Unlock()
	if e != nil {
		e.asking = false
	}
}

// Forget drops every lease on key; its unused checks lapse spent.
func (l *Leases) Forget(key bucket.Key) {
	l.t.DeleteIf(key.Lo, func(k engine.CheckID) bool { return k.Key == key })
}
