package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/internal/inflight"
	"github.com/drlimit/drl/internal/peerpb"
	"github.com/drlimit/drl/transport"
)

// stream is one ForwardStream to the peer. Only the sender sends on it;
// its receiver answers the frames sent on it.
type stream struct {
	s      peerpb.Peer_ForwardStreamClient
	cancel context.CancelFunc

	// cause, guarded by Client.mu, is set once the stream is over: why
	// the client ended it, or else the error its receiver saw. No frame
	// goes out on it from then on.
	cause error
}

// errTimeout is the cause of a stream ended because a frame on it went
// unanswered for RPCTimeout: the error a unary call's deadline gave.
var errTimeout = status.Error(codes.DeadlineExceeded, "peer: no answer within RPCTimeout")

// run is the sender. Owned by p.runner; it ends after Close once every
// queued check has been answered (or failed).
func (p *Client) run() {
	defer close(p.done)
	for {
		select {
		case c := <-p.queue:
			p.dispatch(c)
		case st := <-p.retire:
			p.closeSend(st)
		case <-p.stop:
			// Send what callers already queued; new callers see stop.
			for {
				select {
				case c := <-p.queue:
					p.dispatch(c)
					continue
				default:
				}
				break
			}
			p.frames.Drain() // wait for every frame in flight
			if p.cur != nil {
				p.closeSend(p.cur)
			}
			return
		}
	}
}

// dispatch sends c and whatever else is queued, up to MaxBatch distinct
// checks, in one frame, when p.frames lets it start (package inflight):
// at once on an idle stream; under load, once it carries as many checks
// as the frames in flight, or when one is answered. No timer holds a
// check.
func (p *Client) dispatch(c *call) {
	b := p.batches.Get().(*batch)
	b.add(c)
	waited := false
	for {
		p.fill(b)
		if p.frames.Start(b.calls, b.full()) {
			break
		}
		p.held.Store(int32(b.calls))
		waited = true
		if c, ok := inflight.Wait(p.frames, p.queue, !b.full()); ok {
			b.add(c)
		}
	}
	if waited {
		p.held.Store(0)
	}
	p.send(b)
}

// fill adds the queued checks to b, until it is full, without waiting.
// Requires being the sender.
func (p *Client) fill(b *batch) {
	for !b.full() {
		select {
		case c := <-p.queue:
			b.add(c)
		default:
			return
		}
	}
}

// send registers b as in flight on the current stream (opening one if
// need be) and sends its frame. Whatever goes wrong, b is answered: here
// if no stream could take it, else by the stream's receiver.
func (p *Client) send(b *batch) {
	p.stats.RPCs.Add(1)
	p.stats.Entries.Add(uint64(len(b.entries)))
	p.stats.Checks.Add(uint64(b.calls))
	if p.unary.Load() {
		p.runner.Go(func() { p.sendUnary(b) })
		return
	}
	// Encode first: once b is registered, a stream that breaks has its
	// receiver answer and release b at any moment.
	buf := p.frame.Checks[:0]
	for _, e := range b.entries {
		buf = appendCheck(buf, OwnedCheck{Key: e.key, Request: e.req, Count: len(e.waiters), Lease: e.lease})
	}
	p.frame.Checks = buf
	st, id, err := p.register(b)
	if err != nil {
		if p.unary.Load() { // the stream broke for want of ForwardStream
			p.runner.Go(func() { p.sendUnary(b) })
			return
		}
		p.fail(b, err)
		return
	}
	p.frame.Batch = id
	// SendMsg has encoded the frame when it returns, so p.frame may be
	// reused at once.
	if err := st.s.Send(&p.frame); err != nil && !errors.Is(err, io.EOF) {
		// io.EOF: the stream has ended, and its receiver fails b with the
		// reason. Any other error leaves it open; end it.
		p.end(st, err)
	}
}

