package engine

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func validRequest() Request {
	return Request{UserID: "u1", Action: "login", Limit: 5, Window: time.Minute, Hits: 1}
}

// Every kind of bad input is an ArgumentError naming the field, matches
// ErrInvalidArgument, and changes no state.
func TestBadInputIsRejectedAndSpendsNothing(t *testing.T) {
	cases := []struct {
		name  string
		field string
		edit  func(*Request)
	}{
		{"empty user", "user_id", func(r *Request) { r.UserID = "" }},
		{"long user", "user_id", func(r *Request) { r.UserID = strings.Repeat("u", MaxKeyLen+1) }},
		{"bad utf8 user", "user_id", func(r *Request) { r.UserID = "\xff\xfe" }},
		{"empty action", "action", func(r *Request) { r.Action = "" }},
		{"long action", "action", func(r *Request) { r.Action = strings.Repeat("a", MaxKeyLen+1) }},
		{"bad utf8 action", "action", func(r *Request) { r.Action = "ok\xc3" }},
		{"zero limit", "limit", func(r *Request) { r.Limit = 0 }},
		{"negative limit", "limit", func(r *Request) { r.Limit = -5 }},
		{"huge limit", "limit", func(r *Request) { r.Limit = MaxLimit + 1 }},
		{"zero window", "window", func(r *Request) { r.Window = 0 }},
		{"negative window", "window", func(r *Request) { r.Window = -time.Second }},
		{"short window", "window", func(r *Request) { r.Window = 999 * time.Millisecond }},
		{"long window", "window", func(r *Request) { r.Window = time.Hour + 1 }},
		{"negative hits", "hits", func(r *Request) { r.Hits = -1 }},
		{"hits over capacity", "hits", func(r *Request) { r.Hits = 6 }},
		{"hits over burst", "hits", func(r *Request) { r.Algorithm = TokenBucket; r.Burst = 2; r.Hits = 3 }},
		{"negative burst", "burst", func(r *Request) { r.Burst = -1 }},
		{"burst on a window", "burst", func(r *Request) { r.Algorithm = FixedWindow; r.Burst = 7 }},
		{"fill time overflow", "burst", func(r *Request) { r.Limit = 1; r.Burst = MaxLimit; r.Window = time.Hour }},
		{"unknown algorithm", "algorithm", func(r *Request) { r.Algorithm = numAlgorithms }},
	}
	store := newTestStore(t, Config{Clock: &ManualClock{}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := validRequest()
			c.edit(&req)
			_, err := store.Check(req)
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("Check(%+v) error = %v, want ErrInvalidArgument", req, err)
			}
			var ae *ArgumentError
			if !errors.As(err, &ae) || ae.Field != c.field {
				t.Fatalf("Check error = %v, want field %q", err, c.field)
			}
			if store.Len() != 0 {
				t.Fatalf("after a rejected check the store holds %d keys, want 0", store.Len())
			}
		})
	}
	if _, err := ParseAlgorithm("leaky"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("ParseAlgorithm(leaky) error = %v, want ErrInvalidArgument", err)
	}
	for _, a := range Algorithms() {
		if got, err := ParseAlgorithm(a.String()); got != a || err != nil {
			t.Fatalf("ParseAlgorithm(%q) = %v, %v", a.String(), got, err)
		}
	}
}

func TestStoreConfigValidate(t *testing.T) {
	bad := []Config{
		{MinWindow: -1},
		{MinWindow: time.Minute, MaxWindow: time.Second},
		{MaxWindow: HardMaxWindow + 1},
		{Shards: 3},
		{Shards: 1 << 17},
		{MaxEntries: -1},
	}
	for _, c := range bad {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", c)
		}
	}
}

// Keys whose parts would collide if joined with a separator stay apart.
func TestKeysDoNotCollide(t *testing.T) {
	store := newTestStore(t, Config{Clock: &ManualClock{}})
	a := Request{UserID: "a_b", Action: "c", Limit: 1, Window: time.Minute, Hits: 1}
	b := Request{UserID: "a", Action: "b_c", Limit: 1, Window: time.Minute, Hits: 1}
	for _, r := range []Request{a, b} {
		if d, err := store.Check(r); err != nil || !d.Allowed {
			t.Fatalf("Check(%q, %q) = %+v, %v; want allowed", r.UserID, r.Action, d, err)
		}
	}
	// And one key's buckets under different algorithms are separate.
	a.Algorithm = GCRA
	if d, _ := store.Check(a); !d.Allowed {
		t.Fatalf("Check(%q, %q, gcra) = %+v, want allowed", a.UserID, a.Action, d)
	}
}

// N goroutines hammer one key with a frozen clock: exactly Limit pass.
func TestConcurrentChecksOnOneKeyAdmitExactlyLimit(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			clock := &ManualClock{}
			clock.Set(time.Hour)
			store := newTestStore(t, Config{Clock: clock})
			const limit, workers, perWorker = 500, 16, 100
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range perWorker {
						d, err := store.Check(Request{UserID: "hot", Action: "api", Limit: limit, Window: time.Minute, Hits: 1, Algorithm: alg})
						if err != nil {
							t.Errorf("Check: %v", err)
							return
						}
						if d.Allowed {
							admitted.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := admitted.Load(); got != limit {
				t.Fatalf("%d goroutines x %d checks admitted %d, want exactly %d", workers, perWorker, got, limit)
			}
		})
	}
}

