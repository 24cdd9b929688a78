package ownership

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/drlimit/drl/ring"
)

// Member is what the node's gossip says of one member instance, decoded.
type Member struct {
	ID   string // instance id: names it in rings and done marks
	Name string // configured name: its place on the ring
	Addr string // where its peer API listens; part of a ring's id
	// Alive is gossip's word; a member that is not alive failed or left.
	Alive bool
	// Since is when Alive last changed, by the node's clock.
	Since time.Duration
	// Started is when the instance started, in Unix nanoseconds: of two
	// live instances that claim one name, the newer owns its place.
	Started int64
	// Ready: the member has joined and knows every member. Until then
	// nobody, itself included, puts it in a ring.
	Ready bool
	// Leaving: it announced a graceful leave. It leaves every ring at
	// once, stays a peer until it is gone, and never counts as failed.
	Leaving bool
	// Restoring: it started from a saved snapshot, so it may hold buckets
	// of keys others own; an owner holding nothing for a key waits for
	// its handoff once it joins.
	Restoring bool
	// Foreign: its metadata is of another protocol version. It counts
	// toward the cluster's size but never as alive.
	Foreign bool
	// Refused: the node will not let it into its rings (with TLS on, it has
	// not shown a member certificate yet).
	Refused bool
}

// The protocol's defaults, which the bounds of DESIGN.md §6 are stated
// for; package cluster's Config defaults are these.
const (
	// DefaultHandoffWait is how long a new owner waits for the handoffs of
	// a ring change before it starts a key it holds nothing for.
	DefaultHandoffWait = 2 * time.Second
	// DefaultForgetFailedAfter is how long a failed member counts toward
	// the cluster's size.
	DefaultForgetFailedAfter = 10 * time.Minute
)

// Config configures a Core. Self, Name and ForgetFailedAfter are required.
type Config struct {
	Self string // this node's instance id
	Name string // this node's configured name
	// Started is when this instance started, in Unix nanoseconds: a member
	// that started earlier and joins this node's ring may hold buckets of
	// keys this node believed it kept.
	Started int64
	Ring    ring.Config
	// ForgetFailedAfter is how long a failed member counts toward the
	// cluster's size (while the others are a majority with it counted).
	ForgetFailedAfter time.Duration
	// MaxWindow is the longest window a check may ask for: takeovers are
	// remembered that long.
	MaxWindow time.Duration
}

// Core is one node's ownership state. It is not safe for concurrent use:
// the node serializes its calls. The Views it returns are immutable and
// may be read from any goroutine.
type Core struct {
	cfg  Config
	view *View
	// settled: every peer of view reported its handoff for view's ring
	// done.
	settled bool
	// doneFrom is the ring id each member last said it finished handing
	// off for.
	doneFrom map[string]uint64
	// forgotten holds failed instances that no longer count toward the
	// cluster's size.
	forgotten map[string]bool
	// inRing: a ring of this node's has had it in it.
	inRing bool
}

// New returns a Core with an empty view: no ring, no majority.
func New(cfg Config) *Core {
	return &Core{cfg: cfg, view: &View{Ring: &ring.Ring{}}, doneFrom: map[string]uint64{}, forgotten: map[string]bool{}}
}

// View returns the current view.
func (c *Core) View() *View { return c.view }

// Settled reports whether every peer of the current view has reported its
// handoff for the view's ring done.
func (c *Core) Settled() bool { return c.settled }

// Change is what one Update did.
type Change struct {
	Old, New *View
	// Settled: the new view is settled already (it has no peers, or all
	// of them reported its ring before this node built it).
	Settled bool
	// MajorityChanged: the node gained or lost its majority, or counted the
	// cluster for the first time.
	MajorityChanged bool
}

// ErrRing says no ring could be built from the members; the view is kept.
var ErrRing = errors.New("ownership: no ring")

