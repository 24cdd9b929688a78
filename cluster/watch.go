package cluster

import (
	"cmp"
	"context"
	"slices"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/ring"
	"github.com/drlimit/drl/transport"
)

var _ transport.RingWatcher = (*Node)(nil)

// WatchRing calls send with this node's ring now and then with each newer
// one, for clients that route checks to owners themselves. It
// returns ctx's error, send's, or drl.ErrClosed once the node stops, so
// that Close's graceful stop of the gRPC server never waits on a watcher.
// It implements transport.RingWatcher.
func (n *Node) WatchRing(ctx context.Context, send func(transport.RingState) error) error {
	for {
		v := n.own.view.Load()
		if err := send(n.ringState(v)); err != nil {
			return err
		}
		select {
		case <-v.next:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.life.stopCtx.Done():
			return drl.ErrClosed
		}
	}
}

// ringState describes v's ring as WatchRing publishes it: members by their
// configured names, which are their positions (positions in view.go).
func (n *Node) ringState(v *view) transport.RingState {
	st := transport.RingState{Version: v.Version, ID: v.ID,
		Partitions:        cmp.Or(n.cfg.Ring.Partitions, ring.DefaultPartitions),
		ReplicationFactor: cmp.Or(n.cfg.Ring.ReplicationFactor, ring.DefaultReplicationFactor),
		Load:              cmp.Or(n.cfg.Ring.Load, ring.DefaultLoad)}
	for id, m := range v.Members {
		if v.Ring.Has(id) {
			st.Members = append(st.Members, transport.RingMember{Name: m.Name, GRPCAddr: m.Addr})
		}
	}
	slices.SortFunc(st.Members, func(a, b transport.RingMember) int { return cmp.Compare(a.Name, b.Name) })
	return st
}
