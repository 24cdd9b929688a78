package engine

import (
	"math/rand/v2"
	"testing"
	"time"
)

// A bucket moved between two stores whose clocks have unrelated origins
// (and a gap in time on the receiver) answers exactly as if it had stayed.
func TestExtractAbsorbKeepsDecisions(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			for seed := range 40 {
				rng := rand.New(rand.NewPCG(uint64(seed), 77))
				lim := randomLimit(rng, alg)
				req := Request{UserID: "u", Action: "a", Limit: lim.Limit, Window: lim.Window, Burst: lim.Burst, Algorithm: alg}
				hasher := NewKeyHasher()
				stay, from, to := &ManualClock{}, &ManualClock{}, &ManualClock{}
				stay.Set(10 * time.Hour)
				from.Set(10 * time.Hour)
				to.Set(time.Minute) // another origin altogether
				kept := newTestStore(t, Config{Clock: stay, Hasher: hasher})
				sender := newTestStore(t, Config{Clock: from, Hasher: hasher})
				receiver := newTestStore(t, Config{Clock: to, Hasher: hasher})

				step := func(s *Store, hits int64) Decision {
					r := req
					r.Hits = hits
					d, err := s.Check(r)
					if err != nil {
						t.Fatal(err)
					}
					return d
				}
				advance := func(dt time.Duration) {
					stay.Advance(dt)
					from.Advance(dt)
					to.Advance(dt)
				}
				for range 30 {
					dt, hits := randomStep(rng, lim)
					advance(dt)
					if a, b := step(kept, hits), step(sender, hits); a != b {
						t.Fatalf("before the move: %+v vs %+v", a, b)
					}
				}
				moved := sender.Extract(func(Key) bool { return true })
				if sender.Len() != 0 {
					t.Fatalf("Extract left %d keys", sender.Len())
				}
				receiver.Absorb(moved)
				for i := range 30 {
					dt, hits := randomStep(rng, lim)
					advance(dt)
					if a, b := step(kept, hits), step(receiver, hits); a != b {
						t.Fatalf("seed %d, step %d after the move: stayed %+v, moved %+v", seed, i, a, b)
					}
				}
			}
		})
	}
}

// When the new owner already answered checks before the old owner's state
// arrived, the combined bucket offers no more than both histories left.
func TestAbsorbCombinesConservatively(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			for seed := range 200 {
				rng := rand.New(rand.NewPCG(uint64(seed), 78))
				lim := randomLimit(rng, alg)
				req := Request{UserID: "u", Action: "a", Limit: lim.Limit, Window: lim.Window, Burst: lim.Burst, Algorithm: alg}
				hasher := NewKeyHasher()
				ca, cb := &ManualClock{}, &ManualClock{}
				ca.Set(5 * time.Hour)
				cb.Set(2 * time.Hour)
				a := newTestStore(t, Config{Clock: ca, Hasher: hasher})
				b := newTestStore(t, Config{Clock: cb, Hasher: hasher})
				for _, s := range []*Store{a, b} {
					for range 1 + rng.IntN(10) {
						dt, hits := randomStep(rng, lim)
						ca.Advance(dt / 4)
						cb.Advance(dt / 4)
						r := req
						r.Hits = hits
						s.Check(r)
					}
				}
				peek := req
				peek.Hits = 0
				da, _ := a.Check(peek)
				db, _ := b.Check(peek)
				b.Absorb(a.Extract(func(Key) bool { return true }))
				merged, _ := b.Check(peek)
				// Remaining is a floor; with fractional state the two floors
				// can together lose up to one.
				slack := int64(1)
				if alg == FixedWindow || alg == SlidingLog {
					slack = 0
				}
				if bound := max(da.Remaining+db.Remaining-da.Limit+slack, 0); merged.Remaining > bound {
					t.Fatalf("seed %d: remaining %d here and %d there of %d, %d after combining; want at most %d",
						seed, db.Remaining, da.Remaining, da.Limit, merged.Remaining, bound)
				}
			}
		})
	}
}

func TestAbsorbSkipsFreshAndUnknown(t *testing.T) {
	s := newTestStore(t, Config{Clock: &ManualClock{}})
	n := s.Absorb([]Moved{
		{Key: Key{Hi: 1, Lo: 7}, A: 1, FreshIn: time.Second}, // algorithm 7 does not exist
		{Key: Key{Hi: 2, Lo: 0}, A: 1, FreshIn: 0},           // already fresh
	})
	if n != 0 || s.Len() != 0 {
		t.Fatalf("Absorb kept %d, store holds %d; want 0, 0", n, s.Len())
	}
}

