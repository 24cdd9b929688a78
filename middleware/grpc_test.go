package middleware

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl/cluster/clustertest"
)

// healthServer serves gRPC's health service behind the interceptors made
// from cfg and returns a client for it.
func healthServer(t *testing.T, cfg GRPCConfig) grpc_health_v1.HealthClient {
	t.Helper()
	unary, err := UnaryServerInterceptor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := StreamServerInterceptor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn := clustertest.ServeGRPC(t, func(gs *grpc.Server) { grpc_health_v1.RegisterHealthServer(gs, health.NewServer()) },
		grpc.UnaryInterceptor(unary), grpc.StreamInterceptor(stream))
	return grpc_health_v1.NewHealthClient(conn)
}

func TestGRPCInterceptors(t *testing.T) {
	hc := healthServer(t, GRPCConfig{
		Limiter: oneNode(t),
		Key:     GRPCKeyByMetadata("x-api-key"),
		Methods: map[string]Rule{
			"/grpc.health.v1.Health/":      {Limits: []Limit{perHour("health", 2)}},
			"/grpc.health.v1.Health/Watch": {Limits: []Limit{perHour("watch", 1)}},
		},
	})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", "k1")
	for i := range 2 {
		var header metadata.MD
		if _, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{}, grpc.Header(&header)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got := header.Get("ratelimit-policy"); len(got) != 1 || got[0] != `"health";q=2;w=3600` {
			t.Fatalf("call %d: ratelimit-policy %v", i, got)
		}
	}
	var header metadata.MD
	_, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{}, grpc.Header(&header))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("third call: %v, want ResourceExhausted", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if d := retry.GetRetryDelay().AsDuration(); retry == nil || d > 30*time.Minute || d < 29*time.Minute {
		t.Fatalf("RetryInfo %v in %v", retry, st.Details())
	}
	if got := header.Get("retry-after"); len(got) != 1 || got[0] != "1800" {
		t.Fatalf("retry-after metadata %v", got)
	}

	// A stream is one hit, under the method's own rule.
	for i, want := range []codes.Code{codes.OK, codes.ResourceExhausted} {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		w, err := hc.Watch(wctx, &grpc_health_v1.HealthCheckRequest{})
		if err == nil {
			_, err = w.Recv()
		}
		cancel()
		if status.Code(err) != want {
			t.Fatalf("stream %d: %v, want %v", i, err, want)
		}
	}

	// No key: the caller's error.
	if _, err := hc.Check(context.Background(), &grpc_health_v1.HealthCheckRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("call without a key: %v", err)
	}
}

func TestGRPCConfigErrors(t *testing.T) {
	node := oneNode(t)
	ok := Rule{Limits: []Limit{perHour("a", 1)}}
	for name, cfg := range map[string]GRPCConfig{
		"no limiter":      {Default: &ok},
		"nothing limited": {Limiter: node},
		"bad method":      {Limiter: node, Methods: map[string]Rule{"Health/Check": ok}},
		"empty rule":      {Limiter: node, Methods: map[string]Rule{"/a.B/C": {}}},
	} {
		if _, err := UnaryServerInterceptor(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}
