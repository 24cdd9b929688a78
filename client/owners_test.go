package client

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/connectivity"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/cluster"
	"github.com/drlimit/drl/cluster/clustertest"
	"github.com/drlimit/drl/transport"
)

// waitForRing waits, for at most 15 s, until c's ring has exactly the
// members named and the connection to each is up.
func waitForRing(t *testing.T, c *Client, names ...string) {
	t.Helper()
	slices.Sort(names)
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := "no ring yet"
		if rt := c.owners.routes.Load(); rt != nil {
			got = fmt.Sprint(rt.ring.Members())
			if slices.Equal(rt.ring.Members(), names) && allReady(rt) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("client ring = %s, want %v with every connection up", got, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func allReady(rt *routes) bool {
	for _, m := range rt.members {
		if m.conn.GetState() != connectivity.Ready {
			return false
		}
	}
	return true
}

func names(nodes []*cluster.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name()
	}
	return out
}

// assertOwnersAgree fails unless, for keys keys, the client's owner is the
// owner every node reports. Keys spread over every member, so a client
// that hashed keys otherwise than the nodes would disagree on most.
func assertOwnersAgree(t *testing.T, c *Client, nodes []*cluster.Node, keys int) {
	t.Helper()
	for i := range keys {
		user, action := "user-"+strconv.Itoa(i), "act-"+strconv.Itoa(i%7)
		got := c.owners.ownerName(user, action)
		for _, n := range nodes {
			o, err := n.OwnerOf(user, action)
			owner := o.Member
			if err != nil {
				t.Fatal(err)
			}
			if got != owner.Name {
				t.Fatalf("client owner of (%q, %q) = %q, want %q as %s reports", user, action, got, owner.Name, n.Name())
			}
		}
	}
}

// On a settled three-node ring the client computes the owner the nodes
// report, for every one of 10,000 keys, and the Owner call agrees.
func TestOwnerRoutingAgreesWithNodes(t *testing.T) {
	nodes := clustertest.Start(t, 3, nil)
	c, err := New(clustertest.GRPCAddrs(nodes))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitForRing(t, c, names(nodes)...)
	assertOwnersAgree(t, c, nodes, 10_000)
	for i := range 50 {
		user := "user-" + strconv.Itoa(i)
		o, err := c.Owner(context.Background(), user, "act-0")
		owner := o.Member
		if err != nil || owner.Name != c.owners.ownerName(user, "act-0") {
			t.Fatalf("Owner(%q) = %q, %v; client's ring says %q", user, owner.Name, err, c.owners.ownerName(user, "act-0"))
		}
	}
}

// A ring of other parameters than the defaults places keys the same way
// on the client: the client takes them from RingState.
func TestOwnerRoutingTakesRingParameters(t *testing.T) {
	nodes := clustertest.Start(t, 3, func(cfg *cluster.Config) {
		cfg.Ring.Partitions, cfg.Ring.ReplicationFactor, cfg.Ring.Load = 271, 20, 1.25
	})
	c, err := New(clustertest.GRPCAddrs(nodes))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitForRing(t, c, names(nodes)...)
	if st, _ := c.owners.ringState(); st.Partitions != 271 || st.ReplicationFactor != 20 || st.Load != 1.25 {
		t.Fatalf("ring state %+v, want 271 partitions, 20 points, load 1.25", st)
	}
	assertOwnersAgree(t, c, nodes, 2_000)
}

// totals sums the nodes' Local and Forwarded counters.
func totals(nodes []*cluster.Node) (local, forwarded uint64) {
	for _, n := range nodes {
		st := n.Stats()
		local += st.Local
		forwarded += st.Forwarded
	}
	return local, forwarded
}

// Checks from an owner-routing client, plain or batching, are decided by
// the node they reach, with no forwarding; without owner routing, two in
// three are forwarded.
func TestChecksGoToOwners(t *testing.T) {
	nodes := clustertest.Start(t, 3, nil)
	addrs := clustertest.GRPCAddrs(nodes)
	const checks = 3000
	for _, tc := range []struct {
		name    string
		open    func() (*Client, error)
		routing bool
	}{
		{"plain", func() (*Client, error) { return New(addrs) }, true},
		{"batching", func() (*Client, error) { return NewBatching(addrs, Batching{}) }, true},
		{"round-robin", func() (*Client, error) { return New(addrs, WithoutOwnerRouting()) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.open()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc.routing {
				waitForRing(t, c, names(nodes)...)
			} else if c.owners != nil {
				t.Fatal("WithoutOwnerRouting: the client routes by owner")
			}
			local0, fwd0 := totals(nodes)
			errs := make(chan error, 8)
			for w := range 8 { // side by side, so that batches form
				go func() {
					for i := w; i < checks; i += 8 {
						_, err := c.RateLimit(context.Background(), tc.name+"-"+strconv.Itoa(i), "api", 1000, time.Hour)
						if err != nil {
							errs <- err
							return
						}
					}
					errs <- nil
				}()
			}
			for range 8 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			local1, fwd1 := totals(nodes)
			local, fwd := local1-local0, fwd1-fwd0
			if local+fwd != checks {
				t.Fatalf("nodes counted %d local + %d forwarded checks, want %d in all", local, fwd, checks)
			}
			if tc.routing && fwd > checks/100 {
				t.Fatalf("%d of %d checks forwarded with owner routing, want about none", fwd, checks)
			}
			if !tc.routing && fwd < checks/2 {
				t.Fatalf("%d of %d checks forwarded round-robin, want about two in three", fwd, checks)
			}
		})
	}
}

// The client's ring follows the cluster's: a node leaves (the client may
// have been watching it), another joins that the client was never told
// of, and each time the client's owners are the nodes' again, and checks
// reach the newcomer directly.
func TestOwnerRoutingFollowsRingChanges(t *testing.T) {
	nodes := clustertest.Start(t, 3, nil)
	c, err := New([]string{nodes[2].GRPCAddr(), nodes[0].GRPCAddr(), nodes[1].GRPCAddr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitForRing(t, c, names(nodes)...)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nodes[2].Close(ctx); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitForRing(t, nodes[:2], 2)
	waitForRing(t, c, names(nodes[:2])...)
	assertOwnersAgree(t, c, nodes[:2], 1000)

	cfg := cluster.TestConfig("node-3")
	cfg.Join = []string{nodes[0].GossipAddr()}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	joiner, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		joiner.Close(ctx)
	})
	now := []*cluster.Node{nodes[0], nodes[1], joiner}
	clustertest.WaitForRing(t, now, 3)
	waitForRing(t, c, names(now)...)
	assertOwnersAgree(t, c, now, 1000)

	before := joiner.Stats().Local
	sent := 0
	for i := range 300 {
		user := "late-" + strconv.Itoa(i)
		if c.owners.ownerName(user, "api") != joiner.Name() {
			continue
		}
		if _, err := c.Check(ctx, bucket.Request{UserID: user, Action: "api", Limit: 10, Window: time.Hour, Hits: 1}); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	if got := joiner.Stats().Local - before; sent == 0 || got != uint64(sent) {
		t.Fatalf("the newcomer decided %d of the %d checks on its keys, want all", got, sent)
	}
}

func TestWithoutOwnerRoutingIsTakenOut(t *testing.T) {
	opts, on := ownerRouting(nil)
	if !on || len(opts) != 0 {
		t.Fatalf("ownerRouting(nil) = %v, %v; want none, on", opts, on)
	}
	opts, on = ownerRouting(append(opts, WithToken("t"), WithoutOwnerRouting()))
	if on || len(opts) != 1 {
		t.Fatalf("with WithoutOwnerRouting: %d options, on %v; want 1, off", len(opts), on)
	}
}

// When an owner crashes, checks on its keys go on through the other nodes
// (which answer by their fail policy until their rings drop it) instead of
// failing on the client's broken connection to it. The first check or two
// may fail, as the client's connections learn of the crash, like a check
// in flight to a crashing node; then every check gets a decision.
func TestOwnerRoutingSurvivesACrash(t *testing.T) {
	nodes := clustertest.Start(t, 3, func(cfg *cluster.Config) { cfg.CheckTimeout = 200 * time.Millisecond })
	addrs := clustertest.GRPCAddrs(nodes)
	plain, err := New(addrs)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	batching, err := NewBatching(addrs, Batching{})
	if err != nil {
		t.Fatal(err)
	}
	defer batching.Close()
	waitForRing(t, plain, names(nodes)...)
	waitForRing(t, batching, names(nodes)...)
	var theirs []string
	for i := 0; len(theirs) < 20; i++ {
		if user := "crash-" + strconv.Itoa(i); plain.owners.ownerName(user, "api") == nodes[2].Name() {
			theirs = append(theirs, user)
		}
	}

	nodes[2].Halt()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, c := range map[string]*Client{"plain": plain, "batching": batching} {
		for pass := 0; ; pass++ {
			var failed []error
			for _, user := range theirs {
				if _, err := c.RateLimit(ctx, user, "api", 100, time.Hour); err != nil {
					failed = append(failed, err)
				}
			}
			if len(failed) == 0 {
				break
			}
			if pass > 0 || len(failed) > 2 {
				t.Fatalf("%s, pass %d over its keys: %d of %d checks failed with their owner crashed, the first: %v",
					name, pass, len(failed), len(theirs), failed[0])
			}
		}
	}
}

// ownerName returns the name of the member that owns (userID, action) in
// the client's ring, or "" without one.
func (r *router) ownerName(userID, action string) string {
	if rt := r.routes.Load(); rt != nil {
		return rt.ring.Owner(ringKey(userID, action))
	}
	return ""
}

// ringState returns the state of the client's ring, and false before the first.
func (r *router) ringState() (transport.RingState, bool) {
	if rt := r.routes.Load(); rt != nil {
		return rt.state, true
	}
	return transport.RingState{}, false
}
