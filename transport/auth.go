package transport

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Tokens is the set of bearer tokens the public API accepts, read from a
// file with one token per line (blank lines and # comments skipped). It
// keeps only the tokens' SHA-256 and compares in constant time. It is safe
// for concurrent use.
type Tokens struct {
	file string

	// mu guards sums.
	mu   sync.RWMutex
	sums [][sha256.Size]byte
}

// ErrTokens is matched by errors reading a token file.
var ErrTokens = errors.New("transport: bad token file")

// LoadTokens reads a token file.
func LoadTokens(file string) (*Tokens, error) {
	t := &Tokens{file: file}
	return t, t.Reload()
}

// Reload reads the file again; on error the tokens in force stay.
func (t *Tokens) Reload() error {
	f, err := os.Open(t.file)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTokens, err)
	}
	defer f.Close()
	var sums [][sha256.Size]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < 16 {
			return fmt.Errorf("%w: %s: a token of %d characters; use at least 16", ErrTokens, t.file, len(line))
		}
		sums = append(sums, sha256.Sum256([]byte(line)))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrTokens, err)
	}
	if len(sums) == 0 {
		return fmt.Errorf("%w: %s holds no token", ErrTokens, t.file)
	}
	t.mu.Lock()
	t.sums = sums
	t.mu.Unlock()
	return nil
}

// Allowed reports whether token is one of the tokens.
func (t *Tokens) Allowed(token string) bool {
	sum := sha256.Sum256([]byte(token))
	t.mu.RLock()
	defer t.mu.RUnlock()
	ok := 0
	for _, s := range t.sums {
		ok |= subtle.ConstantTimeCompare(sum[:], s[:])
	}
	return ok == 1
}

// bearer returns the token of an "Authorization: Bearer <token>" value.
func bearer(v string) (string, bool) {
	const prefix = "bearer "
	if len(v) > len(prefix) && strings.EqualFold(v[:len(prefix)], prefix) {
		return strings.TrimSpace(v[len(prefix):]), true
	}
	return "", false
}

const (
	publicService = "/drl.v1.RateLimiter/"
	peerService   = "/drl.v1.Peer/"
)

// Role is what a bearer token may do on the public API.
type Role int

const (
	// RoleCheck may check limits and read membership and ownership:
	// Check, CheckBatch, CheckAll, Members, Owner, WatchRing, and their
	// HTTP forms.
	RoleCheck Role = iota
	// RoleAdmin may also change or read the node's state: Reset, Forget,
	// TopDenied and /v1/status, and any call not named under RoleCheck.
	RoleAdmin
)

func (r Role) String() string {
	if r == RoleAdmin {
		return "admin"
	}
	return "check"
}

// checkMethods and checkPaths are the calls RoleCheck may make; every
// other call on the public API needs RoleAdmin, so that a call added
// later is an admin call until someone says otherwise.
var (
	checkMethods = map[string]bool{
		publicService + "Check": true, publicService + "CheckBatch": true, publicService + "CheckAll": true,
		publicService + "Members": true, publicService + "Owner": true, publicService + "WatchRing": true,
	}
	checkPaths = map[string]bool{
		"/v1/ratelimit": true, "/v1/ratelimit:batch": true, "/v1/ratelimit:all": true,
		"/v1/members": true, "/v1/owner": true,
	}
)

func methodRole(method string) Role {
	if checkMethods[method] {
		return RoleCheck
	}
	return RoleAdmin
}

func pathRole(path string) Role {
	if checkPaths[path] {
		return RoleCheck
	}
	return RoleAdmin
}

// ErrNoToken and ErrRole are the two refusals of the public API's token
// check: no valid token (gRPC Unauthenticated, HTTP 401), and a valid
// token of a role that may not make the call (PermissionDenied, 403).
var (
	ErrNoToken = errors.New("transport: a valid bearer token is required (authorization: Bearer <token>)")
	ErrRole    = errors.New("transport: the token's role may not make this call")
)

// RoleError is a refusal for want of a role; it matches ErrRole.
type RoleError struct {
	// Call is the gRPC method or HTTP path refused.
	Call string
	// Need is the role the call needs.
	Need Role
	// Configured is false when the node has no token of that role at
	// all, so that nobody may make the call.
	Configured bool
}

func (e *RoleError) Error() string {
	if !e.Configured {
		return fmt.Sprintf("transport: %s needs a token of role %s, and this node has no %s tokens: it serves no %s calls", e.Call, e.Need, e.Need, e.Need)
	}
	return fmt.Sprintf("transport: %s needs a token of role %s; this token may only %s", e.Call, e.Need, RoleCheck)
}

