package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// A member that leaves gracefully shrinks the cluster; one that fails
// still counts toward its size. The last node standing of three has no
// majority, answers by the fail policy, and decides again once the
// operator forgets the failed member.
func TestQuorumCountsFailedNotLeft(t *testing.T) {
	nodes := startCluster(t, 4, nil)
	a := nodes[0]
	quorumIs := func(want string, failed ...string) {
		t.Helper()
		eventually(t, 10*time.Second, func() error {
			q := a.Quorum()
			got := fmt.Sprintf("%v %d/%d", q.Majority, q.Alive, q.Size)
			if got != want || !slices.Equal(q.Failed, failed) {
				return fmt.Errorf("quorum %s failed %v, want %s failed %v", got, q.Failed, want, failed)
			}
			return nil
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nodes[3].Close(ctx); err != nil {
		t.Fatal(err)
	}
	quorumIs("true 3/3") // left: not counted
	if ms := members(a); ms["node-3"] != "left" {
		t.Fatalf("members after a leave: %v, want node-3 left", ms)
	}

	nodes[2].Halt()
	quorumIs("true 2/3", "node-2")
	if ms := members(a); ms["node-2"] != "failed" {
		t.Fatalf("members after a crash: %v, want node-2 failed", ms)
	}
	nodes[1].Halt()
	quorumIs("false 1/3", "node-1", "node-2")

	req := bucket.Request{UserID: userOwnedBy(t, a, "node-0"), Action: "api", Limit: 5, Window: time.Minute, Hits: 1}
	d, err := a.CheckWith(context.Background(), req, drl.CheckOptions{FailPolicy: drl.FailClosed})
	if err != nil || d.Allowed || d.DecidedBy != bucket.DecidedByFailPolicy || d.FallbackReason != bucket.FallbackNoMajority {
		t.Fatalf("a check on its own key without a majority: %+v %v, want the closed policy's denial for no_majority", d, err)
	}
	if err := a.Forget("node-0"); !errors.Is(err, drl.ErrNotFound) {
		t.Fatalf("Forget of a live member: %v, want drl.ErrNotFound", err)
	}
	for _, name := range []string{"node-1", "node-2"} {
		if err := a.Forget(name); err != nil {
			t.Fatalf("Forget(%s): %v", name, err)
		}
	}
	quorumIs("true 1/1")
	if d, err := a.CheckWith(context.Background(), req, drl.CheckOptions{FailPolicy: drl.FailClosed}); err != nil || !d.Allowed || d.DecidedBy != bucket.DecidedByOwner {
		t.Fatalf("a check once the failed members are forgotten: %+v %v, want allowed by the owner", d, err)
	}
}

// A failed member stops counting once ForgetFailedAfter has passed on the
// node's clock, if the others are a majority with it counted; a node left
// in the minority never shrinks its cluster to itself by waiting.
func TestQuorumForgetsFailedAfter(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of gossip: the full suite runs it")
	}
	clock := &bucket.ManualClock{}
	clock.Set(time.Hour)
	nodes := startCluster(t, 4, func(c *Config) { c.Clock, c.ForgetFailedAfter = clock, time.Minute })
	want := func(n *Node, majority bool, size int) {
		t.Helper()
		eventually(t, 10*time.Second, func() error {
			if q := n.Quorum(); q.Majority != majority || q.Size != size {
				return fmt.Errorf("%s: %+v, want majority %v of %d", n.Name(), q, majority, size)
			}
			return nil
		})
	}
	nodes[3].Halt()
	eventually(t, 10*time.Second, func() error {
		if q := nodes[0].Quorum(); len(q.Failed) != 1 {
			return fmt.Errorf("%+v, want node-3 failed", q)
		}
		return nil
	})
	clock.Advance(time.Minute)
	want(nodes[0], true, 3) // 3 of 4 was a majority: node-3 is forgotten
	nodes[2].Halt()
	nodes[1].Halt()
	want(nodes[0], false, 3)
	clock.Advance(time.Hour)
	time.Sleep(1500 * time.Millisecond) // a recount or two
	want(nodes[0], false, 3)            // 1 of 3 is no majority: nobody is forgotten
}

func members(n *Node) map[string]string {
	_, ms := n.Members()
	out := map[string]string{}
	for _, m := range ms {
		out[m.Name] = m.State
	}
	return out
}

// A key taken over from a crashed owner starts with the failed side's
// share spent, for one window: the crashed owner may have spent it.
func TestTakeoverStartsFromTheFailedShare(t *testing.T) {
	clock := &bucket.ManualClock{}
	clock.Set(time.Hour)
	nodes := startCluster(t, 3, func(c *Config) { c.Clock = clock })
	a := nodes[0]
	req := bucket.Request{UserID: userOwnedBy(t, a, "node-2"), Action: "api", Limit: 30, Window: time.Minute, Hits: 1}
	if d, err := a.Check(context.Background(), req); err != nil || d.Remaining != 29 {
		t.Fatalf("before the crash: %+v %v", d, err)
	}
	nodes[2].Halt()
	eventually(t, 10*time.Second, func() error {
		if q := a.Quorum(); q.Size != 3 || len(q.Failed) != 1 || a.own.view.Load().Ring.Len() != 2 {
			return fmt.Errorf("%+v, ring of %d", q, a.own.view.Load().Ring.Len())
		}
		return nil
	})
	// 30 × 1/3 = 10 counted as spent by the crashed side, then this check.
	if d, err := a.Check(context.Background(), req); err != nil || d.Remaining != 19 {
		t.Fatalf("after the takeover: %+v %v, want 19 left", d, err)
	}
	clock.Advance(time.Minute)
	// A window later, another key the crashed member owned starts fresh.
	to := a.own.view.Load().Takeovers[0]
	later := req
	for i := range 100_000 {
		later.UserID = fmt.Sprint("later-", i)
		if to.Failed[to.Ring.Owner(a.hash(later.UserID, later.Action).Hi)] {
			break
		}
	}
	if d, err := a.Check(context.Background(), later); err != nil || d.Remaining != 29 {
		t.Fatalf("a window after the takeover: %+v %v, want a fresh bucket", d, err)
	}
}
