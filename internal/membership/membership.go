// Package membership is a node's gossip: it runs memberlist, tells the
// other members who this node is (Meta), remembers what gossip said about
// every member, and keeps joining the seeds and known members so that a
// cluster split by a partition joins up again once it heals.
//
// It knows nothing of rings, buckets or gRPC; package cluster builds its
// ring from Members whenever OnChange fires. memberlist's types stay in
// here, except the Transport a test may inject.
package membership

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/drlimit/drl/bucket"
)

// ProtocolVersion is carried in every member's metadata; members with a
// different version are kept out of the ring. 2: strict_window became
// algorithm 0, which renumbered every algorithm on the peer wire.
const ProtocolVersion = 2

// Meta is what a member tells the others about itself through gossip.
type Meta struct {
	Version int    `json:"v"`
	Name    string `json:"name"` // the member's configured name, without the instance suffix
	GRPC    string `json:"grpc"`
	HTTP    string `json:"http,omitempty"`
	// Ready turns true once the member has joined (or has no one to join)
	// and so knows every member. Until then nobody, itself included, puts
	// it in the ring: a half-joined node would compute ownership from half
	// a membership and could not know whom to ask for a key's history.
	Ready bool `json:"ready,omitempty"`
	// Started is when this instance started, in Unix nanoseconds: of two
	// live instances that claim one name, the newer owns its place.
	Started int64 `json:"started,omitempty"`
	// Leaving turns true when the member starts a graceful leave: the
	// others take it out of their rings at once, wait for its handoff, and
	// do not count it as failed once it is gone.
	Leaving bool `json:"leaving,omitempty"`
	// Restoring says this instance started with a saved snapshot of
	// buckets (package snapshot), some of which may belong to others: an
	// owner holding nothing for a key waits for this member's handoff
	// after it joins, as it would for a key it gained.
	Restoring bool `json:"restoring,omitempty"`
}

// maxMetaBytes is memberlist's limit on a node's metadata.
const maxMetaBytes = memberlist.MetaMaxSize

func (m Meta) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetaBytes {
		return nil, fmt.Errorf("membership: metadata is %d bytes, more than %d", len(b), maxMetaBytes)
	}
	return b, nil
}

// DecodeMeta parses and checks a member's metadata, which arrives from the
// network.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) > maxMetaBytes {
		return m, fmt.Errorf("metadata is %d bytes", len(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("metadata: %w", err)
	}
	if m.Version != ProtocolVersion {
		return m, fmt.Errorf("protocol version %d, want %d", m.Version, ProtocolVersion)
	}
	if _, _, err := net.SplitHostPort(m.GRPC); err != nil {
		return m, fmt.Errorf("metadata grpc address %q: %w", m.GRPC, err)
	}
	return m, nil
}

// Member is what gossip last said about one member instance.
type Member struct {
	Gossip string // its gossip address, host:port
	State  string // "alive", or "dead" (failed or left)
	Meta   string // its metadata as sent; DecodeMeta reads it
	// Since is when State last changed, by Config.Clock.
	Since time.Duration
}

// Profile names a set of memberlist timings.
type Profile int

const (
	// LAN suits nodes on one network.
	LAN Profile = iota
	// Local suits nodes on one machine, such as tests.
	Local
)

// Config says how to run a node's gossip. ID, BindHost and OnChange are
// required.
type Config struct {
	// ID names this instance in gossip: unique among live instances.
	ID string
	// BindHost and BindPort are where gossip listens (port 0 picks one);
	// AdvertiseHost and AdvertisePort, when set, what others dial.
	BindHost      string
	BindPort      int
	AdvertiseHost string
	AdvertisePort int
	Profile       Profile
	// Transport replaces memberlist's network transport (chaos tests).
	Transport memberlist.Transport
	// Keys, when set, encrypt gossip: Keys[0] encrypts, all decrypt.
	Keys [][]byte
	// Join lists seeds' gossip addresses; empty makes a cluster of one.
	Join []string
	// RejoinInterval is how often Run joins the seeds and known members
	// that gossip does not see alive; 0 joins once.
	RejoinInterval time.Duration
	// AnnounceTimeout bounds gossiping this node's readiness.
	AnnounceTimeout time.Duration
	// OnChange is called, from memberlist's goroutines, whenever a member
	// joins, leaves, fails or updates its metadata, and when this node
	// turns ready. It must not block.
	OnChange func()
	Logger   *slog.Logger
	// Clock stamps state changes (Member.Since). Default
	// bucket.SystemClock().
	Clock bucket.Clock
}

