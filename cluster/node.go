package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-sockaddr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/internal/hotkeys"
	"github.com/drlimit/drl/internal/membership"
	"github.com/drlimit/drl/internal/ownership"
	"github.com/drlimit/drl/internal/peer"
	"github.com/drlimit/drl/transport"
)

// Node is one member of a drl cluster: it holds the buckets of the keys it
// owns, forwards checks on other keys to their owners, and serves the gRPC
// (and optionally HTTP) API. Embed it in an application, or run it with
// cmd/node. A Node is safe for concurrent use.
type Node struct {
	cfg Config
	// id names this instance in gossip and in the ring: Name and a random
	// suffix. A member that restarts under the same name is a new instance,
	// so gossip about the old one (its leave, or its death) can never be
	// taken for news about the new one.
	id    string
	log   *slog.Logger
	store *engine.Store
	hash  bucket.KeyHasher

	gossip *membership.Gossip
	srv    servers

	// own is the ownership protocol's state: the core, the view checks
	// read, handoffs in flight (view.go, handoff.go).
	own ownershipState

	stats   counters
	metrics *metrics
	// topDenied counts denials where checks enter; lastAnswers keeps what
	// owners last said was left, for the local fail policy.
	topDenied   *hotkeys.TopDenied
	lastAnswers *hotkeys.LastAnswers
	snap        snapshots // nil store without Config.StateDir or Config.Snapshots
	events      eventLog  // ring changes and fallbacks, for the status page
	rates       rates     // check rates, sampled for the status page

	// certs tracks, with TLS on, which members showed a certificate from
	// the cluster's CA (certify.go).
	certs certifier
	life  lifecycle
}

// servers are the node's listeners and the servers on them.
type servers struct {
	grpcLis  net.Listener
	grpcSrv  *grpc.Server
	grpcAddr string // advertised
	httpLis  net.Listener
	httpSrv  *http.Server
}

// lifecycle is where the node is between New and Close.
type lifecycle struct {
	// joinSettled turns true the first time a ring with this node in it
	// settles: every peer reported the same ring and its handoff done.
	joinSettled atomic.Bool
	closed      atomic.Bool // Close or Halt began
	gone        atomic.Bool // Close closed the peer clients: nothing is passed on
	closing     sync.Once
	stopCtx     context.Context // ends when Close begins stopping goroutines
	stop        context.CancelFunc
	wg          sync.WaitGroup
}

// counters are the node's counts of what checks and handoffs did; Stats
// and the metrics read them.
type counters struct {
	ringChanges      atomic.Uint64
	local            atomic.Uint64 // checks decided here as the owner
	forwarded        atomic.Uint64 // checks sent to another owner
	peer             peer.Stats
	handoffsSent     atomic.Uint64
	handoffsReceived atomic.Uint64
	handoffsLost     atomic.Uint64
	relayWarned      atomic.Bool   // a failed relay while leaving was logged
	waitedHandoff    atomic.Uint64 // checks that waited for a handoff to settle
	fallbackLocal    atomic.Uint64 // checks answered by drl.FailLocal
	fallbackOpen     atomic.Uint64 // checks answered by drl.FailOpen
	fallbackClosed   atomic.Uint64 // checks answered by drl.FailClosed
	denyHits         atomic.Uint64 // checks answered from the deny cache
	leaseHits        atomic.Uint64 // checks answered from a token lease
	leasesGranted    atomic.Uint64 // leased checks granted to forwarders
	proxied          atomic.Uint64 // checks passed on to the owner this node knows
	shadowDenied     atomic.Uint64 // checks over the limit admitted by shadow mode
	multiRaces       atomic.Uint64 // limits that denied in a multi-limit check's second round
}

// view is one immutable ring from the ownership core, with what the node
// keeps beside it: clients for its members, and channels that say when it
// settled and when a newer view replaced it.
type view struct {
	*ownership.View
	peers map[string]*peer.Client
	// waitOver closes HandoffWait after the change: one timer per view,
	// not one per waiting check.
	waitOver <-chan struct{}
	// settled is closed once every peer has said it finished handing off
	// for this ring; until then, or HandoffWait, a check on a key this
	// node gained waits (check.go).
	settled    chan struct{}
	settleOnce sync.Once
	// done is settled's state, read on every owned check without a select.
	done atomic.Bool
	// warned: a check has logged that this view did not settle in time;
	// the others waiting on it stay quiet.
	warned atomic.Bool
	// deny caches owners' denials for this view; nil when disabled.
	deny *hotkeys.DenyCache
	// leases holds this view's token leases on hot keys; nil when disabled.
	leases *hotkeys.Leases
	// next is closed when a newer view replaces this one.
	next chan struct{}
}

