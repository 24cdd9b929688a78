package cluster

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
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/hashicorp/memberlist"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/hotkeys"
	"github.com/drlimit/drl/internal/peer"
	"github.com/drlimit/drl/ring"
)

// protocolVersion is carried in every member's metadata; members with a
// different version are kept out of the ring.
const protocolVersion = 1

// meta is what a member tells the others about itself through gossip.
type meta struct {
	Version int    `json:"v"`
	Name    string `json:"name"` // the member's configured name, without the instance suffix
	GRPC    string `json:"grpc"`
	HTTP    string `json:"http,omitempty"`
	// Ready turns true once the member has joined (or has no one to join)
	// and so knows every member. Until then nobody, itself included, puts
	// it in the ring: a half-joined node would compute ownership from half
	// a membership and could not know whom to ask for a key's history.
	Ready bool `json:"ready,omitempty"`
}

// maxMetaBytes is memberlist's limit on a node's metadata.
const maxMetaBytes = memberlist.MetaMaxSize

func (m meta) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetaBytes {
		return nil, fmt.Errorf("cluster: metadata is %d bytes, more than %d", len(b), maxMetaBytes)
	}
	return b, nil
}

// decodeMeta parses and checks a member's metadata, which arrives from the
// network.
func decodeMeta(b []byte) (meta, error) {
	var m meta
	if len(b) > maxMetaBytes {
		return m, fmt.Errorf("metadata is %d bytes", len(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("metadata: %w", err)
	}
	if m.Version != protocolVersion {
		return m, fmt.Errorf("protocol version %d, want %d", m.Version, protocolVersion)
	}
	if _, _, err := net.SplitHostPort(m.GRPC); err != nil {
		return m, fmt.Errorf("metadata grpc address %q: %w", m.GRPC, err)
	}
	return m, nil
}

// memberlistConfig builds memberlist's configuration for the node.
func (n *Node) memberlistConfig(host string, port int, advHost string, advPort int) *memberlist.Config {
	var mc *memberlist.Config
	switch n.cfg.Gossip {
	case GossipLocal:
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
	mc.Name = n.id
	mc.BindAddr, mc.BindPort = host, port
	if advHost != "" {
		mc.AdvertiseAddr, mc.AdvertisePort = advHost, advPort
	}
	if n.cfg.GossipTransport != nil {
		mc.Transport = n.cfg.GossipTransport
	}
	if len(n.cfg.GossipKeys) > 0 {
		// Validated lengths make NewKeyring's errors impossible.
		n.keyring, _ = memberlist.NewKeyring(n.cfg.GossipKeys[1:], n.cfg.GossipKeys[0])
		mc.Keyring = n.keyring
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Delegate = delegate{n}
	mc.Events = events{n}
	mc.Logger = log.New(slogWriter{n.log.With("component", "memberlist")}, "", 0)
	return mc
}

// delegate hands memberlist our metadata; it carries no other messages.
type delegate struct{ n *Node }

func (d delegate) NodeMeta(limit int) []byte {
	b := d.n.metaBytes.Load()
	if b == nil || len(*b) > limit {
		return nil
	}
	return *b
}

// publishMeta encodes selfMeta for gossip.
func (n *Node) publishMeta() error {
	b, err := n.selfMeta.encode()
	if err != nil {
		return err
	}
	n.metaBytes.Store(&b)
	return nil
}
func (delegate) NotifyMsg([]byte)                           {}
func (delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (delegate) LocalState(join bool) []byte                { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool)     {}

// events turns membership changes into a ring rebuild. memberlist calls it
// from its own goroutines, so it only records and signals.
type events struct{ n *Node }

// memberlist's Node.State in these calls is stale (nodeState shadows it),
// so the state comes from which callback fired. A member that left
// gracefully and one that died are both "dead" here.
func (e events) NotifyJoin(m *memberlist.Node)   { e.n.noteMember(m, "alive"); e.n.signalRebuild() }
func (e events) NotifyLeave(m *memberlist.Node)  { e.n.noteMember(m, "dead"); e.n.signalRebuild() }
func (e events) NotifyUpdate(m *memberlist.Node) { e.n.noteMember(m, "alive"); e.n.signalRebuild() }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = events{}
)

// noteMember remembers a member's gossip address, state and metadata, for
// the ring, rejoins and the member list. It copies what it needs while
// memberlist holds its lock: the *Node it hands out (and the ones
// Members() returns) may change under a reader afterwards, which the race
// detector reports.
func (n *Node) noteMember(m *memberlist.Node, state string) {
	n.knownMu.Lock()
	defer n.knownMu.Unlock()
	n.known[m.Name] = knownMember{
		gossip: net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port))),
		state:  state,
		meta:   string(m.Meta),
	}
}

type knownMember struct {
	gossip string
	state  string
	meta   string
}

func (n *Node) signalRebuild() {
	select {
	case n.rebuild <- struct{}{}:
	default: // a rebuild is already due; it will read the latest members
	}
}

// ringLoop rebuilds the ring whenever membership changes. Owned by n.wg.
func (n *Node) ringLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.rebuild:
			n.rebuildRing()
		}
	}
}

