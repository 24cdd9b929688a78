package sim

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/internal/hotkeys"
	"github.com/drlimit/drl/internal/ownership"
	"github.com/drlimit/drl/ring"
)

// sim is one run.
type sim struct {
	cfg   Config
	sch   Schedule
	w     *world
	net   *network
	gr    *randSource // gossip's draws
	slots []*node     // the current instance of each slot; nil before it starts
	byID  map[string]*node
	keys  []*keyState
	rec   *recorder
	inst  []int // instances started per slot
	// lastHerd is when the last herd of returning callers came (healed).
	lastHerd time.Duration
}

type nodeStatus uint8

const (
	running nodeStatus = iota
	paused
	down // crashed, or gone after a leave
)

// node is one instance of a drl node: the core and what the shell keeps
// to carry out its answers.
type node struct {
	s     *sim
	slot  int
	id    string
	name  string
	clock *nodeClock
	store *engine.Store
	prov  *ownership.Provisional
	side  *engine.Store // for Hooks.Lend
	core  *ownership.Core
	last  *hotkeys.LastAnswers
	view  *sview

	status   nodeStatus
	pausedAt time.Duration // world time of the last pause (-1: never)
	deferred []func()      // what arrived while paused, in order
	started  int64
	// leaving is the ring without this node once it leaves; closed says
	// its fallback denies.
	leaving *ring.Ring
	closed  bool
	// snapshot is what a restart from a snapshot loaded, held until the
	// first ring with this node in it.
	snapshot   []engine.Moved
	snapshotAt time.Duration
	// handedOff is the ring id n last handed off for: its done mark.
	handedOff uint64
	// healing: n regained its majority at healedAt and no view of its has
	// settled since; what it holds predates the majority's decisions, so
	// it decides no key until then or HandoffWait (the oracle holds it to
	// that, beside the core's View.Healed).
	healing   bool
	healedAt  time.Duration
	restoring bool

	mem     *table
	joined  bool
	probeAt int // round-robin position of probes
	// waiters are checks parked on this node's view: woken when it
	// settles or is replaced.
	waiters []*waiter
}

// sview is a view as the node holds it: whether its handoffs settled,
// whether a newer view replaced it, and when HandoffWait runs out.
type sview struct {
	*ownership.View
	settled  bool
	replaced bool
	waitOver time.Duration // world time
	// owing: a sendOwed is due for this view.
	owing bool
}

func newSim(cfg Config, sch Schedule) *sim {
	w := newWorld()
	s := &sim{cfg: cfg, sch: sch, w: w, byID: map[string]*node{}}
	s.net = newNetwork(stream(sch.Seed, streamNet), sch.Slots)
	s.gr = &randSource{r: stream(sch.Seed, streamGossip)}
	s.slots = make([]*node, sch.Slots)
	s.inst = make([]int, sch.Slots)
	s.rec = newRecorder(s)
	return s
}

// start starts the initial members, knowing each other, and schedules the
// faults and the load.
func (s *sim) start() {
	for i := range s.sch.Nodes {
		n := s.startNode(i, false, nil, 0)
		n.joined = true
		n.mem.self().ready = true
	}
	// The first members start together, as a cluster started from one
	// seed list: each knows the others once its join completes.
	for _, n := range s.slots[:s.sch.Nodes] {
		for _, o := range s.slots[:s.sch.Nodes] {
			if o != n {
				n.mem.add(o.selfRecord(), n.clock.Now())
			}
		}
	}
	for _, n := range s.slots[:s.sch.Nodes] {
		n.rebuild()
	}
	for i := range s.sch.Faults {
		s.scheduleFault(i)
	}
	s.startLoad()
}

func (s *sim) close() {
	for _, n := range s.byID {
		n.store.Close()
		n.prov.Close()
		n.side.Close()
	}
}

// startNode starts a new instance in slot.
func (s *sim) startNode(slot int, restoring bool, snap []engine.Moved, snapAt time.Duration) *node {
	s.inst[slot]++
	n := &node{s: s, slot: slot, name: fmt.Sprintf("n%d", slot)}
	n.id = fmt.Sprintf("%s/%d", n.name, s.inst[slot])
	c := s.sch.Clocks[slot]
	// A new process's monotonic clock has an origin of its own.
	n.clock = &nodeClock{w: s.w, offset: c.Offset + time.Duration(s.inst[slot])*time.Hour, ppm: c.PPM}
	storeCfg := bucket.StoreConfig{Clock: n.clock, Hasher: simHasher, Shards: 4, SweepInterval: -1, MaxEntries: 1 << 16}
	var err error
	if n.store, err = engine.New(storeCfg); err != nil {
		panic(err) // a constant config
	}
	if n.side, err = engine.New(storeCfg); err != nil {
		panic(err)
	}
	n.prov = n.newProvisional()
	n.started = int64(s.w.now)
	n.core = ownership.New(ownership.Config{Self: n.id, Name: n.name, Started: n.started, Ring: ringConfig,
		ForgetFailedAfter: ForgetFailedAfter, MaxWindow: time.Hour})
	n.view = &sview{View: n.core.View(), settled: true}
	n.last = hotkeys.NewLastAnswers(n.clock)
	n.pausedAt = -1
	n.restoring = restoring
	n.snapshot, n.snapshotAt = snap, snapAt
	n.mem = newTable(n)
	n.mem.add(n.selfRecord(), n.clock.Now())
	s.slots[slot] = n
	s.byID[n.id] = n
	s.w.record('S', int64(slot), int64(s.inst[slot]))
	s.tracef("start %s restoring=%v", n.id, restoring)
	n.startGossip()
	return n
}

