package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/internal/ownership"
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
// spent. A crashed owner hands nothing over: its keys are taken over from
// a share spent (internal/ownership, takeover.go).

// moveState is a handoff in flight: the ring it moves keys to, and a
// channel closed once its sends are done (or it was skipped for a newer
// ring). view is the view
// that set it off, nil for a leaving node's last handoff.
type moveState struct {
	ring *ring.Ring
	id   uint64 // the ring's id, for the done marks
	view *view
	done chan struct{}
}

// absorb takes buckets handed off by another member (the first lent of
// them lent hits), and its done mark.
func (n *Node) absorb(ctx context.Context, from string, moved []engine.Moved, lent int, doneRing uint64) int {
	var kept int
	if leaving := n.own.leaving.Load(); leaving != nil && len(moved) > 0 {
		// A member whose view does not yet know this node is leaving sent
		// it buckets: pass them on to their owners without this node, or
		// they would be lost when it stops.
		kept = n.relay(ctx, leaving, moved, lent)
	} else {
		kept = n.keep(moved, lent)
	}
	n.stats.handoffsReceived.Add(uint64(kept))
	if doneRing != 0 {
		n.doneMark(from, doneRing)
	}
	return kept
}

// doneMark records that member from finished handing off for the ring
// ringID, which may settle the current view.
func (n *Node) doneMark(from string, ringID uint64) {
	n.own.mu.Lock()
	defer n.own.mu.Unlock()
	if n.own.core.Done(from, ringID) {
		n.settled(n.own.view.Load())
	}
}

// doneMarkRetry is how often a node whose view has not settled asks the
// peers it still waits for to say their done mark again.
const doneMarkRetry = time.Second

// askDoneMarks asks, every doneMarkRetry while v is the current view and
// has not settled, each peer whose done mark has not come (lost to a cut
// that healed, or sent before this node knew the peer) for it again, by
// sending its own: a peer done with the same ring answers with its mark
// (peer.Client.Handoff). Without it a view could stay unsettled until the
// next ring change, and keys taken over in it on the fail policy. Owned
// by n.life.wg.
//
// The same loop sends again the buckets a failed handoff for v left owed
// (sendOwed), for as long as any are, settled or not.
func (n *Node) askDoneMarks(v *view) {
	if v.done.Load() && !n.owesAny(v) {
		return
	}
	t := time.NewTicker(doneMarkRetry)
	defer t.Stop()
	for {
		select {
		case <-n.life.stopCtx.Done():
			return
		case <-v.next:
			return // the newer view's handoff releases what is still owed
		case <-t.C:
		}
		if n.own.leaving.Load() != nil {
			return // a leaving node's last marks went with handOffAll
		}
		if n.own.handedOff.Load() != v.ID {
			continue // this node's own handoff for v is not done
		}
		owing := n.sendOwed(v)
		if v.done.Load() {
			if !owing {
				return
			}
			continue
		}
		n.own.mu.Lock()
		var waiting []string
		if n.own.view.Load() == v {
			waiting = n.own.core.Unsettled()
		}
		n.own.mu.Unlock()
		for _, id := range waiting {
			p := v.peers[id]
			if p == nil || n.own.prov.Owes(v.Ring, id) {
				continue // sendOwed brings this node's mark with the buckets
			}
			ctx, cancel := context.WithTimeout(n.life.stopCtx, doneMarkRetry)
			if _, peerDone, err := p.Handoff(ctx, nil, 0, v.ID); err == nil && peerDone == v.ID {
				n.doneMark(id, peerDone)
			}
			cancel()
		}
	}
}

// owesAny reports whether this node owes any peer of v buckets.
func (n *Node) owesAny(v *view) bool {
	for id := range v.peers {
		if n.own.prov.Owes(v.Ring, id) {
			return true
		}
	}
	return false
}

// sendOwed sends each peer of v again the buckets a failed handoff left
// owed to it (ownership.Provisional.Owe), marked lent, with this node's
// done mark for v, which it withholds from that peer until they arrive
// (peerSide.HandedOff): the peer then starts none of those keys without
// them. It reports whether any are still owed.
func (n *Node) sendOwed(v *view) (owing bool) {
	for id, p := range v.peers {
		hits := n.own.prov.TakeOwed(v.Ring, id)
		if len(hits) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(n.life.stopCtx, doneMarkRetry)
		kept, peerDone, err := p.Handoff(ctx, hits, len(hits), v.ID)
		cancel()
		if peerDone == v.ID {
			n.doneMark(id, peerDone)
		}
		if err != nil {
			n.own.prov.Owe(hits[min(kept, len(hits)):])
			owing = true
		}
	}
	return owing
}

