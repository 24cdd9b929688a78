package ownership

import (
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// Store is what the core needs of a node's bucket store
// (*engine.Store). Its calls are safe for concurrent use.
type Store interface {
	CheckKey(k bucket.Key, req bucket.Request, n int) (engine.Repeated, error)
	CheckKeyIfHeld(k bucket.Key, req bucket.Request, n int) (engine.Repeated, bool, error)
	Seed(k bucket.Key, req bucket.Request, spent int64) (bool, error)
	Absorb(moved []engine.Moved) int
	Extract(move func(bucket.Key) bool) []engine.Moved
}

var _ Store = (*engine.Store)(nil)

// Step says what a check on an owned key needs before it can be decided.
type Step uint8

const (
	// Decided: the answer is in.
	Decided Step = iota
	// AwaitSettled: wait until the view settles or HandoffWait passes,
	// then ask again with Waited set (and Settled if it settled).
	AwaitSettled
	// AwaitConfirmed: wait until every peer of the view confirmed its ring,
	// with no HandoffWait to cut it short, then ask again with Settled.
	AwaitConfirmed
)

// Owned is one check (count identical checks) on a key the node owns in a
// view, as it goes through its steps.
type Owned struct {
	Key   bucket.Key
	Req   bucket.Request
	Count int
	// Settled: every peer of the view reported its handoff done. Waited:
	// the node waited for that as long as it waits (settled, or
	// HandoffWait passed).
	Settled, Waited bool
	// Now is the time of the check; read only for keys taken over from a
	// failed member, so a caller may leave it zero when the view has no
	// takeovers.
	Now time.Duration
	// Gone is what the failed owner last said was left, for a key taken
	// over from it.
	Gone Knowledge
}

// DecideOwned answers c on a key self owns in v, from s, or says what it
// must wait for first. Most keys take one store call. A key gained in v's
// change (or any key while a restoring member joins) waits for v's
// handoffs if nothing is held for it; a node that healed from a split
// waits either way. A key taken over from a failed member starts its
// bucket, once every peer confirmed v, from the failed side's share (or
// from what that owner last said was gone, if more), and a bucket already
// held for it counts at least that much; lent hits credited to the key (p)
// are spent on top.
func (v *View) DecideOwned(s Store, p *Provisional, self string, c Owned) (engine.Repeated, Step, error) {
	wait := NoWait
	if !c.Waited {
		wait = v.MustWait(c.Key, self)
	}
	spends := c.Req.Hits > 0 && !c.Req.DryRun
	seeded := len(v.Takeovers) > 0 && spends && v.TakenOver(c.Key) && v.takeoverSpend(c) > 0
	credited := spends && p.HasCredits(c.Key, c.Req.Algorithm, c.Now)
	if wait == NoWait && !seeded && !credited {
		rep, err := s.CheckKey(c.Key, c.Req, c.Count)
		return rep, Decided, err
	}
	if wait == WaitAlways {
		return engine.Repeated{}, AwaitSettled, nil
	}
	peek := c.Req
	peek.Hits, peek.DryRun = 0, true
	left, held, err := s.CheckKeyIfHeld(c.Key, peek, 1)
	if err != nil {
		return engine.Repeated{}, Decided, err
	}
	switch {
	case held:
	case seeded && !c.Settled:
		// A node that merely has not yet noticed that it is in the
		// minority would otherwise take over keys the majority still
		// decides.
		return engine.Repeated{}, AwaitConfirmed, nil
	case wait == WaitIfNotHeld:
		return engine.Repeated{}, AwaitSettled, nil
	}
	if seeded && p.firstAfter(c.Key, v.takenOverAt(c.Key, c.Req.Window, c.Now)) && held {
		// A bucket held here for a key a failed member owned may predate
		// the failure (this node's own from before a cut): on the first
		// check after the takeover it counts at least what a new one
		// would start from.
		if need := v.takeoverSpend(c) - (Capacity(c.Req) - left.LastAdmitted.Remaining); need > 0 {
			top := c.Req
			top.Hits = need
			if _, err := s.CheckKey(c.Key, top, 1); err != nil {
				return engine.Repeated{}, Decided, err
			}
		}
	}
	if err := v.startTakenOver(s, p, c, held); err != nil {
		return engine.Repeated{}, Decided, err
	}
	rep, err := s.CheckKey(c.Key, c.Req, c.Count)
	return rep, Decided, err
}

// startTakenOver starts the bucket of a key taken over from a failed
// member, unless one is held, with the failed side's share spent: once,
// atomically, so racing first checks seed it together and a bucket that
// arrived meanwhile is kept as it is. Then it spends the lent hits waiting
// for the key.
func (v *View) startTakenOver(s Store, p *Provisional, c Owned, held bool) error {
	if !held {
		if spent := v.takeoverSpend(c); spent > 0 {
			if _, err := s.Seed(c.Key, c.Req, spent); err != nil {
				return err
			}
		}
	}
	if credits := p.TakeCredits(c.Key, c.Req.Algorithm, c.Now); len(credits) > 0 {
		s.Absorb(credits)
	}
	return nil
}

// takeoverSpend is how much of a new bucket for c's key counts as spent
// because a failed member owned it within the last window: its share, or
// what it last said was gone if that is more.
func (v *View) takeoverSpend(c Owned) int64 {
	whole := Capacity(c.Req)
	spent := v.TakeoverSpend(c.Key, c.Req.Window, whole, c.Now)
	if spent > 0 && c.Gone.Known {
		spent = max(spent, whole-c.Gone.Left)
	}
	return min(spent, whole)
}

// Handoff is what a node sends and keeps at a ring change.
type Handoff struct {
	// ByOwner are the buckets, and lent hits, for each new owner: the
	// first Lent[owner] of them are lent hits, to be given back to the
	// Provisional (Keep) if they cannot be delivered.
	ByOwner map[string][]engine.Moved
	Lent    map[string]int
	// Moved counts the store's buckets among them.
	Moved int
}

// PlanHandoff takes out of s every bucket that v's ring (or, for a
// leaving node, leaving) gives to another member for which hasPeer is
// true, and out of p the lent hits of keys others own, grouped by owner
// for the node to send (Provisional.Release). Buckets held for keys self
// takes over in this very change (lent hits another member sent before
// this node saw the change) become credits. v is nil for a leaving node's last handoff.
func PlanHandoff(v *View, leaving Ring, s Store, p *Provisional, self string, hasPeer func(string) bool, now time.Duration) Handoff {
	r := leaving
	// The takeovers since the last plan (a plan skipped for a newer ring
	// included): keys they gave this node may already be in the store as
	// lent hits another member sent before this node saw the change.
	var fresh []Takeover
	if v != nil {
		r = v.Ring
		last := time.Duration(p.planned.Swap(int64(now)))
		for _, t := range v.Takeovers {
			if t.At >= last {
				fresh = append(fresh, t)
			}
		}
	}
	freshlyTaken := func(k bucket.Key) bool {
		for i := range fresh {
			if fresh[i].owned(k) {
				return true
			}
		}
		return false
	}
	moved := s.Extract(func(k bucket.Key) bool {
		owner := r.Owner(k.Hi)
		if owner == self {
			return freshlyTaken(k)
		}
		return hasPeer(owner)
	})
	h := Handoff{ByOwner: map[string][]engine.Moved{}, Lent: map[string]int{}}
	var credits []engine.Moved
	for _, m := range moved {
		owner := r.Owner(m.Key.Hi)
		if owner == self {
			credits = append(credits, m)
			continue
		}
		h.ByOwner[owner] = append(h.ByOwner[owner], m)
		h.Moved++
	}
	p.Credit(credits, now)
	// Credits of keys this node no longer owns go with the key, like lent
	// hits (given back if undelivered): they are buckets kept aside until
	// the key's bucket started here, which never happened.
	lentTo := map[string][]engine.Moved{}
	for _, m := range p.TakeCreditsWhere(func(k bucket.Key) bool {
		owner := r.Owner(k.Hi)
		return owner != self && hasPeer(owner)
	}, now) {
		owner := r.Owner(m.Key.Hi)
		lentTo[owner] = append(lentTo[owner], m)
	}
	if v != nil {
		for owner, lent := range p.Release(v, self, now) {
			if !hasPeer(owner) {
				p.Keep(lent)
				continue
			}
			lentTo[owner] = append(lentTo[owner], lent...)
		}
	}
	for owner, lent := range lentTo {
		h.ByOwner[owner] = append(lent, h.ByOwner[owner]...)
		h.Lent[owner] = len(lent)
	}
	return h
}

// Undelivered gives back to p the lent hits among the buckets for owner
// past the first kept, which a failed handoff did not deliver, and returns
// the store's buckets among them, which are lost.
func (h Handoff) Undelivered(p *Provisional, owner string, kept int) []engine.Moved {
	all, lent := h.ByOwner[owner], h.Lent[owner]
	if kept < lent {
		p.Keep(all[kept:lent])
		kept = lent
	}
	return all[kept:]
}

// Ring is what the core needs of a ring.
type Ring interface {
	Owner(keyHash uint64) string
}

// Absorb takes buckets another member handed this node into s. The first
// lent of them are hits the sender lent itself while the key's owner was
// out of reach: for a key self owns they wait as credits, spent when its
// bucket starts or on its next check (DecideOwned); for any other key
// they join p's lent hits, to go to the key's owner when a ring change
// takes it over (Release). So do the sender's buckets of keys self took
// over from a failed member in v: they are that side's lent hits too. It
// returns how many it kept.
func (v *View) Absorb(s Store, p *Provisional, self string, moved []engine.Moved, lent int, now time.Duration) int {
	lent = min(max(lent, 0), len(moved))
	if lent == 0 && len(v.Takeovers) == 0 {
		return s.Absorb(moved)
	}
	var plain, credits, kept []engine.Moved
	for i, m := range moved {
		owned := v.Ring.Owner(m.Key.Hi) == self
		switch {
		case owned && (i < lent || v.TakenOver(m.Key)):
			credits = append(credits, m)
		case i < lent:
			kept = append(kept, m)
		default:
			plain = append(plain, m)
		}
	}
	p.Credit(credits, now)
	p.Keep(kept)
	return s.Absorb(plain) + len(credits) + len(kept)
}