// Is makes a RoleError match ErrRole.
func (e *RoleError) Is(target error) bool { return target == ErrRole }

// allow decides a public call that needs role, given the bearer tokens
// the caller presented: nil, ErrNoToken or a *RoleError. With no tokens
// configured at all, everything is open. Admin tokens may make every call;
// check tokens only RoleCheck's. Without admin tokens but with check
// tokens, admin calls are refused to everyone.
func allow(cfg ServerConfig, call string, need Role, presented []string) error {
	if cfg.Tokens == nil && cfg.AdminTokens == nil {
		return nil
	}
	isAdmin, isCheck := false, false
	for _, tok := range presented {
		isAdmin = isAdmin || cfg.AdminTokens != nil && cfg.AdminTokens.Allowed(tok)
		isCheck = isCheck || cfg.Tokens != nil && cfg.Tokens.Allowed(tok)
	}
	switch {
	case isAdmin:
		return nil
	case need == RoleCheck && (isCheck || cfg.Tokens == nil):
		return nil // checks are open when only admin tokens are set
	case isCheck:
		return &RoleError{Call: call, Need: need, Configured: cfg.AdminTokens != nil}
	}
	return ErrNoToken
}

// ServerOptions returns the gRPC server options that go with cfg: bearer
// tokens on the public API by role (when cfg.Tokens or cfg.AdminTokens is
// set), a verified member certificate on the peer API (when
// cfg.RequireMemberCert), on unary and streaming calls alike, bounds on
// message size and concurrent streams per connection, and the public
// API's generated codec (codec.go).
func ServerOptions(cfg ServerConfig) []grpc.ServerOption {
	cfg = cfg.withDefaults()
	return []grpc.ServerOption{
		grpc.InitialWindowSize(flowWindow), grpc.InitialConnWindowSize(flowWindow), // transport/flow.go
		grpc.ForceServerCodecV2(theCodec),
		grpc.MaxRecvMsgSize(cfg.MaxRecvBytes),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxStreams)),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if err := authorize(ctx, cfg, info.FullMethod); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		// The same checks on streams: WatchRing on the public API, and
		// ForwardStream on the peer API.
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if err := authorize(ss.Context(), cfg, info.FullMethod); err != nil {
				return err
			}
			return handler(srv, ss)
		}),
	}
}

func authorize(ctx context.Context, cfg ServerConfig, method string) error {
	switch {
	case strings.HasPrefix(method, peerService) && cfg.RequireMemberCert:
		p, ok := peer.FromContext(ctx)
		if !ok {
			return status.Error(codes.PermissionDenied, "transport: not a member: no peer information")
		}
		tlsInfo, ok := p.AuthInfo.(credentials.TLSInfo)
		if !ok || len(tlsInfo.State.VerifiedChains) == 0 {
			return status.Error(codes.PermissionDenied, "transport: not a member: the peer API needs a certificate from the cluster's CA")
		}
	case strings.HasPrefix(method, publicService) && (cfg.Tokens != nil || cfg.AdminTokens != nil):
		var presented []string
		for _, v := range metadata.ValueFromIncomingContext(ctx, "authorization") {
			if tok, ok := bearer(v); ok {
				presented = append(presented, tok)
			}
		}
		switch err := allow(cfg, method, methodRole(method), presented); {
		case errors.Is(err, ErrRole):
			return status.Error(codes.PermissionDenied, err.Error())
		case err != nil:
			return status.Error(codes.Unauthenticated, err.Error())
		}
	}
	return nil
}

// requireToken guards the /v1/ endpoints of the HTTP API with cfg's
// tokens, by role.
func requireToken(cfg ServerConfig, next http.Handler) http.Handler {
	if cfg.Tokens == nil && cfg.AdminTokens == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			var presented []string
			if tok, ok := bearer(r.Header.Get("Authorization")); ok {
				presented = append(presented, tok)
			}
			switch err := allow(cfg, r.URL.Path, pathRole(r.URL.Path), presented); {
			case errors.Is(err, ErrRole):
				writeValue(w, http.StatusForbidden, map[string]*errorJSON{"error": {Code: "PERMISSION_DENIED",
					Message: strings.TrimPrefix(err.Error(), "transport: ")}})
				return
			case err != nil:
				w.Header().Set("WWW-Authenticate", `Bearer realm="drl"`)
				writeValue(w, http.StatusUnauthorized, map[string]*errorJSON{"error": {Code: "UNAUTHENTICATED",
					Message: "a valid bearer token is required (Authorization: Bearer <token>)"}})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
