package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/certs"
	"github.com/drlimit/drl/internal/ownership"
	"github.com/drlimit/drl/ring"
	"github.com/drlimit/drl/snapshot"
	"github.com/drlimit/drl/transport"
)

// Config configures a Node. The zero value of every field means its
// default, so Config{} runs a single node on the default loopback ports.
type Config struct {
	// Name is the member's unique name. Default: the host name and a random
	// suffix.
	Name string

	// GossipAddr is where memberlist listens (TCP and UDP), host:port. Port
	// 0 picks a free port. Default "127.0.0.1:7946".
	GossipAddr string
	// GossipAdvertise is the address other members reach GossipAddr at.
	// Default: the bound address.
	GossipAdvertise string
	// GRPCAddr is where the gRPC API (public and node-to-node) listens.
	// Default "127.0.0.1:7947".
	GRPCAddr string
	// GRPCAdvertise is the address other members reach GRPCAddr at.
	// Default: the bound address.
	GRPCAdvertise string
	// GRPCListener, when set, is served instead of listening on GRPCAddr;
	// fault injection wraps one. The node closes it on Close.
	GRPCListener net.Listener
	// HTTPAddr is where the HTTP/JSON API listens; empty means no HTTP
	// server.
	HTTPAddr string

	// Join lists gossip addresses of members to join. The node keeps trying
	// them, and every member it has seen, in the background until Close:
	// start-up and checks never wait for a join.
	Join []string
	// RejoinInterval is how often the node re-joins seeds and known members
	// that it does not currently see alive, which heals a split after a
	// partition ends. Default 2 s.
	RejoinInterval time.Duration
	// Gossip picks memberlist's timings: GossipLAN (default) or
	// GossipLocal (fast, for tests on one machine).
	Gossip GossipProfile
	// GossipTransport, when set, carries gossip instead of memberlist's own
	// UDP/TCP transport on GossipAddr; fault-injection tests wrap one to cut
	// links. The node shuts it down on Close.
	GossipTransport memberlist.NodeAwareTransport

	// TLS, when set, turns on TLS for the gRPC and HTTP listeners and
	// mutual TLS between members: peers present their certificates and
	// the peer API refuses callers whose certificate does not chain to the
	// CA. The store reloads the files (certs.Store.Watch, Reload).
	TLS *certs.Store
	// GossipKeys, when set, encrypts and authenticates gossip with
	// memberlist's keyring (AES-GCM; keys of 16, 24 or 32 bytes): the first
	// key encrypts, all of them decrypt, so keys rotate without a split
	// (SetGossipKeys, DESIGN.md §15). A node without a key cannot join.
	GossipKeys [][]byte
	// Tokens, when set, are the bearer tokens the public API's checks
	// require (Check, CheckBatch, CheckAll, Members, Owner, WatchRing and
	// their HTTP forms). Nil leaves checks open.
	Tokens *transport.Tokens
	// AdminTokens, when set, are the bearer tokens the admin calls require
	// (Reset, Forget, TopDenied, /v1/status); they also authorize checks.
	// When nil and Tokens is set, admin calls are refused to every caller
	// (PermissionDenied): a token that may check may not reset. When both
	// are nil, everything is open, as on a one-machine trial.
	AdminTokens *transport.Tokens
	// Insecure lets a node start whose gossip, gRPC or HTTP listener is
	// off loopback with neither GossipKeys nor TLS. Without it, Validate
	// and New refuse such a node with an *UnprotectedError (ErrUnprotected):
	// anyone who reaches it could join the ring and call the node-to-node
	// API. With it, the node starts, logs a warning and shows it on its
	// status. Loopback needs neither.
	Insecure bool

	// CheckTimeout bounds every check that has no earlier deadline in its
	// context. Default 50 ms.
	CheckTimeout time.Duration
	// FailPolicy says what a check answers when its owner cannot be reached
	// within its deadline. Default drl.FailLocal.
	FailPolicy drl.FailPolicy
	// NoDenyCache turns off answering a check locally from the owner's
	// earlier denial of the same check (exact; on by default).
	NoDenyCache bool
	// Leases turns on token leases for hot keys (lease.go): fewer hops for
	// admitted checks, never over-admission, but unused leased checks lapse
	// spent. Off by default.
	Leases bool
	// HandoffTimeout bounds one handoff of buckets to new owners after a
	// ring change or before leaving. Default 5 s.
	HandoffTimeout time.Duration
	// HandoffWait is how long after a ring change an owner asks a key's
	// previous owner about keys it holds nothing for, unless that member
	// says sooner that its handoff is done. Default 2 s.
	HandoffWait time.Duration
	// ForgetFailedAfter is how long a member that failed (crashed, cut off,
	// paused; not one that left gracefully) still counts toward the
	// cluster's size, so that a node on the minority side of a split
	// knows it is the minority (quorum.go). Node.Forget, or drlctl forget,
	// drops one sooner. Default 10 minutes.
	ForgetFailedAfter time.Duration
	// LeaveDrain is how long a leaving node keeps passing checks on to the
	// new owners after it has told gossip it is leaving. Default 300 ms.
	LeaveDrain time.Duration

	// StateDir, when set, is a directory where the node keeps a snapshot of
	// its buckets (package snapshot), so that counts survive a stop of the
	// whole cluster: saved on Close after the handoff and every
	// SnapshotEvery, loaded by New. Empty: no snapshots.
	StateDir string
	// Snapshots, when set, keeps the snapshot instead of a file in
	// StateDir: an application's own store. Set one of the two.
	Snapshots snapshot.Store
	// SnapshotEvery is how often a node with snapshots saves one while it
	// runs, which bounds what a crash of every node loses. Default 10 s;
	// negative turns periodic snapshots off (Close still saves).
	SnapshotEvery time.Duration

	// Store configures the local bucket store. Clock and Hasher are set by
	// the node (Clock from the field below; Hasher shared by all nodes).
	Store bucket.StoreConfig
	// Ring configures ownership; every member must use the same values.
	Ring ring.Config
	// Peer configures forwarding (batching) to other members.
	Peer PeerConfig
	// Clock is the node's monotonic clock. Default bucket.SystemClock().
	Clock bucket.Clock
	// Logger receives the node's logs, with node=<Name> added. Default
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives the node's Prometheus metrics. Default: a registry
	// of the node's own, served by MetricsHandler (and on /metrics of the
	// HTTP API). No metric label carries a user or an action.
	Registerer prometheus.Registerer
}