// settle closes v.settled, once.
func (v *view) settle() {
	v.settleOnce.Do(func() {
		v.done.Store(true)
		close(v.settled)
	})
}

// keyHasher returns the hasher every node of a cluster uses to turn
// (user, action) into a bucket key and a ring position:
// transport.HashKey, the wire contract's, which clients use to route. It
// must be the same on all members.
func keyHasher() bucket.KeyHasher { return transport.HashKey }

// New validates cfg, binds the gossip, gRPC and HTTP listeners and starts
// serving. Joining the members in cfg.Join happens in the background (see
// Ready); New never waits for it. Call Close to leave and stop.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{
		cfg:  cfg,
		id:   cfg.Name + "/" + instanceSuffix(),
		log:  cfg.Logger.With("node", cfg.Name),
		hash: keyHasher(),
	}
	n.topDenied = hotkeys.NewTopDenied(cfg.Clock)
	n.lastAnswers = hotkeys.NewLastAnswers(cfg.Clock)
	n.own.rebuild = make(chan struct{}, 1)
	started := time.Now().UnixNano()
	n.own.core = ownership.New(ownership.Config{Self: n.id, Name: cfg.Name, Started: started, Ring: cfg.Ring,
		ForgetFailedAfter: cfg.ForgetFailedAfter, MaxWindow: n.maxWindow()})
	n.own.view.Store(&view{View: n.own.core.View(), peers: map[string]*peer.Client{}, settled: make(chan struct{}), next: make(chan struct{})})
	n.life.stopCtx, n.life.stop = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			n.life.stop()
			n.shutdownListeners()
		}
	}()

	var err error
	if n.metrics, err = newMetrics(n, cfg.Registerer); err != nil {
		return nil, fmt.Errorf("cluster: metrics: %w", err)
	}
	storeCfg := cfg.Store
	storeCfg.Clock, storeCfg.Hasher = cfg.Clock, n.hash
	if n.store, err = engine.New(storeCfg); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if n.own.prov, err = ownership.NewProvisional(cfg.Clock, n.hash, cfg.Store.MinWindow, cfg.Store.MaxWindow); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if n.snap.store, err = openSnapshots(cfg); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if n.snap.store != nil {
		// Before the node serves or joins: it must not answer from a fresh
		// bucket what its snapshot holds (snapshot.go).
		n.loadSnapshot(n.life.stopCtx)
	}

	if n.srv.grpcLis = cfg.GRPCListener; n.srv.grpcLis == nil {
		if n.srv.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			return nil, fmt.Errorf("cluster: listen for gRPC on %s: %w", cfg.GRPCAddr, err)
		}
	}
	if n.srv.grpcAddr, err = advertised(cfg.GRPCAdvertise, n.srv.grpcLis.Addr()); err != nil {
		return nil, fmt.Errorf("cluster: GRPCAdvertise: %w", err)
	}
	serverCfg := transport.ServerConfig{Limiter: n, Directory: n, DecidesLocally: n.decidesLocally, Admin: n, Ready: n.Ready, Logger: n.log,
		Status:  n.Status,
		Metrics: n.MetricsHandler()}
	grpcOpts := append(n.secure(&serverCfg), grpc.NumStreamWorkers(streamWorkers()))
	if cfg.TLS != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(cfg.TLS.ServerConfig())))
	}
	n.srv.grpcSrv = grpc.NewServer(grpcOpts...)
	transport.RegisterServices(n.srv.grpcSrv, serverCfg)
	peer.Register(n.srv.grpcSrv, peer.ServerConfig{Owner: peerSide{n}, Receiver: peerSide{n}, Logger: n.log})

	httpAdv := ""
	if cfg.HTTPAddr != "" {
		if n.srv.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("cluster: listen for HTTP on %s: %w", cfg.HTTPAddr, err)
		}
		if httpAdv, err = advertised("", n.srv.httpLis.Addr()); err != nil {
			return nil, fmt.Errorf("cluster: HTTP address: %w", err)
		}
		n.srv.httpSrv = &http.Server{Handler: transport.NewHTTPHandler(serverCfg), Protocols: transport.HTTPProtocols(), ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)}
		if cfg.TLS != nil {
			n.srv.httpSrv.TLSConfig = cfg.TLS.ServerConfig()
		}
	}
	host, port, err := splitPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: GossipAddr: %w", err)
	}
	gcfg := membership.Config{ID: n.id, BindHost: host, BindPort: port, Transport: cfg.GossipTransport,
		Keys: cfg.GossipKeys, Join: cfg.Join, RejoinInterval: cfg.RejoinInterval, AnnounceTimeout: cfg.HandoffTimeout,
		OnChange: n.signalRebuild, Logger: n.log, Clock: cfg.Clock}
	if cfg.Gossip == GossipLocal {
		gcfg.Profile = membership.Local
	}
	if cfg.GossipAdvertise != "" {
		if gcfg.AdvertiseHost, gcfg.AdvertisePort, err = splitPort(cfg.GossipAdvertise); err != nil {
			return nil, fmt.Errorf("cluster: GossipAdvertise: %w", err)
		}
	}
	// Until the node has joined it is in no ring, its own included
	// (membership.Meta.Ready).
	if n.gossip, err = membership.Start(gcfg, membership.Meta{Name: cfg.Name, GRPC: n.srv.grpcAddr, HTTP: httpAdv, Started: started,
		Restoring: n.snap.restored.Load() != nil}); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n.rebuildRing()

	ctx := n.life.stopCtx
	n.life.wg.Go(func() { n.srv.grpcSrv.Serve(n.srv.grpcLis) })
	if n.srv.httpSrv != nil {
		if cfg.TLS != nil {
			n.life.wg.Go(func() { n.srv.httpSrv.ServeTLS(n.srv.httpLis, "", "") })
		} else {
			n.life.wg.Go(func() { n.srv.httpSrv.Serve(n.srv.httpLis) })
		}
	}
	n.life.wg.Go(func() { n.ringLoop(ctx) })
	n.life.wg.Go(func() { n.gossip.Run(ctx) })
	n.life.wg.Go(func() { n.sampleLoop(ctx) })
	if n.snap.store != nil && cfg.SnapshotEvery > 0 {
		n.life.wg.Go(func() { n.snapshotLoop(ctx, cfg.SnapshotEvery) })
	}
	n.log.Info("node started", "gossip", n.gossip.Addr(), "grpc", n.srv.grpcAddr, "http", httpAdv, "join", cfg.Join)
	ok = true
	return n, nil
}

