package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/drlimit/drl/api/drlv1"
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

// gatedAPI is a RateLimiterClient whose CheckBatch calls report their
// size on calls and return, all allowed, once release lets them.
type gatedAPI struct {
	drlv1.RateLimiterClient // nil: only CheckBatch is called
	calls                   chan int
	release                 chan struct{}
}

func (g *gatedAPI) CheckBatch(ctx context.Context, in *drlv1.CheckBatchRequest, _ ...grpc.CallOption) (*drlv1.CheckBatchResponse, error) {
	g.calls <- len(in.GetChecks())
	<-g.release
	out := &drlv1.CheckBatchResponse{}
	for range in.GetChecks() {
		out.Results = append(out.Results, &drlv1.CheckResult{Result: &drlv1.CheckResult_Decision{Decision: &drlv1.CheckResponse{Allowed: true}}})
	}
	return out, nil
}

// nextCall returns the size of the next CheckBatch call, failing the test
// after 5 s.
func (g *gatedAPI) nextCall(t *testing.T) int {
	t.Helper()
	select {
	case n := <-g.calls:
		return n
	case <-time.After(5 * time.Second):
		t.Fatal("no CheckBatch call within 5 s")
		return 0
	}
}

// A lone check leaves at once, and so does a second one beside a call of
// one: no check waits for company. Checks that find every slot taken
// leave together.
func TestBatcherSizesCallsByTheQueue(t *testing.T) {
	api := &gatedAPI{calls: make(chan int, 16), release: make(chan struct{})}
	b := newBatcher(api, Batching{MaxBatch: 256, MaxInFlight: 2})
	var wg sync.WaitGroup
	released := false
	defer func() {
		if !released {
			close(api.release)
		}
		wg.Wait()
		b.close()
	}()
	check := func(n int) {
		for range n {
			wg.Go(func() {
				if r := b.check(context.Background(), &drlv1.CheckRequest{UserId: "u"}); r.err != nil || !r.d.Allowed {
					t.Errorf("check = %+v, want allowed", r)
				}
			})
		}
	}
	check(1)
	if n := api.nextCall(t); n != 1 {
		t.Fatalf("a lone check went out in a call of %d", n)
	}
	check(1)
	if n := api.nextCall(t); n != 1 {
		t.Fatalf("a check beside a call of one went out in a call of %d", n)
	}
	// Both slots are taken: these wait, and leave in fewer calls than
	// checks once the two calls return.
	check(5)
	for range 2 {
		api.release <- struct{}{}
	}
	for sum := 0; sum < 5; {
		n := api.nextCall(t)
		if n == 5 {
			break
		}
		sum += n
		api.release <- struct{}{}
	}
	close(api.release)
	released = true
}
