package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/cluster/clustertest"
)

// With batching, many concurrent callers still get exactly the limit,
// their checks travel in fewer calls, and each bad check gets its own
// error.
func TestBatchingClient(t *testing.T) {
	nodes := clustertest.Start(t, 2, nil)
	c, err := NewBatching(clustertest.GRPCAddrs(nodes), Batching{MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if got := hammer(t, c, 32, 20, "erin", 150); got != 150 {
		t.Fatalf("admitted %d of 640 with limit 150", got)
	}
	_, err = c.Check(ctx, bucket.Request{UserID: "", Action: "a", Limit: 1, Window: time.Second, Hits: 1})
	var ae *bucket.ArgumentError
	if !errors.As(err, &ae) || ae.Field != "user_id" {
		t.Fatalf("an empty user through a batch: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	if _, err := c.RateLimit(short, "erin", "upload", 150, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an expired context: %v", err)
	}
	c.Close()
	if _, err := c.RateLimit(ctx, "erin", "upload", 150, time.Hour); err == nil {
		t.Fatal("a check after Close was answered")
	}
}

// BenchmarkClientUnary and BenchmarkClientBatching make checks from 64
// goroutines per CPU through the client to one node in this process: the
// whole cost of a check, client, gRPC and node, per check.
func BenchmarkClientUnary(b *testing.B) { benchClient(b, false) }

func BenchmarkClientBatching(b *testing.B) { benchClient(b, true) }

func benchClient(b *testing.B, batching bool) {
	nodes := clustertest.Start(b, 1, nil)
	var c *Client
	var err error
	if batching {
		c, err = NewBatching(clustertest.GRPCAddrs(nodes), Batching{})
	} else {
		c, err = New(clustertest.GRPCAddrs(nodes))
	}
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := bucket.Request{UserID: "u", Action: "a", Limit: bucket.MaxLimit, Window: time.Hour, Hits: 1}
	b.SetParallelism(64)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Check(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
