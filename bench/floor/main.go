// Command floor is the baseline every cluster figure is a ratio to: a bare
// gRPC server that answers the public RateLimiter API's calls with a
// constant decision, deciding nothing. The load generator's client mode
// drives it exactly as it drives a node (same callers, connections and
// messages), so loadgen against floor measures what gRPC alone costs on
// this machine, in the same run as the cluster.
//
//	floor -addr 127.0.0.1:17990 &
//	loadgen -mode client -targets 127.0.0.1:17990 -duration 10s
//
// With -http-addr it also serves the HTTP floor (http.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/drlimit/drl/api/drlv1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:17990", "where to listen")
	httpAddr := flag.String("http-addr", "", "where to serve the HTTP floor; empty: nowhere")
	flag.Parse()
	if *httpAddr != "" {
		hs := &http.Server{Addr: *httpAddr, Handler: newHTTPHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintln(os.Stderr, "floor:", err)
				os.Exit(1)
			}
		}()
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	gs := newServer()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; gs.Stop() }()
	if err := gs.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// newServer returns a gRPC server with the no-op RateLimiter registered.
func newServer() *grpc.Server {
	gs := grpc.NewServer()
	drlv1.RegisterRateLimiterServer(gs, noop{})
	return gs
}

// noop answers every check allowed, with the fields a node fills in, and
// every batch likewise; it keeps no state.
type noop struct {
	drlv1.UnimplementedRateLimiterServer
}

var allowed = &drlv1.CheckResponse{Allowed: true, Limit: 1000, Remaining: 999}

func (noop) Check(context.Context, *drlv1.CheckRequest) (*drlv1.CheckResponse, error) {
	return allowed, nil
}

// Members and Owner name the floor itself, so that the load generator,
// which asks, counts every check as answered where it entered.
func (noop) Members(context.Context, *drlv1.MembersRequest) (*drlv1.MembersResponse, error) {
	return &drlv1.MembersResponse{Self: "floor", Members: []*drlv1.Member{floorMember},
		Quorum: &drlv1.Quorum{Majority: true, Alive: 1, Size: 1}}, nil
}

func (noop) Owner(context.Context, *drlv1.OwnerRequest) (*drlv1.OwnerResponse, error) {
	return &drlv1.OwnerResponse{Owner: floorMember}, nil
}

var floorMember = &drlv1.Member{Name: "floor", State: "alive", InRing: true}

func (noop) CheckBatch(_ context.Context, m *drlv1.CheckBatchRequest) (*drlv1.CheckBatchResponse, error) {
	out := &drlv1.CheckBatchResponse{Results: make([]*drlv1.CheckResult, len(m.GetChecks()))}
	for i := range out.Results {
		out.Results[i] = &drlv1.CheckResult{Result: &drlv1.CheckResult_Decision{Decision: allowed}}
	}
	return out, nil
}
