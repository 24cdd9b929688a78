package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/ring"
	"github.com/drlimit/drl/transport"
)

var (
	// ErrClosed is returned by a Node's methods after Close.
	ErrClosed = errors.New("cluster: node closed")
	// ErrNoOwner means no member could answer for the key in time: the ring
	// is empty, or the owner stayed unreachable or kept moving.
	ErrNoOwner = errors.New("cluster: no owner reachable")
)

// Node is one member of a drl cluster: it holds the buckets of the keys it
// owns, forwards checks on other keys to their owners, and serves the gRPC
// (and optionally HTTP) API. Embed it in an application, or run it with
// cmd/node. A Node is safe for concurrent use.
type Node struct {
	cfg        Config
	log        *slog.Logger
	store      *bucket.Store
	hash       bucket.KeyHasher
	metaBytes  []byte
	gossipAddr string // advertised

	ml       *memberlist.Memberlist
	grpcLis  net.Listener
	grpcSrv  *grpc.Server
	grpcAddr string // advertised
	httpLis  net.Listener
	httpSrv  *http.Server

	// view is the current ring and peer clients, swapped whole on every
	// membership change; checks read it without locking.
	view        atomic.Pointer[view]
	rebuild     chan struct{}
	ringChanges atomic.Uint64

	// knownMu guards known: every member gossip has told us about.
	knownMu sync.Mutex
	known   map[string]knownMember

	local atomic.Uint64 // checks decided here as the owner

	joined  atomic.Bool
	closed  atomic.Bool
	closing sync.Once
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// view is one immutable ring with the clients for its members.
type view struct {
	ring    *ring.Ring
	members map[string]meta
	peers   map[string]*transport.Peer
	version uint64
}

// KeyHasher returns the hasher every node of a cluster uses to turn
// (user, action) into a bucket key and a ring position: xxhash of each id,
// mixed by bucket.KeyOf. It must be the same on all members.
func KeyHasher() bucket.KeyHasher {
	return func(userID, action string) bucket.Key {
		return bucket.KeyOf(xxhash.Sum64String(userID), xxhash.Sum64String(action)+0x9e3779b97f4a7c15)
	}
}

// New validates cfg, binds the gossip, gRPC and HTTP listeners and starts
// serving. Joining the members in cfg.Join happens in the background (see
// Ready); New never waits for it. Call Close to leave and stop.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger.With("node", cfg.Name),
		hash:    KeyHasher(),
		rebuild: make(chan struct{}, 1),
		known:   map[string]knownMember{},
	}
	n.view.Store(&view{ring: &ring.Ring{}, peers: map[string]*transport.Peer{}})
	ok := false
	defer func() {
		if !ok {
			n.shutdownListeners()
		}
	}()

	storeCfg := cfg.Store
	storeCfg.Clock, storeCfg.Hasher = cfg.Clock, n.hash
	var err error
	if n.store, err = bucket.NewStore(storeCfg); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}

	if n.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("cluster: listen for gRPC on %s: %w", cfg.GRPCAddr, err)
	}
	n.grpcAddr = advertised(cfg.GRPCAdvertise, n.grpcLis.Addr())
	serverCfg := transport.ServerConfig{Limiter: n, Owner: n, Directory: n, Ready: n.Ready, Logger: n.log}
	// Stream workers reuse goroutines across RPCs instead of starting one
	// per call.
	n.grpcSrv = grpc.NewServer(grpc.NumStreamWorkers(uint32(max(runtime.GOMAXPROCS(0), 4))))
	transport.RegisterServices(n.grpcSrv, serverCfg)

	httpAdv := ""
	if cfg.HTTPAddr != "" {
		if n.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("cluster: listen for HTTP on %s: %w", cfg.HTTPAddr, err)
		}
		httpAdv = n.httpLis.Addr().String()
		n.httpSrv = &http.Server{Handler: transport.NewHTTPHandler(serverCfg), ReadHeaderTimeout: 5 * time.Second}
	}
	if n.metaBytes, err = (meta{Version: protocolVersion, GRPC: n.grpcAddr, HTTP: httpAdv}).encode(); err != nil {
		return nil, err
	}

	host, port, err := splitPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: GossipAddr: %w", err)
	}
	advHost, advPort := "", 0
	if cfg.GossipAdvertise != "" {
		if advHost, advPort, err = splitPort(cfg.GossipAdvertise); err != nil {
			return nil, fmt.Errorf("cluster: GossipAdvertise: %w", err)
		}
	}
	if n.ml, err = memberlist.Create(n.memberlistConfig(host, port, advHost, advPort)); err != nil {
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", cfg.GossipAddr, err)
	}
	self := n.ml.LocalNode()
	n.gossipAddr = net.JoinHostPort(self.Addr.String(), strconv.Itoa(int(self.Port)))
	// memberlist announced this node to itself (NotifyJoin) inside Create,
	// so the first ring, of one, is due; build it before serving.
	n.rebuildRing()

	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	n.wg.Go(func() { n.grpcSrv.Serve(n.grpcLis) })
	if n.httpSrv != nil {
		n.wg.Go(func() { n.httpSrv.Serve(n.httpLis) })
	}
	n.wg.Go(func() { n.ringLoop(ctx) })
	n.wg.Go(func() { n.rejoinLoop(ctx) })
	n.log.Info("node started", "gossip", n.gossipAddr, "grpc", n.grpcAddr, "http", httpAdv, "join", cfg.Join)
	ok = true
	return n, nil
}

