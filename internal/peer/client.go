package peer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/inflight"
	"github.com/drlimit/drl/internal/peerpb"
	"github.com/drlimit/drl/transport"
)

// ClientConfig tunes the client that forwards checks to one owner. The zero
// value of each field means its default; DESIGN.md has the measurements
// behind them.
type ClientConfig struct {
	// Self is this node's name, sent along for the receiver's logs.
	Self string
	// MaxBatch is the most distinct keys this client puts in one frame
	// (the receiver bounds what it takes with MaxRecvBatch). Default 256.
	// 1 turns batching (and coalescing) off: one frame per check.
	MaxBatch int
	// MaxInFlight bounds the frames in flight on the stream to this peer;
	// while that many are, checks queue up and go out together in the
	// next frame, so batches grow with load and an idle peer gets each
	// check at once. Default 2.
	MaxInFlight int
	// RPCTimeout bounds the wait for one frame's answer, and for opening
	// a stream. A frame that runs out of it fails, and so does the stream
	// it was sent on (with every frame still in flight there): a peer that
	// answers nothing for so long is hung or cut off. Default 1 s.
	RPCTimeout time.Duration
	// QueueLen is the number of checks that may wait for the batcher.
	// Default 4096.
	QueueLen int
	// DialOptions are added to the gRPC client's; default is plaintext.
	DialOptions []grpc.DialOption
	// Stats, when set, receives the counts of every peer made with this
	// config, so that they outlive any one peer; nil gives each its own.
	Stats *Stats
}

// Defaults for ClientConfig.
const (
	DefaultMaxBatch    = 256
	DefaultMaxInFlight = 2
	DefaultRPCTimeout  = time.Second
	DefaultQueueLen    = 4096
)

func (c ClientConfig) withDefaults() ClientConfig {
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.RPCTimeout == 0 {
		c.RPCTimeout = DefaultRPCTimeout
	}
	if c.QueueLen == 0 {
		c.QueueLen = DefaultQueueLen
	}
	return c
}

// Validate reports the first invalid field of c, after defaults.
func (c ClientConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.MaxBatch < 1 || c.MaxBatch > transport.DefaultMaxRecvBatch:
		return fmt.Errorf("peer: MaxBatch %d must be 1 to %d", c.MaxBatch, transport.DefaultMaxRecvBatch)
	case c.MaxInFlight < 1:
		return fmt.Errorf("peer: MaxInFlight %d must be at least 1", c.MaxInFlight)
	case c.RPCTimeout <= 0:
		return fmt.Errorf("peer: RPCTimeout %v must be positive", c.RPCTimeout)
	case c.QueueLen < 1:
		return fmt.Errorf("peer: QueueLen %d must be at least 1", c.QueueLen)
	}
	return nil
}

// Client forwards checks to one remote owner, on one long-lived
// ForwardStream. Concurrent checks on their way to the same peer are
// batched into one frame, and identical checks on one key inside a frame
// are coalesced into one entry; every caller still gets the answer it
// would have had from its own call, in arrival order. A Client is safe for
// concurrent use.
//
// Its goroutines, all joined by Close: the sender (run), which batches,
// opens streams and sends frames; the watchdog, which ends a stream whose
// frame has gone unanswered for RPCTimeout; and for each stream a
// receiver, which answers callers, and a watcher, which retires the stream
// when the connection goes away (a GOAWAY from a stopping server).
type Client struct {
	name   string
	cfg    ClientConfig
	conn   *grpc.ClientConn
	client peerpb.PeerClient

	queue   chan *call
	frames  *inflight.Window // the frames in flight, and how the next is sized
	retire  chan *stream     // streams whose connection went away
	stop    chan struct{}    // closed by Close: accept no more checks
	done    chan struct{}    // closed when the sender has answered everything
	ctx     context.Context
	cancel  context.CancelFunc
	runner  sync.WaitGroup // every goroutine of the client
	closing sync.Once
	batches sync.Pool // of *batch

	// unary is set once the peer turned out to lack ForwardStream (an
	// older version): batches then go out as unary Forward calls.
	unary atomic.Bool

	// held is how many checks the sender holds in a batch while it waits
	// for a frame to end: with those queued, all that a frame in flight
	// keeps waiting. Tests read it; the sender writes it only when it
	// waits, and once more when the batch leaves.
	held atomic.Int32

	// Owned by the sender goroutine.
	cur    *stream // nil: open one for the next frame
	nextID uint64
	frame  peerpb.ForwardFrame

	// mu guards pending and the streams' cause.
	mu      sync.Mutex
	pending map[uint64]*batch // frames in flight, by batch id

	stats *Stats
}

// Stats counts a peer's traffic.
type Stats struct {
	RPCs     atomic.Uint64 // frames sent (and unbatched Forward calls)
	Entries  atomic.Uint64 // distinct keys sent
	Checks   atomic.Uint64 // checks answered through them
	Errors   atomic.Uint64 // frames that failed, timeouts included
	Timeouts atomic.Uint64 // frames that ran out of time
}

type call struct {
	key   bucket.Key
	req   bucket.Request
	lease int             // leased checks asked for
	done  chan callResult // buffered: the receiver never waits for a caller
	timer *time.Timer     // the caller's deadline, if it gave one; kept with the pooled call
}

type callResult struct {
	d      bucket.Decision
	leased int
	err    error
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan callResult, 1)} }}

