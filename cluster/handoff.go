package cluster

import (
	"context"
	"log/slog"
	"sync"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/peer"
	"github.com/drlimit/drl/ring"
)

// When the ring changes, every bucket whose owner changed moves from the
// old owner to the new one (Extract on the sender, Absorb on the receiver),
// in relative form, in batches, within HandoffTimeout; each sender then
// tells every member it is done for that ring. Until every member has,
// a new owner does not start a bucket for a key it gained (check.go), so
// no check is decided on a fresh bucket while the real one is on its way.
// A bucket that still arrives after one was started (a member that missed
// HandoffWait) is combined with it so that the result has spent what both
// spent. A crashed owner hands nothing over: its keys start fresh.

// moveState is a handoff in flight: the ring it moves keys to, and a
// channel closed when every bucket has been received.
type moveState struct {
	ring *ring.Ring
	id   uint64 // the ring's id, for the done marks
	done chan struct{}
}

// absorb takes buckets handed off by another member.
func (n *Node) absorb(ctx context.Context, from string, moved []bucket.Moved, doneRing uint64) int {
	var kept int
	if leaving := n.leaving.Load(); leaving != nil && len(moved) > 0 {
		// A member whose view does not yet know this node is leaving sent
		// it buckets: pass them on to their owners without this node, or
		// they would be lost when it stops.
		kept = n.relay(ctx, leaving, moved)
	} else {
		kept = n.store.Absorb(moved)
	}
	n.handoffsReceived.Add(uint64(kept))
	if doneRing != 0 {
		n.doneMu.Lock()
		n.doneFrom[from] = doneRing
		n.doneMu.Unlock()
		n.checkSettled(n.view.Load())
	}
	return kept
}

// checkSettled closes v.settled once every peer of v has said it finished
// handing off for v's ring.
func (n *Node) checkSettled(v *view) {
	n.doneMu.Lock()
	for name := range v.peers {
		if n.doneFrom[name] != v.id {
			n.doneMu.Unlock()
			return
		}
	}
	n.doneMu.Unlock()
	v.settleOnce.Do(func() { close(v.settled) })
	if v.ring.Has(n.id) {
		n.joinSettled.Store(true)
	}
}

// handOffMoved sends every bucket this node holds but does not own in
// ms.ring to its owner. Owned by n.wg; serialized by handoffMu.
func (n *Node) handOffMoved(ctx context.Context, ms *moveState) {
	n.handoffMu.Lock()
	defer n.handoffMu.Unlock()
	n.handOff(ctx, ms, n.view.Load().peers)
}

// handOffAll hands every bucket to its owner in the ring without this
// node, before it leaves.
func (n *Node) handOffAll(ctx context.Context, leaving *ring.Ring, id uint64) {
	ms := &moveState{ring: leaving, id: id, done: make(chan struct{})}
	n.moving.Store(ms)
	n.store.SetFence(func(bucket.Key) bool { return true })
	n.handoffMu.Lock()
	defer n.handoffMu.Unlock()
	n.handOff(ctx, ms, n.view.Load().peers)
}

// ringWithout returns v's ring less this node (empty if none is left).
func (n *Node) ringWithout(v *view) *ring.Ring {
	others := map[string]string{}
	for _, id := range v.ring.Members() {
		if id != n.id {
			others[id] = v.members[id].Name
		}
	}
	r, err := ring.NewPlaced(n.cfg.Ring, others)
	if err != nil {
		n.log.Warn("no ring without this node", "err", err)
		return &ring.Ring{}
	}
	return r
}

// handOff moves the buckets that ms.ring gives to another member with a
// client in peers, then tells every peer this handoff is done, then closes
// ms.done. Keys whose owner has no client stay here. Requires handoffMu
// held.
func (n *Node) handOff(ctx context.Context, ms *moveState, peers map[string]*peer.Client) {
	defer func() {
		n.moving.CompareAndSwap(ms, nil)
		close(ms.done)
	}()
	if n.moving.Load() != ms {
		// A newer ring came while this handoff waited for the last one:
		// moving keys by this ring now could send away keys the newer ring
		// gives back. The newer handoff moves what must move, and marks done.
		return
	}
	r := ms.ring
	self := n.id
	moved := n.store.Extract(func(k bucket.Key) bool {
		owner := r.Owner(k.Hi)
		return owner != self && peers[owner] != nil
	})
	start := n.cfg.Clock.Now()
	byOwner := map[string][]bucket.Moved{}
	for _, m := range moved {
		owner := r.Owner(m.Key.Hi)
		byOwner[owner] = append(byOwner[owner], m)
	}
	var mu sync.Mutex
	var sent, lost int
	var wg sync.WaitGroup
	for name, p := range peers {
		buckets := byOwner[name] // nil sends just the done mark
		wg.Go(func() {
			kept, err := p.Handoff(ctx, buckets, ms.id)
			mu.Lock()
			defer mu.Unlock()
			sent += kept
			if err != nil && n.leaving.Load() != nil {
				n.undelivered(buckets[kept:])
				n.log.Warn("handoff incomplete", "peer", name, "left", len(buckets)-kept, "saved", n.snapshots != nil, "err", err)
			} else if err != nil {
				lost += len(buckets) - kept
				n.log.Warn("handoff incomplete; those keys start fresh at their owner", "peer", name, "lost", len(buckets)-kept, "err", err)
			}
		})
	}
	wg.Wait()
	n.handoffsSent.Add(uint64(sent))
	n.handoffsLost.Add(uint64(lost))
	if len(moved) > 0 {
		n.log.Info("handed off buckets", "keys", sent, "lost", lost, "members", len(byOwner), "took", n.cfg.Clock.Now()-start)
	}
}

// relay sends buckets that reached a leaving node on to their owners in the
// ring without it, and returns how many were kept there or here
// (undelivered).
func (n *Node) relay(ctx context.Context, leaving *ring.Ring, moved []bucket.Moved) int {
	peers := n.view.Load().peers
	byOwner := map[string][]bucket.Moved{}
	for _, m := range moved {
		owner := leaving.Owner(m.Key.Hi)
		byOwner[owner] = append(byOwner[owner], m)
	}
	kept := 0
	for owner, ms := range byOwner {
		p := peers[owner]
		if p == nil {
			kept += n.undelivered(ms)
			continue
		}
		k, err := p.Handoff(ctx, ms, 0)
		kept += k
		if err != nil {
			kept += n.undelivered(ms[k:])
			// When the whole cluster stops at once every relay fails: warn
			// once, and count the rest in drl_handoff_buckets_total.
			level := slog.LevelDebug
			if n.relayWarned.CompareAndSwap(false, true) {
				level = slog.LevelWarn
			}
			n.log.Log(ctx, level, "relay of handed-off buckets incomplete; later failures are logged at debug", "peer", owner, "lost", len(ms)-k, "err", err)
		}
	}
	return kept
}

// undelivered deals with buckets a leaving node could not hand to their
// owners: with snapshots on it keeps them for its last snapshot (a stop
// of the whole cluster leaves nobody to take them) and reports how many;
// without, they are lost, and counted.
func (n *Node) undelivered(moved []bucket.Moved) int {
	if n.snapshots != nil {
		return n.store.Absorb(moved)
	}
	n.handoffsLost.Add(uint64(len(moved)))
	return 0
}
