package ownership

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// While a key's owner cannot be reached, a node with the local fail policy
// admits from a provisional share of the key's limit: limit/N, where N is
// the cluster's size as it counts it, and never more than the owner last
// said was left, in the same proportion. Two rules keep a fault's total
// within its bound:
//
//   - A share outlives views. It is one bucket per key, of limit/N per
//     window, that every ring change during an outage (the owner declared
//     dead, the takeover, the heal) keeps: a node never lends itself more
//     than limit/N in any window, however often its view changes.
//   - What a share admitted is lent, not spent: the node keeps the hits in
//     the key's real shape, and when a ring change takes the key over from
//     a failed member, hands them to its new owner, which spends them on
//     top of the failed side's share. So the side that lost the owner
//     admits no more than its share over the whole fault, shares and
//     takeover together.

// Provisional holds one node's provisional shares, lent hits and the lent
// hits other members handed it for keys it took over. It is safe for
// concurrent use. Its buckets read the node's clock, as every bucket does;
// it starts no goroutine (they expire as they are used).
type Provisional struct {
	shares *engine.Store // limit/N per key
	lent   *engine.Store // what the shares admitted, in the key's real shape
	owed   *engine.Store // buckets a failed handoff did not deliver (Owe)

	// mu guards credits: lent hits handed here for keys taken over from
	// failed members, spent when such a key's bucket starts (TakeCredits).
	mu      sync.Mutex
	credits map[bucket.Key][]credit
	// index is which keys have credits, under which algorithms, for the
	// checks that ask without taking mu; nil when there are none.
	index atomic.Pointer[creditIndex]
	// staleTakes counts the keys taken since the index was built: it is
	// rebuilt once they are half the credits (TakeCredits).
	staleTakes int
	// started holds, for keys taken over from a failed member, the
	// takeover their bucket here was first decided in (its time, plus 1):
	// a held bucket is topped up to the seed once per takeover, not on
	// every check (View.DecideOwned).
	started map[bucket.Key]time.Duration
	// planned is when PlanHandoff last ran: takeovers since are those
	// whose keys may sit in the store as lent hits that arrived early.
	planned atomic.Int64
}

// creditIndex is an immutable summary of credits: a bit per algorithm
// for each key, and when the last of them is fresh.
type creditIndex struct {
	algs  map[bucket.Key]uint32
	until time.Duration
}

// publish rebuilds the index after credits changed; requires mu held.
func (p *Provisional) publish() {
	p.staleTakes = 0
	if len(p.credits) == 0 {
		p.index.Store(nil)
		return
	}
	idx := &creditIndex{algs: make(map[bucket.Key]uint32, len(p.credits))}
	for k, cs := range p.credits {
		for _, c := range cs {
			idx.algs[k] |= 1 << c.moved.Algorithm()
			idx.until = max(idx.until, c.at+c.moved.FreshIn)
		}
	}
	p.index.Store(idx)
}

// credit is a bucket handed over as lent hits, and when it arrived.
type credit struct {
	moved engine.Moved
	at    time.Duration
}

// maxProvisional bounds the keys each provisional store holds.
const maxProvisional = 100_000

// NewProvisional returns empty provisional state whose buckets read clock
// and accept windows within [minWindow, maxWindow] (zero: bucket's
// defaults).
func NewProvisional(clock bucket.Clock, hasher bucket.KeyHasher, minWindow, maxWindow time.Duration) (*Provisional, error) {
	cfg := bucket.StoreConfig{Clock: clock, Hasher: hasher, Shards: 16, MinWindow: minWindow, MaxWindow: maxWindow,
		MaxEntries: maxProvisional, SweepInterval: -1}
	shares, err := engine.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("ownership: provisional shares: %w", err)
	}
	lent, err := engine.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("ownership: lent hits: %w", err)
	}
	owed, err := engine.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("ownership: owed buckets: %w", err)
	}
	return &Provisional{shares: shares, lent: lent, owed: owed, credits: map[bucket.Key][]credit{}}, nil
}

// Knowledge is what a node knows of what is left in a key's bucket at its
// owner: what the owner last answered, or, for the owner itself, what its
// own bucket holds.
type Knowledge struct {
	Left  int64
	Known bool
}

// ReroutePause is the retry hint of a check denied while ownership moves,
// and the longest a check waits for a newer view before it is routed
// again.
const ReroutePause = 25 * time.Millisecond