// Gossip is one node's membership. It is safe for concurrent use.
type Gossip struct {
	cfg     Config
	log     *slog.Logger
	ml      *memberlist.Memberlist
	keyring *memberlist.Keyring // nil without encryption
	addr    string              // advertised gossip address
	stopped atomic.Bool         // Shutdown was called: memberlist's lines are dropped

	// metaMu guards self; metaBytes is self encoded, read by memberlist.
	metaMu    sync.Mutex
	self      Meta
	metaBytes atomic.Pointer[[]byte]
	joined    atomic.Bool

	// mu guards members: every instance gossip has told us about.
	mu      sync.Mutex
	members map[string]Member
}

// Start starts gossip for a node that describes itself with self (Ready
// is set by Start once the node has joined). It does not join: Run does.
// A node with nothing to join is ready at once.
func Start(cfg Config, self Meta) (*Gossip, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = bucket.SystemClock()
	}
	g := &Gossip{cfg: cfg, log: cfg.Logger, members: map[string]Member{}}
	self.Version, self.Ready = ProtocolVersion, false
	g.self = self
	if err := g.publish(); err != nil {
		return nil, err
	}
	ml, err := memberlist.Create(g.memberlistConfig())
	if err != nil {
		return nil, fmt.Errorf("membership: start gossip on %s: %w", net.JoinHostPort(cfg.BindHost, strconv.Itoa(cfg.BindPort)), err)
	}
	g.ml = ml
	local := ml.LocalNode()
	g.addr = net.JoinHostPort(local.Addr.String(), strconv.Itoa(int(local.Port)))
	if len(cfg.Join) == 0 {
		g.markJoined()
	}
	return g, nil
}

// Addr returns the gossip address others reach this node at.
func (g *Gossip) Addr() string { return g.addr }

// Joined reports whether the node has joined a member (or had nobody to
// join): from then on it knows the cluster and is ready for a ring.
func (g *Gossip) Joined() bool { return g.joined.Load() }

// Members returns a copy of what gossip has told us about every instance,
// this node's own included, by instance ID.
func (g *Gossip) Members() map[string]Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]Member, len(g.members))
	for id, m := range g.members {
		out[id] = m
	}
	return out
}

// Leave tells the others this node is leaving, waiting at most timeout
// (never zero or less: memberlist would wait forever).
func (g *Gossip) Leave(timeout time.Duration) error {
	return g.ml.Leave(max(timeout, time.Millisecond))
}

// Shutdown stops gossip at once. It is idempotent.
// memberlist's timers may still fire and log after it (a member
// suspected, say); a node that has left says nothing more, so those
// lines are dropped.
func (g *Gossip) Shutdown() error {
	g.stopped.Store(true)
	return g.ml.Shutdown()
}

