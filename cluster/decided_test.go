package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/ring"
)

// Every answer says what decided it: the owner, whether the check was
// decided here or forwarded to it, or the deny cache of the node the check
// entered.
func TestAnswersSayWhoDecided(t *testing.T) {
	clock := &bucket.ManualClock{}
	clock.Set(time.Hour)
	nodes := startCluster(t, 2, func(c *Config) { c.Clock = clock })
	a := nodes[0]
	check := func(user string, limit int64) bucket.Decision {
		t.Helper()
		d, err := a.Check(context.Background(), bucket.Request{UserID: user, Action: "api", Limit: limit,
			Window: 10 * time.Second, Hits: 1, Algorithm: bucket.TokenBucket})
		if err != nil {
			t.Fatalf("Check(%s): %v", user, err)
		}
		return d
	}
	for _, c := range []struct {
		owner string
		steps []bucket.DecidedBy
	}{
		{"node-0", []bucket.DecidedBy{bucket.DecidedByOwner, bucket.DecidedByOwner}},
		// The third check is denied by the owner, the fourth by the entry
		// node's cache of that denial.
		{"node-1", []bucket.DecidedBy{bucket.DecidedByOwner, bucket.DecidedByOwner, bucket.DecidedByOwner, bucket.DecidedByDenyCache}},
	} {
		user := userOwnedBy(t, a, c.owner)
		for i, want := range c.steps {
			if d := check(user, 2); d.DecidedBy != want || d.FallbackReason != bucket.FallbackNone {
				t.Errorf("check %d on a key of %s: %+v, want decided by %v with no fallback reason", i, c.owner, d, want)
			}
		}
	}
}

// A check answered from a lease says so.
func TestLeasedAnswersSayLease(t *testing.T) {
	nodes := startCluster(t, 2, func(c *Config) { c.Leases = true })
	a := nodes[0]
	user := userOwnedBy(t, a, "node-1")
	for i := range 5000 {
		hits := a.Stats().LeaseHits
		d, err := a.Check(context.Background(), bucket.Request{UserID: user, Action: "api", Limit: 1_000_000,
			Window: time.Minute, Hits: 1, Algorithm: bucket.FixedWindow})
		if err != nil {
			t.Fatal(err)
		}
		want := bucket.DecidedByOwner
		if a.Stats().LeaseHits > hits {
			want = bucket.DecidedByLease
		}
		if d.DecidedBy != want {
			t.Fatalf("check %d: decided by %v, want %v", i, d.DecidedBy, want)
		}
		if want == bucket.DecidedByLease {
			return
		}
	}
	t.Fatal("5000 checks on one key, and none answered from a lease")
}

// A node that has not joined anyone has no ring: it answers by its fail
// policy, and says so.
func TestUnjoinedNodeSaysNoRing(t *testing.T) {
	cfg := TestConfig("lonely")
	cfg.Join = []string{"127.0.0.1:1"} // nobody there: the join keeps failing
	cfg.HandoffWait = 50 * time.Millisecond
	n := startNode(t, cfg)
	req := bucket.Request{UserID: "u", Action: "a", Limit: 5, Window: time.Minute, Hits: 1}
	for _, c := range []struct {
		policy  drl.FailPolicy
		allowed bool
	}{{drl.FailDefault, false}, {drl.FailOpen, true}, {drl.FailClosed, false}} {
		d, err := n.CheckWith(context.Background(), req, drl.CheckOptions{FailPolicy: c.policy})
		if err != nil || d.Allowed != c.allowed || d.DecidedBy != bucket.DecidedByFailPolicy || d.FallbackReason != bucket.FallbackNoRing {
			t.Errorf("CheckWith(%v) on an unjoined node = %+v, %v; want allowed %v, decided by fail_policy for no_ring",
				c.policy, d, err, c.allowed)
		}
	}
}

// A node on its way out that cannot pass a check on answers by its fail
// policy, for the reason that it is leaving.
func TestLeavingNodeSaysLeaving(t *testing.T) {
	n := startCluster(t, 1, nil)[0]
	// Leaving, with the key's next owner a member this node has no client
	// for: nobody to pass the check on to.
	next, err := ring.New(n.cfg.Ring, []string{"ghost"})
	if err != nil {
		t.Fatal(err)
	}
	n.own.leaving.Store(next)
	n.life.closed.Store(true)
	t.Cleanup(func() { n.life.closed.Store(false); n.own.leaving.Store(nil) })
	d, err := n.CheckWith(context.Background(), bucket.Request{UserID: "u", Action: "a", Limit: 5, Window: time.Minute, Hits: 1},
		drl.CheckOptions{FailPolicy: drl.FailOpen})
	if err != nil || !d.Allowed || d.DecidedBy != bucket.DecidedByFailPolicy || d.FallbackReason != bucket.FallbackLeaving {
		t.Fatalf("CheckWith(open) while leaving = %+v, %v; want allowed by fail_policy for leaving", d, err)
	}
}

// ResetAfter never exceeds the window, though the strict window counts a
// hit until its slot's end: an embedded node's answer said 61.7 s for a
// 60 s window.
func TestResetAfterWithinTheWindow(t *testing.T) {
	clock := &bucket.ManualClock{}
	clock.Set(time.Hour)
	nodes := startCluster(t, 2, func(c *Config) { c.Clock = clock })
	for _, owner := range []string{"node-0", "node-1"} {
		user := userOwnedBy(t, nodes[0], owner)
		for i := range 40 {
			d, err := nodes[0].Check(context.Background(), bucket.Request{UserID: user, Action: "api", Limit: 5, Window: time.Minute, Hits: 1})
			if err != nil || d.ResetAfter > time.Minute {
				t.Fatalf("check %d on a key of %s at %v: %+v, %v; want ResetAfter at most the window (1m)", i, owner, clock.Now(), d, err)
			}
			clock.Advance(1700 * time.Millisecond)
		}
	}
}
