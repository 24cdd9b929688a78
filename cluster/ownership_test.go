package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
)

// load hammers keys through whichever nodes are alive and counts admitted
// checks per key. It stops when stop is closed.
type load struct {
	mu       sync.Mutex
	admitted map[string]int64
	errors   atomic.Int64
	checks   atomic.Int64
	wg       sync.WaitGroup
}

func (l *load) run(t *testing.T, nodes func() []*Node, keys int, alg bucket.Algorithm, limit int64, stop <-chan struct{}) {
	l.admitted = map[string]int64{}
	for w := range 12 {
		l.wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				ns := nodes()
				n := ns[rng.IntN(len(ns))]
				user := "user-" + strconv.Itoa(rng.IntN(keys))
				d, err := n.Check(context.Background(), bucket.Request{UserID: user, Action: "api", Limit: limit,
					Window: time.Hour, Hits: 1, Algorithm: alg})
				l.checks.Add(1)
				if err != nil {
					l.errors.Add(1)
					continue
				}
				if d.Allowed {
					l.mu.Lock()
					l.admitted[user]++
					l.mu.Unlock()
				}
			}
		})
	}
}

// verify checks that no key was admitted more than limit times.
func (l *load) verify(t *testing.T, limit int64) {
	t.Helper()
	l.wg.Wait()
	over := 0
	for user, n := range l.admitted {
		if n > limit {
			over++
			if over <= 5 {
				t.Errorf("%s admitted %d times, limit %d", user, n, limit)
			}
		}
	}
	t.Logf("%d checks, %d errors, %d keys admitted at least once", l.checks.Load(), l.errors.Load(), len(l.admitted))
	if over > 0 {
		t.Fatalf("%d keys over their limit", over)
	}
}

// liveSet is the nodes currently taking load.
type liveSet struct {
	mu    sync.Mutex
	nodes []*Node
}

func (s *liveSet) get() []*Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes
}

func (s *liveSet) set(nodes []*Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes = nodes
}

// Under load, a member joins, a member leaves gracefully, and every member
// restarts in turn. With a fixed window per key (exact counts), no key is
// admitted more than its limit: buckets follow their keys.
func TestOwnershipChangesUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of gossip and load: the full suite runs it")
	}
	const keys, limit = 300, 40
	for _, alg := range []bucket.Algorithm{bucket.StrictWindow, bucket.FixedWindow, bucket.TokenBucket} {
		t.Run(alg.String(), func(t *testing.T) {
			nodes := startCluster(t, 3, nil)
			live := &liveSet{nodes: nodes}
			stop := make(chan struct{})
			l := &load{}
			l.run(t, live.get, keys, alg, limit, stop)
			defer func() {
				select {
				case <-stop:
				default:
					close(stop)
				}
			}()
			time.Sleep(200 * time.Millisecond) // let the load exhaust some keys first

			// A fourth node joins.
			cfg := TestConfig("node-3")
			cfg.Join = []string{nodes[0].GossipAddr()}
			fourth := startNode(t, cfg)
			all := append(append([]*Node{}, nodes...), fourth)
			waitForRing(t, all, 4)
			live.set(all)
			time.Sleep(200 * time.Millisecond)

			// Every original member restarts in turn: a graceful leave, then a
			// new process with the same name joins again.
			for i := range nodes {
				rest := make([]*Node, 0, 3)
				for _, n := range all {
					if n != all[i] {
						rest = append(rest, n)
					}
				}
				live.set(rest)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := all[i].Close(ctx); err != nil {
					t.Errorf("Close(%s): %v", all[i].Name(), err)
				}
				cancel()
				waitForRing(t, rest, 3)
				cfg := TestConfig(fmt.Sprintf("node-%d", i))
				cfg.Join = []string{rest[0].GossipAddr()}
				all[i] = startNode(t, cfg)
				waitForRing(t, all, 4)
				live.set(append([]*Node{}, all...))
				time.Sleep(200 * time.Millisecond)
			}
			close(stop)
			l.wg.Wait()
			for _, n := range all {
				t.Logf("%s: %+v", n.Name(), n.Stats())
			}
			// The token bucket refills limit/hour: a few seconds add nothing.
			l.verify(t, limit)
			var sent, received, asked, proxied uint64
			for _, n := range all {
				st := n.Stats()
				sent, received, asked, proxied = sent+st.HandoffsSent, received+st.HandoffsReceived, asked+st.WaitedHandoff, proxied+st.Proxied
			}
			t.Logf("survivors sent %d and received %d buckets; %d checks waited for handoffs, %d were proxied",
				sent, received, asked, proxied)
			if received == 0 {
				t.Fatal("no bucket was handed off: the test did not move ownership")
			}
		})
	}
}

// A crashed owner hands nothing over: until the crash is detected the
// other members answer its keys by the default local fallback (limit/N
// each), then they take its keys over (DESIGN.md §6). Over the whole run
// this asserts a loose bound per key, limit + limit + (N-1)*ceil(limit/N):
// the limit before the crash, the limit after, and the fallback's shares.
// The chaos suite measures §6's tighter bound per window.
func TestCrashBound(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of gossip and load: the full suite runs it")
	}
	const keys, limit = 200, 30
	nodes := startCluster(t, 3, nil)
	live := &liveSet{nodes: nodes}
	stop := make(chan struct{})
	l := &load{}
	l.run(t, live.get, keys, bucket.FixedWindow, limit, stop)
	time.Sleep(300 * time.Millisecond) // exhaust the keys first
	live.set(nodes[1:])
	nodes[0].Halt()
	waitForRing(t, nodes[1:], 2)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	l.wg.Wait()
	worst, over := int64(0), 0
	for _, n := range l.admitted {
		worst = max(worst, n)
		if n > limit {
			over++
		}
	}
	const bound = limit + limit + 2*(limit+2)/3
	t.Logf("after a crash: %d of %d keys admitted more than %d; worst %d (bound %d)", over, len(l.admitted), limit, worst, bound)
	if worst > bound {
		t.Fatalf("a key was admitted %d times, more than the crash bound %d", worst, bound)
	}
}
