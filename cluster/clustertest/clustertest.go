// Package clustertest starts real drl clusters inside a test: every node a
// cluster.Node on loopback ports, closed when the test ends.
package clustertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/drlimit/drl/cluster"
)

// Start starts size nodes named node-0, node-1, ... (from
// cluster.TestConfig, with an HTTP listener on a free loopback port), joined
// through the first, edits each Config with edit when it is not nil, and
// waits until every node is ready with all of them in its ring.
func Start(t testing.TB, size int, edit func(*cluster.Config)) []*cluster.Node {
	t.Helper()
	nodes := make([]*cluster.Node, size)
	for i := range nodes {
		cfg := cluster.TestConfig("node-" + strconv.Itoa(i))
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if i > 0 {
			cfg.Join = []string{nodes[0].GossipAddr()}
		}
		if edit != nil {
			edit(&cfg)
		}
		n, err := cluster.New(cfg)
		if err != nil {
			t.Fatalf("clustertest: start %s: %v", cfg.Name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n.Close(ctx)
		})
		nodes[i] = n
	}
	WaitForRing(t, nodes, size)
	return nodes
}

// WaitForRing waits, for at most 15 s, until every node is ready and sees
// want members in its ring.
func WaitForRing(t testing.TB, nodes []*cluster.Node, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := error(nil)
		for _, n := range nodes {
			if got := n.Stats().Members; got != want || !n.Ready() {
				err = fmt.Errorf("%s: ring of %d (want %d), ready %v", n.Name(), got, want, n.Ready())
				break
			}
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("clustertest: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// GRPCAddrs returns the nodes' gRPC addresses.
func GRPCAddrs(nodes []*cluster.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.GRPCAddr()
	}
	return out
}

// ServeGRPC serves a gRPC server with opts, on which register puts the
// services, on a free loopback port until the test ends, and returns a
// plaintext client connection to it.
func ServeGRPC(t testing.TB, register func(*grpc.Server), opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	register(gs)
	served := make(chan struct{})
	go func() { gs.Serve(lis); close(served) }()
	t.Cleanup(func() { gs.Stop(); <-served })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
