package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/internal/hotkeys"
	"github.com/drlimit/drl/internal/membership"
	"github.com/drlimit/drl/internal/ownership"
	"github.com/drlimit/drl/internal/peer"
	"github.com/drlimit/drl/ring"
)

// The node is the ownership core's shell (package internal/ownership):
// gossip events become core.Update, handoff done marks core.Done, and the
// node carries out what comes back: it publishes the view, makes peer
// clients, fences and hands off the keys it lost, and settles the view
// when the core says so.

// ownershipState is the core and what the node keeps to carry out its
// answers.
type ownershipState struct {
	// mu guards core, and makes a view's publication and its settlement
	// one step: core's current view is always view's.
	mu   sync.Mutex
	core *ownership.Core
	// view is the current ring and peer clients, swapped whole on every
	// membership change; checks read it without locking.
	view    atomic.Pointer[view]
	rebuild chan struct{}
	// prov holds the local fail policy's shares and lent hits across
	// views.
	prov *ownership.Provisional

	// moving is the handoff in flight, if any; leaving is the ring without
	// this node while it leaves.
	moving  atomic.Pointer[moveState]
	leaving atomic.Pointer[ring.Ring]
	// handedOff is the ring id this node last finished handing off for:
	// its own done mark, which a peer still waiting for it can ask again.
	handedOff atomic.Uint64
	// handoffMu serializes handoffs so that two ring changes in a row do not
	// extract and send the same keys twice.
	handoffMu sync.Mutex
	// lingerMu guards lingering: peer clients a leaving node's ring changes
	// replaced, left open for its handoff until Close.
	lingerMu  sync.Mutex
	lingering []*peer.Client
}

func (n *Node) signalRebuild() {
	select {
	case n.own.rebuild <- struct{}{}:
	default: // a rebuild is already due; it will read the latest members
	}
}

// ringLoop rebuilds the ring whenever membership changes. Owned by
// n.life.wg.
//
// No event marks a failed member's ForgetFailedAfter running out, so the
// loop also recounts the cluster every second and rebuilds when the count
// changed.
func (n *Node) ringLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.own.rebuild:
			n.rebuildRing()
		case <-t.C:
			if v := n.own.view.Load(); len(v.Quorum.Failed) > 0 && !n.countQuorum().Same(v.Quorum) {
				n.rebuildRing()
			}
		}
	}
}

// describe turns what gossip knows of the members into the core's terms.
func (n *Node) describe(known map[string]membership.Member) []ownership.Member {
	out := make([]ownership.Member, 0, len(known))
	for id, k := range known {
		m := ownership.Member{ID: id, Alive: k.State == "alive", Since: k.Since}
		md, err := membership.DecodeMeta([]byte(k.Meta))
		if err != nil {
			m.Foreign = true
			out = append(out, m)
			continue
		}
		m.Name, m.Addr, m.Started = md.Name, md.GRPC, md.Started
		m.Ready, m.Leaving, m.Restoring = md.Ready, md.Leaving, md.Restoring
		if id == n.id {
			m.Ready = n.gossip.Joined() // gossip's copy of our own meta may lag
		} else if m.Alive && m.Ready && n.cfg.TLS != nil {
			m.Refused = !n.certified(id, md.GRPC)
		}
		out = append(out, m)
	}
	return out
}

// countQuorum counts the cluster as gossip describes it now.
func (n *Node) countQuorum() ownership.Quorum {
	members := n.describe(n.gossip.Members())
	n.own.mu.Lock()
	defer n.own.mu.Unlock()
	return n.own.core.Count(members, n.cfg.Clock.Now())
}