// Lend answers a check whose owner cannot be reached from the node's
// provisional share of it, sized by v. know caps a new share: a key its
// owner had exhausted stays exhausted. A key the node knows nothing of
// while v has not settled is denied: its bucket is most likely on its way
// to a new owner, not lost, and a fresh share then is the over-admission
// of a rolling restart. So is a key taken over in v within its window: its
// new owner started it from what this side lent before. now is the time
// of the check, by the node's clock.
func (p *Provisional) Lend(v *View, key bucket.Key, req bucket.Request, know Knowledge, unsettled bool, now time.Duration) (bucket.Decision, error) {
	share := v.ShareCount()
	local := req
	local.Limit = max(req.Limit/share, 1)
	if req.Burst > 0 {
		local.Burst = max(req.Burst/share, 1)
	}
	if local.Algorithm != bucket.TokenBucket && local.Algorithm != bucket.GCRA {
		local.Burst = 0
	}
	localCap := Capacity(local)
	if v.Quorum.OK() && v.takeover(key, req.Window, now) != nil {
		// The key was taken over in this window: its new owner starts it
		// from this side's share and everything the side lent itself
		// before the takeover. A share lent now would come on top of that
		// count, so the side's total would no longer be bounded by it.
		return bucket.Decision{Limit: localCap, RetryAfter: ReroutePause}, nil
	}
	if local.Hits > localCap {
		// More than the share can ever hold: deny, as the owner might well
		// have.
		return bucket.Decision{Limit: localCap, RetryAfter: req.Window}, nil
	}
	rep, held, err := p.shares.CheckKeyIfHeld(key, local, 1)
	if err == nil && !held {
		start := localCap
		if know.Known {
			start = min(start, know.Left/share)
		} else if unsettled {
			return bucket.Decision{Limit: localCap, RetryAfter: ReroutePause}, nil
		}
		if spent := localCap - start; spent > 0 {
			// Once per share, atomically: racing first checks seed it
			// together.
			_, err = p.shares.Seed(key, local, spent)
		}
		if err == nil {
			rep, err = p.shares.CheckKey(key, local, 1)
		}
	}
	if err != nil {
		return bucket.Decision{}, err
	}
	d := Single(rep)
	if rep.Admitted > 0 {
		if req.Hits > 0 && !req.DryRun {
			// Never denied: a share of L/N a window cannot lend more than
			// L a window.
			p.lent.CheckKey(key, req, 1)
		}
	}
	return d, nil
}

// Release takes, at a ring change to v with a majority, every lent hit:
// those of keys another member owns in v, by owner, for the node to hand
// over as lent hits (Keep what it cannot deliver); those of keys it owns
// itself become credits. Either way they are spent on top of the key's
// bucket, never taken for it, so an owner still waits for the bucket a
// handoff is bringing (View.Absorb, DecideOwned). Without a majority it
// takes nothing: the owners may be out of reach.
func (p *Provisional) Release(v *View, self string, now time.Duration) (toOwners map[string][]engine.Moved) {
	if !v.Quorum.OK() || v.Ring.Len() == 0 {
		return nil
	}
	p.expireCredits(now)
	all := func(bucket.Key) bool { return true }
	moved := append(p.lent.Extract(all), p.owed.Extract(all)...)
	var mine []engine.Moved
	for _, m := range moved {
		if owner := v.Ring.Owner(m.Key.Hi); owner != self {
			if toOwners == nil {
				toOwners = map[string][]engine.Moved{}
			}
			toOwners[owner] = append(toOwners[owner], m)
			continue
		}
		mine = append(mine, m)
	}
	p.Credit(mine, now)
	return toOwners
}

// firstAfter reports whether this is the first decision on key since the
// takeover at at, and records it.
func (p *Provisional) firstAfter(key bucket.Key, at time.Duration) bool {
	k := baseKey(key)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started[k] == at+1 {
		return false
	}
	if p.started == nil || len(p.started) >= maxProvisional {
		p.started = map[bucket.Key]time.Duration{}
	}
	p.started[k] = at + 1
	return true
}

// Keep takes back lent hits the node could not hand to their owner.
func (p *Provisional) Keep(moved []engine.Moved) { p.lent.Absorb(moved) }

// Owe keeps the store's buckets a failed handoff did not deliver, so that
// they are not lost while this node runs: they go again, marked lent, with
// this node's done mark to the same owner (TakeOwed; the mark waits for
// them, Owes), or to the key's owner at the next ring change (Release).
// The receiver spends them on top of the key's bucket, so a late arrival
// counts both histories.
func (p *Provisional) Owe(moved []engine.Moved) { p.owed.Absorb(moved) }

// Owes reports whether p holds buckets owed to the member owner is in r.
func (p *Provisional) Owes(r Ring, owner string) bool {
	if p.owed.Len() == 0 {
		return false
	}
	for m := range p.owed.Buckets() {
		if r.Owner(m.Key.Hi) == owner {
			return true
		}
	}
	return false
}

// TakeOwed removes and returns the buckets owed to owner in r.
func (p *Provisional) TakeOwed(r Ring, owner string) []engine.Moved {
	if p.owed.Len() == 0 {
		return nil
	}
	return p.owed.Extract(func(k bucket.Key) bool { return r.Owner(k.Hi) == owner })
}

