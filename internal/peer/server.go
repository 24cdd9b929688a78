package peer

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/internal/peerpb"
	"github.com/drlimit/drl/transport"
)

// Owner applies checks that other nodes forwarded to this one. It is called
// concurrently. It writes one result per check into results (same length);
// a check on a key this node does not own gets transport.ErrNotOwner.
type Owner interface {
	CheckOwned(ctx context.Context, checks []OwnedCheck, results []OwnedResult)
	// ResetKey drops everything this node keeps for key (buckets, cached
	// denials, leases) and returns how many live buckets it dropped.
	ResetKey(key bucket.Key) int
}

// OwnedCheck is Count identical checks on the bucket named by Key.
// Request's ids are empty: the key travels as its hash.
type OwnedCheck struct {
	Key     bucket.Key
	Request bucket.Request
	Count   int
	Mode    Mode
	// Lease asks for up to this many more identical checks, spent now and
	// answered by the sender itself (see internal/peerpb/drl_peer.proto).
	Lease int
}

// Mode tells the receiver of a forwarded check how much authority the
// sender gives it while ownership moves (internal/peerpb/drl_peer.proto, Mode).
type Mode uint8

const (
	// ModeDirect: the sender thinks the receiver owns the key.
	ModeDirect Mode = iota
	// ModeProxied: answer it, never forward it again.
	ModeProxied
)

// OwnedResult answers one OwnedCheck: a decision for all Count checks, or
// an error.
type OwnedResult struct {
	Repeated engine.Repeated
	Err      error
	// Leased is how many leased checks were granted.
	Leased int
}

// ServerConfig wires a node's owner side into the Client service.
type ServerConfig struct {
	// Owner applies forwarded checks and resets. Required.
	Owner Owner
	// Receiver takes handed-off buckets; nil refuses them.
	Receiver Receiver
	// MaxRecvBatch bounds the checks in one Forward call. Default
	// transport.DefaultMaxRecvBatch.
	MaxRecvBatch int
	// Logger gets failed forwarded checks at Debug. Default slog.Default().
	Logger *slog.Logger
}

// Register registers the Client service on gs. Its callers are other
// members; transport.ServerOptions keeps everyone else out when member
// certificates are required.
func Register(gs *grpc.Server, cfg ServerConfig) {
	if cfg.MaxRecvBatch == 0 {
		cfg.MaxRecvBatch = transport.DefaultMaxRecvBatch
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	peerpb.RegisterPeerServer(gs, newServer(cfg))
}

type server struct {
	peerpb.UnimplementedPeerServer
	cfg    ServerConfig
	frames sync.Pool // of *frameWork, for ForwardStream
}

func newServer(cfg ServerConfig) *server {
	s := &server{cfg: cfg}
	s.frames.New = func() any { return new(frameWork) }
	return s
}

// ResetKey drops one key's state on this node, for a peer's Reset.
func (s *server) ResetKey(ctx context.Context, m *peerpb.ResetKeyRequest) (*peerpb.ResetKeyResponse, error) {
	n := s.cfg.Owner.ResetKey(bucket.Key{Hi: m.GetKeyHi(), Lo: m.GetKeyLo()})
	return &peerpb.ResetKeyResponse{Dropped: uint32(n)}, nil
}

// Forward applies a batch of checks forwarded by another node.
func (s *server) Forward(ctx context.Context, m *peerpb.ForwardRequest) (*peerpb.ForwardResponse, error) {
	n := len(m.GetChecks())
	if n > s.cfg.MaxRecvBatch {
		return nil, status.Errorf(codes.InvalidArgument, "peer: %d checks in one forward, more than %d", n, s.cfg.MaxRecvBatch)
	}
	checks := make([]OwnedCheck, n)
	results := make([]OwnedResult, n)
	for i, c := range m.GetChecks() {
		if c.GetAlgorithm() > 255 || c.GetCount() < 1 || int(c.GetCount()) > s.cfg.MaxRecvBatch || c.GetMode() > peerpb.Mode_MODE_PROXIED {
			return nil, status.Errorf(codes.InvalidArgument, "peer: check %d: algorithm %d, count %d, mode %d",
				i, c.GetAlgorithm(), c.GetCount(), c.GetMode())
		}
		checks[i] = OwnedCheck{
			Key: bucket.Key{Hi: c.GetKeyHi(), Lo: c.GetKeyLo()},
			Request: bucket.Request{
				Limit:     c.GetLimit(),
				Window:    time.Duration(c.GetWindowNs()),
				Burst:     c.GetBurst(),
				Hits:      c.GetHits(),
				Algorithm: bucket.Algorithm(c.GetAlgorithm()),
				DryRun:    c.GetDryRun(),
			},
			Count: int(c.GetCount()),
			Mode:  Mode(c.GetMode()),
			Lease: int(min(c.GetLease(), uint32(s.cfg.MaxRecvBatch))),
		}
	}
	s.cfg.Owner.CheckOwned(ctx, checks, results)
	out := &peerpb.ForwardResponse{Results: make([]*peerpb.OwnedResult, n)}
	for i, r := range results {
		res := &peerpb.OwnedResult{Code: transport.WireCode(r.Err)}
		if r.Err == nil {
			res.Admitted = uint32(r.Repeated.Admitted)
			res.Leased = uint32(r.Leased)
			if r.Repeated.Admitted > 0 {
				res.LastAdmitted = decisionToPeer(r.Repeated.LastAdmitted)
			}
			if r.Repeated.Admitted < checks[i].Count {
				res.Denied = decisionToPeer(r.Repeated.Denied)
			}
		} else {
			s.cfg.Logger.Debug("forwarded check failed", "peer", m.GetFrom(), "err", r.Err)
		}
		out.Results[i] = res
	}
	return out, nil
}

func decisionToPeer(d bucket.Decision) *peerpb.Decision {
	return &peerpb.Decision{
		Allowed:      d.Allowed,
		Limit:        d.Limit,
		Remaining:    d.Remaining,
		ResetAfterNs: int64(d.ResetAfter),
		RetryAfterNs: int64(d.RetryAfter),
		DecidedBy:    drlv1.DecidedBy(d.DecidedBy),
	}
}

func decisionFromPeer(m *peerpb.Decision) bucket.Decision {
	return bucket.Decision{
		Allowed:    m.GetAllowed(),
		Limit:      m.GetLimit(),
		Remaining:  m.GetRemaining(),
		ResetAfter: time.Duration(m.GetResetAfterNs()),
		RetryAfter: time.Duration(m.GetRetryAfterNs()),
		DecidedBy:  decidedBy(byte(min(m.GetDecidedBy(), 255))),
	}
}
