package engine

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// CheckKey with n repeats answers exactly as n separate checks at the same
// instant would: the same number admitted, the same last admitted decision
// and the same denial.
func TestCheckKeyRepeatedEqualsSeparateChecks(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, uint64(alg)))
			clock := &ManualClock{}
			batched := newTestStore(t, Config{Clock: clock})
			separate := newTestStore(t, Config{Clock: clock, Hasher: batched.hash})
			for seed := range 50 {
				lim := randomLimit(rng, alg)
				req := Request{UserID: "u" + string(rune('a'+seed%26)), Action: "x", Limit: lim.Limit,
					Window: lim.Window, Burst: lim.Burst, Algorithm: alg}
				if lim.Window > time.Hour {
					continue
				}
				for range 20 {
					dt, hits := randomStep(rng, lim)
					clock.Advance(dt)
					req.Hits = hits
					n := 1 + rng.IntN(8)
					got, err := batched.CheckKey(batched.Key(req.UserID, req.Action), req, n)
					if err != nil {
						t.Fatal(err)
					}
					var want Repeated
					for range n {
						d, err := separate.Check(req)
						if err != nil {
							t.Fatal(err)
						}
						want.record(d, n, hits)
						if !d.Allowed || hits == 0 {
							break
						}
					}
					if got != want {
						t.Fatalf("%d × %+v: CheckKey = %+v, separate checks %+v", n, req, got, want)
					}
				}
			}
		})
	}
}

func TestCheckKeyRejectsBadCount(t *testing.T) {
	store := newTestStore(t, Config{Clock: &ManualClock{}})
	if _, err := store.CheckKey(Key{1, 2}, validRequest(), 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("CheckKey(n=0) error = %v, want ErrInvalidArgument", err)
	}
	bad := validRequest()
	bad.Limit = 0
	if _, err := store.CheckKey(Key{1, 2}, bad, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("CheckKey(limit=0) error = %v, want ErrInvalidArgument", err)
	}
}

func TestCheckKeyIfHeld(t *testing.T) {
	store := newTestStore(t, Config{Clock: &ManualClock{}})
	req := validRequest()
	k := store.Key(req.UserID, req.Action)
	if _, held, err := store.CheckKeyIfHeld(k, req, 1); held || err != nil || store.Len() != 0 {
		t.Fatalf("on an empty store: held %v, err %v, %d keys; want nothing", held, err, store.Len())
	}
	store.CheckKey(k, req, 2)
	rep, held, err := store.CheckKeyIfHeld(k, req, 1)
	if !held || err != nil || rep.Admitted != 1 || rep.LastAdmitted.Remaining != 2 {
		t.Fatalf("on a held key: %+v, held %v, err %v; want one admitted with 2 remaining", rep, held, err)
	}
}

func TestFence(t *testing.T) {
	store := newTestStore(t, Config{Clock: &ManualClock{}})
	req := validRequest()
	k := store.Key(req.UserID, req.Action)
	store.CheckKey(k, req, 1)
	store.SetFence(func(Key) bool { return true })
	if _, err := store.CheckKey(k, req, 1); !errors.Is(err, ErrFenced) {
		t.Fatalf("CheckKey behind the fence: %v, want ErrFenced", err)
	}
	if _, err := store.Check(req); !errors.Is(err, ErrFenced) {
		t.Fatalf("Check behind the fence: %v, want ErrFenced", err)
	}
	if _, held, err := store.CheckKeyIfHeld(k, req, 1); held || err != nil {
		t.Fatalf("CheckKeyIfHeld behind the fence: held %v, %v", held, err)
	}
	if moved := store.Extract(func(Key) bool { return true }); len(moved) != 1 {
		t.Fatalf("Extract is not fenced: got %d buckets, want 1", len(moved))
	}
	store.SetFence(nil)
	if rep, err := store.CheckKey(k, req, 1); err != nil || rep.LastAdmitted.Remaining != 4 {
		t.Fatalf("after the fence lifts: %+v, %v; want a fresh bucket", rep, err)
	}
}