func advertised(adv string, bound net.Addr) (string, error) {
	if adv != "" {
		return adv, nil
	}
	tcp, ok := bound.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return bound.String(), nil
	}
	// Bound to every interface (in a container, say): others reach this
	// node at its private address, which is also what memberlist
	// advertises for gossip in that case.
	ip, err := sockaddr.GetPrivateIP()
	if err != nil || ip == "" {
		return "", fmt.Errorf("bound to %v with no private address to advertise; set the advertise address", bound)
	}
	return net.JoinHostPort(ip, strconv.Itoa(tcp.Port)), nil
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
func (n *Node) GossipAddr() string { return n.gossip.Addr() }

// GRPCAddr returns the address of the node's gRPC API.
func (n *Node) GRPCAddr() string { return n.srv.grpcAddr }

// HTTPAddr returns the address of the node's HTTP API, or "" if it has
// none.
func (n *Node) HTTPAddr() string {
	if n.srv.httpLis == nil {
		return ""
	}
	return n.srv.httpLis.Addr().String()
}

// Ready reports whether it is safe to take another member down: the node
// has joined (or has no one to join), is in its own ring and in every live
// member's (they all reported the same ring), and the handoffs its join
// set off are done. Once true it stays true until Close, through later
// ring changes: it gates a rolling restart, not each rebalance. It does
// not turn false without a majority (drl_quorum says that): such a node
// still serves the fail policy, and a load balancer that dropped every
// node of an even split would serve nothing at all.
func (n *Node) Ready() bool {
	return n.gossip.Joined() && n.life.joinSettled.Load() && n.own.view.Load().Ring.Has(n.id) && !n.life.closed.Load()
}

// RateLimit reports whether userID may do action once more, with at most
// limit actions in any window-long span. It is shorthand for Check with
// one hit and the default algorithm, strict_window. The error is non-nil
// only when there is no decision (see Check).
func (n *Node) RateLimit(ctx context.Context, userID, action string, limit int64, window time.Duration) (bool, error) {
	d, err := n.Check(ctx, bucket.Request{UserID: userID, Action: action, Limit: limit, Window: window, Hits: 1})
	return d.Allowed, err
}

