package transport

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cespare/xxhash/v2"
	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
)

// RingWatcher is what a Directory may also implement to serve WatchRing:
// the node's ring, for clients that send each check straight to its
// owner. A Directory without it answers WatchRing Unimplemented.
type RingWatcher interface {
	// WatchRing calls send with the node's ring now, then once with each
	// newer ring, until ctx ends (ctx's error), send fails (its error) or
	// the node stops (drl.ErrClosed). It calls send from the calling
	// goroutine only; send may block (a slow watcher delays only itself)
	// and must not keep the RingState's slice.
	WatchRing(ctx context.Context, send func(RingState) error) error
}

// RingState is one ring as WatchRing publishes it (api/drl.proto,
// RingState, has the contract a client relies on).
type RingState struct {
	// Version counts the node's ring changes; ID names the ring's
	// members and addresses, the same on every node with that ring.
	Version, ID uint64
	// Partitions, ReplicationFactor and Load are the ring's parameters,
	// defaults applied.
	Partitions, ReplicationFactor int
	Load                          float64
	// Members own the ring's partitions, in name order.
	Members []RingMember
}

// RingMember is a ring member: Name is its configured name, which is
// also its position on the ring.
type RingMember struct {
	Name, GRPCAddr string
}

func (s *grpcServer) WatchRing(_ *drlv1.WatchRingRequest, stream drlv1.RateLimiter_WatchRingServer) error {
	w, ok := s.cfg.Directory.(RingWatcher)
	if !ok {
		return status.Error(codes.Unimplemented, "transport: this node does not publish its ring")
	}
	err := w.WatchRing(stream.Context(), func(st RingState) error { return stream.Send(RingStateToProto(st)) })
	switch _, isStatus := status.FromError(err); {
	case err == nil || isStatus: // the stream's own error, from send
		return err
	case errors.Is(err, drl.ErrClosed):
		return status.Error(codes.Unavailable, "transport: node stopping; watch another")
	}
	return GRPCError(err)
}

// RingStateToProto is the server side of a ring on the wire.
func RingStateToProto(st RingState) *drlv1.RingState {
	m := &drlv1.RingState{Version: st.Version, RingId: st.ID, Partitions: uint32(st.Partitions),
		ReplicationFactor: uint32(st.ReplicationFactor), Load: st.Load, Members: make([]*drlv1.RingMember, len(st.Members))}
	for i, mb := range st.Members {
		m.Members[i] = &drlv1.RingMember{Name: mb.Name, GrpcAddr: mb.GRPCAddr}
	}
	return m
}

// RingStateFromProto is the client side of a ring on the wire.
func RingStateFromProto(m *drlv1.RingState) RingState {
	st := RingState{Version: m.GetVersion(), ID: m.GetRingId(), Partitions: int(m.GetPartitions()),
		ReplicationFactor: int(m.GetReplicationFactor()), Load: m.GetLoad(), Members: make([]RingMember, len(m.GetMembers()))}
	for i, mb := range m.GetMembers() {
		st.Members[i] = RingMember{Name: mb.GetName(), GRPCAddr: mb.GetGrpcAddr()}
	}
	return st
}

// HashKey turns (userID, action) into its bucket key: xxhash64 of each id,
// mixed by bucket.KeyOf. Key.Hi places it on the ring. It is part of the
// wire contract (RingState in api/drl.proto): every member hashes with it,
// and so does a client that routes checks to their owners.
func HashKey(userID, action string) bucket.Key {
	return bucket.KeyOf(xxhash.Sum64String(userID), xxhash.Sum64String(action)+0x9e3779b97f4a7c15)
}
