package peer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/transport"
)

// ClientConfig tunes the client that forwards checks to one owner. The zero
// value of each field means its default; DESIGN.md has the measurements
// behind them.
type ClientConfig struct {
	// Self is this node's name, sent along for the receiver's logs.
	Self string
	// MaxBatch is the most distinct keys this client puts in one Forward
	// call (the receiver bounds what it takes with MaxRecvBatch). Default 256.
	// 1 turns batching (and coalescing) off: one RPC per check.
	MaxBatch int
	// BatchDelay is the longest a check waits for more checks to join its
	// batch. The batcher waits only while another RPC to the same peer is
	// in flight; an idle peer gets each check at once. Default 200 µs.
	BatchDelay time.Duration
	// MaxInFlight bounds the concurrent Forward calls to this peer; checks
	// queue up (and batch up) behind them. Default 4.
	MaxInFlight int
	// RPCTimeout bounds one Forward call. Default 1 s.
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
	DefaultBatchDelay  = 200 * time.Microsecond
	DefaultMaxInFlight = 4
	DefaultRPCTimeout  = time.Second
	DefaultQueueLen    = 4096
)

func (c ClientConfig) withDefaults() ClientConfig {
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.BatchDelay == 0 {
		c.BatchDelay = DefaultBatchDelay
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
	case c.BatchDelay < 0:
		return fmt.Errorf("peer: BatchDelay %v must not be negative", c.BatchDelay)
	case c.MaxInFlight < 1:
		return fmt.Errorf("peer: MaxInFlight %d must be at least 1", c.MaxInFlight)
	case c.RPCTimeout <= 0:
		return fmt.Errorf("peer: RPCTimeout %v must be positive", c.RPCTimeout)
	case c.QueueLen < 1:
		return fmt.Errorf("peer: QueueLen %d must be at least 1", c.QueueLen)
	}
	return nil
}

// Client forwards checks to one remote owner. Concurrent checks on their way
// to the same peer are batched into one Forward call, and identical checks
// on one key inside a batch are coalesced into one entry; every caller
// still gets the answer it would have had from its own call, in arrival
// order. A Client is safe for concurrent use.
type Client struct {
	name   string
	cfg    ClientConfig
	conn   *grpc.ClientConn
	client drlv1.PeerClient

	queue    chan *call
	inFlight chan struct{} // a semaphore: one token per Forward in flight
	stop     chan struct{} // closed by Close: accept no more checks
	done     chan struct{} // closed when the batcher has answered everything
	ctx      context.Context
	cancel   context.CancelFunc
	sends    sync.WaitGroup // Forward calls in flight
	runner   sync.WaitGroup // the batcher
	closing  sync.Once

	stats *Stats
}

// Stats counts a peer's traffic.
type Stats struct {
	RPCs     atomic.Uint64 // Forward calls made
	Entries  atomic.Uint64 // distinct keys sent
	Checks   atomic.Uint64 // checks answered through them
	Errors   atomic.Uint64 // Forward calls that failed, timeouts included
	Timeouts atomic.Uint64 // Forward calls that ran out of time
}

type call struct {
	key   bucket.Key
	req   bucket.Request
	lease int             // leased checks asked for
	done  chan callResult // buffered: the batcher never waits for a caller
}

type callResult struct {
	d      bucket.Decision
	leased int
	err    error
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan callResult, 1)} }}

// NewClient returns a client for the owner called name at the gRPC address
// addr. It connects lazily; call Close to stop it.
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
	}, cfg.DialOptions...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("peer: client for peer %s at %s: %w", name, addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Client{
		name:     name,
		cfg:      cfg,
		conn:     conn,
		client:   drlv1.NewPeerClient(conn),
		queue:    make(chan *call, cfg.QueueLen),
		inFlight: make(chan struct{}, cfg.MaxInFlight),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		stats:    cfg.Stats,
	}
	if p.stats == nil {
		p.stats = &Stats{}
	}
	p.runner.Go(p.run)
	return p, nil
}

// Stats returns the peer's counters (ClientConfig.Stats if it was set).
func (p *Client) Stats() *Stats { return p.stats }

