package engine

import (
	"testing"
	"time"
)

// step is one row of a stateful table: at time at, spend hits, expect the
// decision.
type step struct {
	at   time.Duration
	hits int64
	want Decision
}

func runSteps(t *testing.T, alg Algorithm, lim Limit, steps []step) {
	t.Helper()
	var st State
	for i, s := range steps {
		got := alg.Engine().Decide(&st, lim, s.at, s.hits)
		if got != s.want {
			t.Fatalf("step %d: %v Decide(t=%v, hits=%d) = %+v, want %+v", i, alg, s.at, s.hits, got, s.want)
		}
	}
}

func allow(limit, remaining int64, reset time.Duration) Decision {
	return Decision{Allowed: true, Limit: limit, Remaining: remaining, ResetAfter: reset}
}

func deny(limit, remaining int64, reset, retry time.Duration) Decision {
	return Decision{Limit: limit, Remaining: remaining, ResetAfter: reset, RetryAfter: retry}
}

const s = time.Second

// Five per 10 s, hit hard at the end of a fixed window and again at the
// start of the next: each algorithm's answer at the edge, side by side.
func TestBurstAtWindowEdge(t *testing.T) {
	lim := Limit{Limit: 5, Window: 10 * s, Burst: 5}
	t.Run("fixed_window lets 2x through across the edge", func(t *testing.T) {
		runSteps(t, FixedWindow, lim, []step{
			{0, 1, allow(5, 4, 10*s)},
			{9 * s, 4, allow(5, 0, 1*s)},
			{9*s + 500*time.Millisecond, 1, deny(5, 0, 500*time.Millisecond, 500*time.Millisecond)},
			{10 * s, 5, allow(5, 0, 10*s)}, // 9 admitted within one second
		})
	})
	t.Run("sliding_log never exceeds the limit in any window", func(t *testing.T) {
		runSteps(t, SlidingLog, lim, []step{
			{0, 1, allow(5, 4, 10*s)},
			{9 * s, 4, allow(5, 0, 10*s)},
			{10 * s, 5, deny(5, 1, 9*s, 9*s)},
			{10 * s, 1, allow(5, 0, 10*s)}, // the hit at 0 left the window
			{19 * s, 4, allow(5, 0, 10*s)},
		})
	})
	t.Run("sliding_window weighs the previous window", func(t *testing.T) {
		runSteps(t, SlidingWindow, lim, []step{
			{0, 1, allow(5, 4, 20*s)},
			{9 * s, 4, allow(5, 0, 11*s)},
			// At 12 s the previous window (5 hits) weighs 0.8: estimate 4.
			{12 * s, 2, deny(5, 1, 8*s, 2*s)},
			{12 * s, 1, allow(5, 0, 18*s)},
		})
	})
	t.Run("strict_window holds each hit until its slot leaves the window", func(t *testing.T) {
		// 5 per 10 s: 37 slots of g = 17·2^24 ns = 285.212672 ms. The
		// first hit ends slot 0, so slot k is ((k-1)g, kg].
		const g = 285212672 * time.Nanosecond
		const ms = time.Millisecond
		runSteps(t, StrictWindow, lim, []step{
			{0, 1, allow(5, 4, 10*s)},
			{100 * ms, 1, allow(5, 3, g+10*s-100*ms)}, // slot 1: held until g+10 s
			{9 * s, 3, allow(5, 0, 32*g+s)},           // slot 32
			// The hit at 0 has left the window, exactly on time.
			{10 * s, 1, allow(5, 0, 36*g)},
			// The hit at 100 ms counts until the window starts after its
			// slot, at g+10 s: a needless denial of g-100 ms, which the
			// exact sliding log would not make.
			{10*s + 100*ms, 1, deny(5, 0, 36*g-100*ms, g-100*ms)},
			{10*s + g, 1, allow(5, 0, 36*g)},
		})
	})
	t.Run("token_bucket refills continuously", func(t *testing.T) {
		runSteps(t, TokenBucket, lim, []step{
			{0, 1, allow(5, 4, 2*s)},
			{9 * s, 4, allow(5, 1, 8*s)},
			{10 * s, 5, deny(5, 1, 7*s, 7*s)}, // 1.5 tokens: 3.5 to go at 2 s each
			{10 * s, 1, allow(5, 0, 9*s)},
		})
	})
}

