package cluster

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// BenchmarkNodeCheckOwned measures a check that its node owns: validation,
// ring lookup, the store, metrics. Compare with bucket's
// BenchmarkCheckExistingKey for the cost of the cluster layer.
func BenchmarkNodeCheckOwned(b *testing.B) {
	n := startNode(b, TestConfig("bench"))
	req := bucket.Request{UserID: "user-42", Action: "login", Limit: bucket.MaxLimit, Window: time.Hour, Hits: 1}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.Check(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNodeCheckOwnedNewKeys is BenchmarkNodeCheckOwned for keys the
// node holds nothing for yet.
func BenchmarkNodeCheckOwnedNewKeys(b *testing.B) {
	n := startNode(b, TestConfig("bench"))
	users := make([]string, 1<<20)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
	}
	req := bucket.Request{Action: "login", Limit: 10, Window: time.Hour, Hits: 1}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req.UserID = users[i&(len(users)-1)]
		i++
		if _, err := n.Check(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNodeCheckAllOwned is a two-limit check on keys this node owns:
// a dry run of both, then both spent. Compare with two BenchmarkNodeCheckOwned.
func BenchmarkNodeCheckAllOwned(b *testing.B) {
	n := startNode(b, TestConfig("bench"))
	checks := []drl.LimitCheck{
		{Request: bucket.Request{UserID: "user-42", Action: "per-second", Limit: bucket.MaxLimit, Window: time.Second, Hits: 1}},
		{Request: bucket.Request{UserID: "user-42", Action: "per-hour", Limit: bucket.MaxLimit, Window: time.Hour, Hits: 1}},
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if md, err := n.CheckAll(ctx, checks); err != nil || !md.Allowed {
			b.Fatal(md, err)
		}
	}
}

// BenchmarkNodeCheckDenied is a check the owner denies: the price of the
// top-denied count on top of a decision.
func BenchmarkNodeCheckDenied(b *testing.B) {
	n := startNode(b, TestConfig("bench"))
	req := bucket.Request{UserID: "user-42", Action: "login", Limit: 1, Window: time.Hour, Hits: 1}
	ctx := context.Background()
	n.Check(ctx, req)
	b.ReportAllocs()
	for b.Loop() {
		if d, err := n.Check(ctx, req); err != nil || d.Allowed {
			b.Fatal(d, err)
		}
	}
}

// BenchmarkNodeCheckForwarded is a check on a key another node owns, one
// caller at a time: a round trip on loopback. BenchmarkNodeCheckAllForwarded
// is a two-limit check on keys that node owns: two rounds.
func BenchmarkNodeCheckForwarded(b *testing.B) {
	nodes := startCluster(b, 2, nil)
	req := bucket.Request{UserID: userOwnedBy(b, nodes[0], nodes[1].Name()), Action: "api", Limit: bucket.MaxLimit, Window: time.Hour, Hits: 1}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nodes[0].Check(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNodeCheckForwardedParallel forwards checks from 64 callers on
// 1,024 keys, as embedded mode does under load: both nodes share the
// process, so ns/op is the CPU a forwarded check costs both sides together
// once the cores are busy, batching included.
func BenchmarkNodeCheckForwardedParallel(b *testing.B) {
	nodes := startCluster(b, 2, nil)
	var users []string
	for i := 0; len(users) < 1024; i++ {
		u := "user-" + strconv.Itoa(i)
		if o, err := nodes[0].OwnerOf(u, "api"); err == nil && o.Member.Name == nodes[1].Name() {
			users = append(users, u)
		}
	}
	var next atomic.Int64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 97
		req := bucket.Request{Action: "api", Limit: bucket.MaxLimit, Window: time.Hour, Hits: 1}
		for pb.Next() {
			req.UserID = users[i%len(users)]
			i++
			if _, err := nodes[0].Check(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkNodeCheckAllForwarded(b *testing.B) {
	nodes := startCluster(b, 2, nil)
	user := userOwnedBy(b, nodes[0], nodes[1].Name())
	checks := []drl.LimitCheck{
		{Request: bucket.Request{UserID: user, Action: "api", Limit: bucket.MaxLimit, Window: time.Second, Hits: 1}},
		{Request: bucket.Request{UserID: user, Action: "api", Limit: bucket.MaxLimit, Window: time.Hour, Hits: 1, Algorithm: bucket.GCRA}},
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if md, err := nodes[0].CheckAll(ctx, checks); err != nil || !md.Allowed {
			b.Fatal(md, err)
		}
	}
}

// BenchmarkNodeCheckDeniedParallel is BenchmarkNodeCheckDenied from every
// CPU at once on one hot key: the top-denied table's lock under contention.
func BenchmarkNodeCheckDeniedParallel(b *testing.B) {
	n := startNode(b, TestConfig("bench"))
	req := bucket.Request{UserID: "user-42", Action: "login", Limit: 1, Window: time.Hour, Hits: 1}
	ctx := context.Background()
	n.Check(ctx, req)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if d, err := n.Check(ctx, req); err != nil || d.Allowed {
				b.Fatal(d, err)
			}
		}
	})
}

// BenchmarkFallbackClosed is the answer of the closed fail policy, the
// path every check of an unreachable owner takes during an outage.
func BenchmarkFallbackClosed(b *testing.B) {
	n := startNode(b, TestConfig("bench"))
	req := bucket.Request{UserID: "user-42", Action: "login", Limit: 10, Window: time.Minute, Hits: 1}
	cause := fmt.Errorf("%w: test", drl.ErrNoOwner)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := n.fallback(req, drl.FailClosed, cause, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecidesLocally is the hint CheckBatch and CheckAll take before
// a check, to run the checks a node owns inline: what it costs on top of
// the check, which hashes the key again.
func BenchmarkDecidesLocally(b *testing.B) {
	n := startNode(b, TestConfig("bench"))
	for b.Loop() {
		if !n.decidesLocally("user-42", "login") {
			b.Fatal("a one-node cluster owns every key")
		}
	}
}