// snapshot copies what gossip has told us about every member.
func (n *Node) snapshot() map[string]knownMember {
	n.knownMu.Lock()
	defer n.knownMu.Unlock()
	out := make(map[string]knownMember, len(n.known))
	for name, k := range n.known {
		out[name] = k
	}
	return out
}

// rebuildRing builds a ring from the members gossip last called alive
// (suspects stay in until they are declared dead), off to the side, then
// swaps it in with its peer clients.
func (n *Node) rebuildRing() {
	old := n.view.Load()
	members := map[string]meta{}
	known := n.snapshot()
	if n.cfg.TLS != nil {
		n.forgetCertified(known)
	}
	for name, k := range known {
		if k.state != "alive" {
			continue
		}
		md, err := decodeMeta([]byte(k.meta))
		if err != nil {
			n.log.Warn("member kept out of the ring", "peer", name, "err", err)
			continue
		}
		if name == n.id {
			md.Ready = n.joined.Load() // gossip's copy of our own meta may lag
		}
		if !md.Ready || name != n.id && n.cfg.TLS != nil && !n.certified(name, md.GRPC) {
			continue
		}
		members[name] = md
	}
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	r, err := ring.New(n.cfg.Ring, names)
	if err != nil {
		n.log.Error("ring not rebuilt", "members", len(names), "err", err)
		return
	}
	// A node that is not yet ready is in no ring, its own included, so a
	// joiner's previous ring is the ring of the others: every key it owns
	// now counts as gained. While the last change has not settled, keys it
	// gained are still pending, so the ring before it stays the reference
	// (a second rebuild, even of the same ring, must not forget them).
	prev := old.ring
	select {
	case <-old.settled:
	default:
		if old.prev != nil {
			prev = old.prev
		}
	}
	v := &view{ring: r, members: members, peers: map[string]*peer.Client{}, version: old.version + 1,
		id: ringID(members), prev: prev, changed: n.cfg.Clock.Now(), settled: make(chan struct{}), next: make(chan struct{}),
		fallback: n.newFallbackStore()}
	if !n.cfg.NoDenyCache {
		v.deny = hotkeys.NewDenyCache(n.cfg.Clock)
	}
	if n.cfg.Leases {
		v.leases = hotkeys.NewLeases(n.cfg.Clock)
	}
	var stale []*peer.Client
	for name, md := range members {
		if name == n.id {
			continue
		}
		if p, ok := old.peers[name]; ok && old.members[name].GRPC == md.GRPC {
			v.peers[name] = p
			continue
		}
		p, err := peer.NewClient(name, md.GRPC, n.peerConfig())
		if err != nil {
			n.log.Warn("no client for member", "peer", name, "err", err)
			continue
		}
		v.peers[name] = p
	}
	for name, p := range old.peers {
		if v.peers[name] != p {
			stale = append(stale, p)
		}
	}
	// Fence off the keys this node no longer owns before anyone can see the
	// new view: a check racing the change either lands before the handoff
	// takes its bucket or is refused and re-routed, and a question about a
	// key on its way out waits for the handoff (moving).
	var ms *moveState
	if r.Has(n.id) && n.leaving.Load() == nil {
		ms = &moveState{ring: r, id: v.id, done: make(chan struct{})}
		n.moving.Store(ms)
		self := n.id
		n.store.SetFence(func(k bucket.Key) bool { return r.Owner(k.Hi) != self })
	}
	n.view.Store(v)
	close(old.next)
	n.checkSettled(v)
	n.ringChanges.Add(1)
	n.log.Info("ring changed", "members", r.Len(), "version", v.version)
	inRing := make([]string, 0, len(members))
	for _, md := range members {
		inRing = append(inRing, md.Name)
	}
	slices.Sort(inRing)
	if v.id != old.id {
		n.events.add("ring changed to " + strings.Join(inRing, ", "))
	}
	if ms != nil {
		n.wg.Go(func() {
			ctx, cancel := context.WithTimeout(n.stopCtx, n.cfg.HandoffTimeout)
			defer cancel()
			n.handOffMoved(ctx, ms)
		})
	}
	// Checks that still hold a stale peer finish or get drl.ErrClosed and retry
	// on the new view.
	for _, p := range stale {
		n.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			p.Close(ctx)
		})
	}
}

