package engine

import (
	"math/rand/v2"
	"testing"
	"time"
)

// randomLimit draws a bucket shape that stresses both small and huge
// numbers.
func randomLimit(rng *rand.Rand, a Algorithm) Limit {
	limits := []int64{1, 2, 3, 5, 10, 100, 1 + rng.Int64N(1000), 1_000_000_000}
	windows := []time.Duration{time.Second, 1500 * time.Millisecond, time.Minute, time.Hour,
		time.Second + time.Duration(rng.Int64N(int64(time.Hour-time.Second)))}
	lim := Limit{Limit: limits[rng.IntN(len(limits))], Window: windows[rng.IntN(len(windows))]}
	lim.Burst = lim.Limit
	if (a == TokenBucket || a == GCRA) && rng.IntN(10) < 4 {
		lim.Burst = 1 + rng.Int64N(2*lim.Limit)
	}
	return lim
}

// randomStep draws the time until the next check and its hits.
func randomStep(rng *rand.Rand, lim Limit) (time.Duration, int64) {
	w := int64(lim.Window)
	var dt int64
	switch r := rng.IntN(20); {
	case r < 4:
		dt = 0
	case r < 12:
		dt = rng.Int64N(max(2*w/lim.Limit, 1) + 1)
	case r < 17:
		dt = rng.Int64N(w + 1)
	default:
		dt = rng.Int64N(3*w + 1)
	}
	var hits int64
	switch r := rng.IntN(10); {
	case r < 1:
		hits = 0
	case r < 7:
		hits = 1
	default:
		hits = 1 + rng.Int64N(lim.Burst)
	}
	return time.Duration(dt), hits
}

// TestEnginesMatchModels runs every engine, and the Store around it, on
// random traces and compares each Decision with the slow reference model.
func TestEnginesMatchModels(t *testing.T) {
	seeds, steps := 150, 200
	if testing.Short() {
		seeds = 30
	}
	for _, alg := range Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			t.Parallel()
			denied, admitted := 0, 0
			for seed := range seeds {
				rng := rand.New(rand.NewPCG(uint64(seed), uint64(alg)))
				lim := randomLimit(rng, alg)
				ref := newModel(alg, lim)
				clock := &ManualClock{}
				store := newTestStore(t, Config{Clock: clock, MinWindow: time.Second, MaxWindow: time.Hour})
				var st State
				now := time.Duration(rng.Int64N(int64(time.Hour)))
				for step := range steps {
					dt, hits := randomStep(rng, lim)
					now += dt
					clock.Set(now)
					got := alg.Engine().Decide(&st, lim, now, hits)
					want := ref.decide(int64(now), hits)
					if !want.Allowed {
						want.RetryAfter = retryAfter(ref, int64(now), max(hits, 1), lim)
					}
					if got != want {
						t.Fatalf("seed %d step %d: %v %+v Decide(t=%v, hits=%d) = %+v, want %+v",
							seed, step, alg, lim, now, hits, got, want)
					}
					viaStore, err := store.Check(Request{UserID: "u", Action: "a", Limit: lim.Limit,
						Window: lim.Window, Burst: lim.Burst, Hits: hits, Algorithm: alg})
					if err != nil {
						t.Fatalf("seed %d step %d: Check: %v", seed, step, err)
					}
					if viaStore != got {
						t.Fatalf("seed %d step %d: Store.Check = %+v, engine %+v", seed, step, viaStore, got)
					}
					if got.Allowed {
						admitted++
					} else {
						denied++
					}
					if got.Remaining < 0 || got.Remaining > got.Limit {
						t.Fatalf("seed %d step %d: Remaining %d outside [0, %d]", seed, step, got.Remaining, got.Limit)
					}
				}
			}
			// A trace that never denies would not test RetryAfter.
			if denied < steps || admitted < steps {
				t.Errorf("%v: %d admitted, %d denied over %d seeds: traces too one-sided", alg, admitted, denied, seeds)
			}
			t.Logf("%v: %d admitted, %d denied", alg, admitted, denied)
		})
	}
}

// TestGCRAEqualsTokenBucket: the two are the same limiter in different
// coordinates, so on any trace with time moving forward they must agree on
// every field.
func TestGCRAEqualsTokenBucket(t *testing.T) {
	for seed := range 300 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		lim := randomLimit(rng, TokenBucket)
		var tb, g State
		now := time.Duration(0)
		for step := range 300 {
			dt, hits := randomStep(rng, lim)
			now += dt
			a := TokenBucket.Engine().Decide(&tb, lim, now, hits)
			b := GCRA.Engine().Decide(&g, lim, now, hits)
			if a != b {
				t.Fatalf("seed %d step %d %+v t=%v hits=%d: token bucket %+v, gcra %+v", seed, step, lim, now, hits, a, b)
			}
		}
	}
}

func newTestStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = -1
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
