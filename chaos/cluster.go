package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/cluster"
)

// Options configures a Cluster.
type Options struct {
	// Nodes is how many nodes Start starts, named n0, n1, ...
	Nodes int
	// Seed seeds every random choice of the network.
	Seed uint64
	// Config edits each node's configuration, after the harness has set
	// its name, addresses and transports (cluster.TestConfig otherwise).
	Config func(*cluster.Config)
	// Logger receives the nodes' logs; default: discarded.
	Logger *slog.Logger
}

// Cluster is a set of nodes in this process on one Network. Its methods
// are safe for concurrent use.
type Cluster struct {
	Net  *Network
	opts Options

	// mu guards members.
	mu      sync.Mutex
	members map[string]*member
}

// member is one node's place in the cluster: its name and addresses
// outlive the node, so that a restart comes back where it was.
type member struct {
	name       string
	gossipAddr string
	grpcAddr   string
	node       *cluster.Node // nil while down
	paused     bool
}

// Start starts opts.Nodes nodes and waits until they form one ring.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Cluster{Net: NewNetwork(opts.Seed), opts: opts, members: map[string]*member{}}
	for i := range opts.Nodes {
		if err := c.Add("n" + strconv.Itoa(i)); err != nil {
			c.Close()
			return nil, err
		}
	}
	if _, err := c.WaitConverged(ctx, opts.Nodes); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Add starts a new node called name, joining the others.
func (c *Cluster) Add(name string) error {
	c.mu.Lock()
	if c.members[name] != nil {
		c.mu.Unlock()
		return fmt.Errorf("chaos: %s exists", name)
	}
	m := &member{name: name, gossipAddr: "127.0.0.1:0", grpcAddr: "127.0.0.1:0"}
	c.members[name] = m
	c.mu.Unlock()
	return c.start(m)
}

// start starts m's node on m's addresses (free ports the first time).
func (c *Cluster) start(m *member) error {
	tr, gossipAddr, err := c.Net.GossipTransport(m.name, m.gossipAddr)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", m.grpcAddr)
	if err != nil {
		tr.Shutdown()
		return fmt.Errorf("chaos: gRPC listener for %s: %w", m.name, err)
	}
	m.gossipAddr, m.grpcAddr = gossipAddr, lis.Addr().String()
	c.Net.Register(m.name, m.gossipAddr, m.grpcAddr)

	cfg := cluster.TestConfig(m.name)
	cfg.GossipAddr, cfg.GossipTransport, cfg.GRPCListener = m.gossipAddr, tr, lis
	cfg.Logger = c.opts.Logger
	cfg.Peer.DialOptions = append(cfg.Peer.DialOptions, grpc.WithContextDialer(c.Net.Dialer(m.name)))
	cfg.Join = c.gossipAddrs(m.name)
	if c.opts.Config != nil {
		c.opts.Config(&cfg)
	}
	n, err := cluster.New(cfg)
	if err != nil {
		tr.Shutdown()
		lis.Close()
		return fmt.Errorf("chaos: start %s: %w", m.name, err)
	}
	c.mu.Lock()
	m.node = n
	c.mu.Unlock()
	return nil
}

// gossipAddrs lists the gossip addresses of the members other than self.
func (c *Cluster) gossipAddrs(self string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.members {
		if m.name != self && m.gossipAddr != "127.0.0.1:0" {
			out = append(out, m.gossipAddr)
		}
	}
	slices.Sort(out)
	return out
}

func (c *Cluster) member(name string) (*member, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[name]
	if m == nil {
		return nil, fmt.Errorf("chaos: no node %s", name)
	}
	return m, nil
}

// Kill crashes the node: no leave, no handoff, its state lost.
func (c *Cluster) Kill(name string) error {
	n, err := c.takeDown(name)
	if err != nil {
		return err
	}
	n.Halt()
	return nil
}

// Leave stops the node gracefully: it hands its keys over and leaves.
func (c *Cluster) Leave(ctx context.Context, name string) error {
	n, err := c.takeDown(name)
	if err != nil {
		return err
	}
	return n.Close(ctx)
}

