package transport

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
)

// Limiter answers public checks; cluster.Node implements it. It is called
// concurrently and must honour ctx. policy applies when the key's owner
// cannot be reached in time.
type Limiter interface {
	CheckPolicy(ctx context.Context, req bucket.Request, policy FailPolicy) (bucket.Decision, error)
}

// Owner applies checks that other nodes forwarded to this one. It is called
// concurrently. It writes one result per check into results (same length);
// a check on a key this node does not own gets ErrNotOwner.
type Owner interface {
	CheckOwned(ctx context.Context, checks []OwnedCheck, results []OwnedResult)
}

// Directory answers membership questions for the public API. It is called
// concurrently; the returned slices belong to the caller.
type Directory interface {
	// Members returns this node's name and the members it sees.
	Members() (self string, members []Member)
	// OwnerOf returns the member that owns (userID, action) and the key's
	// ring partition. Bad ids are ErrInvalidArgument.
	OwnerOf(userID, action string) (Member, int, error)
}

// OwnedCheck is Count identical checks on the bucket named by Key.
// Request's ids are empty: the key travels as its hash.
type OwnedCheck struct {
	Key     bucket.Key
	Request bucket.Request
	Count   int
	Mode    Mode
	// Lease asks for up to this many more identical checks, spent now and
	// answered by the sender itself (see api/drl.proto).
	Lease int
}

// Mode tells the receiver of a forwarded check how much authority the
// sender gives it while ownership moves (api/drl.proto, Mode).
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
	Repeated bucket.Repeated
	Err      error
	// Leased is how many leased checks were granted.
	Leased int
}

// Member is one member as this node sees it.
type Member struct {
	Name       string
	GossipAddr string
	GRPCAddr   string
	HTTPAddr   string
	State      string // alive or dead (failed or left)
	InRing     bool
}

// ServerConfig wires the node into the gRPC and HTTP servers. Limiter,
// Owner and Directory are required.
type ServerConfig struct {
	Limiter   Limiter
	Owner     Owner
	Directory Directory
	// Receiver takes handed-off buckets; nil refuses them.
	Receiver Receiver
	// Metrics, when set, is served on GET /metrics.
	Metrics http.Handler
	// Ready reports whether the node has joined and built its ring; it backs
	// /readyz. Nil means always ready.
	Ready func() bool
	// MaxBatch bounds the checks in one CheckBatch or Forward call. Default
	// 4096.
	MaxBatch int
	// MaxBodyBytes bounds an HTTP request body. Default 64 KiB.
	MaxBodyBytes int64
	// Logger gets request errors at Debug. Default slog.Default().
	Logger *slog.Logger
}

// Defaults for ServerConfig.
const (
	DefaultMaxBatch     = 4096
	DefaultMaxBodyBytes = 64 << 10
)

