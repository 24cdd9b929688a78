package peer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/peerpb"
	"github.com/drlimit/drl/transport"
)

// gateOwner is constOwner that holds every frame until open is closed,
// telling entered about each.
type gateOwner struct {
	constOwner
	entered chan struct{}
	open    chan struct{}
}

func newGateOwner() *gateOwner {
	return &gateOwner{entered: make(chan struct{}, 100), open: make(chan struct{})}
}

func (o *gateOwner) CheckOwned(ctx context.Context, checks []OwnedCheck, results []OwnedResult) {
	o.entered <- struct{}{}
	select {
	case <-o.open:
	case <-ctx.Done():
	}
	o.constOwner.CheckOwned(ctx, checks, results)
}

// tcpServer serves owner on addr ("127.0.0.1:0" for any port) and returns
// the server and the address it listens on.
func tcpServer(t *testing.T, addr string, owner Owner) (*grpc.Server, string) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	Register(gs, ServerConfig{Owner: owner})
	var wg sync.WaitGroup
	wg.Go(func() { gs.Serve(lis) })
	t.Cleanup(func() { gs.Stop(); wg.Wait() })
	return gs, lis.Addr().String()
}

var streamReq = bucket.Request{Limit: 10, Window: time.Minute, Hits: 1}

// An idle stream sends a lone check at once; while a frame is in flight,
// the checks that arrive go out together in the next one.
func TestStreamBatchesGrowWhileAFrameIsInFlight(t *testing.T) {
	owner := newGateOwner()
	p := newPeer(t, serve(t, owner), ClientConfig{MaxInFlight: 1})
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := p.Check(ctx, bucket.Key{Hi: 100}, streamReq); err != nil {
			t.Errorf("first Check: %v", err)
		}
	})
	<-owner.entered // the first check went out alone, without waiting
	for i := range 10 {
		wg.Go(func() {
			if _, err := p.Check(ctx, bucket.Key{Hi: uint64(i)}, streamReq); err != nil {
				t.Errorf("Check %d: %v", i, err)
			}
		})
	}
	// All ten wait: the sender holds those it took from the queue (how
	// many depends on when it woke) until the frame in flight ends.
	for deadline := time.Now().Add(5 * time.Second); len(p.queue)+int(p.held.Load()) < 10; {
		if time.Now().After(deadline) {
			t.Fatalf("%d checks queued and %d held by the sender, want 10 waiting", len(p.queue), p.held.Load())
		}
		time.Sleep(time.Millisecond)
	}
	close(owner.open)
	wg.Wait()
	if st := p.Stats(); st.RPCs.Load() != 2 || st.Entries.Load() != 11 {
		t.Fatalf("11 checks went out in %d frames with %d entries, want 2 frames, 11 entries", st.RPCs.Load(), st.Entries.Load())
	}
}

// A frame unanswered for RPCTimeout fails as a unary call's deadline did,
// and the next check goes out on a new stream. A caller's own deadline is
// honoured before that.
func TestStreamDeadlines(t *testing.T) {
	owner := newGateOwner()
	p := newPeer(t, serve(t, owner), ClientConfig{RPCTimeout: 100 * time.Millisecond})
	ctx := context.Background()

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := p.Check(short, bucket.Key{Hi: 1}, streamReq); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, drl.ErrUnavailable) {
		t.Fatalf("Check with a 20 ms deadline on a hung owner: %v, want the context's deadline", err)
	}
	_, err := p.Check(ctx, bucket.Key{Hi: 2}, streamReq)
	if !errors.Is(err, drl.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Check on a hung owner: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if n := p.Stats().Timeouts.Load(); n < 1 {
		t.Fatalf("%d timeouts counted, want at least 1", n)
	}
	close(owner.open)
	if _, err := p.Check(ctx, bucket.Key{Hi: 3}, streamReq); err != nil {
		t.Fatalf("Check once the owner answers again: %v", err)
	}
}