// Credit keeps buckets handed to this node for keys it took over, to be
// spent when the key's bucket starts here (TakeCredits).
func (p *Provisional) Credit(moved []engine.Moved, now time.Duration) {
	if len(moved) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range moved {
		k := baseKey(m.Key)
		p.credits[k] = append(p.credits[k], credit{m, now})
	}
	p.publish()
}

// TakeCredits removes and returns the credits for key's bucket under alg,
// aged to now. It is cheap when there are none.
func (p *Provisional) TakeCredits(key bucket.Key, alg bucket.Algorithm, now time.Duration) []engine.Moved {
	if p.index.Load() == nil {
		return nil
	}
	k := baseKey(key)
	var taken []credit
	p.mu.Lock()
	cs := p.credits[k]
	left := cs[:0]
	for _, c := range cs {
		if c.moved.Algorithm() == alg {
			taken = append(taken, c)
		} else {
			left = append(left, c)
		}
	}
	if len(left) == 0 {
		delete(p.credits, k)
	} else {
		p.credits[k] = left
	}
	if len(taken) > 0 {
		// The index may go on naming this key for a while: a check then
		// finds nothing here, which is cheap. Rebuilding it on every take
		// would cost the square of the credits after a fault.
		p.staleTakes++
		if p.staleTakes > len(p.credits)/2 {
			p.publish()
		}
	}
	p.mu.Unlock()
	var out []engine.Moved
	for _, c := range taken {
		if m, ok := c.moved.Aged(now - c.at); ok {
			out = append(out, m)
		}
	}
	return out
}

// TakeCreditsWhere removes and returns, aged to now, the credits of every
// key move reports true for: a node hands them on with the key when the
// key's ownership moves before its bucket started here.
func (p *Provisional) TakeCreditsWhere(move func(bucket.Key) bool, now time.Duration) []engine.Moved {
	if p.index.Load() == nil {
		return nil
	}
	var out []engine.Moved
	p.mu.Lock()
	for k, cs := range p.credits {
		if !move(k) {
			continue
		}
		for _, c := range cs {
			if m, ok := c.moved.Aged(now - c.at); ok {
				out = append(out, m)
			}
		}
		delete(p.credits, k)
	}
	p.publish()
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b engine.Moved) int {
		return cmp.Or(cmp.Compare(a.Key.Hi, b.Key.Hi), cmp.Compare(a.Key.Lo, b.Key.Lo))
	})
	return out
}

// Pending reports whether credits are waiting for any key: while none are,
// a settled view with no takeovers decides every key with one store call.
func (p *Provisional) Pending() bool { return p.index.Load() != nil }

// HasCredits reports whether credits are waiting for key's bucket under
// alg at now, without a lock. Once every credit is fresh by now they are
// dropped.
func (p *Provisional) HasCredits(key bucket.Key, alg bucket.Algorithm, now time.Duration) bool {
	idx := p.index.Load()
	if idx == nil {
		return false
	}
	if now >= idx.until {
		p.expireCredits(now)
		return false
	}
	return idx.algs[baseKey(key)]&(1<<alg) != 0
}

// expireCredits drops credits that are fresh by now.
func (p *Provisional) expireCredits(now time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, cs := range p.credits {
		live := cs[:0]
		for _, c := range cs {
			if now-c.at < c.moved.FreshIn {
				live = append(live, c)
			}
		}
		if len(live) == 0 {
			delete(p.credits, k)
		} else {
			p.credits[k] = live
		}
	}
	p.publish()
}

// Reset drops everything held for key: an operator forgave it.
func (p *Provisional) Reset(key bucket.Key) {
	p.shares.Reset(key)
	p.lent.Reset(key)
	p.owed.Reset(key)
	p.mu.Lock()
	delete(p.credits, baseKey(key))
	p.publish()
	p.mu.Unlock()
}

// Close releases the stores.
func (p *Provisional) Close() {
	p.shares.Close()
	p.lent.Close()
	p.owed.Close()
}

// baseKey is key without the algorithm the store writes into the low bits
// of Lo (bucket.Key's layout): credits are found by the key a check
// hashes to, whatever its algorithm.
func baseKey(k bucket.Key) bucket.Key {
	k.Lo &^= 7
	return k
}

// Single is the answer to a check made alone (count 1).
func Single(r engine.Repeated) bucket.Decision {
	if r.Admitted > 0 {
		return r.LastAdmitted
	}
	return r.Denied
}

// Capacity is the most a bucket of req's shape holds: its burst, or else
// its limit.
func Capacity(req bucket.Request) int64 {
	if req.Burst > 0 {
		return req.Burst
	}
	return req.Limit
}