var (
	_ drl.Limiter         = (*Node)(nil)
	_ transport.Directory = (*Node)(nil)
)

// maxWindow is the longest window a check may ask for.
func (n *Node) maxWindow() time.Duration {
	return cmp.Or(n.cfg.Store.MaxWindow, bucket.DefaultMaxWindow)
}

// peerSide is a Node as the other members see it through the peer
// protocol. The hooks they call stay off Node's public API.
type peerSide struct{ n *Node }

var (
	_ peer.Owner    = peerSide{}
	_ peer.Receiver = peerSide{}
)

func (p peerSide) CheckOwned(ctx context.Context, checks []peer.OwnedCheck, results []peer.OwnedResult) {
	p.n.checkOwned(ctx, checks, results)
}

func (p peerSide) ResetKey(key bucket.Key) int { return p.n.resetKey(key) }

// HandedOff is this node's done mark, withheld from a peer it still owes
// buckets a failed handoff did not deliver: sendOwed brings the mark with
// them.
func (p peerSide) HandedOff(to string) uint64 {
	if v := p.n.own.view.Load(); p.n.own.prov.Owes(v.Ring, to) {
		return 0
	}
	return p.n.own.handedOff.Load()
}

func (p peerSide) Absorb(ctx context.Context, from string, moved []engine.Moved, lent int, doneRing uint64) int {
	return p.n.absorb(ctx, from, moved, lent, doneRing)
}

// Members returns this node's name and every member it has heard of, with
// its state. A member that restarted under the same name shows once, as
// its newest instance. It implements transport.Directory.
func (n *Node) Members() (string, []drl.Member) {
	v := n.own.view.Load()
	byName := map[string]drl.Member{}
	for id, k := range n.gossip.Members() {
		m := n.member(v, id, k)
		if old, ok := byName[m.Name]; ok && (old.State == "alive" || m.State != "alive") {
			continue
		}
		byName[m.Name] = m
	}
	out := make([]drl.Member, 0, len(byName))
	for _, m := range byName {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b drl.Member) int { return cmp.Compare(a.Name, b.Name) })
	return n.cfg.Name, out
}

// member describes the member instance id as gossip last told us.
func (n *Node) member(v *view, id string, k membership.Member) drl.Member {
	m := drl.Member{Name: id, GossipAddr: k.Gossip, State: k.State, InRing: v.Ring.Has(id)}
	md, err := membership.DecodeMeta([]byte(k.Meta))
	if err == nil {
		m.GRPCAddr, m.HTTPAddr = md.GRPC, md.HTTP
		if md.Name != "" {
			m.Name = md.Name
		}
	}
	if m.State != "alive" {
		// Graceful leaves announce themselves; any other end is a failure,
		// which counts toward the cluster's size for a while (quorum.go).
		m.State = "failed"
		if err == nil && md.Leaving {
			m.State = "left"
		}
	}
	return m
}

// OwnerOf returns the member that owns (userID, action) in this node's
// current ring, and the key's partition. It implements
// transport.Directory.
func (n *Node) OwnerOf(userID, action string) (drl.Owner, error) {
	if err := bucket.ValidateIDs(userID, action); err != nil {
		return drl.Owner{}, err
	}
	key := n.hash(userID, action)
	v := n.own.view.Load()
	owner := v.Ring.Owner(key.Hi)
	if owner == "" {
		return drl.Owner{}, fmt.Errorf("%w: the ring is empty", drl.ErrNoOwner)
	}
	k, ok := n.gossip.Members()[owner]
	if !ok {
		k = membership.Member{State: "alive"}
	}
	return drl.Owner{Member: n.member(v, owner, k), Partition: v.Ring.Partition(key.Hi)}, nil
}