// register puts b in flight on the current stream, opening a stream if
// there is none or the current one broke, and returns the stream and b's
// batch id. From then on b belongs to the stream's receiver. Requires
// being the sender.
func (p *Client) register(b *batch) (*stream, uint64, error) {
	var err error
	for range 2 { // a broken stream, then a fresh one that broke at once
		if p.cur == nil {
			if p.cur, err = p.open(); err != nil {
				return nil, 0, err
			}
		}
		st := p.cur
		p.mu.Lock()
		if st.cause == nil {
			p.nextID++
			b.id, b.st, b.sent = p.nextID, st, time.Now()
			p.pending[b.id] = b
			p.mu.Unlock()
			return st, p.nextID, nil
		}
		err = st.cause
		p.mu.Unlock()
		p.cur = nil
	}
	return nil, 0, err
}

// open starts a stream and its receiver and watcher, waiting at most
// RPCTimeout for the connection.
func (p *Client) open() (*stream, error) {
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(p.ctx, fromKey, p.cfg.Self))
	t := time.AfterFunc(p.cfg.RPCTimeout, cancel)
	s, err := p.client.ForwardStream(ctx)
	if !t.Stop() {
		err = errTimeout
	}
	if err != nil {
		cancel()
		return nil, err
	}
	st := &stream{s: s, cancel: cancel}
	p.runner.Go(func() { p.receive(st) })
	p.runner.Go(func() {
		// A server that stops gracefully sends GOAWAY and then waits for
		// its streams to end: close this one's sending side, so that the
		// server ends it once it has answered what is in flight, and let
		// the next frame open a stream on a new connection.
		if p.conn.WaitForStateChange(ctx, connectivity.Ready) {
			select {
			case p.retire <- st:
			case <-ctx.Done():
			}
		}
	})
	return st, nil
}

// closeSend closes st's sending side; its receiver ends once the peer has
// answered the frames in flight. Requires being the sender.
func (p *Client) closeSend(st *stream) {
	if st == p.cur {
		p.cur = nil
	}
	_ = st.s.CloseSend() // an error means the stream already ended: same outcome
}

// end ends st for cause: its receiver fails every frame still in flight
// on it with cause.
func (p *Client) end(st *stream, cause error) {
	p.mu.Lock()
	if st.cause == nil {
		st.cause = cause
	}
	p.mu.Unlock()
	st.cancel()
}

// receive answers the frames of st until it ends, then fails those still
// in flight on it. Owned by p.runner.
func (p *Client) receive(st *stream) {
	defer st.cancel()
	var res peerpb.ForwardFrameResult
	for {
		err := st.s.RecvMsg(&res)
		if err != nil {
			p.broke(st, err)
			return
		}
		p.mu.Lock()
		b, ok := p.pending[res.GetBatch()]
		if ok && b.st == st {
			delete(p.pending, res.GetBatch())
		} else {
			ok = false // an id this stream never sent: ignore it
		}
		p.mu.Unlock()
		if ok {
			p.answer(b, &res)
		}
	}
}

// broke marks st broken by err, or by the cause the client gave when it
// ended st, and fails the frames in flight on it.
func (p *Client) broke(st *stream, err error) {
	var failed []*batch
	retry := false
	p.mu.Lock()
	switch {
	case st.cause != nil:
		err = st.cause
	case status.Code(err) == codes.Unimplemented:
		// A member of an older version, without ForwardStream: forward
		// to it with unary calls from now on, starting with these frames.
		p.unary.Store(true)
		retry = true
	case errors.Is(err, io.EOF):
		// Only a peer that ended the stream while frames were in flight
		// leaves any below.
		err = status.Error(codes.Unavailable, "peer: stream ended")
	}
	st.cause = err
	for id, b := range p.pending {
		if b.st == st {
			delete(p.pending, id)
			failed = append(failed, b)
		}
	}
	p.mu.Unlock()
	for _, b := range failed {
		if retry {
			p.runner.Go(func() { p.sendUnary(b) })
		} else {
			p.fail(b, err)
		}
	}
}