// Update builds the next view from what gossip says of the members at now.
// A node without a majority keeps the ring it had (and decides nothing on
// it): it takes no key over until it sees a majority again.
func (c *Core) Update(members []Member, now time.Duration) (Change, error) {
	old := c.view
	q := c.count(members, now)
	inRing, departing := map[string]Member{}, map[string]Member{}
	for _, m := range members {
		if !m.Alive || m.Foreign || !m.Ready || m.Refused {
			continue
		}
		if m.Leaving {
			departing[m.ID] = m
			continue
		}
		inRing[m.ID] = m
	}
	newestPerName(inRing, members)
	r, err := ring.NewPlaced(c.cfg.Ring, positions(inRing))
	if err != nil {
		return Change{}, fmt.Errorf("%w of %d members: %w", ErrRing, len(inRing), err)
	}
	if !q.OK() && old.Ring.Len() > 0 {
		r, inRing = old.Ring, old.Members
	}
	// While the last change has not settled, keys gained in it are still
	// pending, so the ring before it stays the reference: a second change,
	// even to the same ring, must not forget them.
	prev := old.Ring
	if !c.settled && old.Prev != nil {
		prev = old.Prev
	}
	v := &View{Ring: r, Members: inRing, Version: old.Version + 1, ID: RingID(inRing), Prev: prev, Quorum: q,
		Takeovers: c.takeovers(old, r, inRing, q, now), At: now}
	if !c.inRing && r.Has(c.cfg.Self) {
		c.inRing = true
		if t, ok := c.predecessor(members, inRing, q, now); ok {
			v.Takeovers = append([]Takeover{t}, v.Takeovers...)
		}
	}
	for id, m := range inRing {
		// A member that joins from a snapshot may hold buckets of any key;
		// so may one that was running before this node started (this node
		// restarted and formed a ring before it found the others, or the
		// two sides of a split meet again).
		if _, known := old.Members[id]; !known && id != c.cfg.Self && (m.Restoring || m.Started < c.cfg.Started) {
			v.Restoring = true
		}
	}
	// Until the change that brought such a member settles, its buckets may
	// still be on their way, whatever changes come meanwhile.
	v.Restoring = v.Restoring || old.Restoring && !c.settled
	// A node that regains a majority may hold buckets from before the
	// split that the majority has since replaced: it decides nothing on
	// its own keys until the handoffs of the healed ring are done.
	v.Healed = q.OK() && old.Ring.Len() > 0 && (!old.Quorum.OK() || old.Healed && !c.settled)
	for id := range inRing {
		if id != c.cfg.Self {
			v.Peers = append(v.Peers, id)
		}
	}
	for id := range departing {
		if id != c.cfg.Self {
			v.Peers = append(v.Peers, id)
		}
	}
	slices.Sort(v.Peers)
	v.Departing = departing
	// A done mark speaks for one change, but ring ids repeat: a ring that
	// returns to an earlier membership (a heal, a member back from the
	// dead) has the id it had then. Marks from members that are no longer
	// peers, and every mark while the node has no majority, are from an
	// earlier change: forget them, so that only marks sent for this one
	// settle it.
	for id := range c.doneFrom {
		if !q.OK() || !slices.Contains(v.Peers, id) {
			delete(c.doneFrom, id)
		}
	}
	c.view = v
	c.settled = c.allDone(v)
	return Change{Old: old, New: v, Settled: c.settled, MajorityChanged: q.OK() != old.Quorum.OK() || old.Quorum.Size() == 0}, nil
}

// Done records that member from finished handing off for the ring ringID
// and reports whether that settled the current view just now.
func (c *Core) Done(from string, ringID uint64) bool {
	if !c.view.Quorum.OK() {
		// Without a majority the node decides nothing, and a mark kept now
		// could settle the healed ring, whose id it may share, before the
		// heal's own handoffs arrive (Update forgets marks for the same
		// reason).
		return false
	}
	if ringID != c.view.ID && c.doneFrom[from] == c.view.ID {
		// A mark for another ring that arrives late (an answer to an
		// older handoff, a leaver's resend) must not undo the one for
		// this view.
		return false
	}
	c.doneFrom[from] = ringID
	if c.settled || !c.allDone(c.view) {
		return false
	}
	c.settled = true
	return true
}

// Unsettled names the peers of the current view that have not reported
// its ring done.
func (c *Core) Unsettled() []string {
	var out []string
	for _, p := range c.view.Peers {
		if c.doneFrom[p] != c.view.ID {
			out = append(out, p)
		}
	}
	return out
}

func (c *Core) allDone(v *View) bool {
	for _, p := range v.Peers {
		if c.doneFrom[p] != v.ID {
			return false
		}
	}
	return true
}

// ErrNotFailed says Forget was given a name that is not counted as failed.
var ErrNotFailed = errors.New("no failed member by that name")

// Forget stops counting the failed member called name toward the
// cluster's size at once: the operator's word that it is gone for good. A
// member that comes back under that name counts again. It returns
// ErrNotFailed, with the failed members counted, if name is not one.
func (c *Core) Forget(name string, members []Member, now time.Duration) error {
	q := c.count(members, now)
	if !slices.Contains(q.Failed, name) {
		return fmt.Errorf("%w: the failed members counted are %v", ErrNotFailed, q.Failed)
	}
	for _, m := range members {
		if q.FailedIDs[m.ID] && m.Name == name {
			c.forgotten[m.ID] = true
		}
	}
	return nil
}

