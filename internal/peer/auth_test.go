package peer

import (
	"bytes"
	"context"
	"net"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/internal/peerpb"
)

// nopOwner answers forwarded checks with nothing, drops no key and keeps
// no bucket handed to it.
type nopOwner struct{}

func (nopOwner) CheckOwned(_ context.Context, _ []OwnedCheck, _ []OwnedResult)   {}
func (nopOwner) ResetKey(bucket.Key) int                                         { return 0 }
func (nopOwner) HandedOff(string) uint64                                         { return 0 }
func (nopOwner) Absorb(context.Context, string, []engine.Moved, int, uint64) int { return 0 }

// startGuarded serves the Peer service behind RequireKeyProof(keys) on a
// loopback port and returns its address.
func startGuarded(t *testing.T, keys Keys) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(RequireKeyProof(keys)...)
	Register(gs, ServerConfig{Owner: nopOwner{}, Receiver: nopOwner{}})
	done := make(chan struct{})
	go func() { gs.Serve(lis); close(done) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return lis.Addr().String()
}

// callAll calls every method of the Peer service once and returns each
// one's status code. It fails the test if the service has a method it
// does not call, so that a new method cannot skip this test.
func callAll(t *testing.T, addr string, opts ...grpc.DialOption) map[string]codes.Code {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := peerpb.NewPeerClient(conn)
	ctx := context.Background()
	got := map[string]codes.Code{}
	_, err = c.Forward(ctx, &peerpb.ForwardRequest{})
	got["Forward"] = status.Code(err)
	_, err = c.Handoff(ctx, &peerpb.HandoffRequest{})
	got["Handoff"] = status.Code(err)
	_, err = c.ResetKey(ctx, &peerpb.ResetKeyRequest{})
	got["ResetKey"] = status.Code(err)
	st, err := c.ForwardStream(ctx)
	if err == nil {
		// A stream's refusal arrives with its first answer.
		st.Send(&peerpb.ForwardFrame{Batch: 1})
		_, err = st.Recv()
	}
	got["ForwardStream"] = status.Code(err)
	sd := peerpb.Peer_ServiceDesc
	if len(sd.Methods)+len(sd.Streams) != len(got) {
		t.Fatalf("the Peer service has %d methods and %d streams; the test calls %d", len(sd.Methods), len(sd.Streams), len(got))
	}
	return got
}

// Every Peer method refuses a caller without the proof (Unauthenticated)
// and one with another key's (PermissionDenied), and answers a caller
// with the proof of any key in force, so that keys rotate.
func TestPeerAPINeedsKeyProof(t *testing.T) {
	old, cur, stranger := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	var inForce atomic.Pointer[[][]byte]
	inForce.Store(&[][]byte{cur, old})
	addr := startGuarded(t, func() [][]byte { return *inForce.Load() })
	with := func(k []byte) grpc.DialOption { return WithKeyProof(func() [][]byte { return [][]byte{k} }) }
	for _, c := range []struct {
		name string
		opts []grpc.DialOption
		want codes.Code
	}{
		{"no proof", nil, codes.Unauthenticated},
		{"a stranger's key", []grpc.DialOption{with(stranger)}, codes.PermissionDenied},
		{"the encrypting key", []grpc.DialOption{with(cur)}, codes.OK},
		{"the other key in force", []grpc.DialOption{with(old)}, codes.OK},
	} {
		for method, code := range callAll(t, addr, c.opts...) {
			if code != c.want {
				t.Errorf("%s: %s = %v, want %v", c.name, method, code, c.want)
			}
		}
	}
	// Once the old key is dropped, its proof no longer opens the door.
	inForce.Store(&[][]byte{cur})
	for method, code := range callAll(t, addr, with(old)) {
		if code != codes.PermissionDenied {
			t.Errorf("a dropped key: %s = %v, want PermissionDenied", method, code)
		}
	}
}

// The proof is not the key, and differs between keys.
func TestProofHidesTheKey(t *testing.T) {
	a, b := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{8}, 32)
	if Proof(a) == Proof(b) || bytes.Contains([]byte(Proof(a)), a) || Proof(a) != Proof(a) {
		t.Fatalf("Proof(a) = %q, Proof(b) = %q", Proof(a), Proof(b))
	}
}
