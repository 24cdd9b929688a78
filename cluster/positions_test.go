package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/drlimit/drl/ring"
)

// A node restarted under its name owns the same keys as before: ring
// positions follow the configured name, not the instance.
func TestRestartUnderItsNameOwnsTheSameKeys(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	owners := func(n *Node) []string {
		out := make([]string, 10_000)
		for i := range out {
			o, err := n.OwnerOf(fmt.Sprint("user-", i), "api")
			m := o.Member
			if err != nil {
				t.Fatal(err)
			}
			out[i] = m.Name
		}
		return out
	}
	before := owners(nodes[0])
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nodes[2].Close(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := TestConfig("node-2")
	cfg.Join = []string{nodes[0].GossipAddr()}
	again := startNode(t, cfg)
	waitForRing(t, []*Node{nodes[0], nodes[1], again}, 3)
	after := owners(nodes[0])
	moved := 0
	for i := range before {
		if before[i] != after[i] {
			moved++
		}
	}
	if moved != 0 {
		t.Fatalf("%d of 10,000 keys changed owner across node-2's restart, want none", moved)
	}
}

// What positions by name save: when one of three members restarts under a
// new instance id, positions by id move keys between the other two as
// well; positions by name move none.
func TestPositionsByNameMoveNothingOnRestart(t *testing.T) {
	byID := func(ids ...string) *ring.Ring {
		r, err := ring.New(ring.Config{}, ids)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	moved := func(a, b *ring.Ring, same func(x, y string) bool) int {
		n := 0
		for k := range uint64(100_000) {
			h := k * 0x9e3779b97f4a7c15
			if !same(a.Owner(h), b.Owner(h)) {
				n++
			}
		}
		return n
	}
	name := func(id string) string { return id[:1] }
	sameName := func(x, y string) bool { return name(x) == name(y) }
	idMoved := moved(byID("a/1", "b/1", "c/1"), byID("a/1", "b/2", "c/1"), sameName)
	placed := func(ids ...string) *ring.Ring {
		m := map[string]string{}
		for _, id := range ids {
			m[id] = name(id)
		}
		r, err := ring.NewPlaced(ring.Config{}, m)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	nameMoved := moved(placed("a/1", "b/1", "c/1"), placed("a/1", "b/2", "c/1"), sameName)
	t.Logf("keys that change owner (by name) when b restarts: %d of 100,000 by instance id, %d by name", idMoved, nameMoved)
	if nameMoved != 0 || idMoved == 0 {
		t.Fatalf("moved %d by id, %d by name", idMoved, nameMoved)
	}
}