// GossipProfile names a set of memberlist timings.
type GossipProfile int

const (
	// GossipLAN suits nodes on one network: failures are suspected within
	// about 1 s and declared within about 4 s more.
	GossipLAN GossipProfile = iota
	// GossipLocal suits nodes on one machine, such as tests: failures are
	// declared within about 1 s.
	GossipLocal
)

// Defaults for Config.
const (
	DefaultGossipAddr     = "127.0.0.1:7946"
	DefaultGRPCAddr       = "127.0.0.1:7947"
	DefaultRejoinInterval = 2 * time.Second
	DefaultCheckTimeout   = 50 * time.Millisecond
	DefaultHandoffTimeout = 5 * time.Second
	DefaultHandoffWait    = ownership.DefaultHandoffWait
	DefaultLeaveDrain     = 300 * time.Millisecond
	DefaultForgetFailed   = ownership.DefaultForgetFailedAfter
	DefaultSnapshotEvery  = 10 * time.Second
)

// TestConfig returns a Config for tests: loopback addresses on free ports,
// fast gossip, fast rejoins, and no HTTP server.
func TestConfig(name string) Config {
	return Config{
		Name:           name,
		GossipAddr:     "127.0.0.1:0",
		GRPCAddr:       "127.0.0.1:0",
		Gossip:         GossipLocal,
		RejoinInterval: 200 * time.Millisecond,
		CheckTimeout:   2 * time.Second, // the race detector is slow; tests that time out set their own
		Store:          bucket.StoreConfig{SweepInterval: 50 * time.Millisecond},
	}
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		host, _ := os.Hostname()
		var b [3]byte
		rand.Read(b[:])
		c.Name = host + "-" + hex.EncodeToString(b[:])
	}
	if c.GossipAddr == "" {
		c.GossipAddr = DefaultGossipAddr
	}
	if c.GRPCAddr == "" {
		c.GRPCAddr = DefaultGRPCAddr
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = DefaultRejoinInterval
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = DefaultCheckTimeout
	}
	if c.FailPolicy == drl.FailDefault {
		c.FailPolicy = drl.FailLocal
	}
	if c.HandoffTimeout == 0 {
		c.HandoffTimeout = DefaultHandoffTimeout
	}
	if c.HandoffWait == 0 {
		c.HandoffWait = DefaultHandoffWait
	}
	if c.LeaveDrain == 0 {
		c.LeaveDrain = DefaultLeaveDrain
	}
	if c.ForgetFailedAfter == 0 {
		c.ForgetFailedAfter = DefaultForgetFailed
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	if c.Clock == nil {
		c.Clock = bucket.SystemClock()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every invalid field of c, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.Name) > 128 {
		errs = append(errs, fmt.Errorf("cluster: Name is %d bytes, more than 128", len(c.Name)))
	}
	for field, addr := range map[string]string{"GossipAddr": c.GossipAddr, "GRPCAddr": c.GRPCAddr,
		"GossipAdvertise": c.GossipAdvertise, "GRPCAdvertise": c.GRPCAdvertise, "HTTPAddr": c.HTTPAddr} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("cluster: %s %q: %w", field, addr, err))
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			errs = append(errs, fmt.Errorf("cluster: Join address %q: %w", j, err))
		}
	}
	if c.RejoinInterval < 0 {
		errs = append(errs, fmt.Errorf("cluster: RejoinInterval %v must not be negative", c.RejoinInterval))
	}
	if c.CheckTimeout < 0 {
		errs = append(errs, fmt.Errorf("cluster: CheckTimeout %v must not be negative", c.CheckTimeout))
	}
	if c.ForgetFailedAfter < 0 {
		errs = append(errs, fmt.Errorf("cluster: ForgetFailedAfter %v must not be negative", c.ForgetFailedAfter))
	}
	if c.HandoffTimeout < 0 || c.HandoffWait < 0 || c.LeaveDrain < 0 {
		errs = append(errs, fmt.Errorf("cluster: HandoffTimeout %v, HandoffWait %v and LeaveDrain %v must not be negative",
			c.HandoffTimeout, c.HandoffWait, c.LeaveDrain))
	}
	if c.StateDir != "" && c.Snapshots != nil {
		errs = append(errs, errors.New("cluster: StateDir and Snapshots are both set; set one"))
	}
	if c.FailPolicy > drl.FailClosed {
		errs = append(errs, fmt.Errorf("cluster: unknown FailPolicy %d", c.FailPolicy))
	}
	for i, k := range c.GossipKeys {
		if n := len(k); n != 16 && n != 24 && n != 32 {
			errs = append(errs, fmt.Errorf("cluster: GossipKeys[%d] is %d bytes; want 16, 24 or 32", i, n))
		}
	}
	if !c.Insecure {
		if u := c.unprotected(); u != nil {
			errs = append(errs, u)
		}
	}
	if c.Gossip != GossipLAN && c.Gossip != GossipLocal {
		errs = append(errs, fmt.Errorf("cluster: unknown Gossip profile %d", c.Gossip))
	}
	for _, err := range []error{c.Store.Validate(), c.Ring.Validate(), c.Peer.Validate()} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
