package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/ring"
	"github.com/drlimit/drl/transport"
)

// When the ring changes, every bucket whose owner changed moves from the
// old owner to the new one (Extract on the sender, Absorb on the receiver),
// in relative form, in batches, within HandoffTimeout; each sender then
// tells every member its handoff is done. Until then the new owner asks the
// old one about keys it holds nothing for (check.go), so no check is
// decided on a fresh bucket while the real one is on its way. Whatever
// still reaches the new owner first (a previous owner that did not answer)
// is combined with the moved bucket so that the result has spent what both
// spent. A crashed owner hands nothing over: its keys start fresh.

// moveState is a handoff in flight: the ring it moves keys to, and a
// channel closed when every bucket has been received.
type moveState struct {
	ring *ring.Ring
	done chan struct{}
}

// Absorb takes buckets handed off by another member. It implements
// transport.Receiver.
func (n *Node) Absorb(_ context.Context, from string, moved []bucket.Moved, done bool) int {
	kept := n.store.Absorb(moved)
	n.handoffsReceived.Add(uint64(kept))
	if done {
		n.doneMu.Lock()
		n.doneFrom[from] = time.Now()
		n.doneMu.Unlock()
	}
	return kept
}

var _ transport.Receiver = (*Node)(nil)

// handOffMoved sends every bucket this node holds but does not own in the
// current view to its owner. Owned by n.wg; serialized by handoffMu.
func (n *Node) handOffMoved(ctx context.Context) {
	n.handoffMu.Lock()
	defer n.handoffMu.Unlock()
	v := n.view.Load()
	if !v.ring.Has(n.cfg.Name) || n.leaving.Load() != nil {
		return // leaving: Close hands everything off itself
	}
	n.handOff(ctx, v.ring, v.peers)
}

// handOffAll hands every bucket to its owner in the ring without this
// node, before it leaves.
func (n *Node) handOffAll(ctx context.Context) {
	n.handoffMu.Lock()
	defer n.handoffMu.Unlock()
	r := n.leaving.Load()
	if r == nil || r.Len() == 0 {
		return
	}
	n.handOff(ctx, r, n.view.Load().peers)
}

// ringWithout returns v's ring less this node (empty if none is left).
func (n *Node) ringWithout(v *view) *ring.Ring {
	var others []string
	for _, m := range v.ring.Members() {
		if m != n.cfg.Name {
			others = append(others, m)
		}
	}
	r, err := ring.New(n.cfg.Ring, others)
	if err != nil {
		n.log.Warn("no ring without this node", "err", err)
		return &ring.Ring{}
	}
	return r
}

// handOff moves the buckets that r gives to another member with a client in
// peers, then tells every peer this handoff is done. Keys whose owner has no
// client stay here. Requires handoffMu held.
func (n *Node) handOff(ctx context.Context, r *ring.Ring, peers map[string]*transport.Peer) {
	ms := &moveState{ring: r, done: make(chan struct{})}
	n.moving.Store(ms)
	defer func() {
		n.moving.Store(nil)
		close(ms.done)
	}()
	self := n.cfg.Name
	moved := n.store.Extract(func(k bucket.Key) bool {
		owner := r.Owner(k.Hi)
		return owner != self && peers[owner] != nil
	})
	start := time.Now()
	byOwner := map[string][]bucket.Moved{}
	for _, m := range moved {
		owner := r.Owner(m.Key.Hi)
		byOwner[owner] = append(byOwner[owner], m)
	}
	var mu sync.Mutex
	var sent, lost int
	var wg sync.WaitGroup
	for name, p := range peers {
		ms := byOwner[name] // nil sends just the done mark
		wg.Go(func() {
			kept, err := p.Handoff(ctx, ms)
			mu.Lock()
			defer mu.Unlock()
			sent += kept
			if err != nil {
				lost += len(ms) - kept
				n.log.Warn("handoff incomplete; those keys start fresh at their owner", "peer", name, "lost", len(ms)-kept, "err", err)
			}
		})
	}
	wg.Wait()
	n.handoffsSent.Add(uint64(sent))
	n.handoffsLost.Add(uint64(lost))
	if len(moved) > 0 {
		n.log.Info("handed off buckets", "keys", sent, "lost", lost, "members", len(byOwner), "took", time.Since(start))
	}
}
