package middleware

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/drlimit/drl"
)

// GRPCKeyFunc names the caller of an RPC. An error fails the RPC: with its
// own status if it is a gRPC status error, else InvalidArgument.
type GRPCKeyFunc func(ctx context.Context, fullMethod string) (string, error)

// GRPCKeyByPeer keys by the caller's IP address.
func GRPCKeyByPeer(ctx context.Context, _ string) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "", fmt.Errorf("%w: no peer address", ErrNoKey)
	}
	addr := p.Addr.String()
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		addr = strings.Trim(addr[:i], "[]")
	}
	return addr, nil
}

// GRPCKeyByMetadata keys by a request metadata entry, such as "x-api-key".
func GRPCKeyByMetadata(name string) GRPCKeyFunc {
	return func(ctx context.Context, _ string) (string, error) {
		if v := metadata.ValueFromIncomingContext(ctx, name); len(v) > 0 && v[0] != "" {
			return v[0], nil
		}
		return "", fmt.Errorf("%w: no %s metadata", ErrNoKey, name)
	}
}

// GRPCConfig configures the gRPC interceptors. Limiter and at least one of
// Methods and Default are required.
type GRPCConfig struct {
	Limiter drl.Limiter
	// Key names the caller; default GRPCKeyByPeer.
	Key GRPCKeyFunc
	// Methods maps a full method ("/pkg.Service/Method") or a service
	// ("/pkg.Service/") to its rule; a method's own rule wins.
	Methods map[string]Rule
	// Default applies to the other methods; nil leaves them unlimited.
	Default *Rule
	// Headers picks the quota fields sent as response metadata (in lower
	// case, as gRPC wants); default HeadersDraft.
	Headers HeaderStyle
	// OnError decides a call when the cluster gives no answer. Default:
	// log and allow.
	OnError func(ctx context.Context, fullMethod string, err error) (allow bool)
}

// interceptor is the part the unary and stream forms share.
type interceptor struct{ cfg GRPCConfig }

func newInterceptor(cfg GRPCConfig) (*interceptor, error) {
	if cfg.Limiter == nil {
		return nil, fmt.Errorf("%w: no Limiter", ErrConfig)
	}
	if len(cfg.Methods) == 0 && cfg.Default == nil {
		return nil, fmt.Errorf("%w: no Methods and no Default: nothing would be limited", ErrConfig)
	}
	for m, rule := range cfg.Methods {
		if !strings.HasPrefix(m, "/") || strings.Count(m, "/") != 2 {
			return nil, fmt.Errorf("%w: method %q: want /pkg.Service/Method or /pkg.Service/", ErrConfig, m)
		}
		if err := rule.validate("method " + m); err != nil {
			return nil, err
		}
	}
	if cfg.Default != nil {
		if err := cfg.Default.validate("Default"); err != nil {
			return nil, err
		}
	}
	if cfg.Key == nil {
		cfg.Key = GRPCKeyByPeer
	}
	if cfg.OnError == nil {
		cfg.OnError = func(_ context.Context, method string, err error) bool {
			slog.Warn("rate limiter gave no answer; allowing", "method", method, "err", err)
			return true
		}
	}
	return &interceptor{cfg}, nil
}

// admit decides one call and sends the quota metadata; a denial is a
// ResourceExhausted status with RetryInfo and QuotaFailure details.
func (in *interceptor) admit(ctx context.Context, method string) error {
	rule, ok := in.cfg.Methods[method]
	if !ok {
		rule, ok = in.cfg.Methods[method[:strings.LastIndexByte(method, '/')+1]]
	}
	if !ok {
		if in.cfg.Default == nil {
			return nil
		}
		rule = *in.cfg.Default
	}
	user, err := key(in.cfg.Key(ctx, method))
	if err != nil {
		if _, isStatus := status.FromError(err); isStatus {
			return err
		}
		return status.Error(codes.InvalidArgument, err.Error())
	}
	v, err := decide(ctx, in.cfg.Limiter, &rule, user)
	if err != nil {
		if in.cfg.OnError(ctx, method, err) {
			return nil
		}
		return status.Error(codes.Unavailable, "rate limiter unavailable")
	}
	md := metadata.MD{}
	for _, f := range v.fields(in.cfg.Headers) {
		md.Set(f[0], f[1])
	}
	if len(md) > 0 {
		// Fails only after headers went out, which cannot have happened
		// before the handler ran.
		grpc.SetHeader(ctx, md)
	}
	if v.allowed {
		return nil
	}
	st := status.New(codes.ResourceExhausted, fmt.Sprintf("rate limit exceeded for %s; retry in %v", method, v.retryAfter()))
	quota := &errdetails.QuotaFailure{}
	for i, d := range v.ds {
		if !d.Allowed {
			quota.Violations = append(quota.Violations, &errdetails.QuotaFailure_Violation{
				Subject: v.limits[i].Name, Description: fmt.Sprintf("%d per %v", v.limits[i].Limit, v.limits[i].Window)})
		}
	}
	if withDetails, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(v.retryAfter())}, quota); err == nil {
		st = withDetails
	}
	return st.Err()
}

// UnaryServerInterceptor rate-limits unary RPCs.
func UnaryServerInterceptor(cfg GRPCConfig) (grpc.UnaryServerInterceptor, error) {
	in, err := newInterceptor(cfg)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := in.admit(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}, nil
}

// StreamServerInterceptor rate-limits the opening of streams: one hit per
// stream, however many messages it carries.
func StreamServerInterceptor(cfg GRPCConfig) (grpc.StreamServerInterceptor, error) {
	in, err := newInterceptor(cfg)
	if err != nil {
		return nil, err
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := in.admit(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}, nil
}
