package ownership

import (
	"fmt"
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// newNodeState returns a clock an hour in, a hasher, and a node's store
// and provisional state on them, closed when the test ends.
func newNodeState(t *testing.T) (*bucket.ManualClock, bucket.KeyHasher, *engine.Store, *Provisional) {
	t.Helper()
	clock := &bucket.ManualClock{}
	clock.Set(time.Hour)
	hash := bucket.NewKeyHasher()
	store, err := engine.New(bucket.StoreConfig{Clock: clock, Hasher: hash, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	prov, err := NewProvisional(clock, hash, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prov.Close)
	return clock, hash, store, prov
}

// TestDecideOwnedSteps walks checks on owned keys through the core's
// steps: what each waits for, and what the bucket starts from.
func TestDecideOwnedSteps(t *testing.T) {
	clock, hash, store, prov := newNodeState(t)
	a, b, c := member("a"), member("b"), member("c")
	core := newCore("a")
	v1 := mustUpdate(t, core, 0, a, b, c).New
	req := bucket.Request{Limit: 1000, Window: time.Hour, Hits: 1}
	remaining := func(key bucket.Key) int64 {
		peek := req
		peek.Hits, peek.DryRun = 0, true
		rep, _ := store.CheckKey(key, peek, 1)
		return rep.LastAdmitted.Remaining
	}

	// The first ring: a gained every key it owns, so one held nowhere
	// waits for the handoffs, then starts fresh.
	gained := keyOwnedBy(t, v1, "a/1")
	o := Owned{Key: gained, Req: req, Count: 1}
	if _, step, _ := v1.DecideOwned(store, prov, "a/1", o); step != AwaitSettled {
		t.Fatalf("gained key, unsettled: step %v, want AwaitSettled", step)
	}
	o.Waited = true
	if rep, step, err := v1.DecideOwned(store, prov, "a/1", o); step != Decided || err != nil || rep.Admitted != 1 {
		t.Fatalf("gained key after the wait: %v %v %v, want one admitted", rep, step, err)
	}
	for _, p := range v1.Peers {
		core.Done(p, v1.ID)
	}

	// c fails; a takes one of its keys over. b had lent itself 100 hits
	// for it while c was out of reach, and handed them over.
	now := time.Hour
	v2 := mustUpdate(t, core, now, a, b, failed("c", now)).New
	var taken bucket.Key
	for i := range 10_000 {
		k := hash(fmt.Sprint("user", i), "act")
		if v1.Ring.Owner(k.Hi) == "c/1" && v2.Ring.Owner(k.Hi) == "a/1" {
			taken = k
			break
		}
	}
	other, err := NewProvisional(clock, hash, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for range 100 {
		other.Lend(v1, taken, req, Knowledge{}, false, now)
	}
	lent := other.Release(v2, "b/1", now)
	if kept := v2.Absorb(store, prov, "a/1", lent["a/1"], 0, now); kept != 1 {
		t.Fatalf("a kept %d buckets of b's lent hits, want 1", kept)
	}
	o = Owned{Key: taken, Req: req, Count: 1, Now: now}
	if _, step, _ := v2.DecideOwned(store, prov, "a/1", o); step != AwaitConfirmed {
		t.Fatalf("taken-over key before the ring is confirmed: step %v, want AwaitConfirmed", step)
	}
	o.Settled, o.Waited = true, true
	if rep, step, err := v2.DecideOwned(store, prov, "a/1", o); step != Decided || err != nil || rep.Admitted != 1 {
		t.Fatalf("taken-over key: %v %v %v, want one admitted", rep, step, err)
	}
	// 1000 − 334 (c's share) − 100 (b's lent hits) − 1.
	if got := remaining(taken); got != 565 {
		t.Errorf("taken-over key has %d left, want 565", got)
	}

	// Cut off, then healed: a waits for the healed ring's handoffs even
	// for a key it holds.
	mustUpdate(t, core, now, a, failed("b", now), failed("c", now))
	v4 := mustUpdate(t, core, now, a, b, c).New
	o = Owned{Key: gained, Req: req, Count: 1}
	if _, step, _ := v4.DecideOwned(store, prov, "a/1", o); step != AwaitSettled {
		t.Errorf("held key after a heal: step %v, want AwaitSettled", step)
	}
}

// TestCreditsMoveWithTheKey: a bucket kept aside as a credit for a key
// taken over here goes with the key when its ownership moves before the
// key's bucket started here (the simulator's seed 595: a rolling restart
// started a handed-off key fresh, 46 admitted of 24).
func TestCreditsMoveWithTheKey(t *testing.T) {
	clock, hash, store, prov := newNodeState(t)
	key := hash("u", "a")
	req := bucket.Request{Limit: 10, Window: time.Hour, Hits: 1}
	store.CheckKey(key, req, 4)
	held := store.Extract(func(bucket.Key) bool { return true })
	prov.Credit(held, clock.Now())
	core := newCore("a")
	v := mustUpdate(t, core, 0, member("a"), member("b")).New
	owner := v.Ring.Owner(key.Hi)
	self := "a/1"
	if owner == self {
		self = "b/1"
	}
	h := PlanHandoff(v, v.Ring, store, prov, self, func(string) bool { return true }, clock.Now())
	if got := len(h.ByOwner[owner]); got != 1 || prov.HasCredits(key, req.Algorithm, 0) {
		t.Fatalf("handoff to %s carries %d buckets, credits left %v; want the credit, none left", owner, got, prov.HasCredits(key, req.Algorithm, 0))
	}
}

// TestLentHitsAheadOfTheView: lent hits marked as such reach a member
// whose view has not yet seen the takeover the sender saw (the
// simulator's seed 104). They never become a plain bucket: for a key the
// receiver owns they wait as a credit and are spent on its next check,
// held bucket or not; for a key it does not own they join its lent hits,
// which go to the owner when its own view takes the key over.
func TestLentHitsAheadOfTheView(t *testing.T) {
	clock, hash, store, prov := newNodeState(t)
	a, b, c := member("a"), member("b"), member("c")
	core := newCore("a")
	v1 := mustUpdate(t, core, 0, a, b, c).New
	for _, p := range v1.Peers {
		core.Done(p, v1.ID)
	}
	req := bucket.Request{Limit: 1000, Window: time.Hour, Hits: 1}
	now := clock.Now()
	lentHits := func(key bucket.Key, n int) []engine.Moved {
		other, err := engine.New(bucket.StoreConfig{Clock: clock, Hasher: hash, SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		other.CheckKey(key, req, n)
		return other.Extract(func(bucket.Key) bool { return true })
	}

	// A key c owns: a is not its owner, so the hits wait in a's lent
	// hits, not in its store.
	ofC := keyOwnedBy(t, v1, "c/1")
	if kept := v1.Absorb(store, prov, "a/1", lentHits(ofC, 7), 1, now); kept != 1 {
		t.Fatalf("kept %d, want 1", kept)
	}
	if store.Len() != 0 {
		t.Fatalf("store holds %d buckets, want none: lent hits are not a bucket", store.Len())
	}
	// c fails; the key goes to whoever owns it without c.
	v2 := mustUpdate(t, core, now, a, b, failed("c", now)).New
	toOwners := prov.Release(v2, "a/1", now)
	if owner := v2.Ring.Owner(ofC.Hi); owner == "a/1" {
		if !prov.HasCredits(ofC, req.Algorithm, 0) {
			t.Error("a took the key over: the lent hits should be its credits")
		}
	} else if len(toOwners[owner]) != 1 {
		t.Errorf("release to %s: %d buckets, want the lent hits", owner, len(toOwners[owner]))
	}

	// A key a owns and holds a bucket for: the credit is spent on its
	// next check, though a's view took nothing over.
	ofA := keyOwnedBy(t, v1, "a/1") // a's before c failed: not taken over
	if v2.TakenOver(ofA) {
		t.Fatal("a key a owned before c failed counts as taken over")
	}
	store.CheckKey(ofA, req, 10)
	v2.Absorb(store, prov, "a/1", lentHits(ofA, 5), 1, now)
	o := Owned{Key: ofA, Req: req, Count: 1, Settled: true, Waited: true, Now: now}
	if rep, step, err := v2.DecideOwned(store, prov, "a/1", o); step != Decided || err != nil || rep.LastAdmitted.Remaining != 1000-10-5-1 {
		t.Fatalf("held key with a credit: %+v %v %v, want %d left", rep, step, err, 1000-10-5-1)
	}
	if rep, _, _ := v2.DecideOwned(store, prov, "a/1", o); rep.LastAdmitted.Remaining != 1000-10-5-2 {
		t.Errorf("next check: %d left, want %d: the credit is spent once", rep.LastAdmitted.Remaining, 1000-10-5-2)
	}
}

// TestCreditsLapse: credits are asked about without a lock on every check
// of a node that holds some, and are dropped once all are fresh, so that
// such a node goes back to one store call per check.
func TestCreditsLapse(t *testing.T) {
	clock, hash, store, prov := newNodeState(t)
	key := hash("u", "a")
	req := bucket.Request{Limit: 10, Window: time.Minute, Hits: 1}
	store.CheckKey(key, req, 3)
	prov.Credit(store.Extract(func(bucket.Key) bool { return true }), clock.Now())
	if !prov.Pending() || !prov.HasCredits(key, req.Algorithm, clock.Now()) {
		t.Fatal("a fresh credit is not seen")
	}
	if prov.HasCredits(key, bucket.TokenBucket, clock.Now()) {
		t.Error("a credit is seen under another algorithm")
	}
	if prov.HasCredits(key, req.Algorithm, clock.Now()+time.Minute) || prov.Pending() {
		t.Error("credits still pending a window later")
	}
}

// TestTakeoverEdges: what a review of the takeover found. The seed never
// shrinks when the cluster grows after the takeover; a held bucket is
// topped up to the seed once per takeover, not on every check (which
// would cap a refilling bucket at its seed for the whole window); and a
// late done mark for an older ring does not undo the current one.
func TestTakeoverEdges(t *testing.T) {
	clock, hash, store, prov := newNodeState(t)
	a, b, c, d := member("a"), member("b"), member("c"), member("d")
	core := newCore("a")
	v1 := mustUpdate(t, core, 0, a, b, c).New
	for _, p := range v1.Peers {
		core.Done(p, v1.ID)
	}
	now := clock.Now()
	v2 := mustUpdate(t, core, now, a, b, failed("c", now)).New
	var key bucket.Key
	for i := range 10_000 {
		if k := hash(fmt.Sprint("user", i), "act"); v1.Ring.Owner(k.Hi) == "c/1" && v2.Ring.Owner(k.Hi) == "a/1" {
			key = k
			break
		}
	}
	if got := takeoverSpend(v2, key, time.Hour, 120, now); got != 40 {
		t.Fatalf("takeoverSpend = %d, want 120 × 1/3", got)
	}
	v3 := mustUpdate(t, core, now, a, b, failed("c", now), d).New
	if got := takeoverSpend(v3, key, time.Hour, 120, now); got != 40 {
		t.Errorf("after d joined: takeoverSpend = %d, want still 40", got)
	}

	// a holds a bucket for the key from before (a token bucket, 120 a
	// minute): the first check tops it up to the seed, a later one after
	// a refill does not.
	req := bucket.Request{Limit: 120, Window: time.Minute, Hits: 1, Algorithm: bucket.TokenBucket}
	store.CheckKey(key, req, 1)
	o := Owned{Key: key, Req: req, Count: 1, Settled: true, Waited: true, Now: now}
	if rep, _, err := v2.DecideOwned(store, prov, "a/1", o); err != nil || rep.LastAdmitted.Remaining != 120-40-1 {
		t.Fatalf("first check: %+v %v, want %d left", rep, err, 120-40-1)
	}
	clock.Advance(time.Minute)
	o.Now = clock.Now()
	if rep, _, err := v2.DecideOwned(store, prov, "a/1", o); err != nil || rep.LastAdmitted.Remaining != 120-1 {
		t.Errorf("a window later: %+v %v, want %d left: the top-up happens once", rep, err, 120-1)
	}

	// A late mark for v1 from b does not undo b's mark for v3.
	core.Done("b/1", v3.ID)
	core.Done("b/1", v1.ID)
	for _, p := range core.Unsettled() {
		if p == "b/1" {
			t.Error("b's mark for the current ring was undone by a late one for an older ring")
		}
	}
}

// TestRegroup: buckets relayed by a leaving node go to their owners, each
// owner's lent hits first and counted.
func TestRegroup(t *testing.T) {
	core := newCore("a")
	v := mustUpdate(t, core, 0, member("a"), member("b")).New
	ka, kb := keyOwnedBy(t, v, "a/1"), keyOwnedBy(t, v, "b/1")
	moved := []engine.Moved{{Key: ka}, {Key: kb}, {Key: kb}, {Key: ka}}
	h := Regroup(moved, 2, v.Ring)
	if len(h.ByOwner["a/1"]) != 2 || len(h.ByOwner["b/1"]) != 2 || h.Lent["a/1"] != 1 || h.Lent["b/1"] != 1 {
		t.Fatalf("Regroup: %d and %d buckets, lent %v; want 2 and 2, one lent each", len(h.ByOwner["a/1"]), len(h.ByOwner["b/1"]), h.Lent)
	}
}

// TestOwedBucketsAreNotLost: the store's buckets a failed handoff did not
// deliver are owed to their owner (the done mark waits for them), taken
// to be sent again, and released at the next ring change if still owed.
func TestOwedBucketsAreNotLost(t *testing.T) {
	clock, _, store, prov := newNodeState(t)
	a, b, c := member("a"), member("b"), member("c")
	core := newCore("a")
	v := mustUpdate(t, core, clock.Now(), a, b, c).New
	toB := keyOwnedBy(t, v, "b/1")
	req := bucket.Request{Limit: 10, Window: time.Minute, Hits: 7}
	if _, err := store.CheckKey(toB, req, 1); err != nil {
		t.Fatal(err)
	}
	prov.Owe(store.Extract(func(bucket.Key) bool { return true }))
	if !prov.Owes(v.Ring, "b/1") || prov.Owes(v.Ring, "c/1") {
		t.Fatalf("Owes b %v, c %v; want true, false", prov.Owes(v.Ring, "b/1"), prov.Owes(v.Ring, "c/1"))
	}
	if got := prov.TakeOwed(v.Ring, "c/1"); len(got) != 0 {
		t.Errorf("TakeOwed(c) = %d buckets, want none", len(got))
	}
	owed := prov.TakeOwed(v.Ring, "b/1")
	if len(owed) != 1 || owed[0].Key.Hi != toB.Hi || prov.Owes(v.Ring, "b/1") {
		t.Fatalf("TakeOwed(b) = %v, want the one bucket, and nothing left", owed)
	}

	// The retry failed too, and b fails: the next ring change with a
	// majority hands the bucket to the key's new owner as a lent hit, or
	// credits it if that is this node.
	prov.Owe(owed)
	clock.Set(time.Hour + time.Second)
	v2 := mustUpdate(t, core, clock.Now(), a, failed("b", clock.Now()), c).New
	owner := v2.Ring.Owner(toB.Hi)
	toOwners := prov.Release(v2, "a/1", clock.Now())
	switch got := toOwners[owner]; {
	case owner == "a/1" && !prov.HasCredits(toB, bucket.StrictWindow, clock.Now()):
		t.Errorf("a took the key over: no credit for the owed bucket")
	case owner != "a/1" && (len(got) != 1 || got[0].Key.Hi != toB.Hi):
		t.Errorf("Release = %v, want the owed bucket for %s", toOwners, owner)
	}
	if prov.Owes(v2.Ring, owner) {
		t.Errorf("still owed after Release")
	}
}
