package transport

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api/drlv1"
)

// twoRings is a Directory that publishes two rings, then stops as a node
// does.
type twoRings struct{ oneMember }

func (twoRings) WatchRing(ctx context.Context, send func(RingState) error) error {
	for v := uint64(1); v <= 2; v++ {
		st := RingState{Version: v, ID: 41 + v, Partitions: 7, ReplicationFactor: 3, Load: 1.5,
			Members: []RingMember{{Name: "a", GRPCAddr: "127.0.0.1:1"}}}
		if err := send(st); err != nil {
			return err
		}
	}
	return drl.ErrClosed
}

// watchRing serves dir's WatchRing in memory and returns what one stream
// received and how it ended.
func watchRing(t *testing.T, dir Directory) ([]RingState, error) {
	return watchRingWith(t, ServerConfig{Directory: dir})
}

// watchRingWith is watchRing with cfg's options (tokens, say), and the
// given call options on the client's side.
func watchRingWith(t *testing.T, cfg ServerConfig, opts ...grpc.CallOption) ([]RingState, error) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	cfg.Limiter = storeLimiter{newStore(t)}
	gs := grpc.NewServer(ServerOptions(cfg)...)
	RegisterServices(gs, cfg)
	go gs.Serve(lis)
	defer gs.Stop()
	conn, err := grpc.NewClient("passthrough:///bufconn", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := drlv1.NewRateLimiterClient(conn).WatchRing(context.Background(), &drlv1.WatchRingRequest{}, opts...)
	if err != nil {
		return nil, err
	}
	var got []RingState
	for {
		m, err := stream.Recv()
		if err != nil {
			return got, err
		}
		got = append(got, RingStateFromProto(m))
	}
}

// WatchRing streams every ring the Directory publishes, intact, and ends
// Unavailable when the node stops, so that the client watches another.
func TestWatchRing(t *testing.T) {
	got, err := watchRing(t, twoRings{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("WatchRing ended with %v, want Unavailable", err)
	}
	if len(got) != 2 || got[1].Version != 2 || got[1].ID != 43 || got[1].Partitions != 7 ||
		got[1].ReplicationFactor != 3 || got[1].Load != 1.5 || len(got[1].Members) != 1 ||
		got[1].Members[0] != (RingMember{Name: "a", GRPCAddr: "127.0.0.1:1"}) {
		t.Fatalf("WatchRing sent %+v, want versions 1 and 2 of the ring", got)
	}
}

// A Directory that is no RingWatcher answers Unimplemented.
func TestWatchRingUnimplemented(t *testing.T) {
	if _, err := watchRing(t, oneMember{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("WatchRing without a RingWatcher: %v, want Unimplemented", err)
	}
}

// WatchRing, a stream, needs a token where the unary calls do.
func TestWatchRingNeedsAToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("ring-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ServerConfig{Directory: twoRings{}, Tokens: tokens}
	if _, err := watchRingWith(t, cfg); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("WatchRing without a token: %v, want Unauthenticated", err)
	}
	got, err := watchRingWith(t, cfg, grpc.PerRPCCredentials(insecureBearer("ring-token-0123456789")))
	if len(got) != 2 || status.Code(err) != codes.Unavailable {
		t.Fatalf("WatchRing with the token: %d rings, %v; want 2, then Unavailable", len(got), err)
	}
}

// insecureBearer sends a bearer token over plaintext, as tests may.
type insecureBearer string

func (b insecureBearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (insecureBearer) RequireTransportSecurity() bool { return false }
