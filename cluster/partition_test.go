package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// cuts is a set of severed links between gossip addresses, shared by the
// transports of one test cluster.
type cuts struct {
	mu      sync.Mutex
	severed map[[2]string]bool
}

func (c *cuts) cut(a, b string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.severed[[2]string{a, b}]
}

// split severs every link between the two groups, both ways.
func (c *cuts) split(left, right []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.severed = map[[2]string]bool{}
	for _, a := range left {
		for _, b := range right {
			c.severed[[2]string{a, b}], c.severed[[2]string{b, a}] = true, true
		}
	}
}

func (c *cuts) heal() { c.split(nil, nil) }

// cutTransport is memberlist's own transport with the links in cuts
// dropped: packets vanish and dials fail, as across a real partition.
type cutTransport struct {
	memberlist.NodeAwareTransport
	self string
	cuts *cuts
}

var errSevered = errors.New("link severed by the test")

func (t *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.cuts.cut(t.self, addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *cutTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.cuts.cut(t.self, a.Addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *cutTransport) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	if t.cuts.cut(t.self, addr) {
		return nil, errSevered
	}
	return t.NodeAwareTransport.DialTimeout(addr, d)
}

func (t *cutTransport) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	if t.cuts.cut(t.self, a.Addr) {
		return nil, errSevered
	}
	return t.NodeAwareTransport.DialAddressTimeout(a, d)
}

func newCutTransport(t *testing.T, c *cuts) *cutTransport {
	t.Helper()
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0})
	if err != nil {
		t.Fatal(err)
	}
	return &cutTransport{NodeAwareTransport: nt, self: "127.0.0.1:" + strconv.Itoa(nt.GetAutoBindPort()), cuts: c}
}

// In a 2|2 split neither side sees a majority once both of the other
// side's members are declared dead: from then on it takes no key over and
// answers checks by its fail policy. After the heal
// the background rejoin merges the sides again, although memberlist had
// declared the other side dead, and every node decides again.
func TestSplitHealsByRejoin(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of gossip and load: the full suite runs it")
	}
	c := &cuts{}
	nodes := make([]*Node, 4)
	addrs := make([]string, 4)
	for i := range nodes {
		tr := newCutTransport(t, c)
		cfg := TestConfig("node-" + strconv.Itoa(i))
		cfg.GossipTransport = tr
		if i > 0 {
			cfg.Join = []string{addrs[0]}
		}
		nodes[i] = startNode(t, cfg)
		addrs[i] = nodes[i].GossipAddr()
	}
	waitForRing(t, nodes, 4)

	c.split(addrs[:2], addrs[2:])
	eventually(t, 15*time.Second, func() error {
		for _, n := range nodes {
			v := n.own.view.Load()
			if v.Quorum.OK() || len(v.Quorum.Failed) != 2 {
				return fmt.Errorf("%s: %v, failed %v; want 2 of 4 alive", n.Name(), v.Quorum, v.Quorum.Failed)
			}
		}
		return nil
	})
	user := userOwnedBy(t, nodes[0], "node-0") // its own key: a node without a majority decides none
	d, err := nodes[0].CheckWith(context.Background(), bucket.Request{UserID: user, Action: "api", Limit: 8, Window: time.Minute, Hits: 1},
		drl.CheckOptions{FailPolicy: drl.FailClosed})
	if err != nil || d.Allowed || nodes[0].Stats().FallbackClosed == 0 {
		t.Fatalf("a check on a node without a majority: %+v, %v; want the fail policy's denial", d, err)
	}
	healed := time.Now()
	c.heal()
	waitForRing(t, nodes, 4)
	eventually(t, 5*time.Second, func() error {
		for _, n := range nodes {
			if q := n.own.view.Load().Quorum; !q.OK() {
				return fmt.Errorf("%s: %v after the heal", n.Name(), q)
			}
		}
		return nil
	})
	t.Logf("4 members in every ring, each with a majority, %v after the heal", time.Since(healed))
}