func advertised(adv string, bound net.Addr) string {
	if adv != "" {
		return adv
	}
	return bound.String()
}

func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, port, nil
}

// Name returns the node's member name.
func (n *Node) Name() string { return n.cfg.Name }

// GossipAddr returns the gossip address other members join through.
func (n *Node) GossipAddr() string { return n.gossipAddr }

// GRPCAddr returns the address of the node's gRPC API.
func (n *Node) GRPCAddr() string { return n.grpcAddr }

// HTTPAddr returns the address of the node's HTTP API, or "" if it has
// none.
func (n *Node) HTTPAddr() string {
	if n.httpLis == nil {
		return ""
	}
	return n.httpLis.Addr().String()
}

// Ready reports whether the node has joined (or has no one to join) and
// has a ring that includes itself.
func (n *Node) Ready() bool {
	return n.joined.Load() && n.view.Load().ring.Has(n.cfg.Name) && !n.closed.Load()
}

// RateLimit reports whether userID may do action once more, with at most
// limit actions per window. It is shorthand for Check with one hit and the
// token bucket. The error is non-nil only when there is no decision (see
// Check).
func (n *Node) RateLimit(ctx context.Context, userID, action string, limit int64, window time.Duration) (bool, error) {
	d, err := n.Check(ctx, bucket.Request{UserID: userID, Action: action, Limit: limit, Window: window, Hits: 1})
	return d.Allowed, err
}

// Check spends req.Hits from the bucket of (req.UserID, req.Action) at the
// key's owner, which may be this node, and returns the decision. Errors:
// bucket.ErrInvalidArgument (bad input; nothing is spent), ErrClosed,
// ErrNoOwner (wrapping the cause), or ctx's error. A check waits at most
// CheckTimeout unless ctx has an earlier deadline.
func (n *Node) Check(ctx context.Context, req bucket.Request) (bucket.Decision, error) {
	if n.closed.Load() {
		return bucket.Decision{}, ErrClosed
	}
	if err := n.store.Validate(req); err != nil {
		return bucket.Decision{}, err
	}
	key := n.hash(req.UserID, req.Action)
	timed := false // the deadline is set only when a check has to wait on a peer
	var lastErr error
	// A receiver whose ring has moved answers ErrNotOwner; re-read our own
	// ring and try once more, never more, so that differing views cannot
	// bounce a check around.
	for range 2 {
		v := n.view.Load()
		owner := v.ring.Owner(key.Hi)
		switch {
		case owner == "":
			return bucket.Decision{}, fmt.Errorf("%w: the ring is empty", ErrNoOwner)
		case owner == n.cfg.Name:
			n.local.Add(1)
			rep, err := n.store.CheckKey(key, req, 1)
			if err != nil {
				return bucket.Decision{}, fmt.Errorf("cluster: %w", err)
			}
			if rep.Admitted > 0 {
				return rep.LastAdmitted, nil
			}
			return rep.Denied, nil
		}
		p, ok := v.peers[owner]
		if !ok {
			return bucket.Decision{}, fmt.Errorf("%w: no client for owner %s", ErrNoOwner, owner)
		}
		if !timed && n.cfg.CheckTimeout > 0 {
			timed = true
			if deadline, ok := ctx.Deadline(); !ok || time.Until(deadline) > n.cfg.CheckTimeout {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, n.cfg.CheckTimeout)
				defer cancel()
			}
		}
		d, err := p.Check(ctx, key, req)
		switch {
		case err == nil:
			return d, nil
		case errors.Is(err, transport.ErrNotOwner), errors.Is(err, transport.ErrClosed):
			lastErr = err
			continue
		case errors.Is(err, bucket.ErrInvalidArgument):
			return bucket.Decision{}, err
		case ctx.Err() != nil:
			return bucket.Decision{}, fmt.Errorf("cluster: check forwarded to %s: %w", owner, ctx.Err())
		default:
			return bucket.Decision{}, fmt.Errorf("%w: check forwarded to %s: %w", ErrNoOwner, owner, err)
		}
	}
	return bucket.Decision{}, fmt.Errorf("%w: ownership kept moving: %w", ErrNoOwner, lastErr)
}