// Stats is a snapshot of a node's counters.
type Stats struct {
	Store       bucket.Stats
	Members     int    // in the ring
	RingChanges uint64 // ring rebuilds since start
	Local       uint64 // checks entering through this node that it decided as their owner
	Forwarded   uint64 // checks sent to other owners
	// Forward calls made for them, the distinct keys they carried (their
	// batch sizes summed), and those that failed or timed out.
	ForwardRPCs, ForwardEntries, ForwardErrors, ForwardTimeouts uint64
	// Buckets moved on ring changes: sent to new owners, received from old
	// ones, and lost (their new owner could not be reached; they start
	// fresh there).
	HandoffsSent, HandoffsReceived, HandoffsLost uint64
	// WaitedHandoff counts checks on newly owned keys that waited for the
	// handoffs of a ring change; Proxied counts checks passed on to the
	// owner this node knows.
	WaitedHandoff, Proxied uint64
	// Checks answered by a drl.FailPolicy because their owner could not be
	// reached in time.
	FallbackLocal, FallbackOpen, FallbackClosed uint64
	// DenyCacheHits counts checks answered, without a hop, from an owner's
	// earlier denial; LeaseHits from a token lease; LeasesGranted counts
	// leased checks this node granted as an owner.
	DenyCacheHits, LeaseHits, LeasesGranted uint64
	// ShadowDenied counts checks over their limit that shadow mode
	// admitted; MultiLimitRaces counts limits that denied in the second
	// round of a multi-limit check, after the first round said they would
	// admit (the other limits of those requests stayed spent).
	ShadowDenied, MultiLimitRaces uint64
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	v := n.own.view.Load()
	st := Stats{Store: n.store.Stats(), Members: v.Ring.Len(), RingChanges: n.stats.ringChanges.Load(), Local: n.stats.local.Load(),
		HandoffsSent: n.stats.handoffsSent.Load(), HandoffsReceived: n.stats.handoffsReceived.Load(), HandoffsLost: n.stats.handoffsLost.Load(),
		WaitedHandoff: n.stats.waitedHandoff.Load(), Proxied: n.stats.proxied.Load(),
		FallbackLocal: n.stats.fallbackLocal.Load(), FallbackOpen: n.stats.fallbackOpen.Load(), FallbackClosed: n.stats.fallbackClosed.Load(),
		DenyCacheHits: n.stats.denyHits.Load(), LeaseHits: n.stats.leaseHits.Load(), LeasesGranted: n.stats.leasesGranted.Load(),
		ShadowDenied: n.stats.shadowDenied.Load(), MultiLimitRaces: n.stats.multiRaces.Load()}
	st.Forwarded = n.stats.forwarded.Load()
	st.ForwardRPCs, st.ForwardEntries = n.stats.peer.RPCs.Load(), n.stats.peer.Entries.Load()
	// Timeouts first: a failure counts as an error before it counts as a
	// timeout, so errors read later are never fewer.
	st.ForwardTimeouts = n.stats.peer.Timeouts.Load()
	st.ForwardErrors = n.stats.peer.Errors.Load()
	return st
}

// Close leaves the cluster and stops the node: it tells the other members
// it is leaving, stops accepting checks, lets in-flight ones finish, closes
// its peer clients and waits for its goroutines, all within ctx. It is
// idempotent; checks after Close return drl.ErrClosed.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	n.life.closing.Do(func() {
		n.log.Info("leaving the cluster")
		// Hand every bucket to its owner in the ring without this node while
		// still a member: checks that keep arriving are answered from what
		// is held, or passed on to the new owner (answerNotOwned,
		// checkLeaving).
		n.own.mu.Lock()
		v := n.own.view.Load()
		leaving := n.own.core.RingWithout(v.View)
		n.own.leaving.Store(leaving)
		n.own.mu.Unlock()
		n.life.closed.Store(true)
		if leaving.Len() > 0 {
			// The others take this node out of their rings now, and wait
			// for its handoff before they decide on the keys they gain.
			n.gossip.AnnounceLeave(min(time.Second, n.cfg.HandoffTimeout))
			if n.snap.store != nil {
				// Members that are stopping too (the whole cluster, say)
				// take nothing: what nobody stays to hold is saved.
				members := n.describe(n.gossip.Members())
				n.own.mu.Lock()
				leaving = n.own.core.StayingRing(members)
				n.own.leaving.Store(leaving)
				n.own.mu.Unlock()
			}
			others := make(map[string]ownership.Member, len(v.Members))
			for id, m := range v.Members {
				if id != n.id {
					others[id] = m
				}
			}
			if leaving.Len() > 0 {
				handoffCtx, cancel := context.WithTimeout(ctx, n.cfg.HandoffTimeout)
				n.handOffAll(handoffCtx, leaving, ownership.RingID(others))
				cancel()
			}
		}
		leaveTimeout := time.Second
		if d, ok := ctx.Deadline(); ok {
			// Never zero or less: memberlist waits forever then.
			leaveTimeout = max(min(leaveTimeout, time.Until(d)/2), time.Millisecond)
		}
		if err := n.gossip.Leave(leaveTimeout); err != nil {
			// Nobody acknowledged in time (the others may be stopping too):
			// they will declare this node dead instead, which costs only
			// time, since its buckets are already handed off.
			n.log.Warn("leave not acknowledged", "err", err)
		}
		// Keep passing on checks from members that have not yet heard of
		// the leave.
		select {
		case <-time.After(n.cfg.LeaveDrain):
		case <-ctx.Done():
		}
		if err := n.gossip.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: stop gossip: %w", err))
		}
		n.life.stop()
		stopped := make(chan struct{})
		go func() { n.srv.grpcSrv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			n.srv.grpcSrv.Stop()
			<-stopped
		}
		if n.srv.httpSrv != nil {
			if err := n.srv.httpSrv.Shutdown(ctx); err != nil {
				n.srv.httpSrv.Close()
				errs = append(errs, fmt.Errorf("cluster: stop HTTP: %w", err))
			}
		}
		n.life.gone.Store(true)
		closed := map[*peer.Client]bool{}
		errs = append(errs, n.closePeers(ctx, closed)...)
		waited := make(chan struct{})
		go func() { n.life.wg.Wait(); close(waited) }()
		select {
		case <-waited:
			// A ring rebuilt while the peers closed made clients of its own.
			errs = append(errs, n.closePeers(ctx, closed)...)
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("cluster: waiting for goroutines: %w", ctx.Err()))
		}
		if n.snap.store != nil {
			// Last: no handoff or relay can bring this node buckets now.
			if err := n.saveSnapshot(context.WithoutCancel(ctx)); err != nil {
				errs = append(errs, err)
			} else {
				n.log.Info("snapshot saved", "buckets", n.snap.stats.buckets.Load(), "bytes", n.snap.stats.bytes.Load(),
					"took", time.Duration(n.snap.stats.took.Load()).Round(time.Microsecond))
			}
		}
		n.store.Close()
		n.own.prov.Close()
		n.log.Info("node stopped")
	})
	return errors.Join(errs...)
}