// Check forwards one check on key (from the cluster's shared hasher) to the
// peer and waits for its decision. Errors: ctx's, drl.ErrClosed, transport.ErrNotOwner
// (the peer's ring no longer gives it the key), drl.ErrUnavailable (wrapped,
// with the cause), or an invalid argument the peer found.
func (p *Client) Check(ctx context.Context, key bucket.Key, req bucket.Request) (bucket.Decision, error) {
	d, _, err := p.CheckLease(ctx, key, req, 0)
	return d, err
}

// CheckLease is Check that also asks, if the check is admitted, for up to
// lease more identical checks, spent at the owner now; it returns how many
// were granted. Coalesced checks share one request: the first caller that
// asked gets the grant.
func (p *Client) CheckLease(ctx context.Context, key bucket.Key, req bucket.Request, lease int) (bucket.Decision, int, error) {
	c := callPool.Get().(*call)
	c.key, c.req, c.lease = key, req, lease
	select {
	case p.queue <- c:
	case <-ctx.Done():
		callPool.Put(c)
		return bucket.Decision{}, 0, ctx.Err()
	case <-p.stop:
		callPool.Put(c)
		return bucket.Decision{}, 0, drl.ErrClosed
	}
	select {
	case r := <-c.done:
		callPool.Put(c)
		return r.d, r.leased, r.err
	case <-ctx.Done():
		// c stays with the batcher, which will answer into its buffer; it
		// is not returned to the pool. A lease granted to it is lost: the
		// tokens stay spent, which can only deny, never admit, too much.
		return bucket.Decision{}, 0, ctx.Err()
	case <-p.done:
		select {
		case r := <-c.done:
			return r.d, r.leased, r.err
		default:
			return bucket.Decision{}, 0, drl.ErrClosed
		}
	}
}

// Close stops accepting checks, sends what is queued, waits for the calls
// in flight (as long as ctx allows), then closes the connection. It is
// idempotent.
func (p *Client) Close(ctx context.Context) error {
	p.closing.Do(func() { close(p.stop) })
	waited := make(chan struct{})
	go func() { p.runner.Wait(); close(waited) }()
	var err error
	select {
	case <-waited:
	case <-ctx.Done():
		err = fmt.Errorf("peer: closing peer %s: %w", p.name, ctx.Err())
		p.cancel() // abort the calls in flight; the batcher then ends
		<-waited
	}
	p.cancel()
	if cerr := p.conn.Close(); cerr != nil && err == nil && !errors.Is(cerr, context.Canceled) {
		err = fmt.Errorf("peer: closing connection to %s: %w", p.name, cerr)
	}
	return err
}

// run is the batcher. Owned by p.runner; it ends after Close once every
// queued check has been answered.
func (p *Client) run() {
	defer close(p.done)
	defer p.sends.Wait()
	for {
		select {
		case c := <-p.queue:
			p.inFlight <- struct{}{} // wait for a free slot; meanwhile checks pile up
			b := newBatch(p.cfg.MaxBatch)
			b.add(c)
			p.fill(b)
			p.sends.Go(func() { p.send(b) })
		case <-p.stop:
			// Send what callers already queued; new callers see stop.
			for {
				select {
				case c := <-p.queue:
					p.inFlight <- struct{}{}
					b := newBatch(p.cfg.MaxBatch)
					b.add(c)
					p.fill(b)
					p.sends.Go(func() { p.send(b) })
				default:
					return
				}
			}
		}
	}
}

// fill adds queued checks to b until it is full. It waits up to BatchDelay
// for more only while other Forward calls are in flight: an idle peer gets
// a lone check at once.
func (p *Client) fill(b *batch) {
	var deadline time.Time
	for !b.full() {
		select {
		case c := <-p.queue:
			b.add(c)
			continue
		default:
		}
		if len(p.inFlight) <= 1 || p.cfg.BatchDelay <= 0 {
			return
		}
		// Go's timers can fire a millisecond or more late (1.1 ms for a
		// 200 µs timer on the 2-CPU VM of DESIGN.md §13), five times
		// BatchDelay. Yielding to the goroutines that make checks, and
		// reading the clock, keeps the wait as short as asked; a yield
		// costs nothing when other goroutines have work, and only idle CPU
		// when none do.
		if deadline.IsZero() {
			deadline = time.Now().Add(p.cfg.BatchDelay)
		}
		if !time.Now().Before(deadline) {
			return
		}
		runtime.Gosched()
		select {
		case <-p.stop:
			return
		default:
		}
	}
}

