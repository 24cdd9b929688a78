package ownership

import (
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/ring"
)

// When a ring drops failed members, the keys they owned are taken over by
// new owners that cannot know what the failed side spent, or is still
// spending if it is merely cut off. For one window after the change, a new
// bucket for such a key starts with lost/size of its capacity spent: the
// share the failed side may have had. What the taking side itself admitted
// provisionally before the change reaches the new owner too (Provisional),
// so that one side's total over the fault stays within its share.

// Takeover records a ring change that dropped failed members.
type Takeover struct {
	Ring   *ring.Ring      // the ring they were dropped from
	Failed map[string]bool // their instance ids
	// Before is the ring before Ring when Ring's own change had not
	// settled (nil when it had): a key gained in that change whose owner
	// before it failed may never have been handed over, so what that
	// owner spent is lost too.
	Before *ring.Ring
	At     time.Duration // by the node's clock
	// Lost of Size members were failed when it happened.
	Lost, Size int
}

// maxTakeovers bounds the takeovers a view remembers; older ones lapse.
const maxTakeovers = 8

// takeovers returns old's takeovers still within the longest window, plus
// one for the members of old's ring that r lacks because they failed, or
// because a newer instance of their name replaced them without a graceful
// leave (a crash and a quick restart, before gossip declared the old one
// dead): either way what they spent is lost with them.
func (c *Core) takeovers(old *View, r *ring.Ring, inRing map[string]Member, q Quorum, now time.Duration) []Takeover {
	out := make([]Takeover, 0, len(old.Takeovers)+1)
	newer := map[string]string{} // name -> instance in r
	for id, m := range inRing {
		newer[m.Name] = id
	}
	dropped := map[string]bool{}
	replaced := 0
	for _, id := range old.Ring.Members() {
		switch {
		case r.Has(id):
		case q.FailedIDs[id]:
			dropped[id] = true
		case newer[old.Members[id].Name] != "" && newer[old.Members[id].Name] != id:
			dropped[id] = true
			replaced++
		}
	}
	if len(dropped) > 0 {
		var before *ring.Ring
		if !c.settled && old.Ring.Has(c.cfg.Self) {
			// A node that joined in old's change has no ring before it of
			// its own (Prev is empty): the ring of the others stands in.
			before = old.Prev
			if before == nil || before.Len() == 0 {
				before = c.RingWithout(old)
			}
		}
		out = append(out, Takeover{Ring: old.Ring, Failed: dropped, Before: before, At: now,
			Lost: max(len(q.Failed)+replaced, len(dropped)), Size: max(q.Size(), len(dropped)+1)})
	}
	for _, t := range old.Takeovers {
		if now-t.At < c.cfg.MaxWindow && len(out) < maxTakeovers {
			out = append(out, t)
		}
	}
	return out
}

// TakenOver reports whether a failed member owned key in one of v's recent
// takeovers: only such keys need a seed, so every other key keeps the
// one-lock path while takeovers are remembered.
func (v *View) TakenOver(key bucket.Key) bool {
	for i := range v.Takeovers {
		if v.Takeovers[i].owned(key) {
			return true
		}
	}
	return false
}

// takeover returns the newest takeover within window before now in which
// a failed member held key, or nil.
func (v *View) takeover(key bucket.Key, window, now time.Duration) *Takeover {
	for i := range v.Takeovers {
		if t := &v.Takeovers[i]; now-t.At < window && t.owned(key) {
			return t
		}
	}
	return nil
}

// share is the failed side's share of a bucket of capacity taken over in
// t. Members that failed since (in a 1|1|3 split, the other cut-off member,
// declared dead a moment later) lend themselves shares of the key too,
// which never reach this side: they count as well. A member that joined
// since makes the cluster larger, not the failed side's share smaller.
func (v *View) share(t *Takeover, capacity int64) int64 {
	then := ceilShare(capacity, int64(t.Lost), int64(t.Size))
	since := ceilShare(capacity, int64(len(v.Quorum.Failed)), int64(max(v.Quorum.Size(), 1)))
	return max(then, since)
}

// owned reports whether a failed member of t held key: it owned key in
// t's ring, or in the ring before it while key's handoff was pending.
func (t *Takeover) owned(key bucket.Key) bool {
	return t.Failed[t.Ring.Owner(key.Hi)] || t.Before != nil && t.Failed[t.Before.Owner(key.Hi)]
}

// ceilShare is ceil(capacity × part/whole).
func ceilShare(capacity, part, whole int64) int64 {
	return (capacity*part + whole - 1) / whole
}
