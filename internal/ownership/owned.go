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
	// A key a failed member held starts from its side's share: seed.
	var taken *Takeover
	var seed int64
	if len(v.Takeovers) > 0 && spends {
		if taken = v.takeover(c.Key, c.Req.Window, c.Now); taken != nil {
			seed = v.seed(taken, c)
		}
	}
	credited := spends && p.HasCredits(c.Key, c.Req.Algorithm, c.Now)
	if wait == NoWait && seed == 0 && !credited {
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
	case seed > 0 && !c.Settled:
		// A node that merely has not yet noticed that it is in the
		// minority would otherwise take over keys the majority still
		// decides.
		return engine.Repeated{}, AwaitConfirmed, nil
	case wait == WaitIfNotHeld:
		return engine.Repeated{}, AwaitSettled, nil
	}
	if seed > 0 && p.firstAfter(c.Key, taken.At) {
		// The first check after the takeover starts the key from the
		// seed: a new bucket atomically (racing first checks seed it
		// once), and a bucket held here, which may predate the failure
		// (this node's own from before a cut), is raised to it.
		spent := Capacity(c.Req) - left.LastAdmitted.Remaining
		if !held {
			spent = 0
		}
		if err := startFrom(s, c, seed, spent, held); err != nil {
			return engine.Repeated{}, Decided, err
		}
	}
	if credits := p.TakeCredits(c.Key, c.Req.Algorithm, c.Now); len(credits) > 0 {
		// Lent hits credited to the key are spent on top of its bucket.
		s.Absorb(credits)
	}
	rep, err := s.CheckKey(c.Key, c.Req, c.Count)
	return rep, Decided, err
}

// startFrom makes the bucket of c's key count at least seed spent: a new
// one is seeded (once, atomically: a bucket that arrived meanwhile is kept
// as it is), a held one that has spent only spent is spent up to it.
func startFrom(s Store, c Owned, seed, spent int64, held bool) error {
	if !held {
		_, err := s.Seed(c.Key, c.Req, seed)
		return err
	}
	if need := seed - spent; need > 0 {
		top := c.Req
		top.Hits = need
		_, err := s.CheckKey(c.Key, top, 1)
		return err
	}
	return nil
}

// seed is how much of a bucket for c's key counts as spent because a
// failed member held it in the takeover t: its side's share, or what it
// last said was gone if that is more.
func (v *View) seed(t *Takeover, c Owned) int64 {
	whole := Capacity(c.Req)
	spent := v.share(t, whole)
	if c.Gone.Known {
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
		for owner, lent := range v.release(p, self, hasPeer, now) {
			lentTo[owner] = append(lentTo[owner], lent...)
		}
	}
	for owner, lent := range lentTo {
		h.ByOwner[owner] = append(lent, h.ByOwner[owner]...)
		h.Lent[owner] = len(lent)
	}
	return h
}

// release takes p's lent hits at v (Provisional.Release), keeping those
// of owners hasPeer has no peer for.
func (v *View) release(p *Provisional, self string, hasPeer func(string) bool, now time.Duration) map[string][]engine.Moved {
	toOwners := p.Release(v, self, now)
	for owner, lent := range toOwners {
		if !hasPeer(owner) {
			p.Keep(lent)
			delete(toOwners, owner)
		}
	}
	return toOwners
}

// Redeliver takes, between ring changes, the lent hits p holds, grouped
// by their owner in v, all of them marked lent: for a node to pass on at
// once what would otherwise wait for its next ring change. That is lent
// hits a failed handoff gave back after a newer view had been planned
// (Undelivered), which no plan will release before the ring changes again.
// Without a majority it takes nothing.
func (v *View) Redeliver(p *Provisional, self string, hasPeer func(string) bool, now time.Duration) Handoff {
	h := Handoff{ByOwner: map[string][]engine.Moved{}, Lent: map[string]int{}}
	for owner, lent := range v.release(p, self, hasPeer, now) {
		h.ByOwner[owner] = lent
		h.Lent[owner] = len(lent)
	}
	return h
}

// Regroup sorts buckets a node passes on (the first lent of them lent
// hits) by their owner in r, the lent hits of each owner first and counted
// in Lent, as a leaving node relays what reached it late.
func Regroup(moved []engine.Moved, lent int, r Ring) Handoff {
	h := Handoff{ByOwner: map[string][]engine.Moved{}, Lent: map[string]int{}}
	for i, m := range moved {
		owner := r.Owner(m.Key.Hi)
		h.ByOwner[owner] = append(h.ByOwner[owner], m)
		if i < lent {
			h.Lent[owner]++
		}
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
