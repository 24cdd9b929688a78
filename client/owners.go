package client

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/ring"
	"github.com/drlimit/drl/transport"
)

// router is a client's copy of the cluster's ring: it watches the ring of
// one node that is up (WatchRing, through the round-robin connection, so
// another node when that one fails) and keeps a connection to each member,
// so that a check goes straight to its key's owner. Its ring may lag the
// cluster's; a node that gets a check it does not own forwards it, so a
// stale ring costs a hop, never a wrong answer.
type router struct {
	watch    drlv1.RateLimiterClient // round-robin over the given nodes
	dial     []grpc.DialOption       // for the members' connections
	batching *Batching               // batch per member when not nil
	routes   atomic.Pointer[routes]  // nil until the first ring arrives
	stop     context.CancelFunc
	// wg owns run and the goroutines that close retired members.
	wg sync.WaitGroup
}

// routes is one ring and its members' connections, swapped whole on every
// ring change: a check reads it without locking.
type routes struct {
	ring    *ring.Ring
	members map[string]*member // by name
	state   transport.RingState
}

// member is one ring member's connection, with its own batcher when the
// client batches.
type member struct {
	name, addr string
	conn       *grpc.ClientConn
	api        drlv1.RateLimiterClient
	batch      *batcher    // nil without batching
	retired    atomic.Bool // out of the ring: closing after retireAfter
}

// How long a member that left the ring keeps its connection, so that
// checks already sent to it finish (a batch call lasts at most maxCall).
const retireAfter = maxCall

// Backoff between attempts to watch a ring, doubled from min up to max
// while none answers.
const (
	minWatchBackoff = 100 * time.Millisecond
	maxWatchBackoff = 10 * time.Second
)

// startRouter starts watching the ring through watch. Its close stops it.
func startRouter(watch drlv1.RateLimiterClient, dial []grpc.DialOption, b *Batching) *router {
	ctx, stop := context.WithCancel(context.Background())
	r := &router{watch: watch, dial: dial, batching: b, stop: stop}
	r.wg.Go(func() { r.run(ctx) })
	return r
}

// ringKey returns the 64 bits of (userID, action)'s bucket key that place
// it on the ring, as api/drl.proto (RingState) spells out.
func ringKey(userID, action string) uint64 { return transport.HashKey(userID, action).Hi }

// owner returns the member that owns (userID, action) in the client's
// ring, or nil when the client has no ring (or no router) or the owner's
// connection is not up: then the check goes round-robin.
func (r *router) owner(userID, action string) *member {
	if r == nil {
		return nil
	}
	rt := r.routes.Load()
	if rt == nil || rt.ring.Len() == 0 {
		return nil
	}
	m := rt.members[rt.ring.Owner(ringKey(userID, action))]
	if m == nil || m.retired.Load() {
		return nil
	}
	switch m.conn.GetState() {
	case connectivity.Ready, connectivity.Idle: // Idle connects on the call
		return m
	}
	return nil
}

// run watches rings until ctx ends, through whichever node answers,
// backing off while none does.
func (r *router) run(ctx context.Context) {
	wait := minWatchBackoff
	for {
		if r.watchOnce(ctx) {
			wait = minWatchBackoff
		}
		// Jittered, so that many clients of a node that stopped do not
		// all come back at once.
		select {
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, maxWatchBackoff)
	}
}

// watchOnce installs every ring one WatchRing stream sends until it ends,
// and reports whether it sent any.
func (r *router) watchOnce(ctx context.Context) (heard bool) {
	// WaitForReady: while no node is up, wait for one rather than fail.
	stream, err := r.watch.WatchRing(ctx, &drlv1.WatchRingRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return false
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return heard
		}
		heard = true
		r.install(ctx, transport.RingStateFromProto(m))
	}
}

// install builds st's ring and swaps it in, keeping the connections of
// members that stay (same name and address), opening new ones and
// retiring the rest. A ring it cannot build is skipped: the last one
// stays, which is never wrong, only slower. Only run calls it.
func (r *router) install(ctx context.Context, st transport.RingState) {
	old := r.routes.Load()
	if old != nil && old.state.ID == st.ID {
		// The same members at the same addresses (a re-watch, or a
		// rebuild that changed nothing): the ring is the one installed.
		return
	}
	names := make([]string, len(st.Members))
	for i, m := range st.Members {
		names[i] = m.Name
	}
	rg, err := ring.New(ring.Config{Partitions: st.Partitions, ReplicationFactor: st.ReplicationFactor, Load: st.Load}, names)
	if err != nil {
		return
	}
	rt := &routes{ring: rg, members: make(map[string]*member, len(st.Members)), state: st}
	for _, sm := range st.Members {
		if old != nil {
			if m, ok := old.members[sm.Name]; ok && m.addr == sm.GRPCAddr {
				rt.members[sm.Name] = m
				continue
			}
		}
		m, err := r.newMember(sm)
		if err != nil {
			continue // its checks go round-robin
		}
		rt.members[sm.Name] = m
	}
	r.routes.Store(rt)
	if old == nil {
		return
	}
	for name, m := range old.members {
		if rt.members[name] == m {
			continue
		}
		m.retired.Store(true)
		r.wg.Go(func() {
			t := time.NewTimer(retireAfter)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			m.close()
		})
	}
}

// newMember opens a connection to sm, connecting at once so that the
// first check does not wait for it.
func (r *router) newMember(sm transport.RingMember) (*member, error) {
	conn, err := grpc.NewClient(sm.GRPCAddr, r.dial...)
	if err != nil {
		return nil, err
	}
	conn.Connect()
	m := &member{name: sm.Name, addr: sm.GRPCAddr, conn: conn, api: drlv1.NewRateLimiterClient(conn)}
	if r.batching != nil {
		m.batch = newBatcher(m.api, *r.batching)
	}
	return m, nil
}

// close answers m's queued checks with drl.ErrClosed and closes its
// connection.
func (m *member) close() {
	if m.batch != nil {
		m.batch.close()
	}
	m.conn.Close()
}

// close stops watching and closes every member's connection. Safe on a
// nil router.
func (r *router) close() {
	if r == nil {
		return
	}
	r.stop()
	r.wg.Wait() // retired members are closed by now
	if rt := r.routes.Load(); rt != nil {
		for _, m := range rt.members {
			m.close()
		}
	}
}
