package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/inflight"
	"github.com/drlimit/drl/transport"
)

// Batching makes a Client gather the checks its callers make at the same
// time into CheckBatch calls: one gRPC call per batch instead of per
// check, which is most of a node's cost per check when clients call it
// over the network (DESIGN.md §5). A check never waits for company: it is
// sent at once if no call is in flight, or if a slot is free and it (with
// the checks queued) would carry as many checks as the calls in flight;
// otherwise it joins the checks queued behind them, which leave together
// as soon as a call returns.
type Batching struct {
	// MaxBatch bounds the checks in one call. Default 256.
	MaxBatch int
	// MaxInFlight bounds the concurrent calls to one node. Default 2:
	// fewer calls carry more checks each (DESIGN.md §5).
	MaxInFlight int
}

// NewBatching is New with batching of concurrent checks. With owner
// routing (the default), checks are batched per owner.
func NewBatching(addrs []string, b Batching, opts ...grpc.DialOption) (*Client, error) {
	if b.MaxBatch <= 0 {
		b.MaxBatch = 256
	}
	if b.MaxInFlight <= 0 {
		b.MaxInFlight = 2
	}
	return newClient(addrs, &b, opts)
}

// newBatcher starts a batcher that sends its batches through api. Its
// close stops it.
func newBatcher(api drlv1.RateLimiterClient, cfg Batching) *batcher {
	b := &batcher{api: api, cfg: cfg, queue: make(chan *pending, 4*cfg.MaxBatch),
		calls: inflight.New(cfg.MaxInFlight), work: make(chan []*pending),
		stop: make(chan struct{}), done: make(chan struct{})}
	// One sender per call in flight, kept for the batcher's life: a
	// goroutine per call grew its stack on the way into gRPC every time,
	// 4 % of a batching load generator's CPU.
	for range cfg.MaxInFlight {
		b.sends.Go(func() {
			for batch := range b.work {
				b.send(batch)
			}
		})
	}
	go b.run()
	return b
}

type batcher struct {
	api   drlv1.RateLimiterClient
	cfg   Batching
	queue chan *pending
	calls *inflight.Window // the calls in flight, and how the next is sized
	work  chan []*pending  // batches for the senders; closed by run as it ends
	stop  chan struct{}    // closed by close
	done  chan struct{}    // closed when run has answered everything
	sends sync.WaitGroup   // the senders
	once  sync.Once
}

type pending struct {
	ctx  context.Context
	req  *drlv1.CheckRequest
	done chan checkResult // buffered: the batcher never waits for a caller
}

// pendingPool recycles a pending and its channel once its caller has
// taken the answer: a check then allocates neither.
var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan checkResult, 1)} }}

// release returns p, answered and drained, to pendingPool.
func (p *pending) release() {
	p.ctx, p.req = nil, nil
	pendingPool.Put(p)
}

type checkResult struct {
	d   bucket.Decision
	err error
	// call is the gRPC code of the whole call's failure (codes.OK when the
	// call went through, or never started): Unavailable and Canceled can
	// mean the node never saw the check.
	call codes.Code
}

// maxCall bounds a batch's call when a caller set no deadline.
const maxCall = 10 * time.Second

// check queues one check and waits for its answer, or for ctx.
func (b *batcher) check(ctx context.Context, req *drlv1.CheckRequest) checkResult {
	// A caller that has already given up queues nothing: select's random
	// choice between a ready queue and a done context would sometimes
	// spend a hit nobody waits for.
	select {
	case <-b.stop:
		return checkResult{err: drl.ErrClosed}
	case <-ctx.Done():
		return checkResult{err: ctx.Err()}
	default:
	}
	p := pendingPool.Get().(*pending)
	p.ctx, p.req = ctx, req
	select {
	case b.queue <- p:
	case <-ctx.Done():
		p.release()
		return checkResult{err: ctx.Err()}
	case <-b.stop:
		p.release()
		return checkResult{err: drl.ErrClosed}
	}
	select {
	case r := <-p.done:
		p.release()
		return r
	case <-ctx.Done():
		// p stays with the batcher, which will answer into its buffer; it
		// does not go back to the pool.
		return checkResult{err: ctx.Err()}
	case <-b.done:
		// Queued as the batcher stopped: answered, or left behind.
		select {
		case r := <-p.done:
			return r
		default:
			return checkResult{err: drl.ErrClosed}
		}
	}
}

// run sends batches until close, through the senders, which it stops as it
// ends. A batch leaves when b.calls lets it start (package inflight): at
// once with no call in flight; under load, once it carries as many checks
// as the calls in flight, or when one returns. No timer holds a check.
func (b *batcher) run() {
	defer close(b.done)
	defer func() {
		close(b.work)
		b.sends.Wait()
	}()
	var batch []*pending
	for {
		if len(batch) == 0 {
			select {
			case p := <-b.queue:
				batch = append(batch, p)
			case <-b.stop:
				b.drain()
				return
			}
		}
		batch = b.fill(batch)
		if b.calls.Start(len(batch), len(batch) >= b.cfg.MaxBatch) {
			// A slot is free, so a sender is idle or about to be: it
			// frees the slot just before it takes the next batch.
			b.work <- batch
			batch = nil
			continue
		}
		if p, ok := inflight.Wait(b.calls, b.queue, len(batch) < b.cfg.MaxBatch); ok {
			batch = append(batch, p)
		}
	}
}

// fill adds what is queued to batch, up to MaxBatch, without waiting.
func (b *batcher) fill(batch []*pending) []*pending {
	for len(batch) < b.cfg.MaxBatch {
		select {
		case p := <-b.queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// send makes one CheckBatch call for batch and answers each caller. The
// call lasts as long as the latest of its callers' deadlines (each caller
// stops waiting at its own), and at most maxCall.
func (b *batcher) send(batch []*pending) {
	defer b.calls.End(len(batch)) // wakes run if it waits for a call to end
	deadline := time.Now().Add(maxCall)
	latest := time.Time{}
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			latest = deadline
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	if latest.After(deadline) {
		latest = deadline
	}
	ctx, cancel := context.WithDeadline(context.Background(), latest)
	defer cancel()
	m := &drlv1.CheckBatchRequest{Checks: make([]*drlv1.CheckRequest, len(batch))}
	for i, p := range batch {
		m.Checks[i] = p.req
	}
	resp, err := b.api.CheckBatch(ctx, m)
	if err == nil && len(resp.GetResults()) != len(batch) {
		err = fmt.Errorf("%d results for %d checks", len(resp.GetResults()), len(batch))
	}
	for i, p := range batch {
		switch {
		case err != nil:
			p.done <- checkResult{err: fmt.Errorf("client: check: %w", transport.ErrorFromGRPC(err)),
				call: status.Code(err)}
		case resp.Results[i].GetError() != nil:
			p.done <- checkResult{err: fmt.Errorf("client: check: %w", transport.ErrorFromWire(resp.Results[i].GetError()))}
		default:
			p.done <- checkResult{d: transport.DecisionFromProto(resp.Results[i].GetDecision())}
		}
	}
}

// drain answers what is still queued after close.
func (b *batcher) drain() {
	for {
		select {
		case p := <-b.queue:
			p.done <- checkResult{err: drl.ErrClosed}
		default:
			return
		}
	}
}

func (b *batcher) close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}
