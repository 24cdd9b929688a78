package peer

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/internal/peerpb"
	"github.com/drlimit/drl/transport"
)

// Receiver takes buckets handed off by a member that no longer owns them.
// It is called concurrently and returns how many it kept. A nonzero
// doneRing says the sender has handed over everything it had to move on
// reaching the ring with that id. The first lent of moved are hits the
// sender lent itself for keys whose owner it could not reach.
type Receiver interface {
	Absorb(ctx context.Context, from string, moved []engine.Moved, lent int, doneRing uint64) int
	// HandedOff is the ring id this node last finished handing off for
	// (its own done mark) as it answers member to, or 0.
	HandedOff(to string) uint64
}

// HandoffBatch is the most buckets in one Handoff call: a few hundred
// kilobytes, so that no call holds much memory or runs long.
const HandoffBatch = 2000

// maxLogEntries bounds one moved bucket's sliding log on the wire.
const maxLogEntries = 1 << 20

func (s *server) Handoff(ctx context.Context, m *peerpb.HandoffRequest) (*peerpb.HandoffResponse, error) {
	if s.cfg.Receiver == nil {
		return nil, status.Error(codes.Unimplemented, "peer: this node takes no handoffs")
	}
	if n := len(m.GetBuckets()); n > HandoffBatch {
		return nil, status.Errorf(codes.InvalidArgument, "peer: %d buckets in one handoff, more than %d", n, HandoffBatch)
	}
	moved := make([]engine.Moved, len(m.GetBuckets()))
	for i, b := range m.GetBuckets() {
		if len(b.GetLog()) > maxLogEntries {
			return nil, status.Errorf(codes.InvalidArgument, "peer: bucket %d has %d log entries", i, len(b.GetLog()))
		}
		moved[i] = engine.Moved{
			Key:     bucket.Key{Hi: b.GetKeyHi(), Lo: b.GetKeyLo()},
			A:       b.GetA(),
			B:       b.GetB(),
			C:       b.GetC(),
			FreshIn: time.Duration(b.GetFreshInNs()),
		}
		for _, e := range b.GetLog() {
			moved[i].Log = append(moved[i].Log, engine.LogEntry{At: time.Duration(e.GetAtNs()), N: e.GetN()})
		}
	}
	kept := s.cfg.Receiver.Absorb(ctx, m.GetFrom(), moved, int(min(m.GetLent(), uint32(len(moved)))), m.GetDoneRing())
	resp := &peerpb.HandoffResponse{Accepted: uint32(kept)}
	if r := m.GetDoneRing(); r != 0 && s.cfg.Receiver.HandedOff(m.GetFrom()) == r {
		resp.DoneRing = r
	}
	return resp, nil
}

// Handoff sends buckets to the peer in batches of HandoffBatch, the last
// one marked done for ringID, and returns how many it kept, and the peer's
// own done mark for ringID if it has finished handing off for that ring
// too (else 0). The first lent of moved are lent hits (Receiver). With no
// buckets it sends just the done mark. It stops at the first failed call.
func (p *Client) Handoff(ctx context.Context, moved []engine.Moved, lent int, ringID uint64) (kept int, peerDone uint64, err error) {
	for start := 0; start == 0 || start < len(moved); start += HandoffBatch {
		part := moved[start:min(start+HandoffBatch, len(moved))]
		msg := &peerpb.HandoffRequest{From: p.cfg.Self, Buckets: make([]*peerpb.MovedBucket, len(part)),
			Lent: uint32(min(max(lent-start, 0), len(part)))}
		if start+HandoffBatch >= len(moved) {
			msg.DoneRing = ringID
		}
		for i, m := range part {
			b := &peerpb.MovedBucket{KeyHi: m.Key.Hi, KeyLo: m.Key.Lo, A: m.A, B: m.B, C: m.C, FreshInNs: int64(m.FreshIn)}
			for _, e := range m.Log {
				b.Log = append(b.Log, &peerpb.MovedLogEntry{AtNs: int64(e.At), N: e.N})
			}
			msg.Buckets[i] = b
		}
		resp, err := p.client.Handoff(ctx, msg)
		if err != nil {
			return kept, 0, fmt.Errorf("peer: hand %d buckets to %s: %w", len(part), p.name, transport.ErrorFromGRPC(err))
		}
		kept += int(resp.GetAccepted())
		peerDone = resp.GetDoneRing()
	}
	return kept, peerDone, nil
}

// Send makes one unbatched Forward call for count identical checks with the
// given mode, for the rare checks that cross an ownership change. Errors
// are as for Check.
func (p *Client) Send(ctx context.Context, key bucket.Key, req bucket.Request, mode Mode, count int) (engine.Repeated, error) {
	msg := &peerpb.ForwardRequest{From: p.cfg.Self, Checks: []*peerpb.OwnedCheck{{
		KeyHi: key.Hi, KeyLo: key.Lo, Algorithm: uint32(req.Algorithm),
		Limit: req.Limit, WindowNs: int64(req.Window), Burst: req.Burst, Hits: req.Hits,
		Count: uint32(count), Mode: peerpb.Mode(mode),
	}}}
	resp, err := p.client.Forward(ctx, msg)
	if err == nil && len(resp.GetResults()) != 1 {
		err = fmt.Errorf("%d results for 1 check", len(resp.GetResults()))
	}
	if err != nil {
		return engine.Repeated{}, fmt.Errorf("peer: forward to %s: %w", p.name, transport.ErrorFromGRPC(err))
	}
	r := resp.GetResults()[0]
	if r.GetCode() != drlv1.Code_CODE_OK {
		return engine.Repeated{}, transport.ErrorFromCode(r.GetCode(), "from "+p.name)
	}
	return engine.Repeated{
		Admitted:     int(r.GetAdmitted()),
		LastAdmitted: decisionFromPeer(r.GetLastAdmitted()),
		Denied:       decisionFromPeer(r.GetDenied()),
	}, nil
}

// ResetKey asks the peer to drop everything it keeps for key and returns
// how many live buckets it dropped.
func (p *Client) ResetKey(ctx context.Context, key bucket.Key) (int, error) {
	resp, err := p.client.ResetKey(ctx, &peerpb.ResetKeyRequest{KeyHi: key.Hi, KeyLo: key.Lo})
	if err != nil {
		return 0, fmt.Errorf("peer: reset a key on %s: %w", p.name, transport.ErrorFromGRPC(err))
	}
	return int(resp.GetDropped()), nil
}