// NewClient returns a client for the owner called name at the gRPC address
// addr. It starts connecting at once; call Close to stop it.
func NewClient(name, addr string, cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// A peer is one of a few members, back after a restart or a
		// partition within seconds: reconnect within a second, not
		// gRPC's default of up to two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: time.Second, Backoff: backoff.Config{
			BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}}),
	}, transport.FlowDialOptions()...)
	opts = append(opts, cfg.DialOptions...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("peer: client for peer %s at %s: %w", name, addr, err)
	}
	// Connect now, not on the first check: a node that just joined would
	// otherwise spend its first checks' deadlines on handshakes, and a
	// check that misses its deadline is answered by the fail policy.
	conn.Connect()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Client{
		name:    name,
		cfg:     cfg,
		conn:    conn,
		client:  peerpb.NewPeerClient(conn),
		queue:   make(chan *call, cfg.QueueLen),
		frames:  inflight.New(cfg.MaxInFlight),
		retire:  make(chan *stream),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
		pending: make(map[uint64]*batch, cfg.MaxInFlight),
		stats:   cfg.Stats,
	}
	p.batches.New = func() any { return newBatch(cfg.MaxBatch) }
	if p.stats == nil {
		p.stats = &Stats{}
	}
	p.runner.Go(p.run)
	p.runner.Go(p.watchdog)
	return p, nil
}

// Stats returns the peer's counters (ClientConfig.Stats if it was set).
func (p *Client) Stats() *Stats { return p.stats }

// Check forwards one check on key (from the cluster's shared hasher) to the
// peer and waits for its decision. Errors: ctx's, drl.ErrClosed, transport.ErrNotOwner
// (the peer's ring no longer gives it the key), drl.ErrUnavailable (wrapped,
// with the cause), or an invalid argument the peer found.
func (p *Client) Check(ctx context.Context, key bucket.Key, req bucket.Request) (bucket.Decision, error) {
	d, _, err := p.CheckLease(ctx, time.Time{}, key, req, 0)
	return d, err
}

// CheckLease is Check that also asks, if the check is admitted, for up to
// lease more identical checks, spent at the owner now; it returns how many
// were granted. Coalesced checks share one request: the first caller that
// asked gets the grant.
//
// A non-zero deadline bounds the wait as a deadline on ctx would, and fails
// the check with ErrDeadline: it costs a pooled timer's reset instead of a
// derived context per check, which was 15 % of an embedded node's CPU
// (DESIGN.md §5).
func (p *Client) CheckLease(ctx context.Context, deadline time.Time, key bucket.Key, req bucket.Request, lease int) (bucket.Decision, int, error) {
	// A check whose caller has already given up is never sent: otherwise
	// select's random choice between a ready queue and a done context
	// would sometimes spend a hit nobody waits for.
	select {
	case <-ctx.Done():
		return bucket.Decision{}, 0, ctx.Err()
	default:
	}
	var wait time.Duration
	if !deadline.IsZero() {
		if wait = time.Until(deadline); wait <= 0 {
			return bucket.Decision{}, 0, ErrDeadline
		}
	}
	c := callPool.Get().(*call)
	c.key, c.req, c.lease = key, req, lease
	var expired <-chan time.Time
	if !deadline.IsZero() {
		if c.timer == nil {
			c.timer = time.NewTimer(wait)
		} else {
			c.timer.Reset(wait)
		}
		expired = c.timer.C
	}
	select {
	case p.queue <- c:
	case <-ctx.Done():
		c.release()
		return bucket.Decision{}, 0, ctx.Err()
	case <-expired:
		c.release()
		return bucket.Decision{}, 0, ErrDeadline
	case <-p.stop:
		c.release()
		return bucket.Decision{}, 0, drl.ErrClosed
	}
	select {
	case r := <-c.done:
		c.release()
		return r.d, r.leased, r.err
	case <-ctx.Done():
		// c stays with the batcher, which will answer into its buffer; it
		// is not returned to the pool. A lease granted to it is lost: the
		// tokens stay spent, which can only deny, never admit, too much.
		c.stopTimer()
		return bucket.Decision{}, 0, ctx.Err()
	case <-expired:
		return bucket.Decision{}, 0, ErrDeadline
	case <-p.done:
		c.stopTimer()
		select {
		case r := <-c.done:
			return r.d, r.leased, r.err
		default:
			return bucket.Decision{}, 0, drl.ErrClosed
		}
	}
}

// release returns a call that nobody will answer any more to the pool.
func (c *call) release() {
	c.stopTimer()
	callPool.Put(c)
}

// stopTimer stops the call's deadline, if it has one, so that its expiry
// can never be read by the pooled call's next caller. Since Go 1.23 a
// stopped timer's channel holds nothing; the drain keeps that true in a
// program built with GODEBUG=asynctimerchan=1.
func (c *call) stopTimer() {
	if c.timer != nil && !c.timer.Stop() {
		select {
		case <-c.timer.C:
		default:
		}
	}
}

// ErrDeadline is CheckLease's error when the deadline it was given passes:
// the check's own deadline, unlike a frame that ran out of RPCTimeout.
var ErrDeadline = fmt.Errorf("peer: the check's deadline passed: %w", context.DeadlineExceeded)

// Close stops accepting checks, sends what is queued, waits for the frames
// in flight (as long as ctx allows), then ends the stream and closes the
// connection. It is idempotent.
func (p *Client) Close(ctx context.Context) error {
	p.closing.Do(func() { close(p.stop) })
	var err error
	select {
	case <-p.done:
	case <-ctx.Done():
		err = fmt.Errorf("peer: closing peer %s: %w", p.name, ctx.Err())
	}
	// End the streams (failing frames still in flight, if ctx ran out) and
	// so every goroutine; the sender then ends too.
	p.cancel()
	p.runner.Wait()
	if cerr := p.conn.Close(); cerr != nil && err == nil && !errors.Is(cerr, context.Canceled) {
		err = fmt.Errorf("peer: closing connection to %s: %w", p.name, cerr)
	}
	return err
}
