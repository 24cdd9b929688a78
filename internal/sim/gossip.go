package sim

import (
	"math/rand/v2"
	"slices"
	"time"
)

// A small SWIM model of memberlist, enough for each node's view of who is
// alive to lag and differ as memberlist's does: probes with a timeout and
// indirect probes, suspicion with a timeout of its own per node,
// refutation by incarnation, dissemination by piggybacked gossip,
// push-pull exchanges of the whole table, and internal/membership's
// background rejoin of every known member that is not alive, which heals
// a split. A member that left says so (stateLeft) with its Leaving flag.

type mstate uint8

const (
	stateAlive mstate = iota
	stateSuspect
	stateDead
	stateLeft
)

// mrec is what one node knows of one instance.
type mrec struct {
	id, name  string
	slot      int
	started   int64
	inc       uint64
	state     mstate
	since     time.Duration // by the knowing node's clock, when alive-ness last changed
	ready     bool
	leaving   bool
	restoring bool
}

// alive is gossip's word as package membership reports it: a suspect is
// still alive.
func (r *mrec) alive() bool { return r.state <= stateSuspect }

// table is one node's membership, sorted by instance id.
type table struct {
	n       *node
	recs    []*mrec
	pending map[string]int // instance id -> transmits left
}

func newTable(n *node) *table { return &table{n: n, pending: map[string]int{}} }

func (t *table) find(id string) *mrec {
	i, ok := slices.BinarySearchFunc(t.recs, id, func(r *mrec, id string) int {
		switch {
		case r.id < id:
			return -1
		case r.id > id:
			return 1
		}
		return 0
	})
	if !ok {
		return nil
	}
	return t.recs[i]
}

func (t *table) self() *mrec { return t.find(t.n.id) }

func (t *table) add(r mrec, now time.Duration) *mrec {
	r.since = now
	p := &r
	i, _ := slices.BinarySearchFunc(t.recs, r.id, func(x *mrec, id string) int {
		switch {
		case x.id < id:
			return -1
		case x.id > id:
			return 1
		}
		return 0
	})
	t.recs = slices.Insert(t.recs, i, p)
	return p
}

func (t *table) broadcast(id string) { t.pending[id] = gossipTransmits }

func (n *node) selfRecord() mrec {
	return mrec{id: n.id, name: n.name, slot: n.slot, started: n.started, ready: n.joined, restoring: n.restoring}
}

func rank(s mstate) int { return int(s) }

// merge takes what another node says of the members, and rebuilds the
// ring if that changed anything the core reads.
func (n *node) merge(recs []mrec) {
	t := n.mem
	now := n.clock.Now()
	changed := false
	for _, r := range recs {
		if r.id == n.id {
			self := t.self()
			if (r.state == stateSuspect || r.state == stateDead) && r.inc >= self.inc && self.state == stateAlive {
				// Refute: this node is alive.
				self.inc = r.inc + 1
				t.broadcast(self.id)
			}
			continue
		}
		l := t.find(r.id)
		if l == nil {
			if r.state == stateLeft {
				continue
			}
			t.add(r, now)
			t.broadcast(r.id)
			changed = true
			if r.state == stateSuspect {
				n.suspect(r.id, r.inc)
			}
			continue
		}
		if r.inc < l.inc || r.inc == l.inc && rank(r.state) <= rank(l.state) {
			continue
		}
		wasAlive := l.alive()
		before := *l
		l.inc, l.state, l.ready, l.leaving, l.restoring = r.inc, r.state, r.ready, r.leaving, r.restoring
		if l.alive() != wasAlive {
			l.since = now
		}
		t.broadcast(l.id)
		if l.state == stateSuspect && before.state != stateSuspect {
			n.suspect(l.id, l.inc)
		}
		if l.alive() != wasAlive || l.ready != before.ready || l.leaving != before.leaving || l.restoring != before.restoring {
			changed = true
		}
	}
	if changed {
		n.s.w.record('M', int64(n.slot))
		n.rebuild()
	}
}

// startGossip starts the node's probe, gossip and rejoin loops, each at a
// phase of its own.
func (n *node) startGossip() {
	s := n.s
	now := s.w.now
	n.at(now+s.gr.dur(ProbeInterval), n.probeTick)
	n.at(now+s.gr.dur(GossipInterval), n.gossipTick)
	n.at(now+s.gr.dur(RejoinInterval/10), n.rejoinTick)
	n.at(now+PushPullEvery/2+s.gr.dur(PushPullEvery/2), n.pushPullTick)
}

// probeTick probes the next live member, round robin.
func (n *node) probeTick() {
	s := n.s
	defer n.at(s.w.now+ProbeInterval, n.probeTick)
	var targets []*mrec
	for _, r := range n.mem.recs {
		if r.id != n.id && r.alive() {
			targets = append(targets, r)
		}
	}
	if len(targets) == 0 {
		return
	}
	n.probeAt++
	target := targets[n.probeAt%len(targets)]
	id, inc := target.id, target.inc
	acked := false
	n.send(id, true, func(dst *node) {
		dst.send(n.id, true, func(*node) { acked = true }, nil)
	}, nil)
	n.at(s.w.now+ProbeTimeout, func() {
		if acked || n.indirectProbe(id) {
			return
		}
		if r := n.mem.find(id); r != nil && r.inc == inc && r.state == stateAlive {
			r.state = stateSuspect
			n.mem.broadcast(id)
			n.suspect(id, inc)
		}
	})
}