func (n *node) newProvisional() *ownership.Provisional {
	p, err := ownership.NewProvisional(n.clock, simHasher, 0, 0)
	if err != nil {
		panic(err)
	}
	return p
}

// crash stops the instance at once: what it held is gone.
func (n *node) crash() {
	n.status = down
	n.deferred = nil
	n.waiters = nil
	n.s.w.record('C', int64(n.slot))
	n.s.tracef("crash %s", n.id)
}

// at runs fn on n at world time t, unless n is down by then; while n is
// paused, fn waits for it to resume.
func (n *node) at(t time.Duration, fn func()) {
	n.s.w.at(t, func() { n.run(fn) })
}

func (n *node) run(fn func()) {
	switch n.status {
	case down:
	case paused:
		n.deferred = append(n.deferred, fn)
	default:
		fn()
	}
}

func (n *node) resume() {
	n.status = running
	d := n.deferred
	n.deferred = nil
	for _, fn := range d {
		if n.status != running {
			n.deferred = append(n.deferred, fn)
			continue
		}
		fn()
	}
}

// send delivers fn at the current instance named to, over the network
// from n; refused runs back at n if nothing listens there any more (the
// instance is down). lossy messages are datagrams, lost to link loss. It
// reports whether the message left (a cut loses it at once).
func (n *node) send(to string, lossy bool, fn func(dst *node), refused func()) bool {
	s := n.s
	dst := s.byID[to]
	if dst == nil {
		return false
	}
	d, ok := s.net.delay(n.slot, dst.slot, s.w.now, lossy)
	if !ok {
		return false
	}
	s.w.after(d, func() {
		if !s.net.up(n.slot, dst.slot) {
			if refused != nil {
				// Cut while in flight: the stream breaks, and the sender
				// learns it failed.
				n.run(refused)
			}
			return
		}
		if dst.status == down {
			if refused != nil {
				// The refusal comes back over the same network.
				if back, ok := s.net.delay(dst.slot, n.slot, s.w.now, false); ok {
					n.at(s.w.now+back, refused)
				}
			}
			return
		}
		dst.run(func() { fn(dst) })
	})
	return true
}

// describe turns what n's gossip knows of the members into the core's
// terms, sorted by instance id.
func (n *node) describe() []ownership.Member {
	out := make([]ownership.Member, 0, len(n.mem.recs))
	for _, r := range n.mem.recs {
		m := ownership.Member{ID: r.id, Name: r.name, Addr: r.name + ":7946", Alive: r.alive(), Since: r.since,
			Started: r.started, Ready: r.ready, Leaving: r.leaving, Restoring: r.restoring}
		if r.id == n.id {
			m.Ready = n.joined
		}
		out = append(out, m)
	}
	return out
}

// rebuild hands the members gossip knows to the core and carries out the
// view it returns, as cluster's rebuildRing does.
func (n *node) rebuild() {
	s := n.s
	members := n.describe()
	ch, err := n.core.Update(members, n.clock.Now())
	if err != nil {
		return
	}
	nv := ch.New
	if s.cfg.Hooks.View != nil {
		nv = s.cfg.Hooks.View(nv)
	}
	old := n.view
	v := &sview{View: nv, waitOver: s.w.now + HandoffWait}
	if r := v.Ring; r.Has(n.id) && n.leaving == nil {
		n.restore(members)
		self := n.id
		n.store.SetFence(func(k bucket.Key) bool { return r.Owner(k.Hi) != self })
		n.handOff(v)
		n.handedOff = v.ID
		n.at(s.w.now+DoneMarkRetry, func() { n.askDoneMarks(v) })
	}
	n.view = v
	old.replaced = true
	if ch.Settled {
		v.settled = true
		n.healing = false
	}
	if s.cfg.Hooks.ViewChanged != nil {
		n.prov = s.cfg.Hooks.ViewChanged(n.prov, n.newProvisional)
	}
	s.w.record('V', int64(n.slot), int64(v.Version), int64(v.ID), int64(len(v.Quorum.Alive)))
	s.rec.splitBrain(n)
	if v.Quorum.OK() && !old.Quorum.OK() && old.Ring.Len() > 0 {
		n.healing, n.healedAt = !v.settled, s.w.now
		s.healed(n)
	}
	if old.ID != v.ID || old.Quorum.OK() != v.Quorum.OK() {
		s.tracef("%s view %d ring %x members %d majority %v healed %v takeovers %d", n.id, v.Version, v.ID, v.Ring.Len(), v.Quorum.OK(), v.Healed, len(v.Takeovers))
	}
	n.wake()
}

