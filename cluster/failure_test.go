package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// blackhole accepts TCP connections and never answers, like a node that is
// wedged or behind a dead link.
func blackhole(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		lis.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}

// An owner that gossips but never answers checks: every check on its keys
// is answered within the deadline, by the policy asked for.
func TestUnreachableOwnerFallsBackWithinDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of gossip and load: the full suite runs it")
	}
	const timeout = 100 * time.Millisecond
	// The black-holed member never gets node-0's handoff mark, so it never
	// turns ready: wait for the rings alone.
	a := startNode(t, func() Config { c := TestConfig("node-0"); c.CheckTimeout = timeout; return c }())
	b := TestConfig("node-1")
	b.CheckTimeout, b.GRPCAdvertise, b.Join = timeout, blackhole(t), []string{a.GossipAddr()}
	nodes := []*Node{a, startNode(t, b)}
	eventually(t, 10*time.Second, func() error {
		for _, n := range nodes {
			if got := n.own.view.Load().Ring.Len(); got != 2 {
				return fmt.Errorf("%s: ring of %d, want 2", n.Name(), got)
			}
		}
		return nil
	})
	key := userOwnedBy(t, a, "node-1")
	ask := func(policy drl.FailPolicy, user string) bucket.Decision {
		t.Helper()
		start := time.Now()
		d, err := a.CheckWith(context.Background(), bucket.Request{UserID: user, Action: "api", Limit: 10,
			Window: time.Minute, Hits: 1}, drl.CheckOptions{FailPolicy: policy})
		if took := time.Since(start); took > timeout+150*time.Millisecond {
			t.Fatalf("%v: answered after %v, deadline %v", policy, took, timeout)
		}
		if err != nil {
			t.Fatalf("%v: %v, want a decision", policy, err)
		}
		if d.DecidedBy != bucket.DecidedByFailPolicy || d.FallbackReason != bucket.FallbackOwnerUnreachable {
			t.Fatalf("%v: %+v, want decided by fail_policy for owner_unreachable", policy, d)
		}
		return d
	}
	if d := ask(drl.FailOpen, key); !d.Allowed {
		t.Fatalf("FailOpen: %+v, want allowed", d)
	}
	if d := ask(drl.FailClosed, key); d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("FailClosed: %+v, want denied with a retry", d)
	}
	// drl.FailLocal (the default): a provisional bucket with limit/N = 10/2.
	admitted := 0
	for range 8 {
		if ask(drl.FailDefault, key).Allowed {
			admitted++
		}
	}
	if admitted != 5 {
		t.Fatalf("FailLocal admitted %d of 8 with limit 10 over 2 members, want 5", admitted)
	}
	st := a.Stats()
	if st.FallbackOpen != 1 || st.FallbackClosed != 1 || st.FallbackLocal != 8 {
		t.Fatalf("fallback counters %d open, %d closed, %d local; want 1, 1, 8", st.FallbackOpen, st.FallbackClosed, st.FallbackLocal)
	}
	// The status page's events tell of them, once the sampler has run.
	eventually(t, 5*time.Second, func() error {
		for _, e := range a.Status().Events {
			if strings.Contains(e.What, "fail policy local answered") {
				return nil
			}
		}
		return errors.New("no fallback event on the status page")
	})
}