// A stream that breaks fails the frames in flight as unavailable; once the
// peer is back, checks flow again on a new stream.
func TestStreamReconnects(t *testing.T) {
	owner := newGateOwner()
	gs, addr := tcpServer(t, "127.0.0.1:0", owner)
	p, err := NewClient("owner", addr, ClientConfig{RPCTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() { _, err := p.Check(ctx, bucket.Key{Hi: 1}, streamReq); errc <- err }()
	<-owner.entered
	gs.Stop() // the frame is in flight
	if err := <-errc; !errors.Is(err, drl.ErrUnavailable) {
		t.Fatalf("Check in flight when the peer stopped: %v, want ErrUnavailable", err)
	}
	if _, err := p.Check(ctx, bucket.Key{Hi: 1}, streamReq); !errors.Is(err, drl.ErrUnavailable) {
		t.Fatalf("Check with the peer down: %v, want ErrUnavailable", err)
	}

	back := newGateOwner()
	close(back.open)
	tcpServer(t, addr, back)
	for deadline := time.Now().Add(5 * time.Second); ; {
		_, err := p.Check(ctx, bucket.Key{Hi: 1}, streamReq)
		if err == nil {
			break
		}
		if !errors.Is(err, drl.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Check after the peer came back: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A server stopping gracefully is not held up by a client's idle stream:
// the client closes it on the server's GOAWAY.
func TestStreamLetsServerStopGracefully(t *testing.T) {
	owner := newGateOwner()
	close(owner.open)
	gs, addr := tcpServer(t, "127.0.0.1:0", owner)
	p, err := NewClient("owner", addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if _, err := p.Check(context.Background(), bucket.Key{Hi: 1}, streamReq); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("GracefulStop still waits for the client's stream after 5 s")
	}
}

// Close with frames in flight that never get answered gives up when its
// context ends, fails them, and leaves no goroutine behind (TestMain).
func TestStreamCloseWithFramesInFlight(t *testing.T) {
	owner := newGateOwner()
	p := newPeer(t, serve(t, owner), ClientConfig{RPCTimeout: time.Minute})
	errc := make(chan error, 1)
	go func() { _, err := p.Check(context.Background(), bucket.Key{Hi: 1}, streamReq); errc <- err }()
	<-owner.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a frame in flight: %v, want DeadlineExceeded", err)
	}
	if err := <-errc; err == nil {
		t.Fatal("the check in flight at Close succeeded")
	}
	close(owner.open)
}

// unaryOnly is the Peer service of a member from before ForwardStream.
type unaryOnly struct {
	peerpb.UnimplementedPeerServer
	s *server
}

func (u unaryOnly) Forward(ctx context.Context, m *peerpb.ForwardRequest) (*peerpb.ForwardResponse, error) {
	return u.s.Forward(ctx, m)
}

// A peer without ForwardStream still gets every check, as unary calls, and
// they answer as they would on the stream.
func TestStreamFallsBackToUnaryForward(t *testing.T) {
	owner := newStoreOwner(t)
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	peerpb.RegisterPeerServer(gs, unaryOnly{s: newServer(ServerConfig{Owner: owner, MaxRecvBatch: transport.DefaultMaxRecvBatch,
		Logger: slog.Default()})})
	var wg sync.WaitGroup
	wg.Go(func() { gs.Serve(lis) })
	t.Cleanup(func() { gs.Stop(); wg.Wait() })
	p := newPeer(t, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		ClientConfig{})
	key := bucket.Key{Hi: 5}
	var allowed sync.Map
	var cwg sync.WaitGroup
	for range 16 {
		cwg.Go(func() {
			for range 2 {
				d, err := p.Check(context.Background(), key, streamReq)
				if err != nil {
					t.Errorf("Check: %v", err)
					return
				}
				if d.Allowed {
					if _, dup := allowed.LoadOrStore(d.Remaining, true); dup {
						t.Errorf("Remaining %d seen twice", d.Remaining)
					}
				}
			}
		})
	}
	cwg.Wait()
	n := 0
	allowed.Range(func(any, any) bool { n++; return true })
	if n != int(streamReq.Limit) {
		t.Fatalf("%d checks admitted, want %d", n, streamReq.Limit)
	}
	if !p.unary.Load() {
		t.Fatal("the client still uses the stream")
	}
}

// countingGate is gateOwner that also records the most frames it ever held
// at once.
type countingGate struct {
	*gateOwner
	mu       sync.Mutex
	now, max int
}

func (o *countingGate) CheckOwned(ctx context.Context, checks []OwnedCheck, results []OwnedResult) {
	o.mu.Lock()
	o.now++
	o.max = max(o.max, o.now)
	o.mu.Unlock()
	o.gateOwner.CheckOwned(ctx, checks, results)
	o.mu.Lock()
	o.now--
	o.mu.Unlock()
}

// An owner applies up to streamWorkers frames of one stream at once: a
// frame held by the owner does not hold those behind it, and the frames
// beyond that bound wait, to be answered by the same workers once they
// are free.
func TestStreamWorkersBoundAndAreReused(t *testing.T) {
	owner := &countingGate{gateOwner: newGateOwner()}
	const frames = streamWorkers + 4
	p := newPeer(t, serve(t, owner), ClientConfig{MaxInFlight: frames, MaxBatch: 1})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range frames {
		wg.Go(func() {
			if _, err := p.Check(ctx, bucket.Key{Hi: uint64(i)}, streamReq); err != nil {
				t.Errorf("Check %d: %v", i, err)
			}
		})
		if i < streamWorkers { // each of the first goes out as a frame of its own
			select {
			case <-owner.entered:
			case <-time.After(5 * time.Second):
				close(owner.open)
				t.Fatalf("%d frames applied at once, want %d", i, streamWorkers)
			}
		}
	}
	close(owner.open)
	wg.Wait()
	owner.mu.Lock()
	defer owner.mu.Unlock()
	if owner.max != streamWorkers {
		t.Fatalf("at most %d frames applied at once, want %d", owner.max, streamWorkers)
	}
	if st := p.Stats(); st.Checks.Load() != frames {
		t.Fatalf("%d checks answered, want %d", st.Checks.Load(), frames)
	}
}
