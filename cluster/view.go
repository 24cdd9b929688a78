package cluster

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/hotkeys"
	"github.com/drlimit/drl/internal/membership"
	"github.com/drlimit/drl/internal/peer"
	"github.com/drlimit/drl/ring"
)

func (n *Node) signalRebuild() {
	select {
	case n.rebuild <- struct{}{}:
	default: // a rebuild is already due; it will read the latest members
	}
}

// ringLoop rebuilds the ring whenever membership changes. Owned by n.wg.
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
		case <-n.rebuild:
			n.rebuildRing()
		case <-t.C:
			if v := n.view.Load(); len(v.quorum.failed) > 0 && !n.countQuorum(n.gossip.Members()).same(v.quorum) {
				n.rebuildRing()
			}
		}
	}
}

// rebuildRing builds a ring from the members gossip last called alive
// (suspects stay in until they are declared dead), off to the side, then
// swaps it in with its peer clients.
func (n *Node) rebuildRing() {
	old := n.view.Load()
	members := map[string]membership.Meta{}
	// departing members are leaving gracefully: out of the ring, but still
	// peers until they are gone, so that this node waits for their handoff.
	departing := map[string]membership.Meta{}
	known := n.gossip.Members()
	if n.cfg.TLS != nil {
		n.forgetCertified(known)
	}
	for name, k := range known {
		if k.State != "alive" {
			continue
		}
		md, err := membership.DecodeMeta([]byte(k.Meta))
		if err != nil {
			n.log.Warn("member kept out of the ring", "peer", name, "err", err)
			continue
		}
		if name == n.id {
			md.Ready = n.gossip.Joined() // gossip's copy of our own meta may lag
		}
		if !md.Ready || name != n.id && n.cfg.TLS != nil && !n.certified(name, md.GRPC) {
			continue
		}
		if md.Leaving {
			departing[name] = md
			continue
		}
		members[name] = md
	}
	q := n.countQuorum(known)
	newestPerName(members)
	r, err := ring.NewPlaced(n.cfg.Ring, positions(members))
	if err != nil {
		n.log.Error("ring not rebuilt", "members", len(members), "err", err)
		return
	}
	if !q.ok() && old.ring.Len() > 0 {
		// Without a majority this node takes no key over: it keeps the
		// ring it had (and decides nothing on it; check.go) until it sees
		// a majority again.
		r, members = old.ring, old.members
	}
	if q.ok() != old.quorum.ok() || old.quorum.size() == 0 {
		n.logQuorum(q)
	}
	// A node that is not yet ready is in no ring, its own included, so a
	// joiner's previous ring is the ring of the others: every key it owns
	// now counts as gained. While the last change has not settled, keys it
	// gained are still pending, so the ring before it stays the reference
	// (a second rebuild, even of the same ring, must not forget them).
	prev := old.ring
	select {
	case <-old.settled:
	default:
		if old.prev != nil {
			prev = old.prev
		}
	}
	v := &view{ring: r, members: members, peers: map[string]*peer.Client{}, version: old.version + 1,
		id: ringID(members), prev: prev, waitOver: n.cfg.Clock.After(n.cfg.HandoffWait),
		settled: make(chan struct{}), next: make(chan struct{}),
		fallback: n.newFallbackStore(), quorum: q, takeovers: n.takeovers(old, r, q)}
	if !n.cfg.NoDenyCache {
		v.deny = hotkeys.NewDenyCache(n.cfg.Clock)
	}
	if n.cfg.Leases {
		v.leases = hotkeys.NewLeases(n.cfg.Clock)
	}
	for id, md := range members {
		if _, known := old.members[id]; md.Restoring && !known && id != n.id {
			v.restoring = true
		}
	}
	var stale []*peer.Client
	for name, md := range all(members, departing) {
		if name == n.id {
			continue
		}
		if p, ok := old.peers[name]; ok && old.members[name].GRPC == md.GRPC {
			v.peers[name] = p
			continue
		}
		p, err := peer.NewClient(name, md.GRPC, n.peerConfig())
		if err != nil {
			n.log.Warn("no client for member", "peer", name, "err", err)
			continue
		}
		v.peers[name] = p
	}
	for name, p := range old.peers {
		if v.peers[name] != p {
			stale = append(stale, p)
		}
	}
	// Fence off the keys this node no longer owns before anyone can see the
	// new view: a check racing the change either lands before the handoff
	// takes its bucket or is refused and re-routed, and a question about a
	// key on its way out waits for the handoff (moving).
	var ms *moveState
	if r.Has(n.id) && n.leaving.Load() == nil {
		// The first ring with this node in it: a loaded snapshot's buckets
		// go in now, before the fence, so those it does not own are handed
		// off with the rest.
		n.restore(known)
		ms = &moveState{ring: r, id: v.id, done: make(chan struct{})}
		n.moving.Store(ms)
		self := n.id
		n.store.SetFence(func(k bucket.Key) bool { return r.Owner(k.Hi) != self })
	}
	n.view.Store(v)
	close(old.next)
	n.checkSettled(v)
	n.ringChanges.Add(1)
	n.log.Info("ring changed", "members", r.Len(), "version", v.version)
	inRing := make([]string, 0, len(members))
	for _, md := range members {
		inRing = append(inRing, md.Name)
	}
	slices.Sort(inRing)
	if v.id != old.id {
		n.events.add("ring changed to " + strings.Join(inRing, ", "))
	}
	if ms != nil {
		n.wg.Go(func() {
			ctx, cancel := context.WithTimeout(n.stopCtx, n.cfg.HandoffTimeout)
			defer cancel()
			n.handOffMoved(ctx, ms)
		})
	}
	if n.leaving.Load() != nil && n.snapshots != nil {
		// Members that announced their own leave since take no more
		// buckets from this one: relays go only to members that stay.
		n.leaving.Store(n.stayingRing())
	}
	if n.leaving.Load() != nil {
		// A leaving node's handoff and relays may be mid-call on these:
		// closing them now would fail calls the peer has already served,
		// and the buckets would be kept twice. Close closes them.
		n.lingerMu.Lock()
		n.lingering = append(n.lingering, stale...)
		n.lingerMu.Unlock()
		stale = nil
	}
	// Checks that still hold a stale peer finish or get drl.ErrClosed and retry
	// on the new view.
	for _, p := range stale {
		n.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			p.Close(ctx)
		})
	}
}

