package transport

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
)

// Admin is the operator's side of the public API; cluster.Node implements
// it. Nil in ServerConfig disables Reset, TopDenied and Forget.
type Admin interface {
	// Reset drops (userID, action)'s buckets on every member and returns
	// how many live buckets were dropped and which members confirmed.
	Reset(ctx context.Context, userID, action string) (drl.Reset, error)
	// TopDenied returns this node's name and the up to n keys it denied
	// most often lately, most first.
	TopDenied(n int) (self string, keys []drl.DeniedKey)
	// Forget stops counting the failed member called name toward the
	// cluster's size; drl.ErrNotFound if none by that name is counted.
	Forget(name string) error
}

// Directory answers membership questions for the public API. It is called
// concurrently; the returned slices belong to the caller.
type Directory interface {
	// Members returns this node's name and the members it sees.
	Members() (self string, members []drl.Member)
	// Quorum returns this node's count of the cluster.
	Quorum() drl.Quorum
	// OwnerOf returns the member that owns (userID, action) and the key's
	// ring partition. Bad ids are ErrInvalidArgument.
	OwnerOf(userID, action string) (drl.Owner, error)
}

// ServerConfig wires the node into the gRPC and HTTP servers. Limiter and
// Directory are required.
type ServerConfig struct {
	Limiter   drl.Limiter
	Directory Directory
	// DecidesLocally tells which checks Limiter decides without a hop;
	// CheckBatch runs those inline instead of side by side. Nil means none.
	DecidesLocally func(userID, action string) bool
	// Admin serves Reset and TopDenied; nil answers them Unimplemented.
	Admin Admin
	// Metrics, when set, is served on GET /metrics.
	Metrics http.Handler
	// Status, when set, backs the status page (GET /status) and
	// GET /v1/status.
	Status func() Status
	// Ready reports whether the node has joined and built its ring; it backs
	// /readyz. Nil means always ready.
	Ready func() bool
	// MaxRecvBatch bounds the checks this server takes in one CheckBatch call
	// (senders batch up to their own MaxBatch). Default
	// 4096.
	MaxRecvBatch int
	// MaxBodyBytes bounds an HTTP request body. Default 64 KiB.
	MaxBodyBytes int64
	// MaxRecvBytes bounds one gRPC message. Default 4 MiB.
	MaxRecvBytes int
	// MaxStreams bounds the concurrent calls on one gRPC connection.
	// Default 1024.
	MaxStreams int
	// Tokens, when set, are the bearer tokens of RoleCheck: the public
	// API's checks (gRPC RateLimiter and HTTP /v1/) require one of them or
	// an admin token. Nil leaves checks open.
	Tokens *Tokens
	// AdminTokens, when set, are the bearer tokens of RoleAdmin, which
	// admin calls (Reset, Forget, TopDenied, /v1/status) require. When nil
	// and Tokens is set, admin calls are refused to everyone
	// (PermissionDenied, HTTP 403); when both are nil the API is open.
	AdminTokens *Tokens
	// RequireMemberCert makes the peer API (Forward, Handoff, ResetKey)
	// refuse callers without a certificate verified against the cluster's
	// CA: with TLS on, outsiders cannot forward checks or push buckets.
	RequireMemberCert bool
	// Logger gets request errors at Debug. Default slog.Default().
	Logger *slog.Logger
}

// Defaults for ServerConfig.
const (
	DefaultMaxRecvBatch = 4096
	DefaultMaxBodyBytes = 64 << 10
	DefaultMaxRecvBytes = 4 << 20
	DefaultMaxStreams   = 1024
)

