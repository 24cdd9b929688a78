package cluster

import (
	"context"
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