// positions places every member on the ring by its configured name, so
// that a node restarted under its name owns the same keys again: a
// rolling restart moves only the restarting node's keys, out and back.
func positions(members map[string]membership.Meta) map[string]string {
	placed := make(map[string]string, len(members))
	for id, md := range members {
		placed[id] = md.Name
	}
	return placed
}

// newestPerName keeps, of two live instances that claim one name (a node
// restarted before gossip declared its old instance dead), the one that
// started last.
func newestPerName(members map[string]membership.Meta) {
	newest := map[string]string{}
	for id, md := range members {
		best, ok := newest[md.Name]
		if !ok || md.Started > members[best].Started || md.Started == members[best].Started && id > best {
			newest[md.Name] = id
		}
	}
	for id, md := range members {
		if newest[md.Name] != id {
			delete(members, id)
		}
	}
}

// logQuorum says, in the log and on the status page, that this node lost
// or regained a majority.
func (n *Node) logQuorum(q quorum) {
	switch {
	case !q.ok():
		n.log.Warn("no majority: every check is answered by the fail policy until one is seen again",
			"alive", q.alive, "failed", q.failed)
		n.events.add(fmt.Sprintf("lost the majority: %v; failed %v", q, q.failed))
	case len(q.failed) > 0:
		n.log.Info("majority seen", "alive", q.alive, "failed", q.failed)
		n.events.add(fmt.Sprintf("majority: %v; failed %v", q, q.failed))
	}
}

// all iterates over the members of both maps.
func all(a, b map[string]membership.Meta) iter.Seq2[string, membership.Meta] {
	return func(yield func(string, membership.Meta) bool) {
		for name, md := range a {
			if !yield(name, md) {
				return
			}
		}
		for name, md := range b {
			if !yield(name, md) {
				return
			}
		}
	}
}

// ringID names a ring by its members and their gRPC addresses, so that a
// member that restarts under the same name makes a different ring. Never 0.
func ringID(members map[string]membership.Meta) uint64 {
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	slices.Sort(names)
	h := xxhash.New()
	for _, name := range names {
		h.WriteString(name)
		h.WriteString("=")
		h.WriteString(members[name].GRPC)
		h.WriteString(";")
	}
	return h.Sum64() | 1
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