// rejoinLoop joins the seeds and every known member that memberlist does
// not currently see alive, now and then every RejoinInterval. memberlist
// alone stays split after a partition heals, because it does not retry
// members it has declared dead. Owned by n.wg.
func (n *Node) rejoinLoop(ctx context.Context) {
	n.tryJoin()
	if n.cfg.RejoinInterval <= 0 {
		return
	}
	t := time.NewTicker(n.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.tryJoin()
		}
	}
}

func (n *Node) tryJoin() {
	known := n.snapshot()
	alive := map[string]bool{}
	for _, k := range known {
		if k.state == "alive" {
			alive[k.gossip] = true
		}
	}
	var candidates []string
	seen := map[string]bool{n.gossipAddr: true}
	add := func(addr string) {
		if !seen[addr] && !alive[addr] {
			seen[addr] = true
			candidates = append(candidates, addr)
		}
	}
	for _, s := range n.cfg.Join {
		add(s)
	}
	for _, k := range known {
		add(k.gossip)
	}
	if len(candidates) == 0 {
		n.markJoined()
		return
	}
	contacted, err := n.ml.Join(candidates)
	switch {
	case contacted > 0:
		if n.markJoined() {
			n.log.Info("joined the cluster", "contacted", contacted)
		}
	case err != nil && !n.joined.Load():
		n.log.Warn("join failed; retrying", "seeds", candidates, "err", err)
	case err != nil:
		n.log.Debug("rejoin found nobody", "candidates", candidates, "err", err)
	}
}

// markJoined records that the node has joined (or has nobody to join) and
// reports whether this call was the first. The first call tells the others
// the node is ready, which puts it in every ring.
func (n *Node) markJoined() bool {
	if !n.joined.CompareAndSwap(false, true) {
		return false
	}
	n.selfMeta.Ready = true
	if err := n.publishMeta(); err != nil {
		n.log.Error("metadata not published", "err", err)
	}
	if err := n.ml.UpdateNode(n.cfg.HandoffTimeout); err != nil {
		n.log.Warn("readiness not yet gossiped", "err", err)
	}
	// Gossip may take seconds to carry the change to everyone (it was seen
	// to wait for a push-pull), and a member that does not know this node is
	// ready computes other owners than everyone else. Exchange state with
	// every member directly instead.
	var others []string
	for id, k := range n.snapshot() {
		if id != n.id && k.state == "alive" {
			others = append(others, k.gossip)
		}
	}
	if len(others) > 0 {
		if _, err := n.ml.Join(others); err != nil {
			n.log.Debug("announcing readiness", "err", err)
		}
	}
	n.signalRebuild()
	return true
}

// slogWriter adapts memberlist's log.Logger lines ("[WARN] memberlist: ...")
// to slog levels.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
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

// ringID names a ring by its members and their gRPC addresses, so that a
// member that restarts under the same name makes a different ring. Never 0.
func ringID(members map[string]meta) uint64 {
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	slices.Sort(names)
	h := xxhash.New()
	for _, name := range names {
		h.WriteString(name)
		h.WriteString("=")
		h.WriteString(members[name].GRPC)
		h.WriteString(";")
	}
	return h.Sum64() | 1
}

// SetGossipKeys changes the gossip keyring at run time: keys[0] becomes
// the key that encrypts, every key in keys decrypts, and keys not in keys
// are dropped. Rotate in three steps across every member (DESIGN.md §15):
// add the new key as a second key, then make it the first, then drop the
// old one. It fails if the node started without gossip encryption.
func (n *Node) SetGossipKeys(keys [][]byte) error {
	if n.keyring == nil {
		return errors.New("cluster: gossip encryption is off; start the node with GossipKeys")
	}
	if len(keys) == 0 {
		return errors.New("cluster: no gossip keys")
	}
	for _, k := range keys {
		if err := n.keyring.AddKey(k); err != nil {
			return fmt.Errorf("cluster: gossip key: %w", err)
		}
	}
	if err := n.keyring.UseKey(keys[0]); err != nil {
		return fmt.Errorf("cluster: gossip key: %w", err)
	}
	for _, old := range n.keyring.GetKeys() {
		if !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, old) }) {
			if err := n.keyring.RemoveKey(old); err != nil {
				return fmt.Errorf("cluster: gossip key: %w", err)
			}
		}
	}
	return nil
}