// CheckOwned applies checks other nodes forwarded here. It implements
// transport.Owner.
func (n *Node) CheckOwned(ctx context.Context, checks []transport.OwnedCheck, results []transport.OwnedResult) {
	v := n.view.Load()
	for i, c := range checks {
		if n.closed.Load() {
			results[i].Err = transport.ErrClosed
			continue
		}
		if v.ring.Owner(c.Key.Hi) != n.cfg.Name {
			results[i].Err = transport.ErrNotOwner
			continue
		}
		results[i].Repeated, results[i].Err = n.store.CheckKey(c.Key, c.Request, c.Count)
	}
}

var (
	_ transport.Limiter   = (*Node)(nil)
	_ transport.Owner     = (*Node)(nil)
	_ transport.Directory = (*Node)(nil)
)

// Members returns this node's name and every member it has heard of, with
// its state. It implements transport.Directory.
func (n *Node) Members() (string, []transport.Member) {
	v := n.view.Load()
	known := n.snapshot()
	out := make([]transport.Member, 0, len(known))
	for name, k := range known {
		m := transport.Member{Name: name, GossipAddr: k.gossip, State: k.state, InRing: v.ring.Has(name)}
		if md, err := decodeMeta([]byte(k.meta)); err == nil {
			m.GRPCAddr, m.HTTPAddr = md.GRPC, md.HTTP
		}
		out = append(out, m)
	}
	sortMembers(out)
	return n.cfg.Name, out
}

// OwnerOf returns the member that owns (userID, action) in this node's
// current ring, and the key's partition. It implements
// transport.Directory.
func (n *Node) OwnerOf(userID, action string) (transport.Member, int, error) {
	if err := bucket.ValidateIDs(userID, action); err != nil {
		return transport.Member{}, 0, err
	}
	key := n.hash(userID, action)
	v := n.view.Load()
	owner := v.ring.Owner(key.Hi)
	if owner == "" {
		return transport.Member{}, 0, fmt.Errorf("%w: the ring is empty", ErrNoOwner)
	}
	_, members := n.Members()
	for _, m := range members {
		if m.Name == owner {
			return m, v.ring.Partition(key.Hi), nil
		}
	}
	md := v.members[owner]
	return transport.Member{Name: owner, GRPCAddr: md.GRPC, HTTPAddr: md.HTTP, State: "alive", InRing: true}, v.ring.Partition(key.Hi), nil
}

// Stats is a snapshot of a node's counters.
type Stats struct {
	Store       bucket.Stats
	Members     int    // in the ring
	RingChanges uint64 // ring rebuilds since start
	Local       uint64 // checks entering through this node that it decided as their owner
	Forwarded   uint64 // checks sent to other owners
	ForwardRPCs uint64 // Forward calls made for them
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	v := n.view.Load()
	st := Stats{Store: n.store.Stats(), Members: v.ring.Len(), RingChanges: n.ringChanges.Load(), Local: n.local.Load()}
	for _, p := range v.peers {
		st.Forwarded += p.Stats().Checks.Load()
		st.ForwardRPCs += p.Stats().RPCs.Load()
	}
	return st
}

// Close leaves the cluster and stops the node: it tells the other members
// it is leaving, stops accepting checks, lets in-flight ones finish, closes
// its peer clients and waits for its goroutines, all within ctx. It is
// idempotent; checks after Close return ErrClosed.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	n.closing.Do(func() {
		n.closed.Store(true)
		n.log.Info("leaving the cluster")
		leaveTimeout := time.Second
		if d, ok := ctx.Deadline(); ok {
			leaveTimeout = min(leaveTimeout, time.Until(d)/2)
		}
		if err := n.ml.Leave(leaveTimeout); err != nil {
			errs = append(errs, fmt.Errorf("cluster: leave: %w", err))
		}
		if err := n.ml.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: stop gossip: %w", err))
		}
		n.stop()
		stopped := make(chan struct{})
		go func() { n.grpcSrv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			n.grpcSrv.Stop()
			<-stopped
		}
		if n.httpSrv != nil {
			if err := n.httpSrv.Shutdown(ctx); err != nil {
				n.httpSrv.Close()
				errs = append(errs, fmt.Errorf("cluster: stop HTTP: %w", err))
			}
		}
		for _, p := range n.view.Load().peers {
			if err := p.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		waited := make(chan struct{})
		go func() { n.wg.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("cluster: waiting for goroutines: %w", ctx.Err()))
		}
		n.store.Close()
		n.log.Info("node stopped")
	})
	return errors.Join(errs...)
}

// shutdownListeners releases what New bound before it failed.
func (n *Node) shutdownListeners() {
	if n.ml != nil {
		n.ml.Shutdown()
	}
	if n.grpcLis != nil {
		n.grpcLis.Close()
	}
	if n.httpLis != nil {
		n.httpLis.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
}

func (n *Node) peerConfig() transport.PeerConfig {
	pc := n.cfg.Peer
	pc.Self = n.cfg.Name
	return pc
}