func (c ServerConfig) withDefaults() ServerConfig {
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Ready == nil {
		c.Ready = func() bool { return true }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// RegisterServices registers the RateLimiter and Peer services on gs.
func RegisterServices(gs *grpc.Server, cfg ServerConfig) {
	s := &grpcServer{cfg: cfg.withDefaults()}
	drlv1.RegisterRateLimiterServer(gs, s)
	drlv1.RegisterPeerServer(gs, s)
}

type grpcServer struct {
	drlv1.UnimplementedRateLimiterServer
	drlv1.UnimplementedPeerServer
	cfg ServerConfig
}

func (s *grpcServer) Check(ctx context.Context, m *drlv1.CheckRequest) (*drlv1.CheckResponse, error) {
	d, err := s.check(ctx, m)
	if err != nil {
		return nil, grpcError(err)
	}
	return DecisionToProto(d), nil
}

func (s *grpcServer) check(ctx context.Context, m *drlv1.CheckRequest) (bucket.Decision, error) {
	req, err := RequestFromProto(m)
	if err != nil {
		return bucket.Decision{}, err
	}
	policy, err := ParseFailPolicy(m.GetFailPolicy())
	if err != nil {
		return bucket.Decision{}, err
	}
	return s.cfg.Limiter.CheckPolicy(ctx, req, policy)
}

func (s *grpcServer) CheckBatch(ctx context.Context, m *drlv1.CheckBatchRequest) (*drlv1.CheckBatchResponse, error) {
	if n := len(m.GetChecks()); n > s.cfg.MaxBatch {
		return nil, status.Errorf(codes.InvalidArgument, "transport: %d checks in one batch, more than %d", n, s.cfg.MaxBatch)
	}
	out := &drlv1.CheckBatchResponse{Results: make([]*drlv1.CheckResult, len(m.GetChecks()))}
	// The checks are independent and may go to different owners: run them
	// side by side so that the batch takes as long as its slowest check.
	var wg sync.WaitGroup
	for i, c := range m.GetChecks() {
		wg.Go(func() {
			d, err := s.check(ctx, c)
			if err != nil {
				out.Results[i] = &drlv1.CheckResult{Result: &drlv1.CheckResult_Error{Error: wireError(err)}}
				return
			}
			out.Results[i] = &drlv1.CheckResult{Result: &drlv1.CheckResult_Decision{Decision: DecisionToProto(d)}}
		})
	}
	wg.Wait()
	return out, nil
}

func wireError(err error) *drlv1.Error {
	e := &drlv1.Error{Code: codeOf(err), Message: err.Error()}
	if ae, ok := asArgumentError(err); ok {
		e.Field = ae.Field
	}
	return e
}

func (s *grpcServer) Members(ctx context.Context, _ *drlv1.MembersRequest) (*drlv1.MembersResponse, error) {
	self, members := s.cfg.Directory.Members()
	out := &drlv1.MembersResponse{Self: self}
	for _, m := range members {
		out.Members = append(out.Members, memberToProto(m))
	}
	return out, nil
}

func (s *grpcServer) Owner(ctx context.Context, m *drlv1.OwnerRequest) (*drlv1.OwnerResponse, error) {
	owner, partition, err := s.cfg.Directory.OwnerOf(m.GetUserId(), m.GetAction())
	if err != nil {
		return nil, grpcError(err)
	}
	return &drlv1.OwnerResponse{Owner: memberToProto(owner), Partition: int32(partition)}, nil
}

func memberToProto(m Member) *drlv1.Member {
	return &drlv1.Member{Name: m.Name, GossipAddr: m.GossipAddr, GrpcAddr: m.GRPCAddr,
		HttpAddr: m.HTTPAddr, State: m.State, InRing: m.InRing}
}

// Forward applies a batch of checks forwarded by another node.
func (s *grpcServer) Forward(ctx context.Context, m *drlv1.ForwardRequest) (*drlv1.ForwardResponse, error) {
	n := len(m.GetChecks())
	if n > s.cfg.MaxBatch {
		return nil, status.Errorf(codes.InvalidArgument, "transport: %d checks in one forward, more than %d", n, s.cfg.MaxBatch)
	}
	checks := make([]OwnedCheck, n)
	results := make([]OwnedResult, n)
	for i, c := range m.GetChecks() {
		if c.GetAlgorithm() > 255 || c.GetCount() < 1 || int(c.GetCount()) > s.cfg.MaxBatch || c.GetMode() > drlv1.Mode_MODE_PROXIED {
			return nil, status.Errorf(codes.InvalidArgument, "transport: check %d: algorithm %d, count %d, mode %d",
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
			},
			Count: int(c.GetCount()),
			Mode:  Mode(c.GetMode()),
			Lease: int(min(c.GetLease(), uint32(s.cfg.MaxBatch))),
		}
	}
	s.cfg.Owner.CheckOwned(ctx, checks, results)
	out := &drlv1.ForwardResponse{Results: make([]*drlv1.OwnedResult, n)}
	for i, r := range results {
		res := &drlv1.OwnedResult{Code: codeOf(r.Err)}
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
