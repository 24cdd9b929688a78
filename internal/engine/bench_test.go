package engine

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// The single-key numbers are meant to be read next to each other: run
//
//	go test ./internal/engine -run '^$' -bench 'ExistingKey|XTimeRate' -benchmem -cpu 1
//
// and compare; both measure one check of one key that already exists.

func BenchmarkCheckExistingKey(b *testing.B) {
	for _, alg := range Algorithms() {
		b.Run(alg.String(), func(b *testing.B) {
			store := newTestStore(b, Config{}) // the system clock, as x/time/rate reads
			// A huge limit so every check is admitted and spends.
			req := Request{UserID: "user-42", Action: "login", Limit: MaxLimit, Window: time.Hour, Hits: 1, Algorithm: alg}
			if alg == SlidingLog {
				req.Limit = 1 << 20 // its log grows with admitted calls
			}
			if _, err := store.Check(req); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				store.Check(req)
			}
		})
	}
}

// BenchmarkCheckExistingKeyStrict is BenchmarkCheckExistingKey for the
// default algorithm at the limits that shape its layout: 5 (37 exact
// slots; nearly every check is denied, so this times the denial path and
// its RetryAfter), 100 (16 slots) and 10⁹ (7 slots in units).
func BenchmarkCheckExistingKeyStrict(b *testing.B) {
	for _, limit := range []int64{5, 100, 1_000_000_000} {
		b.Run("limit="+strconv.FormatInt(limit, 10), func(b *testing.B) {
			store := newTestStore(b, Config{})
			req := Request{UserID: "user-42", Action: "login", Limit: limit, Window: time.Minute, Hits: 1}
			if _, err := store.Check(req); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				store.Check(req)
			}
		})
	}
}

// BenchmarkXTimeRateAllow is the baseline: golang.org/x/time/rate's
// Limiter.Allow, one process-local limiter that has no key lookup at all.
func BenchmarkXTimeRateAllow(b *testing.B) {
	lim := rate.NewLimiter(rate.Limit(1e12), 1e12)
	b.ReportAllocs()
	for b.Loop() {
		lim.Allow()
	}
}

// BenchmarkDecide measures each engine alone, without the store.
func BenchmarkDecide(b *testing.B) {
	for _, alg := range Algorithms() {
		b.Run(alg.String(), func(b *testing.B) {
			lim := Limit{Limit: MaxLimit, Window: time.Hour, Burst: MaxLimit}
			var st State
			now := time.Duration(0)
			b.ReportAllocs()
			for b.Loop() {
				now += time.Hour / (1 << 18)
				alg.Engine().Decide(&st, lim, now, 1)
			}
		})
	}
}

func keyNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "user-" + strconv.Itoa(i)
	}
	return names
}

// BenchmarkMillionKeys fills a store with 1,000,000 distinct keys, reports
// the heap it takes per key, then checks keys drawn uniformly: under the
// default algorithm and under the token bucket (every algorithm but the
// sliding log keeps its whole state in the table's 48-byte entry).
func BenchmarkMillionKeys(b *testing.B) {
	const n = 1_000_000
	names := keyNames(n)
	for _, alg := range []Algorithm{StrictWindow, TokenBucket} {
		b.Run(alg.String(), func(b *testing.B) { benchmarkKeys(b, names, alg) })
	}
	runtime.KeepAlive(names)
}

func benchmarkKeys(b *testing.B, names []string, alg Algorithm) {
	n := len(names)
	clock := &ManualClock{}
	req := Request{Action: "api", Limit: 1_000_000, Window: time.Hour, Hits: 1, Algorithm: alg}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	// Not newTestStore: its Cleanup would keep this store reachable while
	// the next sub-benchmark measures the heap.
	store, err := New(Config{Clock: clock, SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	for _, u := range names {
		req.UserID = u
		if _, err := store.Check(req); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perKey := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)

	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req.UserID = names[rng.IntN(n)]
		store.Check(req)
	}
	b.ReportMetric(perKey, "B/key") // after the loop: ResetTimer clears metrics
	runtime.KeepAlive(store)
}

// BenchmarkParallel checks 100,000 keys from every P; run with -cpu 1,2 to
// see throughput grow with GOMAXPROCS.
func BenchmarkParallel(b *testing.B) {
	const n = 100_000
	names := keyNames(n)
	clock := &ManualClock{}
	store := newTestStore(b, Config{Clock: clock})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		req := Request{Action: "api", Limit: MaxLimit, Window: time.Hour, Hits: 1}
		for pb.Next() {
			req.UserID = names[rng.IntN(n)]
			store.Check(req)
		}
	})
}

// BenchmarkSweep measures the sweeper's cost per entry it looks at, on a
// store of 1,000,000 live keys (nothing to drop: the worst case per drop).
func BenchmarkSweep(b *testing.B) {
	names := keyNames(1_000_000)
	clock := &ManualClock{}
	store := newTestStore(b, Config{Clock: clock})
	req := Request{Action: "api", Limit: 10, Window: time.Hour, Hits: 1}
	for _, u := range names {
		req.UserID = u
		store.Check(req)
	}
	visited := 0
	b.ResetTimer()
	for b.Loop() {
		v, _ := store.Sweep()
		visited += v
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(visited), "ns/entry")
	b.ReportMetric(float64(visited)/float64(b.N), "entries/pass")
}

// BenchmarkParallelBaseline is the machine's own ceiling for
// BenchmarkParallel: 256 mutex-guarded counters on separate cache lines,
// hit at random from every P. If this does not speed up from -cpu 1 to 2,
// no shared structure will.
func BenchmarkParallelBaseline(b *testing.B) {
	type counter struct {
		mu sync.Mutex
		n  int
		_  [48]byte
	}
	var counters [256]counter
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			c := &counters[rng.IntN(len(counters))]
			c.mu.Lock()
			c.n++
			c.mu.Unlock()
		}
	})
}

// BenchmarkParallelStorePerP gives every P a store of its own (nothing
// shared), to separate the store's own cost from cross-core traffic.
func BenchmarkParallelStorePerP(b *testing.B) {
	const n = 100_000
	names := keyNames(n)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		store, err := New(Config{Clock: &ManualClock{}, SweepInterval: -1})
		if err != nil {
			b.Error(err)
			return
		}
		defer store.Close()
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		req := Request{Action: "api", Limit: MaxLimit, Window: time.Hour, Hits: 1}
		for pb.Next() {
			req.UserID = names[rng.IntN(n)]
			store.Check(req)
		}
	})
}