// keep puts buckets handed to this node in the store; lent hits wait as
// credits, or for the key's owner (ownership.View.Absorb).
func (n *Node) keep(moved []engine.Moved, lent int) int {
	return n.own.view.Load().Absorb(n.store, n.own.prov, n.id, moved, lent, n.cfg.Clock.Now())
}

// handOffMoved sends every bucket this node holds but does not own in
// ms.ring to its owner, with the hits it lent itself for keys others own.
// Owned by n.life.wg; serialized by handoffMu.
func (n *Node) handOffMoved(ctx context.Context, ms *moveState) {
	n.own.handoffMu.Lock()
	defer n.own.handoffMu.Unlock()
	n.handOff(ctx, ms, ms.view.peers)
}

// handOffAll hands every bucket to its owner in the ring without this
// node, before it leaves.
func (n *Node) handOffAll(ctx context.Context, leaving *ring.Ring, id uint64) {
	ms := &moveState{ring: leaving, id: id, done: make(chan struct{})}
	n.own.moving.Store(ms)
	n.store.SetFence(func(bucket.Key) bool { return true })
	n.own.handoffMu.Lock()
	defer n.own.handoffMu.Unlock()
	n.handOff(ctx, ms, n.own.view.Load().peers)
}

// handOff moves the buckets that ms.ring gives to another member with a
// client in peers, then tells every peer this handoff is done, then closes
// ms.done. Keys whose owner has no client stay here. Requires handoffMu
// held.
func (n *Node) handOff(ctx context.Context, ms *moveState, peers map[string]*peer.Client) {
	defer func() {
		n.own.moving.CompareAndSwap(ms, nil)
		close(ms.done)
	}()
	if n.own.moving.Load() != ms {
		// A newer ring came while this handoff waited for the last one:
		// moving keys by this ring now could send away keys the newer ring
		// gives back. The newer handoff moves what must move, and marks done.
		return
	}
	start := n.cfg.Clock.Now()
	var v *ownership.View
	if ms.view != nil {
		v = ms.view.View
	}
	plan := ownership.PlanHandoff(v, ms.ring, n.store, n.own.prov, n.id, func(id string) bool { return peers[id] != nil }, start)
	byOwner := plan.ByOwner
	var mu sync.Mutex
	var sent, owed int
	var wg sync.WaitGroup
	for name, p := range peers {
		buckets := byOwner[name] // nil sends just the done mark
		wg.Go(func() {
			kept, peerDone, err := p.Handoff(ctx, buckets, plan.Lent[name], ms.id)
			if peerDone != 0 {
				n.doneMark(name, peerDone)
			}
			mu.Lock()
			defer mu.Unlock()
			sent += kept
			if err == nil {
				return
			}
			// Lent hits go back to the provisional state, for the next
			// change; the store's buckets are owed, sent again with this
			// node's done mark (askDoneMarks), or kept or lost by a leaver.
			left := plan.Undelivered(n.own.prov, name, kept)
			if n.own.leaving.Load() != nil {
				n.undelivered(left)
				n.log.Warn("handoff incomplete", "peer", name, "left", len(left), "saved", n.snap.store != nil, "err", err)
				return
			}
			n.own.prov.Owe(left)
			owed += len(left)
			n.log.Warn("handoff incomplete; sending again with the done mark", "peer", name, "owed", len(left), "err", err)
		})
	}
	wg.Wait()
	n.own.handedOff.Store(ms.id) // a leaver's too: peers may ask for it again
	n.stats.handoffsSent.Add(uint64(sent))
	if plan.Moved > 0 {
		n.log.Info("handed off buckets", "keys", sent, "owed", owed, "members", len(byOwner), "took", n.cfg.Clock.Now()-start)
	}
}

// relay sends buckets that reached a leaving node (the first lent of them
// lent hits, which stay marked) on to their owners in the ring without it,
// and returns how many were kept there or here (undelivered).
func (n *Node) relay(ctx context.Context, leaving *ring.Ring, moved []engine.Moved, lent int) int {
	peers := n.own.view.Load().peers
	by := ownership.Regroup(moved, lent, leaving)
	kept := 0
	for owner, ms := range by.ByOwner {
		p := peers[owner]
		if p == nil {
			kept += n.undelivered(ms)
			continue
		}
		k, _, err := p.Handoff(ctx, ms, by.Lent[owner], 0)
		kept += k
		if err != nil {
			kept += n.undelivered(ms[k:])
			// When the whole cluster stops at once every relay fails: warn
			// once, and count the rest in drl_handoff_buckets_total.
			level := slog.LevelDebug
			if n.stats.relayWarned.CompareAndSwap(false, true) {
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
func (n *Node) undelivered(moved []engine.Moved) int {
	if n.snap.store != nil {
		return n.store.Absorb(moved)
	}
	n.stats.handoffsLost.Add(uint64(len(moved)))
	return 0
}
