package cluster

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// Nodes whose clocks read minutes apart decide exactly as one bucket store
// with one clock would: a check is decided on its owner's clock only, and
// a bucket that moves to a member with another clock (a join) travels in
// relative time.
func TestSkewedClocksDecideAsOneClock(t *testing.T) {
	offsets := []time.Duration{time.Hour, time.Hour + 5*time.Minute, time.Hour + 17*time.Minute, 3*time.Hour + 42*time.Minute}
	clocks := make([]*bucket.ManualClock, len(offsets))
	for i, off := range offsets {
		clocks[i] = &bucket.ManualClock{}
		clocks[i].Set(off)
	}
	refClock := &bucket.ManualClock{}
	refClock.Set(10 * time.Minute)
	ref, err := engine.New(bucket.StoreConfig{Clock: refClock, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	advance := func(dt time.Duration) {
		refClock.Advance(dt)
		for _, c := range clocks {
			c.Advance(dt)
		}
	}

	i := 0
	nodes := startCluster(t, 3, func(c *Config) { c.Clock = clocks[i]; i++ })
	rng := rand.New(rand.NewPCG(5, 5))
	run := func(steps int, live []*Node) {
		for step := range steps {
			advance(time.Duration(rng.Int64N(int64(3 * time.Second))))
			req := bucket.Request{UserID: "user-" + strconv.Itoa(rng.IntN(12)), Action: "api", Limit: 5,
				Window: 10 * time.Second, Hits: 1 + rng.Int64N(2), Algorithm: bucket.Algorithm(rng.IntN(len(bucket.Algorithms())))}
			n := live[rng.IntN(len(live))]
			got, err := n.Check(context.Background(), req)
			if err != nil {
				t.Fatalf("step %d via %s: %v", step, n.Name(), err)
			}
			want, _ := ref.Check(req)
			if got, want = asOneClock(got, want, req); got != want {
				t.Fatalf("step %d, %v via %s: %+v, one clock says %+v", step, req.Algorithm, n.Name(), got, want)
			}
		}
	}
	run(300, nodes)
	// Spend from every bucket now, so that live buckets exist to move.
	for u := range 12 {
		for _, alg := range bucket.Algorithms() {
			req := bucket.Request{UserID: "user-" + strconv.Itoa(u), Action: "api", Limit: 5, Window: 10 * time.Second,
				Hits: 1, Algorithm: alg}
			got, err := nodes[u%3].Check(context.Background(), req)
			want, _ := ref.Check(req)
			if got, want = asOneClock(got, want, req); err != nil || got != want {
				t.Fatalf("filling: %+v, %v; one clock says %+v", got, err, want)
			}
		}
	}

	// A fourth member with a clock 3 h 42 min ahead joins; buckets move to
	// it and keep deciding the same.
	cfg := TestConfig("node-3")
	cfg.Clock = clocks[3]
	cfg.Join = []string{nodes[0].GossipAddr()}
	all := append(nodes, startNode(t, cfg))
	waitForRing(t, all, 4)
	eventually(t, 5*time.Second, func() error {
		for _, n := range all {
			select {
			case <-n.own.view.Load().settled:
			default:
				return context.DeadlineExceeded
			}
		}
		return nil
	})
	run(300, all)
	if all[3].Stats().HandoffsReceived == 0 {
		t.Fatal("no bucket moved to the new member: the test did not cross clocks")
	}
}

// driftClock runs at its own rate from its own offset, like a server whose
// oscillator is off.
type driftClock struct {
	start  time.Time
	offset time.Duration
	rate   float64
}

func (c driftClock) Now() time.Duration {
	return c.offset + time.Duration(float64(time.Since(c.start))*c.rate)
}

func (c driftClock) After(d time.Duration) <-chan struct{} {
	return engine.After(bucket.SystemClock(), time.Duration(float64(d)/c.rate))
}

// Under load, with clocks minutes apart and running 2% fast or slow, a join
// and a graceful leave still admit no key more than its limit.
func TestDriftingClocksKeepLimitsThroughChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of gossip and load: the full suite runs it")
	}
	const keys, limit = 200, 30
	clocks := []driftClock{
		{time.Now(), time.Hour, 1.0},
		{time.Now(), 20 * time.Minute, 1.02},
		{time.Now(), 3 * time.Hour, 0.98},
		{time.Now(), 90 * time.Minute, 1.01},
	}
	i := 0
	nodes := startCluster(t, 3, func(c *Config) { c.Clock = clocks[i]; i++ })
	live := &liveSet{nodes: nodes}
	stop := make(chan struct{})
	l := &load{}
	l.run(t, live.get, keys, bucket.FixedWindow, limit, stop)
	time.Sleep(200 * time.Millisecond)

	cfg := TestConfig("node-3")
	cfg.Clock = clocks[3]
	cfg.Join = []string{nodes[0].GossipAddr()}
	all := append(append([]*Node{}, nodes...), startNode(t, cfg))
	waitForRing(t, all, 4)
	live.set(all)
	time.Sleep(200 * time.Millisecond)

	live.set(all[1:])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := all[0].Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	waitForRing(t, all[1:], 3)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	l.verify(t, limit)
}

// asOneClock makes a node's answer got comparable with the one-clock
// store's answer want to the same request: the store says nothing of who
// decided (a node says the owner or, for a repeated denial, its deny
// cache), and a node never answers a ResetAfter past the window.
func asOneClock(got, want bucket.Decision, req bucket.Request) (bucket.Decision, bucket.Decision) {
	if got.DecidedBy == bucket.DecidedByOwner || got.DecidedBy == bucket.DecidedByDenyCache {
		got.DecidedBy = bucket.DecidedByUnknown
	}
	want.ResetAfter = min(want.ResetAfter, req.Window)
	return got, want
}
