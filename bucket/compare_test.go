package bucket

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAlgorithmComparison feeds the same request traces to every algorithm
// and measures what each admits against the exact rule "at most Limit in
// any rolling Window". It prints the table quoted in DESIGN.md:
//
//	go test ./bucket -run TestAlgorithmComparison -v
//
// and asserts each algorithm's known bound.
func TestAlgorithmComparison(t *testing.T) {
	const limit, window = 100, 10 * time.Second
	lim := Limit{Limit: limit, Window: window, Burst: limit}
	traces := comparisonTraces(limit, window)

	var table strings.Builder
	fmt.Fprintf(&table, "\n| algorithm | trace | requests | admitted | sliding-log admitted | worst in any window | over-admission | needless denials | worst shortfall at a denial |\n")
	fmt.Fprintf(&table, "|---|---|---|---|---|---|---|---|---|\n")
	for _, alg := range Algorithms() {
		for _, tr := range traces {
			r := replay(alg, lim, tr.times)
			exact := replay(SlidingLog, lim, tr.times)
			fmt.Fprintf(&table, "| %v | %s | %d | %d | %d | %d | %+d | %d | %d |\n", alg, tr.name, len(tr.times),
				r.admitted, exact.admitted, r.worstWindow, r.worstWindow-limit, r.needless, r.shortfall)

			switch alg {
			case SlidingLog:
				if r.worstWindow > limit || r.needless != 0 {
					t.Errorf("%v on %s: worst window %d, %d needless denials; want exact", alg, tr.name, r.worstWindow, r.needless)
				}
			case FixedWindow:
				if r.worstWindow > 2*limit {
					t.Errorf("%v on %s: worst window %d > 2×limit", alg, tr.name, r.worstWindow)
				}
			case TokenBucket, GCRA:
				// Burst at once, plus what refills during the window.
				if r.worstWindow > lim.Burst+limit {
					t.Errorf("%v on %s: worst window %d > burst+limit", alg, tr.name, r.worstWindow)
				}
			}
		}
	}
	t.Log(table.String())
}

type trace struct {
	name  string
	times []time.Duration // one hit each, in order
}

// comparisonTraces returns four seeded traces of 60 s each, and the
// fixed window's worst case.
func comparisonTraces(limit int, window time.Duration) []trace {
	rng := rand.New(rand.NewPCG(42, 42))
	span := 6 * window
	var steady, bursty, edges, onoff []time.Duration
	// Poisson arrivals at twice the limit.
	for t := time.Duration(0); t < span; {
		t += time.Duration(rng.ExpFloat64() * float64(window) / float64(2*limit))
		steady = append(steady, t)
	}
	// Bursts of 3×limit within 100 ms, at random moments.
	for t := time.Duration(0); t < span; t += time.Duration(rng.Int64N(int64(window))) {
		for range 3 * limit {
			bursty = append(bursty, t+time.Duration(rng.Int64N(int64(100*time.Millisecond))))
		}
	}
	// Crowds just before and just after each multiple of the window: the
	// fixed window's worst case.
	for k := time.Duration(1); k*window < span; k++ {
		for range 2 * limit {
			edges = append(edges, k*window-time.Duration(rng.Int64N(int64(200*time.Millisecond))))
			edges = append(edges, k*window+time.Duration(rng.Int64N(int64(200*time.Millisecond))))
		}
	}
	// Four times the limit for half a window, then nothing.
	for t := time.Duration(0); t < span; t += window / time.Duration(8*limit) {
		if (t/(window/2))%2 == 0 {
			onoff = append(onoff, t)
		}
	}
	// The fixed window's worst case: one hit opens a window at 0, then a
	// limit's worth just before it closes and another just after.
	attack := []time.Duration{0}
	for i := range limit {
		attack = append(attack, window-100*time.Millisecond+time.Duration(i)*time.Millisecond)
	}
	for i := range limit {
		attack = append(attack, window+time.Duration(i)*time.Millisecond)
	}
	for _, ts := range [][]time.Duration{bursty, edges} {
		slices.Sort(ts)
	}
	return []trace{{"steady 2x", steady}, {"bursts 3x", bursty}, {"window edges", edges}, {"on-off 4x", onoff}, {"edge attack", attack}}
}

type replayResult struct {
	admitted    int
	worstWindow int64 // most admitted in any rolling window (t-W, t]
	needless    int   // denials although the rolling window had room
	shortfall   int64 // largest room left in the rolling window at a denial
}

func replay(alg Algorithm, lim Limit, times []time.Duration) replayResult {
	var st State
	var r replayResult
	var admittedAt []time.Duration
	inWindow := func(t time.Duration) int64 { // admitted in (t-W, t]
		i, _ := slices.BinarySearch(admittedAt, t-lim.Window+1)
		return int64(len(admittedAt) - i)
	}
	for _, t := range times {
		if alg.Engine().Decide(&st, lim, t, 1).Allowed {
			r.admitted++
			admittedAt = append(admittedAt, t)
			r.worstWindow = max(r.worstWindow, inWindow(t))
		} else if room := lim.Limit - inWindow(t); room > 0 {
			r.needless++
			r.shortfall = max(r.shortfall, room)
		}
	}
	return r
}