// Halt stops the node the way a crash would, for fault injection (the
// chaos package): no leave, no handoff, connections cut, state lost.
// Close after Halt does nothing more.
func (n *Node) Halt() {
	n.life.closing.Do(func() {
		n.life.closed.Store(true)
		n.gossip.Shutdown()
		n.life.stop()
		n.srv.grpcSrv.Stop()
		if n.srv.httpSrv != nil {
			n.srv.httpSrv.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		closed := map[*peer.Client]bool{}
		n.closePeers(ctx, closed)
		n.life.wg.Wait()
		n.closePeers(ctx, closed) // those a ring rebuilt meanwhile made
		n.store.Close()
		n.own.prov.Close()
	})
}

// closePeers closes the current view's peer clients and those a leaving
// node kept open, skipping the ones in closed and adding the rest to it.
func (n *Node) closePeers(ctx context.Context, closed map[*peer.Client]bool) []error {
	n.own.lingerMu.Lock()
	peers := append(n.own.lingering, slices.Collect(maps.Values(n.own.view.Load().peers))...)
	n.own.lingering = nil
	n.own.lingerMu.Unlock()
	var errs []error
	for _, p := range peers {
		if closed[p] {
			continue
		}
		closed[p] = true
		if err := p.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// shutdownListeners releases what New bound before it failed.
func (n *Node) shutdownListeners() {
	if n.gossip != nil {
		n.gossip.Shutdown()
	}
	if n.srv.grpcLis != nil {
		n.srv.grpcLis.Close()
	}
	if n.srv.httpLis != nil {
		n.srv.httpLis.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
	if n.own.prov != nil {
		n.own.prov.Close()
	}
}

func (n *Node) peerConfig() peer.ClientConfig {
	pc := n.cfg.Peer.client()
	pc.Self = n.id
	pc.Stats = &n.stats.peer
	if n.cfg.TLS != nil {
		pc.DialOptions = append(pc.DialOptions, grpc.WithTransportCredentials(credentials.NewTLS(n.cfg.TLS.ClientConfig())))
	}
	return pc
}

// instanceSuffix returns 6 random hex digits.
func instanceSuffix() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// streamWorkers is how many goroutines serve RPCs, each reused across calls.
// An RPC that finds none idle gets a fresh goroutine, whose stack then grows
// on the way to the handler: with 4 workers and 64 callers, stack growth was
// 16 % of a node's CPU in client mode; with 64, under 1 % (DESIGN.md §5).
// A parked worker costs its stack, a few KiB.
func streamWorkers() uint32 { return uint32(max(64, 4*runtime.GOMAXPROCS(0))) }
