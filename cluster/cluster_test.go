package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// memberlist's go-metrics global sink runs one goroutine per process.
		goleak.IgnoreTopFunction("github.com/hashicorp/go-metrics.(*InmemSink).run"),
		goleak.IgnoreTopFunction("github.com/armon/go-metrics.(*InmemSink).run"),
	)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startNode starts a node from cfg and closes it when the test ends.
func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

// startCluster starts size nodes joined through the first and waits until
// every node's ring holds all of them.
func startCluster(t testing.TB, size int, edit func(*Config)) []*Node {
	t.Helper()
	nodes := make([]*Node, size)
	for i := range nodes {
		cfg := TestConfig("node-" + strconv.Itoa(i))
		if i > 0 {
			cfg.Join = []string{nodes[0].GossipAddr()}
		}
		if edit != nil {
			edit(&cfg)
		}
		nodes[i] = startNode(t, cfg)
	}
	waitForRing(t, nodes, size)
	return nodes
}

// waitForRing polls until every node's ring has want members and every
// node is ready.
func waitForRing(t testing.TB, nodes []*Node, want int) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		for _, n := range nodes {
			if got := n.own.view.Load().Ring.Len(); got != want || !n.Ready() {
				return fmt.Errorf("%s: ring of %d (want %d), ready %v", n.Name(), got, want, n.Ready())
			}
		}
		return nil
	})
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClusterAgreesOnOwners(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	for i := range 2000 {
		user := "user-" + strconv.Itoa(i)
		var first string
		for _, n := range nodes {
			o, err := n.OwnerOf(user, "login")
			m := o.Member
			if err != nil {
				t.Fatalf("%s.OwnerOf(%s): %v", n.Name(), user, err)
			}
			if first == "" {
				first = m.Name
			} else if m.Name != first {
				t.Fatalf("owner of %s: %s says %s, another says %s", user, n.Name(), m.Name, first)
			}
		}
	}
}

// Three nodes, 64 callers each, hammer one key with limit 1000 per minute,
// wherever the checks enter. A fixed window admits exactly 1000; the token
// bucket admits 1000 plus what refills while the test runs (1000/min).
func TestClusterAdmitsExactlyLimitOnOneKey(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	for _, alg := range []bucket.Algorithm{bucket.StrictWindow, bucket.FixedWindow, bucket.TokenBucket} {
		start := time.Now()
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for _, n := range nodes {
			for range 64 {
				wg.Go(func() {
					for range 10 {
						d, err := n.Check(context.Background(), bucket.Request{UserID: "hot-user", Action: alg.String(),
							Limit: 1000, Window: time.Minute, Hits: 1, Algorithm: alg})
						if err != nil {
							t.Errorf("Check via %s: %v", n.Name(), err)
							return
						}
						if d.Allowed {
							admitted.Add(1)
						}
					}
				})
			}
		}
		wg.Wait()
		refilled := int64(time.Since(start) * 1000 / time.Minute)
		got := admitted.Load()
		switch {
		case alg == bucket.FixedWindow && got != 1000:
			t.Fatalf("%v: 3 nodes x 64 callers x 10 checks admitted %d, want exactly 1000", alg, got)
		case got < 1000 || got > 1000+refilled+1:
			t.Fatalf("%v: admitted %d, want 1000 plus at most %d refilled", alg, got, refilled+1)
		}
	}
	var forwarded uint64
	for _, n := range nodes {
		forwarded += n.Stats().Forwarded
	}
	if forwarded == 0 {
		t.Fatal("no check was forwarded: the test did not cross nodes")
	}
}

func TestBadInputAndClosedNode(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	ctx := context.Background()
	_, err := nodes[1].RateLimit(ctx, "", "login", 5, time.Minute)
	if !errors.Is(err, bucket.ErrInvalidArgument) {
		t.Fatalf("RateLimit with an empty user: %v, want ErrInvalidArgument", err)
	}
	if _, err := nodes[0].RateLimit(ctx, "u", "a", 5, time.Millisecond); !errors.Is(err, bucket.ErrInvalidArgument) {
		t.Fatalf("RateLimit with a 1 ms window: %v, want ErrInvalidArgument", err)
	}
	if _, err := nodes[0].OwnerOf("u", ""); !errors.Is(err, bucket.ErrInvalidArgument) {
		t.Fatalf("OwnerOf with an empty action: %v", err)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := nodes[1].Close(closeCtx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := nodes[1].Close(closeCtx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := nodes[1].RateLimit(ctx, "u", "a", 5, time.Minute); !errors.Is(err, drl.ErrClosed) {
		t.Fatalf("RateLimit after Close: %v, want drl.ErrClosed", err)
	}
	// The survivor drops the leaver from its ring and answers every key.
	waitForRing(t, nodes[:1], 1)
	for i := range 100 {
		if _, err := nodes[0].RateLimit(ctx, "u"+strconv.Itoa(i), "a", 5, time.Minute); err != nil {
			t.Fatalf("RateLimit on the survivor: %v", err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{GossipAddr: "nope"},
		{Join: []string{"no-port"}},
		{CheckTimeout: -1},
		{Gossip: 7},
		{Store: bucket.StoreConfig{Shards: 3}},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", c)
		}
	}
}

// userOwnedBy returns a user whose key ("user", "api") the member named
// owner owns, as n sees it.
func userOwnedBy(t testing.TB, n *Node, owner string) string {
	t.Helper()
	for i := range 100_000 {
		u := "user-" + strconv.Itoa(i)
		if o, err := n.OwnerOf(u, "api"); err == nil && o.Member.Name == owner {
			return u
		}
	}
	t.Fatalf("no user among 100,000 is owned by %s", owner)
	return ""
}