// restore puts a loaded snapshot's buckets in the store on the first ring
// with this node in it, unless a member that ran through the restart
// holds the live counts (cluster/snapshot.go).
func (n *node) restore(members []ownership.Member) {
	if n.snapshot == nil {
		return
	}
	snap := n.snapshot
	n.snapshot = nil
	for _, m := range members {
		if m.ID != n.id && m.Alive && m.Started < int64(n.snapshotAt) {
			return
		}
	}
	aged := make([]engine.Moved, 0, len(snap))
	for _, m := range snap {
		if a, ok := m.Aged(n.s.w.now - n.snapshotAt); ok {
			aged = append(aged, a)
		}
	}
	n.store.Absorb(aged)
}

// handOff plans v's handoff (ownership.PlanHandoff) and sends each peer
// its buckets and the done mark for v's ring.
func (n *node) handOff(v *sview) {
	hasPeer := func(id string) bool { _, ok := slices.BinarySearch(v.Peers, id); return ok }
	plan := ownership.PlanHandoff(v.View, v.Ring, n.store, n.prov, n.id, hasPeer, n.clock.Now())
	for _, p := range v.Peers {
		n.sendHandoff(p, plan.ByOwner[p], plan.Lent[p], v.ID, func() {
			n.prov.Owe(plan.Undelivered(n.prov, p, 0))
			n.sendOwedLater(v)
			n.redeliver(v)
		})
	}
}

// sendOwedLater has sendOwed run DoneMarkRetry from now, once per view.
func (n *node) sendOwedLater(v *sview) {
	if !v.owing {
		v.owing = true
		n.at(n.s.w.now+DoneMarkRetry, func() { v.owing = false; n.sendOwed(v) })
	}
}

// sendOwed sends again, while v is n's view, the buckets a failed handoff
// left owed to each peer, marked lent, with n's done mark for v, which
// waits for them (absorb). A newer view's plan releases what is still
// owed. As cluster's sendOwed.
func (n *node) sendOwed(v *sview) {
	if n.view != v || n.leaving != nil {
		return
	}
	for _, p := range v.Peers {
		hits := n.prov.TakeOwed(v.Ring, p)
		if len(hits) == 0 {
			continue
		}
		n.sendHandoff(p, hits, len(hits), v.ID, func() {
			n.prov.Owe(hits)
			n.sendOwedLater(v)
		})
	}
}

// redeliver passes on at once the lent hits a failed handoff planned at
// v gave back, when a newer view was planned meanwhile. In cluster a
// ring change's handoff waits for the last one to finish (handoffMu), so
// its plan releases what that one gave back; here the refusal can arrive
// after the newer plan, and those hits would wait for yet another ring
// change.
func (n *node) redeliver(v *sview) {
	cur := n.view
	if !v.replaced || n.leaving != nil || !cur.Ring.Has(n.id) {
		return // v's own plan, or a newer one, takes them
	}
	hasPeer := func(id string) bool { _, ok := slices.BinarySearch(cur.Peers, id); return ok }
	h := cur.Redeliver(n.prov, n.id, hasPeer, n.clock.Now())
	for _, p := range slices.Sorted(maps.Keys(h.ByOwner)) {
		n.sendHandoff(p, h.ByOwner[p], h.Lent[p], 0, func() {
			h.Undelivered(n.prov, p, 0)
			n.redeliver(cur)
		})
	}
}

// sendHandoff sends buckets and a done mark for ringID (0: none) to peer.
// A handoff is a stream: lost only to a cut, and then the buckets are
// lost with it, as a failed gRPC handoff loses them. failed, if not nil,
// runs when the sender learns the handoff failed (it could not be sent,
// or the peer was down): lent hits go back to the sender's Provisional.
func (n *node) sendHandoff(peer string, moved []engine.Moved, lent int, ringID uint64, failed func()) {
	from := n.id
	n.s.w.record('H', int64(n.slot), int64(len(moved)), int64(ringID))
	lost := func() {
		n.s.rec.missedHandoff(moved[min(max(lent, 0), len(moved)):])
		if failed != nil {
			failed()
		}
	}
	if !n.send(peer, false, func(dst *node) { dst.absorb(from, moved, lent, ringID) }, lost) {
		lost()
	}
}

