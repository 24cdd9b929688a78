package cluster

import (
	"context"
	"strconv"
	"testing"
	"time"

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