// rebuildRing hands the members gossip knows to the core and carries out
// the view it returns.
func (n *Node) rebuildRing() {
	known := n.gossip.Members()
	if n.cfg.TLS != nil {
		n.forgetCertified(known)
	}
	members := n.describe(known)
	// Logs and status events wait until the core's lock is released: a
	// check's done mark waits on that lock.
	var after []func()
	defer func() {
		for _, f := range after {
			f()
		}
	}()
	n.own.mu.Lock()
	defer n.own.mu.Unlock()
	old := n.own.view.Load()
	ch, err := n.own.core.Update(members, n.cfg.Clock.Now())
	if err != nil {
		after = append(after, func() { n.log.Error("ring not rebuilt", "err", err) })
		return
	}
	if ch.MajorityChanged && n.own.leaving.Load() == nil { // a leaving node's count is nobody's concern
		after = append(after, func() { n.logQuorum(ch.New.Quorum) })
	}
	v := &view{View: ch.New, peers: map[string]*peer.Client{}, waitOver: engine.After(n.cfg.Clock, n.cfg.HandoffWait),
		settled: make(chan struct{}), next: make(chan struct{})}
	if !n.cfg.NoDenyCache {
		v.deny = hotkeys.NewDenyCache(n.cfg.Clock)
	}
	if n.cfg.Leases {
		v.leases = hotkeys.NewLeases(n.cfg.Clock)
	}
	var stale []*peer.Client
	for _, id := range v.Peers {
		m, ok := v.Members[id]
		if !ok {
			m = v.Departing[id]
		}
		if p, ok := old.peers[id]; ok && old.addr(id) == m.Addr {
			v.peers[id] = p
			continue
		}
		p, err := peer.NewClient(id, m.Addr, n.peerConfig())
		if err != nil {
			after = append(after, func() { n.log.Warn("no client for member", "peer", id, "err", err) })
			continue
		}
		v.peers[id] = p
	}
	for id, p := range old.peers {
		if v.peers[id] != p {
			stale = append(stale, p)
		}
	}
	// Fence off the keys this node no longer owns before anyone can see the
	// new view: a check racing the change either lands before the handoff
	// takes its bucket or is refused and re-routed, and a question about a
	// key on its way out waits for the handoff (moving).
	var ms *moveState
	r := v.Ring
	if r.Has(n.id) && n.own.leaving.Load() == nil {
		// The first ring with this node in it: a loaded snapshot's buckets
		// go in now, before the fence, so those it does not own are handed
		// off with the rest.
		after = append(after, n.restore(members))
		ms = &moveState{ring: r, id: v.ID, view: v, done: make(chan struct{})}
		n.own.moving.Store(ms)
		self := n.id
		n.store.SetFence(func(k bucket.Key) bool { return r.Owner(k.Hi) != self })
	}
	n.own.view.Store(v)
	close(old.next)
	if ch.Settled {
		n.settled(v)
	}
	n.stats.ringChanges.Add(1)
	if n.own.leaving.Load() == nil {
		after = append(after, func() { n.log.Info("ring changed", "members", r.Len(), "version", v.Version) })
	}
	if v.ID != old.ID {
		inRing := make([]string, 0, len(v.Members))
		for _, m := range v.Members {
			inRing = append(inRing, m.Name)
		}
		slices.Sort(inRing)
		after = append(after, func() { n.events.add("ring changed to " + strings.Join(inRing, ", ")) })
	}
	if ms != nil {
		n.life.wg.Go(func() {
			ctx, cancel := context.WithTimeout(n.life.stopCtx, n.cfg.HandoffTimeout)
			n.handOffMoved(ctx, ms)
			cancel()
			n.askDoneMarks(ms.view)
		})
	}
	if n.own.leaving.Load() != nil && n.snap.store != nil {
		// Members that announced their own leave since take no more
		// buckets from this one: relays go only to members that stay.
		n.own.leaving.Store(n.own.core.StayingRing(members))
	}
	if n.own.leaving.Load() != nil {
		// A leaving node's handoff and relays may be mid-call on these:
		// closing them now would fail calls the peer has already served,
		// and the buckets would be kept twice. Close closes them.
		n.own.lingerMu.Lock()
		n.own.lingering = append(n.own.lingering, stale...)
		n.own.lingerMu.Unlock()
		stale = nil
	}
	// Checks that still hold a stale peer finish or get drl.ErrClosed and retry
	// on the new view.
	for _, p := range stale {
		n.life.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			p.Close(ctx)
		})
	}
}

// addr returns the peer address of member id in v.
func (v *view) addr(id string) string {
	if m, ok := v.Members[id]; ok {
		return m.Addr
	}
	return v.Departing[id].Addr
}

// settled closes v.settled; requires n.own.mu held and v current.
func (n *Node) settled(v *view) {
	v.settle()
	if v.Ring.Has(n.id) {
		n.life.joinSettled.Store(true)
	}
}

// logQuorum says, in the log and on the status page, that this node lost
// or regained a majority.
func (n *Node) logQuorum(q ownership.Quorum) {
	switch {
	case !q.OK():
		n.log.Warn("no majority: every check is answered by the fail policy until one is seen again",
			"alive", q.Alive, "failed", q.Failed)
		n.events.add(fmt.Sprintf("lost the majority: %v; failed %v", q, q.Failed))
	case len(q.Failed) > 0:
		n.log.Info("majority seen", "alive", q.Alive, "failed", q.Failed)
		n.events.add(fmt.Sprintf("majority: %v; failed %v", q, q.Failed))
	}
}

// SetGossipKeys changes the gossip keyring at run time: keys[0] becomes
// the key that encrypts, every key in keys decrypts, and keys not in keys
// are dropped. Rotate in three steps across every member (DESIGN.md §15):
// add the new key as a second key, then make it the first, then drop the
// old one. It fails if the node started without gossip encryption.
func (n *Node) SetGossipKeys(keys [][]byte) error {
	if err := n.gossip.SetKeys(keys); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}
