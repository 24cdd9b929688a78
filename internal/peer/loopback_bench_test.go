package peer

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// constOwner admits every check with a fixed decision: the owner side costs
// next to nothing, so a benchmark through it measures the wire.
type constOwner struct{}

func (constOwner) CheckOwned(_ context.Context, checks []OwnedCheck, results []OwnedResult) {
	for i, c := range checks {
		results[i] = OwnedResult{Repeated: engine.Repeated{Admitted: c.Count,
			LastAdmitted: bucket.Decision{Allowed: true, Limit: c.Request.Limit, Remaining: 1, ResetAfter: time.Second}}}
	}
}

func (constOwner) ResetKey(bucket.Key) int { return 0 }

// BenchmarkForwardLoopback forwards checks on distinct keys from a Client to
// a Peer server over a real TCP loopback connection, from many goroutines
// (RunParallel; vary them with -cpu). ns/op is the cost of one forwarded
// check; checks/rpc is the mean batch. The sub-benchmarks vary
// ClientConfig.MaxInFlight.
func BenchmarkForwardLoopback(b *testing.B) {
	for _, inFlight := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("inflight=%d", inFlight), func(b *testing.B) { benchmarkForward(b, inFlight) })
	}
}

func benchmarkForward(b *testing.B, inFlight int) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	Register(gs, ServerConfig{Owner: constOwner{}})
	var wg sync.WaitGroup
	wg.Go(func() { gs.Serve(lis) })
	defer func() { gs.Stop(); wg.Wait() }()
	p, err := NewClient("owner", lis.Addr().String(), ClientConfig{MaxInFlight: inFlight})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	req := bucket.Request{Limit: 1000, Window: time.Minute, Hits: 1}
	if _, err := p.Check(context.Background(), bucket.Key{}, req); err != nil {
		b.Fatal(err)
	}
	var next atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(16) // 16 callers per CPU: a node under load
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		k := bucket.Key{Hi: next.Add(1) << 32}
		for pb.Next() {
			k.Lo++
			if _, err := p.Check(ctx, k, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := p.Stats()
	b.ReportMetric(float64(st.Checks.Load())/float64(max(st.RPCs.Load(), 1)), "checks/rpc")
}
