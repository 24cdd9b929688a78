package engine

import (
	"testing"
	"time"
)

// A dry-run check foretells the real check, under every algorithm: the
// same Allowed and RetryAfter, with Remaining and ResetAfter of the bucket
// before it (what a peek of 0 hits says). And it leaves the bucket as it
// was: the real checks that follow see the same decisions as a twin store
// that never saw a dry run.
func TestDryRunForetellsACheckAndSpendsNothing(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			clock := &ManualClock{}
			dry, err := New(Config{Clock: clock, SweepInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer dry.Close()
			twin, err := New(Config{Clock: clock, SweepInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer twin.Close()
			req := Request{UserID: "u", Action: "a", Limit: 10, Window: time.Second, Hits: 3, Algorithm: alg}
			for step := range 40 {
				peek, probe := req, req
				peek.Hits, probe.DryRun = 0, true
				before, err := twin.Check(peek)
				if err != nil {
					t.Fatal(err)
				}
				want, err := twin.Check(req)
				if err != nil {
					t.Fatal(err)
				}
				got, err := dry.Check(probe)
				if err != nil {
					t.Fatal(err)
				}
				if got.Allowed != want.Allowed || got.RetryAfter != want.RetryAfter ||
					got.Remaining != before.Remaining || got.ResetAfter != before.ResetAfter {
					t.Fatalf("step %d: dry run %+v; real check %+v after a peek %+v", step, got, want, before)
				}
				if _, err := dry.Check(req); err != nil {
					t.Fatal(err)
				}
				clock.Advance(70 * time.Millisecond)
			}
		})
	}
}

// A dry run on a fresh key creates no bucket.
func TestDryRunStoresNothing(t *testing.T) {
	s, err := New(Config{Clock: &ManualClock{}, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := validRequest()
	req.DryRun = true
	for range 3 {
		if d, err := s.Check(req); err != nil || !d.Allowed || d.Remaining != req.Limit {
			t.Fatalf("dry run on a fresh key: %+v, %v", d, err)
		}
	}
	if n := s.Len(); n != 0 {
		t.Fatalf("store holds %d keys after dry runs only", n)
	}
}

// Reset forgives a key under every algorithm and leaves other keys alone.
func TestResetDropsOnlyThatKey(t *testing.T) {
	s, err := New(Config{Clock: &ManualClock{}, SweepInterval: -1})
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
