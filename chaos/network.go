// Package chaos runs drl nodes in one process over a network it controls,
// and injects the faults that real networks and machines have: partitions,
// one-way cuts, packet and message loss, latency and jitter, flapping
// links, crashes, restarts and stalls. Every random choice comes from a
// seed, so a scenario's faults replay exactly from its seed.
//
// Gossip travels through a memberlist Transport wrapper and gRPC through a
// wrapping dialer, both shaped on the sender's side by the Network's
// state for the link (from, to). Users can run their own tests on it:
//
//	c, err := chaos.Start(ctx, chaos.Options{Nodes: 3, Seed: 1})
//	defer c.Close()
//	c.Net.Partition([]string{"n0", "n1"}, []string{"n2"})
package chaos

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Network is the state of every link between named nodes. The zero state
// of a link is a perfect one: no cut, no loss, no latency.
type Network struct {
	seed uint64

	// mu guards everything below.
	mu      sync.Mutex
	links   map[[2]string]Link
	paused  map[string]bool
	byAddr  map[string]string // address -> node name
	rngs    map[[2]string]*rand.Rand
	changed chan struct{} // closed and replaced on every change
}

// Link is the state of the traffic from one node to another.
type Link struct {
	// Cut drops every packet and holds every byte of stream traffic until
	// the link is restored, as a partition does.
	Cut bool
	// Loss is the share of packets dropped, 0 to 1. A lost stream segment
	// is retransmitted after RetransmitTimeout, as TCP's would be.
	Loss float64
	// Latency is the one-way delay, and Jitter the most that is added to it
	// at random (uniformly).
	Latency, Jitter time.Duration
}

// RetransmitTimeout is how late a lost stream segment arrives: Linux's
// minimum TCP retransmission timeout.
const RetransmitTimeout = 200 * time.Millisecond

// NewNetwork returns a perfect network whose random choices derive from
// seed.
func NewNetwork(seed uint64) *Network {
	return &Network{seed: seed, links: map[[2]string]Link{}, paused: map[string]bool{}, byAddr: map[string]string{},
		rngs: map[[2]string]*rand.Rand{}, changed: make(chan struct{})}
}

// Register names the node reached at each of addrs.
func (n *Network) Register(name string, addrs ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range addrs {
		n.byAddr[a] = name
	}
}

// nodeAt returns the node registered at addr, or "" for an outsider.
func (n *Network) nodeAt(addr string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.byAddr[addr]
}

// link returns the state of from -> to, with a pause of either end as a
// cut, and a channel closed at the next change.
func (n *Network) link(from, to string) (Link, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.links[[2]string{from, to}]
	if n.paused[from] || n.paused[to] {
		l.Cut = true
	}
	return l, n.changed
}

// update applies edit to the links and wakes everything waiting on them.
func (n *Network) update(edit func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	edit()
	close(n.changed)
	n.changed = make(chan struct{})
}

// Set sets the state of the link from -> to.
func (n *Network) Set(from, to string, l Link) {
	n.update(func() { n.links[[2]string{from, to}] = l })
}

// SetAll sets the state of every link between the named nodes, both ways.
func (n *Network) SetAll(nodes []string, l Link) {
	n.update(func() {
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b {
					n.links[[2]string{a, b}] = l
				}
			}
		}
	})
}

// Cut severs from -> to only: a one-way cut.
func (n *Network) Cut(from, to string) {
	n.update(func() {
		l := n.links[[2]string{from, to}]
		l.Cut = true
		n.links[[2]string{from, to}] = l
	})
}

// Partition severs every link between nodes in different groups, both
// ways, and restores the links within each group.
func (n *Network) Partition(groups ...[]string) {
	n.update(func() {
		for i, g := range groups {
			for j, h := range groups {
				for _, a := range g {
					for _, b := range h {
						if a == b {
							continue
						}
						l := n.links[[2]string{a, b}]
						l.Cut = i != j
						n.links[[2]string{a, b}] = l
					}
				}
			}
		}
	})
}

// Heal restores every link: no cuts, loss, latency or pauses.
func (n *Network) Heal() {
	n.update(func() {
		n.links = map[[2]string]Link{}
		n.paused = map[string]bool{}
	})
}

// setPaused cuts or restores every link to and from a node.
func (n *Network) setPaused(name string, paused bool) {
	n.update(func() { n.paused[name] = paused })
}

// chance returns a deterministic random number in [0, 1) for the link:
// each link draws from its own stream, seeded by the network's seed and
// the link's names.
func (n *Network) chance(from, to string) float64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := [2]string{from, to}
	r := n.rngs[k]
	if r == nil {
		r = rand.New(rand.NewPCG(n.seed, hashNames(from, to)))
		n.rngs[k] = r
	}
	return r.Float64()
}

func hashNames(a, b string) uint64 {
	h := uint64(14695981039346656037) // FNV-1a
	for _, s := range []string{a, "\x00", b} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
	}
	return h
}

// delay is how long one packet or segment on a link with state l takes
// beyond the real network's, and whether it is lost.
func (n *Network) delay(from, to string, l Link) (d time.Duration, lost bool) {
	d = l.Latency
	if l.Jitter > 0 {
		d += time.Duration(n.chance(from, to) * float64(l.Jitter))
	}
	if l.Loss > 0 && n.chance(from, to) < l.Loss {
		return d, true
	}
	return d, false
}