// A key whose bucket is fresh again is dropped: lazily on access and by the
// sweeper, and a fresh bucket is never stored at all.
func TestExpiry(t *testing.T) {
	clock := &ManualClock{}
	store := newTestStore(t, Config{Clock: clock, Shards: 4})
	req := validRequest()
	d, err := store.Check(req)
	if err != nil {
		t.Fatal(err)
	}
	peek := req
	peek.UserID, peek.Hits = "peeker", 0
	if _, err := store.Check(peek); err != nil {
		t.Fatal(err)
	}
	if n := store.Len(); n != 1 {
		t.Fatalf("after one spend and one peek: %d keys, want 1", n)
	}
	// The default algorithm holds a hit into a fresh bucket one window.
	if d.ResetAfter != time.Minute {
		t.Fatalf("ResetAfter %v after one hit, want %v", d.ResetAfter, time.Minute)
	}
	clock.Advance(d.ResetAfter - 1)
	if _, dropped := store.Sweep(); dropped != 0 || store.Len() != 1 {
		t.Fatalf("sweep before fresh dropped %d, holds %d", dropped, store.Len())
	}
	clock.Advance(1)
	if _, dropped := store.Sweep(); dropped != 1 || store.Len() != 0 {
		t.Fatalf("sweep when fresh dropped %d, holds %d; want 1, 0", dropped, store.Len())
	}

	// Lazily: a peek at an expired key drops it.
	for i := range 3 {
		if _, err := store.Check(req); err != nil {
			t.Fatalf("spend %d: %v", i, err)
		}
	}
	clock.Advance(time.Hour)
	d, _ = store.Check(peek2(req))
	if !d.Allowed || d.Remaining != 5 || store.Len() != 0 {
		t.Fatalf("peek after idle: %+v, %d keys; want a full bucket and no keys", d, store.Len())
	}
	if st := store.Stats(); st.Expired != 2 {
		t.Fatalf("Stats().Expired = %d, want 2", st.Expired)
	}
}

func peek2(r Request) Request { r.Hits = 0; return r }

// Many expired keys are swept within a few passes, and each pass is bounded.
func TestSweeperBoundedPasses(t *testing.T) {
	clock := &ManualClock{}
	store := newTestStore(t, Config{Clock: clock, Shards: 16})
	const keys = 20_000
	var last Decision
	for i := range keys {
		r := validRequest()
		r.UserID = "user" + strconv.Itoa(i)
		d, err := store.Check(r)
		if err != nil {
			t.Fatal(err)
		}
		last = d
	}
	clock.Advance(last.ResetAfter) // every key took one hit at the same instant
	passes := 0
	for store.Len() > 0 && passes < 100 {
		visited, _ := store.Sweep()
		if bound := 16 * sweepBatch * sweepRounds; visited > bound {
			t.Fatalf("one pass visited %d entries, bound %d", visited, bound)
		}
		passes++
	}
	if store.Len() != 0 {
		t.Fatalf("after %d passes %d keys remain", passes, store.Len())
	}
	t.Logf("%d expired keys swept in %d passes", keys, passes)
}

// A full store evicts the entry closest to fresh, counts it, and the
// evicted key starts again from a fresh bucket: never more than a fresh
// bucket grants.
func TestCapEvictsClosestToFresh(t *testing.T) {
	clock := &ManualClock{}
	store := newTestStore(t, Config{Clock: clock, Shards: 1, MaxEntries: 4})
	for i := range 4 {
		r := validRequest()
		r.UserID = "u" + strconv.Itoa(i)
		// Under the token bucket, u3 spends least, so is fresh soonest.
		// (Under the default strict window, hits at one instant make all
		// four fresh at once.)
		r.Algorithm = TokenBucket
		r.Hits = int64(5 - i)
		if _, err := store.Check(r); err != nil {
			t.Fatal(err)
		}
	}
	r := validRequest()
	r.UserID, r.Algorithm = "new", TokenBucket
	if _, err := store.Check(r); err != nil {
		t.Fatal(err)
	}
	if n, st := store.Len(), store.Stats(); n != 4 || st.Evicted != 1 {
		t.Fatalf("after overflow: %d keys, %d evicted; want 4, 1", n, st.Evicted)
	}
	// u0 spent everything and must still be limited.
	r.UserID, r.Hits = "u0", 1
	if d, _ := store.Check(r); d.Allowed {
		t.Fatalf("u0 after eviction of another key: %+v, want denied", d)
	}
}

func TestClosedStore(t *testing.T) {
	store, err := New(Config{SweepInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	store.Close() // idempotent
	if _, err := store.Check(validRequest()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Check after Close: %v, want ErrClosed", err)
	}
}

// Seed spends a share of a new bucket once, and leaves a live bucket alone.
func TestSeed(t *testing.T) {
	s, err := New(Config{Clock: &ManualClock{}, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := Key{Hi: 7, Lo: 9}
	req := Request{Limit: 30, Window: time.Minute, Hits: 1}
	if ok, err := s.Seed(k, req, 10); !ok || err != nil {
		t.Fatalf("Seed of a new bucket: %v %v", ok, err)
	}
	if ok, _ := s.Seed(k, req, 10); ok {
		t.Fatal("Seed spent again on a live bucket")
	}
	rep, err := s.CheckKey(k, req, 1)
	if err != nil || rep.LastAdmitted.Remaining != 19 {
		t.Fatalf("after a seed of 10 of 30 and one hit: %+v %v, want 19 left", rep, err)
	}
	if _, err := s.Seed(Key{Hi: 8}, req, 31); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a seed over the capacity: %v", err)
	}
}
