package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// Load is steady traffic on a set of keys, each with one limit, entering
// through random live nodes.
type Load struct {
	// Keys, each checked with Limit per Window (strict_window, the default).
	Keys   int
	Limit  int64
	Window time.Duration
	// Callers run side by side; each makes a check every Interval.
	Callers  int
	Interval time.Duration
	// FailPolicy is every check's.
	FailPolicy drl.FailPolicy
}

// Record is what a load saw: every check's outcome, by key and by second.
type Record struct {
	Start, End time.Time
	Checks     int
	Errors     int
	// Admitted counts admitted checks per key; PerSecond per second of the
	// run, all keys together.
	Admitted  []int
	PerSecond []int
	// Latencies of every check, sorted.
	Latencies []time.Duration
}

// Target is what a load calls: a Cluster in this process, or nodes in
// other processes.
type Target interface {
	// Live lists the nodes a caller may enter through now.
	Live() []string
	// Check runs a check entering through the node called entry; ErrDown
	// means it went down, and the caller picks again.
	Check(ctx context.Context, entry string, req bucket.Request, opts drl.CheckOptions) (bucket.Decision, error)
}

// Run drives the load on c until ctx ends. Callers pick keys and entry
// nodes from rand streams seeded by seed.
func (l Load) Run(ctx context.Context, c Target, seed uint64) *Record {
	r := &Record{Start: time.Now(), Admitted: make([]int, l.Keys)}
	var mu sync.Mutex // guards r
	var wg sync.WaitGroup
	for i := range l.Callers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			tick := time.NewTicker(l.Interval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				live := c.Live()
				if len(live) == 0 {
					continue
				}
				key := rng.IntN(l.Keys)
				entry := live[rng.IntN(len(live))]
				req := l.request(key)
				start := time.Now()
				d, err := c.Check(context.WithoutCancel(ctx), entry, req, drl.CheckOptions{FailPolicy: l.FailPolicy})
				took := time.Since(start)
				if errors.Is(err, ErrDown) {
					continue // it went down since Live: the caller picks again
				}
				mu.Lock()
				r.Checks++
				r.Latencies = append(r.Latencies, took)
				switch {
				case err != nil:
					r.Errors++
				case d.Allowed:
					r.Admitted[key]++
					sec := int(start.Sub(r.Start) / time.Second)
					for len(r.PerSecond) <= sec {
						r.PerSecond = append(r.PerSecond, 0)
					}
					r.PerSecond[sec]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.End = time.Now()
	slices.Sort(r.Latencies)
	return r
}

// Spend admits up to hits checks on every key before a fault, one at a
// time through the live nodes in turn, and returns how many each key
// admitted. It gives up on a key after 2×hits checks or when ctx ends.
func (l Load) Spend(ctx context.Context, c Target, hits int64) []int {
	admitted := make([]int, l.Keys)
	turn := 0
	for key := range l.Keys {
		req := l.request(key)
		for try := int64(0); int64(admitted[key]) < hits && try < 2*hits && ctx.Err() == nil; try++ {
			live := c.Live()
			if len(live) == 0 {
				break
			}
			turn++
			d, err := c.Check(ctx, live[turn%len(live)], req, drl.CheckOptions{FailPolicy: l.FailPolicy})
			if err == nil && d.Allowed {
				admitted[key]++
			}
		}
	}
	return admitted
}

// request is the check the load makes on key.
func (l Load) request(key int) bucket.Request {
	return bucket.Request{UserID: "key-" + strconv.Itoa(key), Action: "chaos", Limit: l.Limit, Window: l.Window, Hits: 1}
}

// Quantile returns the q-quantile of the latencies.
func (r *Record) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[min(int(q*float64(len(r.Latencies))), len(r.Latencies)-1)]
}