// Exactly Limit pass at one instant, then the next is denied, for every
// algorithm; GCRA and the token bucket say the same.
func TestExactlyLimitAdmitted(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			lim := Limit{Limit: 100, Window: time.Minute, Burst: 100}
			var st State
			for i := range 100 {
				if d := alg.Engine().Decide(&st, lim, 5*s, 1); !d.Allowed || d.Remaining != int64(99-i) {
					t.Fatalf("hit %d: %+v, want allowed with %d remaining", i, d, 99-i)
				}
			}
			if d := alg.Engine().Decide(&st, lim, 5*s, 1); d.Allowed || d.RetryAfter <= 0 {
				t.Fatalf("hit 101: %+v, want denied with a retry", d)
			}
		})
	}
}

// After a long idle every algorithm is back to a fresh bucket: its state is
// the zero State, so a store may drop it.
func TestRefillAfterIdle(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			lim := Limit{Limit: 10, Window: time.Hour, Burst: 10}
			var st State
			alg.Engine().Decide(&st, lim, time.Hour, 10)
			d := alg.Engine().Decide(&st, lim, 3*time.Hour, 0)
			if !d.Allowed || d.Remaining != 10 || d.ResetAfter != 0 || !st.fresh() {
				t.Fatalf("after idle: %+v, state %+v; want a full, fresh bucket", d, st)
			}
		})
	}
}

// The largest limits and windows that validation accepts compute without
// overflow, and a token refills exactly on time.
func TestHugeLimitsAndWindows(t *testing.T) {
	for _, alg := range []Algorithm{TokenBucket, GCRA} {
		lim := Limit{Limit: MaxLimit, Window: HardMaxWindow, Burst: MaxLimit}
		var st State
		if d := alg.Engine().Decide(&st, lim, 0, MaxLimit); !d.Allowed || d.Remaining != 0 || d.ResetAfter != HardMaxWindow {
			t.Fatalf("%v: spend all: %+v", alg, d)
		}
		d := alg.Engine().Decide(&st, lim, 0, 1)
		// One token of 1e12 per 366 days takes 31.6224 µs to come back.
		if perToken := HardMaxWindow / MaxLimit; d.Allowed || d.RetryAfter != perToken+1 {
			t.Fatalf("%v: next hit: %+v, want retry %v", alg, d, perToken+1)
		}
		if d := alg.Engine().Decide(&st, lim, d.RetryAfter, 1); !d.Allowed {
			t.Fatalf("%v: after retry: %+v", alg, d)
		}
	}
	for _, alg := range []Algorithm{StrictWindow, FixedWindow, SlidingWindow, SlidingLog} {
		lim := Limit{Limit: MaxLimit, Window: HardMaxWindow, Burst: MaxLimit}
		var st State
		if d := alg.Engine().Decide(&st, lim, 0, MaxLimit); !d.Allowed || d.Remaining != 0 {
			t.Fatalf("%v: spend all: %+v", alg, d)
		}
		if d := alg.Engine().Decide(&st, lim, HardMaxWindow-1, 1); d.Allowed {
			t.Fatalf("%v: within the window: %+v", alg, d)
		}
	}
}

// A clock that goes backwards never refills a bucket.
func TestTimeGoingBackwards(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			lim := Limit{Limit: 2, Window: 10 * s, Burst: 2}
			var st State
			alg.Engine().Decide(&st, lim, 100*s, 2)
			if d := alg.Engine().Decide(&st, lim, 50*s, 1); d.Allowed {
				t.Fatalf("after going back 50 s: %+v, want denied", d)
			}
			if d := alg.Engine().Decide(&st, lim, 100*s, 1); d.Allowed {
				t.Fatalf("back at the start: %+v, want denied", d)
			}
		})
	}
}
