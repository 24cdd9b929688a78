package bucket

import (
	"testing"
	"time"
)

// A dry-run check answers exactly as the real check would, under every
// algorithm, and leaves the bucket as it was: the real checks that follow
// see the same sequence of decisions as a twin store that never saw a dry
// run.
func TestDryRunDecidesLikeACheckAndSpendsNothing(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			clock := &ManualClock{}
			dry, err := NewStore(StoreConfig{Clock: clock, SweepInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer dry.Close()
			twin, err := NewStore(StoreConfig{Clock: clock, SweepInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer twin.Close()
			req := Request{UserID: "u", Action: "a", Limit: 10, Window: time.Second, Hits: 3, Algorithm: alg}
			for step := range 40 {
				probe := req
				probe.DryRun = true
				want, err := twin.Check(req)
				if err != nil {
					t.Fatal(err)
				}
				// The dry run is made on dry before the real check and
				// must foretell the twin's real decision.
				got, err := dry.Check(probe)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("step %d: dry run %+v, real check %+v", step, got, want)
				}
				if _, err := dry.Check(req); err != nil {
					t.Fatal(err)
				}
				clock.Advance(70 * time.Millisecond)
			}
		})
	}
}

// A dry run on a fresh key creates no bucket; its answer is what the real
// check would answer, Remaining included.
func TestDryRunStoresNothing(t *testing.T) {
	s, err := NewStore(StoreConfig{Clock: &ManualClock{}, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := validRequest()
	req.DryRun = true
	for range 3 {
		if d, err := s.Check(req); err != nil || !d.Allowed || d.Remaining != req.Limit-req.Hits {
			t.Fatalf("dry run on a fresh key: %+v, %v", d, err)
		}
	}
	if n := s.Len(); n != 0 {
		t.Fatalf("store holds %d keys after dry runs only", n)
	}
}

// Reset forgives a key under every algorithm and leaves other keys alone.
func TestResetDropsOnlyThatKey(t *testing.T) {
	s, err := NewStore(StoreConfig{Clock: &ManualClock{}, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other := validRequest()
	other.UserID = "someone-else"
	for _, alg := range Algorithms() {
		for _, r := range []Request{validRequest(), other} {
			r.Algorithm, r.Hits = alg, r.Limit
			if d, err := s.Check(r); err != nil || !d.Allowed {
				t.Fatalf("%v: %+v, %v", alg, d, err)
			}
		}
	}
	if got := s.Reset(s.Key("u1", "login")); got != len(Algorithms()) {
		t.Fatalf("Reset dropped %d buckets, want %d", got, len(Algorithms()))
	}
	for _, alg := range Algorithms() {
		r := validRequest()
		r.Algorithm = alg
		if d, _ := s.Check(r); !d.Allowed || d.Remaining != r.Limit-1 {
			t.Fatalf("%v after reset: %+v, want a fresh bucket", alg, d)
		}
		other.Algorithm, other.Hits = alg, 1
		if d, _ := s.Check(other); d.Allowed {
			t.Fatalf("%v: the other key was reset too: %+v", alg, d)
		}
	}
	if got := s.Reset(s.Key("nobody", "login")); got != 0 {
		t.Fatalf("Reset of an unknown key dropped %d", got)
	}
}