// watchdog ends every stream with a frame unanswered for RPCTimeout. It
// looks every quarter of RPCTimeout, so a frame fails within 1.25 times
// RPCTimeout; the checks in it honour their own contexts meanwhile. Owned
// by p.runner; it ends when Close cancels p.ctx.
func (p *Client) watchdog() {
	t := time.NewTicker(max(p.cfg.RPCTimeout/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-t.C:
			var late []*stream
			p.mu.Lock()
			for _, b := range p.pending {
				if now.Sub(b.sent) > p.cfg.RPCTimeout && b.st.cause == nil {
					b.st.cause = errTimeout
					late = append(late, b.st)
				}
			}
			p.mu.Unlock()
			for _, st := range late {
				st.cancel()
			}
		}
	}
}

// fail answers every caller in b with err, a gRPC error or not, then
// releases b.
func (p *Client) fail(b *batch, err error) {
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
	p.release(b)
}

// answer answers every caller in b from res, then releases b.
func (p *Client) answer(b *batch, res *peerpb.ForwardFrameResult) {
	if res.GetCode() != drlv1.Code_CODE_OK {
		p.fail(b, transport.ErrorFromCode(res.GetCode(), res.GetMessage()))
		return
	}
	if err := checkResults(res.GetResults(), len(b.entries)); err != nil {
		p.fail(b, err)
		return
	}
	for i := range b.entries {
		p.answerEntry(&b.entries[i], decodeResult(res.GetResults(), i, len(b.entries[i].waiters)))
	}
	p.release(b)
}

// answerEntry answers the callers of e from r.
func (p *Client) answerEntry(e *batchEntry, r wireResult) {
	if r.code != drlv1.Code_CODE_OK {
		err := transport.ErrorFromCode(r.code, "from "+p.name)
		for _, c := range e.waiters {
			c.done <- callResult{err: err}
		}
		return
	}
	for j, c := range e.waiters {
		if j < r.admitted {
			// The j-th admitted check saw the hits of those after it
			// still unspent (a dry run spends none).
			d := r.last
			if !e.req.DryRun {
				d.Remaining += int64(r.admitted-1-j) * e.req.Hits
			}
			cr := callResult{d: d}
			if c == e.leaser {
				cr.leased = r.leased
			}
			c.done <- cr
		} else {
			c.done <- callResult{d: r.denied}
		}
	}
}

// sendUnary forwards b with one unary Forward call, to a peer without
// ForwardStream, then answers and releases b. Owned by p.runner.
func (p *Client) sendUnary(b *batch) {
	msg := &peerpb.ForwardRequest{From: p.cfg.Self, Checks: make([]*peerpb.OwnedCheck, len(b.entries))}
	for i, e := range b.entries {
		msg.Checks[i] = &peerpb.OwnedCheck{
			KeyHi: e.key.Hi, KeyLo: e.key.Lo,
			Algorithm: uint32(e.req.Algorithm),
			Limit:     e.req.Limit, WindowNs: int64(e.req.Window), Burst: e.req.Burst, Hits: e.req.Hits,
			Count: uint32(len(e.waiters)), Lease: uint32(e.lease), DryRun: e.req.DryRun,
		}
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.RPCTimeout)
	resp, err := p.client.Forward(ctx, msg)
	cancel()
	if err == nil && len(resp.GetResults()) != len(b.entries) {
		err = fmt.Errorf("%d results for %d checks", len(resp.GetResults()), len(b.entries))
	}
	if err != nil {
		p.fail(b, err)
		return
	}
	for i, r := range resp.GetResults() {
		p.answerEntry(&b.entries[i], wireResult{code: r.GetCode(), admitted: int(r.GetAdmitted()), leased: int(r.GetLeased()),
			last: decisionFromPeer(r.GetLastAdmitted()), denied: decisionFromPeer(r.GetDenied())})
	}
	p.release(b)
}

// release frees b's slot, waking the sender if it waits for one, and
// returns b to its pool.
func (p *Client) release(b *batch) {
	p.frames.End(b.calls)
	b.reset()
	p.batches.Put(b)
}
