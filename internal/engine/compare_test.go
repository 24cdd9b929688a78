package engine

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
//	go test ./internal/engine -run TestAlgorithmComparison -v
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
			case StrictWindow:
				if r.worstWindow > limit {
					t.Errorf("%v on %s: worst window %d > limit", alg, tr.name, r.worstWindow)
				}
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
	return replayWith(func(t time.Duration) bool { return alg.Engine().Decide(&st, lim, t, 1).Allowed }, lim, times)
}

// replayWith replays one hit at each time through allow, which admits it
// or not, and measures the result against lim's rolling window.
func replayWith(allow func(time.Duration) bool, lim Limit, times []time.Duration) replayResult {
	var r replayResult
	var admittedAt []time.Duration
	inWindow := func(t time.Duration) int64 { // admitted in (t-W, t]
		i, _ := slices.BinarySearch(admittedAt, t-lim.Window+1)
		return int64(len(admittedAt) - i)
	}
	for _, t := range times {
		if allow(t) {
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

// TestStrictShapes compares shapes that keep the exact bound "at most
// limit in any rolling window" from a few words of state, on the same
// traces, to choose the strict window's (docs/adr/0002-strict-window-default.md):
//
//	go test ./internal/engine -run TestStrictShapes -v
//
// The slot shapes run the reference model with the slot length each would
// have: k+1 counters for k slots per window (two counters: the previous
// window counted in full until it has wholly left). The GCRA shapes are the
// existing engine with burst b and rate (limit-b+1) per window, the most
// that keeps b + floor((window-1)/interval) <= limit.
func TestStrictShapes(t *testing.T) {
	const limit, window = 100, 10 * time.Second
	lim := Limit{Limit: limit, Window: window, Burst: limit}
	type shape struct {
		name  string
		state string
		allow func() func(time.Duration) bool
	}
	slots := func(k int64) func() func(time.Duration) bool {
		return func() func(time.Duration) bool {
			m := &refStrictWindow{lim: lim, slot: (int64(window) - 1 + k - 1) / k, unit: 1}
			return func(t time.Duration) bool { return m.decide(int64(t), 1).Allowed }
		}
	}
	gcraCapped := func(b int64) func() func(time.Duration) bool {
		return func() func(time.Duration) bool {
			capped := Limit{Limit: limit - b + 1, Window: window, Burst: b}
			var st State
			return func(t time.Duration) bool { return GCRA.Engine().Decide(&st, capped, t, 1).Allowed }
		}
	}
	shapes := []shape{
		{"two counters (1 slot per window)", "24 B (2 counts, 1 time)", slots(1)},
		{"3 counters (2 slots)", "24 B up to limit 2^37", slots(2)},
		{"5 counters (4 slots)", "24 B up to limit 2^22", slots(4)},
		{"strict_window (16 counters, 15 slots at this limit)", "24 B", func() func(time.Duration) bool {
			var st State
			return func(t time.Duration) bool { return StrictWindow.Engine().Decide(&st, lim, t, 1).Allowed }
		}},
		{"gcra, burst = limit, 1 per window", "16 B", gcraCapped(limit)},
		{"gcra, burst = limit/2", "16 B", gcraCapped(limit / 2)},
		{"gcra, burst 1, limit per window", "16 B", gcraCapped(1)},
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n| shape | state | trace | admitted | sliding-log admitted | worst in any window | needless denials | worst shortfall at a denial |\n")
	fmt.Fprintf(&table, "|---|---|---|---|---|---|---|---|\n")
	for _, sh := range shapes {
		total := 0
		for _, tr := range comparisonTraces(limit, window) {
			r := replayWith(sh.allow(), lim, tr.times)
			exact := replay(SlidingLog, lim, tr.times)
			fmt.Fprintf(&table, "| %s | %s | %s | %d | %d | %d | %d | %d |\n", sh.name, sh.state, tr.name,
				r.admitted, exact.admitted, r.worstWindow, r.needless, r.shortfall)
			if r.worstWindow > limit {
				t.Errorf("%s on %s: worst window %d > limit", sh.name, tr.name, r.worstWindow)
			}
			total += r.admitted
		}
		fmt.Fprintf(&table, "| %s | | all five | %d | | | | |\n", sh.name, total)
	}
	t.Log(table.String())
}