// A bucket moved many times between stores whose clocks start anywhere
// (readings near zero make moved times negative) keeps every decision.
func TestBucketMovingManyTimes(t *testing.T) {
	for _, alg := range Algorithms() {
		for seed := range 100 {
			rng := rand.New(rand.NewPCG(uint64(seed), 99))
			lim := randomLimit(rng, alg)
			req := Request{UserID: "u", Action: "a", Limit: lim.Limit, Window: lim.Window, Burst: lim.Burst, Algorithm: alg}
			hasher := NewKeyHasher()
			stay := &ManualClock{}
			stay.Set(10 * time.Hour)
			kept := newTestStore(t, Config{Clock: stay, Hasher: hasher})
			clocks := make([]*ManualClock, 3)
			stores := make([]*Store, 3)
			for i := range clocks {
				clocks[i] = &ManualClock{}
				clocks[i].Set(time.Duration(rng.Int64N(int64(time.Second))))
				stores[i] = newTestStore(t, Config{Clock: clocks[i], Hasher: hasher})
			}
			cur := 0
			for step := range 60 {
				dt, hits := randomStep(rng, lim)
				dt /= 100
				stay.Advance(dt)
				for _, c := range clocks {
					c.Advance(dt)
				}
				r := req
				r.Hits = hits
				a, _ := kept.Check(r)
				b, _ := stores[cur].Check(r)
				if a != b {
					t.Fatalf("%v seed %d step %d on store %d: kept %+v, moved %+v", alg, seed, step, cur, a, b)
				}
				if rng.IntN(5) == 0 {
					next := rng.IntN(3)
					if next != cur {
						stores[next].Absorb(stores[cur].Extract(func(Key) bool { return true }))
						cur = next
					}
				}
			}
		}
	}
}

// A bucket copied out with Buckets, aged by the time a node was down and
// absorbed by a fresh store (a restart from a snapshot) answers exactly as
// if it had stayed through that time; the copy leaves the original alone.
func TestBucketsAgedKeepDecisions(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			for seed := range 40 {
				rng := rand.New(rand.NewPCG(uint64(seed), 79))
				lim := randomLimit(rng, alg)
				req := Request{UserID: "u", Action: "a", Limit: lim.Limit, Window: lim.Window, Burst: lim.Burst, Algorithm: alg}
				hasher := NewKeyHasher()
				stay, before := &ManualClock{}, &ManualClock{}
				stay.Set(10 * time.Hour)
				before.Set(10 * time.Hour)
				kept := newTestStore(t, Config{Clock: stay, Hasher: hasher})
				saved := newTestStore(t, Config{Clock: before, Hasher: hasher})
				step := func(s *Store, hits int64) Decision {
					r := req
					r.Hits = hits
					d, err := s.Check(r)
					if err != nil {
						t.Fatal(err)
					}
					return d
				}
				for range 30 {
					dt, hits := randomStep(rng, lim)
					stay.Advance(dt)
					before.Advance(dt)
					if a, b := step(kept, hits), step(saved, hits); a != b {
						t.Fatalf("before the snapshot: %+v vs %+v", a, b)
					}
				}
				down := time.Duration(rng.Int64N(int64(2 * lim.Window)))
				held := saved.Len()
				var copied []Moved
				for m := range saved.Buckets() {
					if aged, ok := m.Aged(down); ok {
						copied = append(copied, aged)
					}
				}
				if saved.Len() != held {
					t.Fatalf("Buckets removed keys: %d of %d left", saved.Len(), held)
				}
				stay.Advance(down)
				after := &ManualClock{} // a restarted process: its clock starts at zero
				restarted := newTestStore(t, Config{Clock: after, Hasher: hasher})
				restarted.Absorb(copied)
				for i := range 30 {
					dt, hits := randomStep(rng, lim)
					stay.Advance(dt)
					after.Advance(dt)
					if a, b := step(kept, hits), step(restarted, hits); a != b {
						t.Fatalf("seed %d, step %d after %v down: stayed %+v, restored %+v", seed, i, down, a, b)
					}
				}
			}
		})
	}
}

// Aging never adds spending: no time or negative time leaves a bucket as
// it was, and a bucket aged past its fresh time is dropped.
func TestAgedBounds(t *testing.T) {
	m := Moved{Key: Key{Hi: 1, Lo: uint64(TokenBucket)}, A: 3, C: -int64(time.Second), FreshIn: time.Minute}
	for _, d := range []time.Duration{0, -time.Hour} {
		if got, ok := m.Aged(d); !ok || got.C != m.C || got.FreshIn != m.FreshIn {
			t.Errorf("Aged(%v) = %+v, %v; want it unchanged", d, got, ok)
		}
	}
	if _, ok := m.Aged(time.Minute); ok {
		t.Error("a bucket aged to its fresh time was kept")
	}
	if got, ok := m.Aged(time.Second); !ok || got.C != -2*int64(time.Second) || got.FreshIn != 59*time.Second {
		t.Errorf("Aged(1s) = %+v, %v", got, ok)
	}
}