func (c ServerConfig) withDefaults() ServerConfig {
	if c.MaxRecvBatch == 0 {
		c.MaxRecvBatch = DefaultMaxRecvBatch
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxRecvBytes == 0 {
		c.MaxRecvBytes = DefaultMaxRecvBytes
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.DecidesLocally == nil {
		c.DecidesLocally = func(string, string) bool { return false }
	}
	if c.Ready == nil {
		c.Ready = func() bool { return true }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// RegisterServices registers the public RateLimiter service on gs. The
// node-to-node Peer service is internal/peer's.
func RegisterServices(gs *grpc.Server, cfg ServerConfig) {
	drlv1.RegisterRateLimiterServer(gs, &grpcServer{cfg: cfg.withDefaults()})
}

type grpcServer struct {
	drlv1.UnimplementedRateLimiterServer
	cfg ServerConfig
}

func (s *grpcServer) Check(ctx context.Context, m *drlv1.CheckRequest) (*drlv1.CheckResponse, error) {
	d, err := s.check(ctx, m)
	if err != nil {
		return nil, GRPCError(err)
	}
	return DecisionToProto(d), nil
}

func (s *grpcServer) check(ctx context.Context, m *drlv1.CheckRequest) (bucket.Decision, error) {
	c, err := limitCheckFromProto(m)
	if err != nil {
		return bucket.Decision{}, err
	}
	d, err := s.cfg.Limiter.CheckWith(ctx, c.Request, c.Options)
	return answerOf(d, c.Request.Window), err
}

func limitCheckFromProto(m *drlv1.CheckRequest) (drl.LimitCheck, error) {
	req, err := RequestFromProto(m)
	if err != nil {
		return drl.LimitCheck{}, err
	}
	policy, err := drl.ParseFailPolicy(m.GetFailPolicy())
	if err != nil {
		return drl.LimitCheck{}, err
	}
	return drl.LimitCheck{Request: req, Options: drl.CheckOptions{FailPolicy: policy, Shadow: m.GetShadow()}}, nil
}

func (s *grpcServer) CheckAll(ctx context.Context, m *drlv1.CheckAllRequest) (*drlv1.CheckAllResponse, error) {
	out, err := s.checkAll(ctx, m)
	if err != nil {
		return nil, GRPCError(err)
	}
	return out, nil
}

func (s *grpcServer) checkAll(ctx context.Context, m *drlv1.CheckAllRequest) (*drlv1.CheckAllResponse, error) {
	n := len(m.GetLimits())
	if n == 0 || n > drl.MaxLimitsPerCheck {
		return nil, &bucket.ArgumentError{Field: "limits", Reason: fmt.Sprintf("%d limits; want 1 to %d", n, drl.MaxLimitsPerCheck)}
	}
	checks := make([]drl.LimitCheck, n)
	for i, l := range m.GetLimits() {
		c, err := limitCheckFromProto(l)
		if err != nil {
			return nil, InLimit(i, err)
		}
		checks[i] = c
	}
	md, err := s.cfg.Limiter.CheckAll(ctx, checks)
	if err != nil {
		return nil, err
	}
	out := &drlv1.CheckAllResponse{Allowed: md.Allowed, Decisions: make([]*drlv1.CheckResponse, len(md.Decisions))}
	for i, d := range md.Decisions {
		out.Decisions[i] = DecisionToProto(answerOf(d, checks[i].Request.Window))
	}
	return out, nil
}

// InLimit names the limit of a multi-limit check that an argument error is
// about, as the wire names it: "limits[2].window". Other errors pass through.
func InLimit(i int, err error) error {
	if ae, ok := asArgumentError(err); ok {
		return &bucket.ArgumentError{Field: fmt.Sprintf("limits[%d].%s", i, ae.Field), Reason: ae.Reason}
	}
	return err
}

func (s *grpcServer) Reset(ctx context.Context, m *drlv1.ResetRequest) (*drlv1.ResetResponse, error) {
	if s.cfg.Admin == nil {
		return nil, status.Error(codes.Unimplemented, "transport: this node serves no admin calls")
	}
	r, err := s.cfg.Admin.Reset(ctx, m.GetUserId(), m.GetAction())
	if err != nil {
		return nil, GRPCError(err)
	}
	return &drlv1.ResetResponse{Dropped: uint32(r.Dropped), Members: r.ConfirmedBy}, nil
}

func (s *grpcServer) TopDenied(ctx context.Context, m *drlv1.TopDeniedRequest) (*drlv1.TopDeniedResponse, error) {
	if s.cfg.Admin == nil {
		return nil, status.Error(codes.Unimplemented, "transport: this node serves no admin calls")
	}
	n := int(m.GetLimit())
	if n == 0 {
		n = 10
	}
	self, keys := s.cfg.Admin.TopDenied(n)
	out := &drlv1.TopDeniedResponse{Node: self}
	for _, k := range keys {
		out.Keys = append(out.Keys, &drlv1.DeniedKey{UserId: k.UserID, Action: k.Action, Denied: k.Denied, Error: k.Error})
	}
	return out, nil
}

func (s *grpcServer) CheckBatch(ctx context.Context, m *drlv1.CheckBatchRequest) (*drlv1.CheckBatchResponse, error) {
	if n := len(m.GetChecks()); n > s.cfg.MaxRecvBatch {
		return nil, status.Errorf(codes.InvalidArgument, "transport: %d checks in one batch, more than %d", n, s.cfg.MaxRecvBatch)
	}
	out := &drlv1.CheckBatchResponse{Results: make([]*drlv1.CheckResult, len(m.GetChecks()))}
	answer := func(i int, c *drlv1.CheckRequest) {
		d, err := s.check(ctx, c)
		if err != nil {
			out.Results[i] = &drlv1.CheckResult{Result: &drlv1.CheckResult_Error{Error: wireError(err)}}
			return
		}
		out.Results[i] = decisionResult(d)
	}
	// The checks are independent and may go to different owners: the ones
	// that wait on a peer run side by side, so that the batch takes as long
	// as its slowest; the ones this node decides itself run here, after
	// the others have started (a goroutine costs more than the decision).
	var here []int
	var wg sync.WaitGroup
	for i, c := range m.GetChecks() {
		if s.cfg.DecidesLocally(c.GetUserId(), c.GetAction()) {
			here = append(here, i)
			continue
		}
		wg.Go(func() { answer(i, c) })
	}
	for _, i := range here {
		answer(i, m.GetChecks()[i])
	}
	wg.Wait()
	return out, nil
}

func wireError(err error) *drlv1.Error {
	e := &drlv1.Error{Code: WireCode(err), Message: err.Error()}
	if ae, ok := asArgumentError(err); ok {
		e.Field = ae.Field
	}
	return e
}

func (s *grpcServer) Members(ctx context.Context, _ *drlv1.MembersRequest) (*drlv1.MembersResponse, error) {
	self, members := s.cfg.Directory.Members()
	q := s.cfg.Directory.Quorum()
	out := &drlv1.MembersResponse{Self: self, Quorum: &drlv1.Quorum{Majority: q.Majority, Alive: uint32(q.Alive),
		Size: uint32(q.Size), Failed: q.Failed}}
	for _, m := range members {
		out.Members = append(out.Members, memberToProto(m))
	}
	return out, nil
}

// Forget stops counting a failed member toward the cluster's size.
func (s *grpcServer) Forget(ctx context.Context, m *drlv1.ForgetRequest) (*drlv1.ForgetResponse, error) {
	if s.cfg.Admin == nil {
		return nil, status.Error(codes.Unimplemented, "transport: this node serves no admin calls")
	}
	if err := forget(s.cfg.Admin, m.GetName()); err != nil {
		return nil, GRPCError(err)
	}
	return &drlv1.ForgetResponse{}, nil
}

// forget validates the name and asks admin to forget it.
func forget(admin Admin, name string) error {
	if name == "" {
		return &bucket.ArgumentError{Field: "name", Reason: "empty: name the failed member to forget"}
	}
	return admin.Forget(name)
}

func (s *grpcServer) Owner(ctx context.Context, m *drlv1.OwnerRequest) (*drlv1.OwnerResponse, error) {
	o, err := s.cfg.Directory.OwnerOf(m.GetUserId(), m.GetAction())
	if err != nil {
		return nil, GRPCError(err)
	}
	return &drlv1.OwnerResponse{Owner: memberToProto(o.Member), Partition: int32(o.Partition)}, nil
}

// MemberFromProto is the client side of a member on the wire.
func MemberFromProto(m *drlv1.Member) drl.Member {
	return drl.Member{Name: m.GetName(), GossipAddr: m.GetGossipAddr(), GRPCAddr: m.GetGrpcAddr(),
		HTTPAddr: m.GetHttpAddr(), State: m.GetState(), InRing: m.GetInRing()}
}

// QuorumFromProto is the client side of a node's count of the cluster.
func QuorumFromProto(q *drlv1.Quorum) drl.Quorum {
	return drl.Quorum{Majority: q.GetMajority(), Alive: int(q.GetAlive()), Size: int(q.GetSize()), Failed: q.GetFailed()}
}

func memberToProto(m drl.Member) *drlv1.Member {
	return &drlv1.Member{Name: m.Name, GossipAddr: m.GossipAddr, GrpcAddr: m.GRPCAddr,
		HttpAddr: m.HTTPAddr, State: m.State, InRing: m.InRing}
}