// takeDown marks the node down, so that callers stop choosing it, and
// returns it for stopping.
func (c *Cluster) takeDown(name string) (*cluster.Node, error) {
	m, err := c.member(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := m.node
	if n == nil {
		return nil, fmt.Errorf("%w: %s", ErrDown, name)
	}
	m.node = nil
	return n, nil
}

// Restart starts a stopped node again on its old addresses, as a fresh
// process would.
func (c *Cluster) Restart(name string) error {
	m, err := c.member(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	up := m.node != nil
	c.mu.Unlock()
	if up {
		return fmt.Errorf("chaos: %s is up", name)
	}
	// The old process's ports can take a moment to come free.
	var last error
	for range 50 {
		if last = c.start(m); last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// Pause stalls the node for d, as a stop-the-world pause (a long GC, a
// frozen VM) would: nothing reaches it and nothing leaves it, and callers
// are routed elsewhere until it resumes. In this process its goroutines
// keep running (unlike SIGSTOP), so its own timers still fire; the
// process-level suite uses SIGSTOP for the real thing.
func (c *Cluster) Pause(ctx context.Context, name string, d time.Duration) error {
	m, err := c.member(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	m.paused = true
	c.mu.Unlock()
	c.Net.setPaused(name, true)
	defer func() {
		c.Net.setPaused(name, false)
		c.mu.Lock()
		m.paused = false
		c.mu.Unlock()
	}()
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Node returns the running node called name, or nil.
func (c *Cluster) Node(name string) *cluster.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[name]; m != nil {
		return m.node
	}
	return nil
}

// Names lists every member, up or down, in name order.
func (c *Cluster) Names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.members))
	for name := range c.members {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Live lists the nodes that are up and not paused: where callers go.
func (c *Cluster) Live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for name, m := range c.members {
		if m.node != nil && !m.paused {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Check runs a check entering through the node called entry.
func (c *Cluster) Check(ctx context.Context, entry string, req bucket.Request, opts drl.CheckOptions) (bucket.Decision, error) {
	n := c.Node(entry)
	if n == nil {
		return bucket.Decision{}, fmt.Errorf("%w: %s", ErrDown, entry)
	}
	return n.CheckWith(ctx, req, opts)
}

// ErrDown is returned for a check entering through a node that is down.
var ErrDown = errors.New("chaos: node is down")

// ErrNotConverged is returned by WaitConverged when the nodes still
// disagree at the deadline.
var ErrNotConverged = errors.New("chaos: members do not agree")

// Converged reports whether every running node sees the same want members
// in its ring and names the same owner for a sample of keys.
func (c *Cluster) Converged(want int) error {
	var first *cluster.Node
	for _, name := range c.Live() {
		n := c.Node(name)
		if n == nil {
			continue
		}
		if got := n.Stats().Members; got != want || !n.Ready() {
			return fmt.Errorf("%w: %s has %d in its ring (want %d), ready %v", ErrNotConverged, name, got, want, n.Ready())
		}
		if first == nil {
			first = n
			continue
		}
		for k := range 64 {
			user := "probe-" + strconv.Itoa(k)
			a, errA := first.OwnerOf(user, "a")
			b, errB := n.OwnerOf(user, "a")
			if errA != nil || errB != nil || a.Member.Name != b.Member.Name {
				return fmt.Errorf("%w: %s and %s name different owners for %s", ErrNotConverged, first.Name(), name, user)
			}
		}
	}
	return nil
}

// WaitConverged waits until Converged(want), and returns how long it took.
func (c *Cluster) WaitConverged(ctx context.Context, want int) (time.Duration, error) {
	start := time.Now()
	for {
		err := c.Converged(want)
		if err == nil {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("%w after %v: %w", err, time.Since(start).Round(time.Millisecond), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops every node at once, as a crash would: a cluster being torn
// down has no one to hand keys to.
func (c *Cluster) Close() {
	c.mu.Lock()
	var nodes []*cluster.Node
	for _, m := range c.members {
		if m.node != nil {
			nodes = append(nodes, m.node)
			m.node = nil
		}
	}
	c.mu.Unlock()
	c.Net.Heal()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(n.Halt)
	}
	wg.Wait()
}
