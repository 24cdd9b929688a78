package ring

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

var sweep = flag.Bool("ring.sweep", false, "print the parameter sweep behind the defaults")

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "node-" + strconv.Itoa(i)
	}
	return out
}

// keysPerPartition hashes n keys and counts them per partition.
func keysPerPartition(partitions, n int) []int {
	counts := make([]int, partitions)
	for i := range n {
		counts[xxhash.Sum64String("user-"+strconv.Itoa(i))%uint64(partitions)]++
	}
	return counts
}

type distribution struct {
	maxOverMean float64 // largest member's keys over the mean
	movedJoin   float64 // share of keys that change owner when one member joins
	movedLeave  float64 // ... when one member leaves
}

func measure(t testing.TB, cfg Config, members int, counts []int) distribution {
	t.Helper()
	build := func(ms []string) *Ring {
		r, err := New(cfg, ms)
		if err != nil {
			t.Fatalf("New(%d members): %v", len(ms), err)
		}
		return r
	}
	base := build(names(members))
	joined := build(names(members + 1))
	left := build(names(members)[1:])

	total := 0
	perMember := map[string]int{}
	var movedJ, movedL int
	for p, c := range counts {
		total += c
		owner := base.members[base.owners[p]]
		perMember[owner] += c
		if joined.members[joined.owners[p]] != owner {
			movedJ += c
		}
		if left.members[left.owners[p]] != owner {
			movedL += c
		}
	}
	most := 0
	for _, c := range perMember {
		most = max(most, c)
	}
	return distribution{
		maxOverMean: float64(most) / (float64(total) / float64(members)),
		movedJoin:   float64(movedJ) / float64(total),
		movedLeave:  float64(movedL) / float64(total),
	}
}

// TestDefaultDistribution checks the defaults against the targets over a
// million keys: the busiest member holds at most 1.10× the mean, and one
// join or leave moves close to 1/N of the keys. Run with -v for figures.
func TestDefaultDistribution(t *testing.T) {
	counts := keysPerPartition(DefaultPartitions, 1_000_000)
	for _, n := range []int{3, 5, 10, 50} {
		d := measure(t, Config{}, n, counts)
		t.Logf("%2d members: max/mean %.3f, moved on join %.3f (1/(N+1) = %.3f), on leave %.3f (1/N = %.3f)",
			n, d.maxOverMean, d.movedJoin, 1/float64(n+1), d.movedLeave, 1/float64(n))
		if d.maxOverMean > 1.10 {
			t.Errorf("%d members: max/mean %.3f > 1.10", n, d.maxOverMean)
		}
		if d.movedJoin > 2.0/float64(n+1) || d.movedLeave > 2.0/float64(n) {
			t.Errorf("%d members: moved %.3f on join, %.3f on leave: more than twice the ideal", n, d.movedJoin, d.movedLeave)
		}
	}
}

// TestParameterSweep prints the figures that chose the defaults:
//
//	go test ./ring -run ParameterSweep -ring.sweep -v
func TestParameterSweep(t *testing.T) {
	if !*sweep {
		t.Skip("run with -ring.sweep")
	}
	var b strings.Builder
	fmt.Fprintln(&b, "\n| partitions | replication | load | members | max/mean | moved on join (ideal) | moved on leave (ideal) |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|")
	for _, p := range []int{271, 1021, 4099} {
		counts := keysPerPartition(p, 1_000_000)
		for _, rf := range []int{20, 64, 200} {
			for _, load := range []float64{1.05, 1.1, 1.25} {
				for _, n := range []int{3, 5, 10, 50} {
					if _, err := New(Config{Partitions: p, ReplicationFactor: rf, Load: load}, names(n+1)); err != nil {
						continue
					}
					d := measure(t, Config{Partitions: p, ReplicationFactor: rf, Load: load}, n, counts)
					fmt.Fprintf(&b, "| %d | %d | %.2f | %d | %.3f | %.3f (%.3f) | %.3f (%.3f) |\n",
						p, rf, load, n, d.maxOverMean, d.movedJoin, 1/float64(n+1), d.movedLeave, 1/float64(n))
				}
			}
		}
	}
	t.Log(b.String())
}

// Every node that sees the same members computes the same owners.
func TestSameMembersSameOwners(t *testing.T) {
	a, err := New(Config{}, []string{"c", "a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{}, []string{"b", "c", "a"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10_000 {
		h := xxhash.Sum64String(strconv.Itoa(i))
		if a.Owner(h) != b.Owner(h) {
			t.Fatalf("Owner(%d) = %q and %q for the same members", h, a.Owner(h), b.Owner(h))
		}
	}
	if got := a.Members(); strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("Members() = %v, want sorted", got)
	}
}

func TestBadConfigAndMembers(t *testing.T) {
	bad := []Config{{Partitions: -1}, {ReplicationFactor: -1}, {Load: 1}, {Load: 0.5}, {Partitions: 1 << 21}}
	for _, c := range bad {
		if _, err := New(c, []string{"a"}); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", c)
		}
	}
	if _, err := New(Config{}, []string{"a", "a"}); err == nil {
		t.Error("duplicate members accepted")
	}
	if _, err := New(Config{}, []string{""}); err == nil {
		t.Error("empty member name accepted")
	}
	// More members than partitions would make consistent panic.
	if _, err := New(Config{Partitions: 3}, names(5)); err == nil {
		t.Error("5 members on 3 partitions accepted")
	}
	empty, err := New(Config{}, nil)
	if err != nil || empty.Owner(42) != "" || empty.Len() != 0 {
		t.Fatalf("empty ring: %v, owner %q", err, empty.Owner(42))
	}
}

func TestShares(t *testing.T) {
	r, err := New(Config{}, names(4))
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for m, s := range r.Shares() {
		if s < 0.2 || s > 0.3 {
			t.Errorf("share of %s = %.3f, want near 0.25", m, s)
		}
		sum += s
	}
	if sum < 0.999 || sum > 1.001 {
		t.Fatalf("shares sum to %v", sum)
	}
}

func BenchmarkOwner(b *testing.B) {
	r, err := New(Config{}, names(10))
	if err != nil {
		b.Fatal(err)
	}
	h := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		h += 0x9e3779b97f4a7c15
		_ = r.Owner(h)
	}
}

func BenchmarkNew(b *testing.B) {
	for _, n := range []int{3, 50} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			ms := names(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(Config{}, ms); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A member that comes back under a new id at its old position owns the
// same partitions again.
func TestNewPlacedKeepsPositions(t *testing.T) {
	before, err := NewPlaced(Config{}, map[string]string{"a/1": "a", "b/1": "b", "c/1": "c"})
	if err != nil {
		t.Fatal(err)
	}
	after, err := NewPlaced(Config{}, map[string]string{"a/1": "a", "b/2": "b", "c/1": "c"})
	if err != nil {
		t.Fatal(err)
	}
	for k := range uint64(10_000) {
		h := k * 0x9e3779b97f4a7c15
		x, y := before.Owner(h), after.Owner(h)
		if x != y && !(x == "b/1" && y == "b/2") {
			t.Fatalf("key %d: %s before, %s after", k, x, y)
		}
	}
	if _, err := NewPlaced(Config{}, map[string]string{"a/1": "a", "a/2": "a"}); err == nil {
		t.Fatal("two members at one position accepted")
	}
}