func (g *Gossip) memberlistConfig() *memberlist.Config {
	var mc *memberlist.Config
	switch g.cfg.Profile {
	case Local:
		// Probe timeouts much under 100 ms made nodes in race-detector
		// tests on two cores suspect each other under load, and a member
		// falsely declared dead splits a key's authority.
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 150 * time.Millisecond
		mc.GossipInterval = 30 * time.Millisecond
		mc.PushPullInterval = 2 * time.Second
		mc.SuspicionMult = 3
		mc.SuspicionMaxTimeoutMult = 3
		mc.TCPTimeout = 500 * time.Millisecond
	default:
		mc = memberlist.DefaultLANConfig()
		mc.ProbeInterval = 500 * time.Millisecond
		mc.ProbeTimeout = 250 * time.Millisecond
		mc.GossipInterval = 100 * time.Millisecond
		mc.SuspicionMult = 3
		mc.SuspicionMaxTimeoutMult = 2
		mc.TCPTimeout = 2 * time.Second
	}
	// A node that restarts with the same name on a new port may take its
	// name back once it has been dead this long.
	mc.DeadNodeReclaimTime = time.Second
	mc.Name = g.cfg.ID
	mc.BindAddr, mc.BindPort = g.cfg.BindHost, g.cfg.BindPort
	if g.cfg.AdvertiseHost != "" {
		mc.AdvertiseAddr, mc.AdvertisePort = g.cfg.AdvertiseHost, g.cfg.AdvertisePort
	}
	if g.cfg.Transport != nil {
		mc.Transport = g.cfg.Transport
	}
	if len(g.cfg.Keys) > 0 {
		// Validated lengths make NewKeyring's errors impossible.
		g.keyring, _ = memberlist.NewKeyring(g.cfg.Keys[1:], g.cfg.Keys[0])
		mc.Keyring = g.keyring
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Delegate = delegate{g}
	mc.Events = events{g}
	mc.Logger = log.New(slogWriter{log: g.log.With("component", "memberlist"), stopped: &g.stopped}, "", 0)
	return mc
}

// publish encodes self for gossip.
func (g *Gossip) publish() error {
	g.metaMu.Lock()
	defer g.metaMu.Unlock()
	b, err := g.self.encode()
	if err != nil {
		return err
	}
	g.metaBytes.Store(&b)
	return nil
}

// delegate hands memberlist our metadata; it carries no other messages.
type delegate struct{ g *Gossip }

func (d delegate) NodeMeta(limit int) []byte {
	b := d.g.metaBytes.Load()
	if b == nil || len(*b) > limit {
		return nil
	}
	return *b
}

func (delegate) NotifyMsg([]byte)                           {}
func (delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (delegate) LocalState(join bool) []byte                { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool)     {}

// events records membership changes and signals them. memberlist calls it
// from its own goroutines, so it only records and signals.
type events struct{ g *Gossip }

// memberlist's Node.State in these calls is stale (nodeState shadows it),
// so the state comes from which callback fired. A member that left
// gracefully and one that died are both "dead" here.
func (e events) NotifyJoin(m *memberlist.Node)   { e.g.note(m, "alive") }
func (e events) NotifyLeave(m *memberlist.Node)  { e.g.note(m, "dead") }
func (e events) NotifyUpdate(m *memberlist.Node) { e.g.note(m, "alive") }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = events{}
)

// note remembers a member's gossip address, state and metadata. It copies
// what it needs while memberlist holds its lock: the *Node it hands out
// may change under a reader afterwards, which the race detector reports.
func (g *Gossip) note(m *memberlist.Node, state string) {
	g.mu.Lock()
	since := g.cfg.Clock.Now()
	if old, ok := g.members[m.Name]; ok && old.State == state {
		since = old.Since
	}
	g.members[m.Name] = Member{
		Gossip: net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port))),
		State:  state,
		Meta:   string(m.Meta),
		Since:  since,
	}
	g.mu.Unlock()
	g.cfg.OnChange()
}

// Run joins the seeds and every known member that gossip does not see
// alive, now and then every RejoinInterval, until ctx ends. memberlist
// alone stays split after a partition heals, because it does not retry
// members it has declared dead. The caller owns the goroutine.
func (g *Gossip) Run(ctx context.Context) {
	g.tryJoin()
	if g.cfg.RejoinInterval <= 0 {
		return
	}
	t := time.NewTicker(g.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.tryJoin()
		}
	}
}

func (g *Gossip) tryJoin() {
	known := g.Members()
	alive := map[string]bool{}
	for _, k := range known {
		if k.State == "alive" {
			alive[k.Gossip] = true
		}
	}
	// Another member that joined this one counts as a join: this node has
	// its state then, even while some seeds are still down (a cluster
	// restarting one node at a time).
	if len(alive) > 1 && g.markJoined() {
		g.log.Info("joined the cluster", "through", "a member that joined this one")
	}
	var candidates []string
	seen := map[string]bool{g.addr: true}
	add := func(addr string) {
		if !seen[addr] && !alive[addr] {
			seen[addr] = true
			candidates = append(candidates, addr)
		}
	}
	for _, s := range g.cfg.Join {
		add(s)
	}
	for _, k := range known {
		add(k.Gossip)
	}
	if len(candidates) == 0 {
		g.markJoined()
		return
	}
	contacted, err := g.ml.Join(candidates)
	switch {
	case contacted > 0:
		if g.markJoined() {
			g.log.Info("joined the cluster", "contacted", contacted)
		}
	case err != nil && !g.joined.Load():
		g.log.Warn("join failed; retrying", "seeds", candidates, "err", oneLine(err))
	case err != nil:
		g.log.Debug("rejoin found nobody", "candidates", candidates, "err", oneLine(err))
	}
}

