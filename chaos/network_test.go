package chaos

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// memberlist's Shutdown does not wait for a probe in flight, which ends on
// its own timer; everything of ours is waited for.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}

// A partition leaves the majority with a ring of its own and the node cut
// off without a majority; a heal merges them again.
func TestPartitionAndHeal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, Options{Nodes: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Net.Partition([]string{"n0", "n1"}, []string{"n2"})
	waitRing := func(name string, want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for c.Node(name).Stats().Members != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: ring of %d, want %d", name, c.Node(name).Stats().Members, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitRing("n0", 2)
	for deadline := time.Now().Add(20 * time.Second); c.Node("n2").Quorum().Majority; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("n2, cut off alone, still sees a majority: %+v", c.Node("n2").Quorum())
		}
	}
	c.Net.Heal()
	took, err := c.WaitConverged(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("converged %v after the heal", took)
}

// The same seed draws the same losses and jitter on every link.
func TestSeedReplays(t *testing.T) {
	draw := func(seed uint64) []time.Duration {
		nw := NewNetwork(seed)
		l := Link{Latency: time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.3}
		var out []time.Duration
		for range 50 {
			d, lost := nw.delay("a", "b", l)
			if lost {
				d = -1
			}
			out = append(out, d)
		}
		return out
	}
	a, b, other := draw(7), draw(7), draw(8)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d differs under one seed: %v vs %v", i, a[i], b[i])
		}
	}
	same := 0
	for i := range a {
		if a[i] == other[i] {
			same++
		}
	}
	if same == len(a) {
		t.Fatal("two seeds drew the same")
	}
}