// Count returns the cluster's count as members describes it at now,
// without building a view (a node rebuilds when it changes).
func (c *Core) Count(members []Member, now time.Duration) Quorum { return c.count(members, now) }

// positions places every member on the ring by its configured name, so
// that a node restarted under its name owns the same keys again: a
// rolling restart moves only the restarting node's keys, out and back.
func positions(members map[string]Member) map[string]string {
	placed := make(map[string]string, len(members))
	for id, m := range members {
		placed[id] = m.Name
	}
	return placed
}

// newestPerName keeps in placed, of the instances that claim one name in
// members, only the one that started last: a node restarted before gossip
// declared its old instance dead. The newest counts in any state, so that
// when it leaves, or fails, the old instance (dead, but not yet declared
// so) does not take its place back: the newest handed its keys to the
// ring without it, and they would go to a dead member.
func newestPerName(placed map[string]Member, members []Member) {
	newest := map[string]Member{}
	for _, m := range members {
		if m.Foreign {
			continue
		}
		best, ok := newest[m.Name]
		if !ok || m.Started > best.Started || m.Started == best.Started && m.ID > best.ID {
			newest[m.Name] = m
		}
	}
	for id, m := range placed {
		if best, ok := newest[m.Name]; ok && best.ID != id {
			delete(placed, id)
		}
	}
}

// predecessor returns, for this instance's first ring, a takeover of the
// keys an earlier instance of its name owned, if that instance did not
// leave gracefully: it crashed (or was killed) and was replaced before,
// or after, gossip declared it dead, so what it spent is lost with it,
// and this instance, which owns its keys again (positions are by name),
// starts them as a failed member's keys are taken over: from its share
// spent, once every peer confirmed the ring. Without it a quick restart
// starts every key it owns fresh (the simulator's seed 52
// admitted 2.08·L through one restart).
func (c *Core) predecessor(members []Member, inRing map[string]Member, q Quorum, now time.Duration) (Takeover, bool) {
	var prev Member
	for _, m := range members {
		if m.Name == c.cfg.Name && m.ID != c.cfg.Self && !m.Foreign && (prev.ID == "" || m.Started > prev.Started) {
			prev = m
		}
	}
	if prev.ID == "" || prev.Leaving {
		// None, or the last one left gracefully and handed its keys over.
		return Takeover{}, false
	}
	placed := positions(inRing)
	delete(placed, c.cfg.Self)
	placed[prev.ID] = c.cfg.Name
	r, err := ring.NewPlaced(c.cfg.Ring, placed)
	if err != nil {
		return Takeover{}, false
	}
	return Takeover{Ring: r, Failed: map[string]bool{prev.ID: true}, At: now, Lost: 1, Size: max(q.Size(), 2)}, true
}

// StayingRing returns the ring of the members that are alive, ready and
// not leaving, less self: where a stopping node's buckets can still go.
func (c *Core) StayingRing(members []Member) *ring.Ring {
	staying := map[string]Member{}
	for _, m := range members {
		if m.ID != c.cfg.Self && m.Alive && !m.Foreign && m.Ready && !m.Leaving && !m.Refused {
			staying[m.ID] = m
		}
	}
	newestPerName(staying, members)
	r, err := ring.NewPlaced(c.cfg.Ring, positions(staying))
	if err != nil {
		return &ring.Ring{}
	}
	return r
}

// RingWithout returns v's ring less self (empty if nobody is left).
func (c *Core) RingWithout(v *View) *ring.Ring {
	others := map[string]string{}
	for _, id := range v.Ring.Members() {
		if id != c.cfg.Self {
			others[id] = v.Members[id].Name
		}
	}
	r, err := ring.NewPlaced(c.cfg.Ring, others)
	if err != nil {
		return &ring.Ring{}
	}
	return r
}

// RingID names a ring by its members and their addresses, so that a
// member that restarts under the same name makes a different ring. Never
// 0.
func RingID(members map[string]Member) uint64 {
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	slices.Sort(names)
	h := xxhash.New()
	for _, name := range names {
		h.WriteString(name)
		h.WriteString("=")
		h.WriteString(members[name].Addr)
		h.WriteString(";")
	}
	return h.Sum64() | 1
}
