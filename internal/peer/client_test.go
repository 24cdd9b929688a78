package peer

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// storeOwner is a hand-written Owner over a real store; notOwned names keys
// it refuses, as a node whose ring moved would.
type storeOwner struct {
	store    *engine.Store
	mu       sync.Mutex
	notOwned map[bucket.Key]bool
	modes    []Mode   // of every check received
	done     []string // senders that marked a handoff done
	lent     []int    // the lent count of every handoff call
	// handedOff is the done mark it answers with (Receiver.HandedOff).
	handedOff uint64
}

func (o *storeOwner) HandedOff(string) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.handedOff
}

func (o *storeOwner) Absorb(_ context.Context, from string, moved []engine.Moved, lent int, doneRing uint64) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lent = append(o.lent, lent)
	if doneRing == 42 {
		o.done = append(o.done, from)
	}
	return o.store.Absorb(moved)
}

func (o *storeOwner) CheckOwned(_ context.Context, checks []OwnedCheck, results []OwnedResult) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, c := range checks {
		o.modes = append(o.modes, c.Mode)
		if o.notOwned[c.Key] {
			results[i].Err = transport.ErrNotOwner
			continue
		}
		results[i].Repeated, results[i].Err = o.store.CheckKey(c.Key, c.Request, c.Count)
	}
}

func (o *storeOwner) ResetKey(key bucket.Key) int { return o.store.Reset(key) }

// serve starts a gRPC server for owner on an in-memory listener and
// returns a dial option that reaches it.
func serve(t *testing.T, owner Owner) grpc.DialOption {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	var receiver Receiver
	if r, ok := owner.(Receiver); ok {
		receiver = r
	}
	Register(gs, ServerConfig{Owner: owner, Receiver: receiver})
	var wg sync.WaitGroup
	wg.Go(func() { gs.Serve(lis) })
	t.Cleanup(func() { gs.Stop(); wg.Wait() })
	return grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })
}