// markJoined records that the node has joined (or has nobody to join) and
// reports whether this call was the first. The first call tells the others
// the node is ready, which puts it in every ring.
func (g *Gossip) markJoined() bool {
	if !g.joined.CompareAndSwap(false, true) {
		return false
	}
	g.metaMu.Lock()
	g.self.Ready = true
	g.metaMu.Unlock()
	if err := g.publish(); err != nil {
		g.log.Error("metadata not published", "err", err)
	}
	// This node's own ring first: checks entering it wait for one.
	g.cfg.OnChange()
	g.push(g.cfg.AnnounceTimeout)
	g.cfg.OnChange()
	return true
}

// AnnounceLeave tells the others that this node is leaving, in its metadata, and
// pushes that to every live member directly (within timeout), so that
// they take it out of their rings before it hands its keys over. Gossip's
// own leave (Leave) follows once the handoff is done.
func (g *Gossip) AnnounceLeave(timeout time.Duration) {
	g.metaMu.Lock()
	g.self.Leaving = true
	g.metaMu.Unlock()
	if err := g.publish(); err != nil {
		g.log.Error("metadata not published", "err", err)
		return
	}
	g.push(timeout)
	g.cfg.OnChange()
}

// push gossips this node's metadata (within timeout), then exchanges state
// with every live member directly: gossip alone may take seconds to carry
// a change to everyone (it was seen to wait for a push-pull), and a member
// that has not heard computes other owners than everyone else.
func (g *Gossip) push(timeout time.Duration) {
	if err := g.ml.UpdateNode(timeout); err != nil {
		g.log.Warn("metadata not yet gossiped", "err", err)
	}
	var others []string
	for id, k := range g.Members() {
		if id != g.cfg.ID && k.State == "alive" {
			others = append(others, k.Gossip)
		}
	}
	if len(others) > 0 {
		if _, err := g.ml.Join(others); err != nil {
			g.log.Debug("pushing metadata", "err", err)
		}
	}
}

// Keys returns the gossip keys in force, the one that encrypts first; nil
// when gossip is not encrypted. The slices are the keyring's: read them,
// never change them. Safe for concurrent use.
func (g *Gossip) Keys() [][]byte {
	if g.keyring == nil {
		return nil
	}
	return g.keyring.GetKeys()
}

// SetKeys changes the gossip keyring at run time: keys[0] becomes the key
// that encrypts, every key in keys decrypts, and keys not in keys are
// dropped. It fails if gossip started without encryption.
func (g *Gossip) SetKeys(keys [][]byte) error {
	if g.keyring == nil {
		return errors.New("membership: gossip encryption is off; start the node with gossip keys")
	}
	if len(keys) == 0 {
		return errors.New("membership: no gossip keys")
	}
	for _, k := range keys {
		if err := g.keyring.AddKey(k); err != nil {
			return fmt.Errorf("membership: gossip key: %w", err)
		}
	}
	if err := g.keyring.UseKey(keys[0]); err != nil {
		return fmt.Errorf("membership: gossip key: %w", err)
	}
	for _, old := range g.keyring.GetKeys() {
		if !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, old) }) {
			if err := g.keyring.RemoveKey(old); err != nil {
				return fmt.Errorf("membership: gossip key: %w", err)
			}
		}
	}
	return nil
}

// slogWriter adapts memberlist's log.Logger lines ("[WARN] memberlist: ...")
// to slog levels, until the gossip is stopped.
type slogWriter struct {
	log     *slog.Logger
	stopped *atomic.Bool
}

func (w slogWriter) Write(p []byte) (int, error) {
	if w.stopped.Load() {
		return len(p), nil
	}
	msg := string(bytes.TrimSpace(p))
	level := slog.LevelInfo
	for _, l := range memberlistLevels {
		if rest, ok := strings.CutPrefix(msg, l.prefix); ok {
			level, msg = l.level, strings.TrimSpace(rest)
			break
		}
	}
	w.log.Log(context.Background(), level, msg)
	return len(p), nil
}

var memberlistLevels = []struct {
	prefix string
	level  slog.Level
}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}}

// oneLine is err's message on one line, for a log: memberlist's Join
// returns a go-multierror, whose message is "1 error occurred:\n\t* ...\n\n";
// its errors are joined with "; " instead, as are errors.Join's lines.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	if m, ok := err.(interface{ WrappedErrors() []error }); ok {
		msgs := make([]string, 0, len(m.WrappedErrors()))
		for _, e := range m.WrappedErrors() {
			msgs = append(msgs, oneLine(e))
		}
		return strings.Join(msgs, "; ")
	}
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