// indirectProbe asks up to three other live members to probe id, with the
// network as it stands now.
func (n *node) indirectProbe(id string) bool {
	s := n.s
	t := s.byID[id]
	if t == nil || t.status != running {
		return false
	}
	asked := 0
	for _, r := range n.mem.recs {
		if asked == 3 {
			break
		}
		if r.id == n.id || r.id == id || !r.alive() {
			continue
		}
		asked++
		j := s.byID[r.id]
		if j == nil || j.status != running {
			continue
		}
		ok := true
		for _, hop := range [][2]int{{n.slot, j.slot}, {j.slot, t.slot}, {t.slot, j.slot}, {j.slot, n.slot}} {
			if _, up := s.net.delay(hop[0], hop[1], s.w.now, true); !up {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// suspect declares id dead after this node's suspicion timeout, unless it
// refuted (a higher incarnation) first.
func (n *node) suspect(id string, inc uint64) {
	timeout := n.s.sch.Suspicion[n.slot]
	n.at(n.s.w.now+timeout, func() {
		r := n.mem.find(id)
		if r == nil || r.inc != inc || r.state != stateSuspect {
			return
		}
		r.state = stateDead
		r.since = n.clock.Now()
		n.mem.broadcast(id)
		n.s.w.record('X', int64(n.slot), int64(r.slot))
		n.s.tracef("%s declares %s dead", n.id, id)
		n.rebuild()
	})
}

// gossipTick sends what changed lately to a few random live members.
func (n *node) gossipTick() {
	defer n.at(n.s.w.now+GossipInterval, n.gossipTick)
	n.gossipNow()
}

func (n *node) gossipNow() {
	t := n.mem
	if len(t.pending) == 0 {
		return
	}
	ids := make([]string, 0, len(t.pending))
	for id := range t.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	msg := make([]mrec, 0, len(ids))
	for _, id := range ids {
		if r := t.find(id); r != nil {
			msg = append(msg, *r)
		}
		if t.pending[id]--; t.pending[id] <= 0 {
			delete(t.pending, id)
		}
	}
	var targets []string
	for _, r := range t.recs {
		if r.id != n.id && r.alive() {
			targets = append(targets, r.id)
		}
	}
	n.s.gr.shuffle(targets)
	for _, id := range targets[:min(gossipFanout, len(targets))] {
		n.send(id, true, func(dst *node) { dst.merge(msg) }, nil)
	}
}

// pushPull exchanges whole tables with instance id, over a stream.
func (n *node) pushPull(id string) {
	mine := n.snapshotTable()
	n.send(id, false, func(dst *node) {
		dst.merge(mine)
		theirs := dst.snapshotTable()
		dst.send(n.id, false, func(*node) {
			if !n.joined {
				n.joined = true
				self := n.mem.self()
				self.ready = true
				self.inc++
				n.mem.broadcast(self.id)
				n.merge(theirs)
				n.rebuild()
				return
			}
			n.merge(theirs)
		}, nil)
	}, nil)
}

func (n *node) snapshotTable() []mrec {
	out := make([]mrec, len(n.mem.recs))
	for i, r := range n.mem.recs {
		out[i] = *r
	}
	return out
}

// rejoinTick joins every slot that has no instance alive in this node's
// view, at the address of its name (package membership's tryJoin); a node
// that has not joined yet tries every slot.
func (n *node) rejoinTick() {
	s := n.s
	defer n.at(s.w.now+RejoinInterval, n.rejoinTick)
	alive := make([]bool, len(s.slots))
	for _, r := range n.mem.recs {
		if r.alive() {
			alive[r.slot] = true
		}
	}
	for slot, cur := range s.slots {
		if slot == n.slot || cur == nil || alive[slot] && n.joined {
			continue
		}
		// Whoever listens at that name's address answers.
		n.pushPull(cur.id)
	}
}

// pushPullTick is memberlist's periodic full-state exchange with one
// random live member.
func (n *node) pushPullTick() {
	defer n.at(n.s.w.now+PushPullEvery, n.pushPullTick)
	var targets []string
	for _, r := range n.mem.recs {
		if r.id != n.id && r.alive() {
			targets = append(targets, r.id)
		}
	}
	if len(targets) > 0 {
		n.pushPull(targets[n.s.gr.r.IntN(len(targets))])
	}
}

// randSource is gossip's stream of draws.
type randSource struct{ r *rand.Rand }

// dur draws a duration in [0, d).
func (g *randSource) dur(d time.Duration) time.Duration { return time.Duration(g.r.Int64N(int64(d))) }

func (g *randSource) shuffle(s []string) {
	g.r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}