// absorb takes buckets handed off by another member, and its done mark.
func (n *node) absorb(from string, moved []engine.Moved, lent int, doneRing uint64) {
	if n.leaving != nil && len(moved) > 0 {
		n.relay(moved, lent)
	} else if len(moved) > 0 {
		kept := n.view.Absorb(n.store, n.prov, n.id, moved, lent, n.clock.Now())
		n.s.tracef("%s absorbs %d buckets from %s (kept %d, takeovers %d)", n.id, len(moved), from, kept, len(n.view.Takeovers))
	}
	if doneRing != 0 {
		n.s.tracef("%s done mark from %s for ring %x (own %x, majority %v)", n.id, from, doneRing, n.view.ID, n.view.Quorum.OK())
	}
	n.doneMark(from, doneRing)
	if doneRing != 0 && n.handedOff == doneRing && !n.prov.Owes(n.view.Ring, from) {
		// Done with that ring too: the answer carries this node's own mark
		// (peer.Client.Handoff), back over the same network; not while
		// buckets are owed to from (sendOwed brings the mark with them).
		self := n.id
		n.send(from, false, func(dst *node) { dst.doneMark(self, doneRing) }, nil)
	}
}

// doneMark records a member's done mark for ringID (0: none), which may
// settle n's view.
func (n *node) doneMark(from string, ringID uint64) {
	if ringID != 0 && n.core.Done(from, ringID) {
		n.view.settled = true
		n.healing = false
		n.s.w.record('D', int64(n.slot), int64(ringID))
		n.wake()
	}
}

// askDoneMarks asks, every DoneMarkRetry while v is n's view and has not
// settled, each peer whose done mark has not come for it again by sending
// n's own, as cluster's askDoneMarks does.
func (n *node) askDoneMarks(v *sview) {
	if n.view != v || v.settled || n.leaving != nil {
		return
	}
	for _, p := range n.core.Unsettled() {
		if !n.prov.Owes(v.Ring, p) { // sendOwed brings n's mark with them
			n.sendHandoff(p, nil, 0, v.ID, nil)
		}
	}
	n.at(n.s.w.now+DoneMarkRetry, func() { n.askDoneMarks(v) })
}

// relay passes buckets that reached a leaving node (the first lent of
// them lent hits, which stay marked) on to their owners in the ring
// without it.
func (n *node) relay(moved []engine.Moved, lent int) {
	by := ownership.Regroup(moved, lent, n.leaving)
	for _, o := range slices.Sorted(maps.Keys(by.ByOwner)) {
		if _, ok := slices.BinarySearch(n.view.Peers, o); ok {
			n.sendHandoff(o, by.ByOwner[o], by.Lent[o], 0, nil)
		}
	}
}

// leave starts a graceful leave (cluster's Close): the ring without this
// node, the leave announced and pushed to every live member, every bucket
// handed to its owner in that ring, then gossip's leave and, LeaveDrain
// later, gone.
func (n *node) leave() {
	s := n.s
	v := n.view
	n.leaving = n.core.RingWithout(v.View)
	n.closed = true
	s.tracef("leave %s", n.id)
	if n.leaving.Len() > 0 {
		self := n.mem.self()
		self.leaving = true
		self.inc++
		n.mem.broadcast(self.id)
		for _, r := range n.mem.recs {
			if r.id != n.id && r.alive() {
				n.pushPull(r.id)
			}
		}
		n.rebuild()
		others := map[string]ownership.Member{}
		for id, m := range v.Members {
			if id != n.id {
				others[id] = m
			}
		}
		n.store.SetFence(func(bucket.Key) bool { return true })
		plan := ownership.PlanHandoff(nil, n.leaving, n.store, n.prov, n.id,
			func(id string) bool { _, ok := slices.BinarySearch(n.view.Peers, id); return ok }, n.clock.Now())
		doneID := ownership.RingID(others)
		for _, p := range n.view.Peers {
			n.sendHandoff(p, plan.ByOwner[p], plan.Lent[p], doneID, nil)
		}
	}
	self := n.mem.self()
	self.state = stateLeft
	self.inc++
	n.mem.broadcast(self.id)
	n.gossipNow()
	n.at(s.w.now+LeaveDrain, func() {
		n.status = down
		n.waiters = nil
		s.tracef("gone %s", n.id)
	})
}

func (s *sim) tracef(format string, args ...any) {
	if s.cfg.Trace != nil {
		s.cfg.Trace(fmt.Sprintf("%10v ", s.w.now) + fmt.Sprintf(format, args...))
	}
}