func newStoreOwner(t testing.TB) *storeOwner {
	t.Helper()
	s, err := engine.New(bucket.StoreConfig{Clock: &bucket.ManualClock{}, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &storeOwner{store: s, notOwned: map[bucket.Key]bool{}}
}

func newPeer(t *testing.T, dial grpc.DialOption, cfg ClientConfig) *Client {
	t.Helper()
	cfg.DialOptions = append(cfg.DialOptions, dial)
	p, err := NewClient("owner", "passthrough:///bufnet", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// 64 callers hammer one key through one peer, with batching and
// coalescing on: exactly the limit is admitted, and the Remaining values
// the callers see are exactly those of 1000 checks made one by one.
func TestPeerBatchedChecksAnswerLikeSeparateChecks(t *testing.T) {
	for _, size := range []int{1, 256} {
		owner := newStoreOwner(t)
		p := newPeer(t, serve(t, owner), ClientConfig{MaxBatch: size})
		req := bucket.Request{Limit: 1000, Window: time.Minute, Hits: 1}
		key := bucket.Key{Hi: 1, Lo: 2}
		var mu sync.Mutex
		seen := map[int64]int{}
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for range 20 {
					d, err := p.Check(context.Background(), key, req)
					if err != nil {
						t.Errorf("Check: %v", err)
						return
					}
					if d.Allowed {
						mu.Lock()
						seen[d.Remaining]++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if len(seen) != 1000 {
			t.Fatalf("batch size %d: %d admitted with distinct Remaining values, want 1000", size, len(seen))
		}
		for r, n := range seen {
			if r < 0 || r >= 1000 || n != 1 {
				t.Fatalf("batch size %d: Remaining %d seen %d times", size, r, n)
			}
		}
		st := p.Stats()
		t.Logf("batch size %d: %d checks in %d RPCs, %d entries", size, st.Checks.Load(), st.RPCs.Load(), st.Entries.Load())
		if size == 1 && st.RPCs.Load() != 1280 {
			t.Fatalf("batching off made %d RPCs for 1280 checks", st.RPCs.Load())
		}
	}
}

func TestPeerErrors(t *testing.T) {
	owner := newStoreOwner(t)
	p := newPeer(t, serve(t, owner), ClientConfig{})
	ctx := context.Background()
	req := bucket.Request{Limit: 10, Window: time.Minute, Hits: 1}

	owner.notOwned[bucket.Key{Hi: 9}] = true
	if _, err := p.Check(ctx, bucket.Key{Hi: 9}, req); !errors.Is(err, transport.ErrNotOwner) {
		t.Fatalf("Check on a key the peer does not own: %v, want transport.ErrNotOwner", err)
	}
	bad := req
	bad.Window = time.Millisecond
	if _, err := p.Check(ctx, bucket.Key{Hi: 1}, bad); !errors.Is(err, bucket.ErrInvalidArgument) {
		t.Fatalf("Check with a bad window: %v, want ErrInvalidArgument", err)
	}

	// Nobody listens: unavailable, quickly.
	down, err := NewClient("gone", "127.0.0.1:1", ClientConfig{RPCTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close(ctx)
	if _, err := down.Check(ctx, bucket.Key{Hi: 1}, req); !errors.Is(err, drl.ErrUnavailable) {
		t.Fatalf("Check against a dead address: %v, want ErrUnavailable", err)
	}

	short, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-short.Done()
	// A caller's deadline is honoured, and a check whose caller has
	// already given up spends nothing at the owner.
	for i := 0; i < 50; i++ {
		if _, err := p.Check(short, bucket.Key{Hi: 1}, req); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Check with an expired context: %v", err)
		}
		if _, _, err := p.CheckLease(ctx, time.Now().Add(-time.Millisecond), bucket.Key{Hi: 1}, req, 0); !errors.Is(err, ErrDeadline) {
			t.Fatalf("CheckLease past its deadline: %v, want ErrDeadline", err)
		}
	}
	if d, err := p.Check(ctx, bucket.Key{Hi: 1}, req); err != nil || d.Remaining != req.Limit-1 {
		t.Fatalf("first live check after 100 abandoned ones: %+v, %v; want Remaining %d", d, err, req.Limit-1)
	}

	p.Close(ctx)
	if _, err := p.Check(ctx, bucket.Key{Hi: 1}, req); !errors.Is(err, drl.ErrClosed) {
		t.Fatalf("Check after Close: %v, want ErrClosed", err)
	}
}

func TestPeerConfigValidate(t *testing.T) {
	for _, c := range []ClientConfig{{MaxBatch: -1}, {MaxBatch: transport.DefaultMaxRecvBatch + 1}, {MaxInFlight: -1}, {RPCTimeout: -1}, {QueueLen: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", c)
		}
	}
}

// Buckets handed off over gRPC arrive whole, with the done mark on the
// last batch, and Send carries its mode and count.
func TestHandoffAndSend(t *testing.T) {
	owner := newStoreOwner(t)
	p := newPeer(t, serve(t, owner), ClientConfig{Self: "leaver"})
	clock := &bucket.ManualClock{}
	from, err := engine.New(bucket.StoreConfig{Clock: clock, SweepInterval: -1, Hasher: func(u, a string) bucket.Key {
		return bucket.KeyOf(uint64(len(u))*7919, uint64(len(a)))
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	req := bucket.Request{Limit: 10, Window: time.Minute, Hits: 1}
	for i := range HandoffBatch + 5 { // two batches
		k := bucket.Key{Hi: uint64(i), Lo: uint64(i) << 8}
		from.CheckKey(k, req, 3)
	}
	moved := from.Extract(func(bucket.Key) bool { return true })
	// The first HandoffBatch+2 are lent hits: each batch says how many of
	// its own are.
	kept, _, err := p.Handoff(context.Background(), moved, HandoffBatch+2, 42)
	if err != nil || kept != HandoffBatch+5 || owner.store.Len() != HandoffBatch+5 {
		t.Fatalf("Handoff: kept %d, err %v, receiver holds %d; want %d", kept, err, owner.store.Len(), HandoffBatch+5)
	}
	if !slices.Equal(owner.lent, []int{HandoffBatch, 2}) {
		t.Errorf("lent per call %v, want [%d 2]", owner.lent, HandoffBatch)
	}
	if len(owner.done) != 1 || owner.done[0] != "leaver" {
		t.Fatalf("done marks %v, want one from leaver", owner.done)
	}
	if _, peerDone, err := p.Handoff(context.Background(), nil, 0, 42); err != nil || len(owner.done) != 2 || peerDone != 0 {
		t.Fatalf("an empty handoff must still mark done: %v, %v; the peer, not done itself, answers 0: %x", err, owner.done, peerDone)
	}
	// A peer done with the same ring answers with its own mark, and only
	// for that ring: how a member still waiting for it asks again.
	owner.mu.Lock()
	owner.handedOff = 42
	owner.mu.Unlock()
	if _, peerDone, err := p.Handoff(context.Background(), nil, 0, 42); err != nil || peerDone != 42 {
		t.Fatalf("asking a peer done with ring 42: %x, %v; want its mark 42", peerDone, err)
	}
	if _, peerDone, _ := p.Handoff(context.Background(), nil, 0, 43); peerDone != 0 {
		t.Fatalf("asking about another ring: %x, want 0", peerDone)
	}
	rep, err := p.Send(context.Background(), bucket.Key{Hi: 3, Lo: 3 << 8}, req, ModeProxied, 9)
	if err != nil || rep.Admitted != 7 || rep.Denied.Allowed {
		t.Fatalf("Send 9 checks on a key with 7 left: %+v, %v", rep, err)
	}
	if got := owner.modes[len(owner.modes)-1]; got != ModeProxied {
		t.Fatalf("mode %v arrived, want ModeProxied", got)
	}
}

// gatedOwner holds every frame until its gate opens, as a hung owner would.
type gatedOwner struct {
	*storeOwner
	gate chan struct{}
}

func (o gatedOwner) CheckOwned(ctx context.Context, checks []OwnedCheck, results []OwnedResult) {
	<-o.gate
	o.storeOwner.CheckOwned(ctx, checks, results)
}

// A deadline given to CheckLease ends the wait for a hung owner long before
// the stream's own RPCTimeout, and a pooled call whose deadline was stopped
// in time never fails a later check early.
func TestCheckLeaseDeadline(t *testing.T) {
	owner := gatedOwner{newStoreOwner(t), make(chan struct{})}
	p := newPeer(t, serve(t, owner), ClientConfig{RPCTimeout: 10 * time.Second})
	ctx := context.Background()
	req := bucket.Request{Limit: 100, Window: time.Minute, Hits: 1}

	began := time.Now()
	_, _, err := p.CheckLease(ctx, time.Now().Add(20*time.Millisecond), bucket.Key{Hi: 1}, req, 0)
	if !errors.Is(err, ErrDeadline) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CheckLease against a hung owner: %v, want ErrDeadline", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("CheckLease with a 20ms deadline waited %v", took)
	}
	if _, _, err := p.CheckLease(ctx, time.Now().Add(-time.Second), bucket.Key{Hi: 2}, req, 0); !errors.Is(err, ErrDeadline) {
		t.Fatalf("CheckLease with a past deadline: %v, want ErrDeadline", err)
	}
	close(owner.gate)
	// Answered within short deadlines, whose timers are stopped in time;
	// once those would have fired, checks with long deadlines, on the same
	// pooled calls, must still be answered.
	for i := range 20 {
		if _, _, err := p.CheckLease(ctx, time.Now().Add(500*time.Millisecond), bucket.Key{Hi: 3}, req, 0); err != nil {
			t.Fatalf("check %d with a 500ms deadline: %v", i, err)
		}
	}
	time.Sleep(600 * time.Millisecond)
	for i := range 50 {
		d, _, err := p.CheckLease(ctx, time.Now().Add(time.Minute), bucket.Key{Hi: 3}, req, 0)
		if err != nil {
			t.Fatalf("check %d after the short deadlines passed: %v", i, err)
		}
		if want := i < 80; d.Allowed != want {
			t.Fatalf("check %d: allowed %v, want %v", i, d.Allowed, want)
		}
	}
}

// A call goes back to the pool with its timer stopped: a deadline that
// passed while the call was being answered leaves nothing for the call's
// next caller to read as its own expiry.
func TestReleasedCallKeepsNoExpiry(t *testing.T) {
	c := &call{done: make(chan callResult, 1), timer: time.NewTimer(time.Millisecond)}
	time.Sleep(20 * time.Millisecond) // the deadline passes, unread
	c.stopTimer()
	select {
	case <-c.timer.C:
		t.Fatal("a stopped call's timer still delivered its expiry")
	default:
	}
}