// send makes one Forward call for b and answers its callers.
func (p *Client) send(b *batch) {
	defer func() { <-p.inFlight }()
	msg := &drlv1.ForwardRequest{From: p.cfg.Self, Checks: make([]*drlv1.OwnedCheck, len(b.entries))}
	for i, e := range b.entries {
		msg.Checks[i] = &drlv1.OwnedCheck{
			KeyHi: e.key.Hi, KeyLo: e.key.Lo,
			Algorithm: uint32(e.req.Algorithm),
			Limit:     e.req.Limit, WindowNs: int64(e.req.Window), Burst: e.req.Burst, Hits: e.req.Hits,
			Count: uint32(len(e.waiters)), Lease: uint32(e.lease), DryRun: e.req.DryRun,
		}
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.RPCTimeout)
	resp, err := p.client.Forward(ctx, msg)
	cancel()
	p.stats.RPCs.Add(1)
	p.stats.Entries.Add(uint64(len(b.entries)))
	p.stats.Checks.Add(uint64(b.calls))
	if err == nil && len(resp.GetResults()) != len(b.entries) {
		err = fmt.Errorf("%d results for %d checks", len(resp.GetResults()), len(b.entries))
	}
	if err != nil {
		p.stats.Errors.Add(1)
		if status.Code(err) == codes.DeadlineExceeded {
			p.stats.Timeouts.Add(1)
		}
		err = fmt.Errorf("peer: forward %d checks to %s: %w", b.calls, p.name, transport.ErrorFromGRPC(err))
		for _, e := range b.entries {
			for _, c := range e.waiters {
				c.done <- callResult{err: err}
			}
		}
		return
	}
	for i, e := range b.entries {
		r := resp.Results[i]
		if r.GetCode() != drlv1.Code_CODE_OK {
			err := transport.ErrorFromCode(r.GetCode(), "from "+p.name)
			for _, c := range e.waiters {
				c.done <- callResult{err: err}
			}
			continue
		}
		admitted := int(r.GetAdmitted())
		last, denied := decisionFromPeer(r.GetLastAdmitted()), decisionFromPeer(r.GetDenied())
		for j, c := range e.waiters {
			if j < admitted {
				// The j-th admitted check saw the hits of those after it
				// still unspent (a dry run spends none).
				d := last
				if !e.req.DryRun {
					d.Remaining += int64(admitted-1-j) * e.req.Hits
				}
				res := callResult{d: d}
				if c == e.leaser {
					res.leased = int(r.GetLeased())
				}
				c.done <- res
			} else {
				c.done <- callResult{d: denied}
			}
		}
	}
}

// batch is the checks bound for one Forward call.
type batch struct {
	entries []batchEntry
	index   map[bucket.CheckID]int // entry of each distinct check
	calls   int
	size    int
}

type batchEntry struct {
	key     bucket.Key
	req     bucket.Request
	waiters []*call // in arrival order
	lease   int     // leased checks asked for, by leaser
	leaser  *call
}

func newBatch(size int) *batch {
	return &batch{size: size, index: make(map[bucket.CheckID]int, min(size, 64))}
}

func (b *batch) full() bool { return len(b.entries) >= b.size }

func (b *batch) add(c *call) {
	b.calls++
	k := bucket.IDOf(c.key, c.req)
	if i, ok := b.index[k]; ok && len(b.entries[i].waiters) < transport.DefaultMaxRecvBatch {
		e := &b.entries[i]
		e.waiters = append(e.waiters, c)
		if c.lease > 0 && e.leaser == nil {
			e.lease, e.leaser = c.lease, c
		}
		return
	}
	b.index[k] = len(b.entries)
	e := batchEntry{key: c.key, req: c.req, waiters: []*call{c}}
	if c.lease > 0 {
		e.lease, e.leaser = c.lease, c
	}
	b.entries = append(b.entries, e)
}
