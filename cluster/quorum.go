package cluster

import (
	"fmt"
	"slices"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/membership"
	"github.com/drlimit/drl/ring"
)

// A node acts as the authority for keys only while it sees a majority of
// the cluster (DESIGN.md §6). The cluster's size counts the members alive
// in this node's gossip view and the members that failed (crashed, cut
// off, paused) within Config.ForgetFailedAfter, but not those that left
// gracefully: a cluster that shrinks by leaves shrinks its denominator,
// while a node alone in a 2|1 split knows it is the minority. Like a Redis
// Cluster master cut off from the majority, a node without one takes no
// keys over and answers every check by the fail policy until it sees a
// majority again.

// quorum is one node's count of the cluster, by member name.
type quorum struct {
	alive  []string // names with an instance alive, this node's included
	failed []string // names whose last instance failed lately and is not forgotten
	// failedIDs are those instances' ids, which rings use.
	failedIDs map[string]bool
}

// size is the cluster's size as far as a majority goes.
func (q quorum) size() int { return len(q.alive) + len(q.failed) }

// ok reports whether the alive members are a strict majority.
func (q quorum) ok() bool { return 2*len(q.alive) > q.size() }

func (q quorum) String() string {
	return fmt.Sprintf("%d of %d members alive", len(q.alive), q.size())
}

// same reports whether q and o count the same members.
func (q quorum) same(o quorum) bool {
	return slices.Equal(q.alive, o.alive) && slices.Equal(q.failed, o.failed)
}

// countQuorum counts the cluster as gossip last described it.
//
// A failed member stops counting after ForgetFailedAfter only while the
// others are a majority with it counted: a node cut off alone must not
// shrink its cluster to itself by waiting. Forgotten by time, it stays
// forgotten (n.forgotten), like one the operator forgot. A member whose
// metadata does not decode (another protocol version, mid-upgrade) counts
// toward the size but not as alive.
func (n *Node) countQuorum(known map[string]membership.Member) quorum {
	type last struct {
		alive  bool
		id     string
		m      membership.Member
		leaved bool
	}
	byName := map[string]*last{n.cfg.Name: {alive: true}}
	q := quorum{failedIDs: map[string]bool{}}
	foreign := 0
	for id, m := range known {
		md, err := membership.DecodeMeta([]byte(m.Meta))
		if err != nil {
			if m.State == "alive" {
				foreign++
			}
			continue
		}
		l := byName[md.Name]
		if l == nil {
			l = &last{}
			byName[md.Name] = l
		}
		if m.State != "alive" && !md.Leaving {
			// Every failed instance, even of a name that came back: keys
			// it owned are taken over without its bucket.
			q.failedIDs[id] = true
		}
		switch {
		case m.State == "alive":
			l.alive = true
		case l.id == "" || m.Since > l.m.Since:
			l.id, l.m, l.leaved = id, m, md.Leaving
		}
	}
	now := n.cfg.Clock.Now()
	n.forgetMu.Lock()
	defer n.forgetMu.Unlock()
	type failedName struct {
		name, id string
		expired  bool
	}
	var failed []failedName
	for name, l := range byName {
		switch {
		case l.alive:
			q.alive = append(q.alive, name)
		case !l.leaved && !n.forgotten[l.id]:
			failed = append(failed, failedName{name, l.id, now-l.m.Since >= n.cfg.ForgetFailedAfter})
		}
	}
	// Counted with every failed member, the others are a majority: the
	// ones failed long ago may go, for good.
	forgetExpired := 2*len(q.alive) > len(q.alive)+len(failed)+foreign
	for _, f := range failed {
		if f.expired && forgetExpired {
			n.forgotten[f.id] = true
			delete(q.failedIDs, f.id)
			continue
		}
		q.failed = append(q.failed, f.name)
	}
	for range foreign {
		q.failed = append(q.failed, "(another version)")
	}
	slices.Sort(q.alive)
	slices.Sort(q.failed)
	return q
}

// Forget stops counting the failed member called name toward the
// cluster's size at once, instead of after Config.ForgetFailedAfter: the
// operator's word that it is gone for good (drlctl forget). A member that
// comes back under that name counts again. It returns drl.ErrNotFound if
// no member by that name is counted as failed.
func (n *Node) Forget(name string) error {
	known := n.gossip.Members()
	q := n.countQuorum(known)
	if !slices.Contains(q.failed, name) {
		return fmt.Errorf("cluster: forget %q: %w: the failed members counted are %v", name, drl.ErrNotFound, q.failed)
	}
	n.forgetMu.Lock()
	for id := range q.failedIDs {
		if md, err := membership.DecodeMeta([]byte(known[id].Meta)); err == nil && md.Name == name {
			n.forgotten[id] = true
		}
	}
	n.forgetMu.Unlock()
	n.log.Info("failed member forgotten by the operator", "member", name)
	n.signalRebuild()
	return nil
}

// Quorum returns this node's count of the cluster as of its current ring.
func (n *Node) Quorum() drl.Quorum {
	q := n.view.Load().quorum
	return drl.Quorum{Majority: q.ok(), Alive: len(q.alive), Size: q.size(), Failed: slices.Clone(q.failed)}
}

// takeover records a ring change that dropped failed members: the keys
// they owned in ring were taken over without their buckets, by owners that
// cannot know what the failed side spent. For one window after at, a new
// bucket for such a key starts with lost/size of its capacity spent.
type takeover struct {
	ring       *ring.Ring
	failed     map[string]bool
	at         time.Duration // by cfg.Clock
	lost, size int
}

// maxTakeovers bounds the takeovers a view remembers; older ones lapse.
const maxTakeovers = 8

// takeovers returns old's takeovers still within the longest window,
// plus one for the failed members of q that old's ring has and r lacks.
func (n *Node) takeovers(old *view, r *ring.Ring, q quorum) []takeover {
	now := n.cfg.Clock.Now()
	out := make([]takeover, 0, len(old.takeovers)+1)
	dropped := map[string]bool{}
	for _, id := range old.ring.Members() {
		if q.failedIDs[id] && !r.Has(id) {
			dropped[id] = true
		}
	}
	if len(dropped) > 0 {
		out = append(out, takeover{ring: old.ring, failed: dropped, at: now, lost: max(len(q.failed), len(dropped)), size: max(q.size(), len(dropped)+1)})
	}
	for _, t := range old.takeovers {
		if now-t.at < n.maxWindow() && len(out) < maxTakeovers {
			out = append(out, t)
		}
	}
	return out
}

// takenOver reports whether a failed member owned key in one of v's recent
// takeovers: only such keys need the held probe and takeoverSpend, so
// every other key keeps the one-lock path while takeovers are remembered
// (for up to the longest window).
func (v *view) takenOver(key bucket.Key) bool {
	for _, t := range v.takeovers {
		if t.failed[t.ring.Owner(key.Hi)] {
			return true
		}
	}
	return false
}

// takeoverSpend returns how much of a new bucket for key, with capacity
// capacity, counts as spent because the key was taken over from a failed
// member within the last window: ceil(capacity × lost/size) of the newest
// such takeover, or 0. (decideOwned also counts as spent what the failed
// owner last said was gone.)
func (v *view) takeoverSpend(key bucket.Key, window time.Duration, capacity int64, now time.Duration) int64 {
	for _, t := range v.takeovers {
		if now-t.at >= window {
			continue
		}
		if t.failed[t.ring.Owner(key.Hi)] {
			return (capacity*int64(t.lost) + int64(t.size) - 1) / int64(t.size)
		}
	}
	return 0
}
