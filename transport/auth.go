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

// ServerOptions returns the gRPC server options that go with cfg: bearer
// tokens on the public API (when cfg.Tokens is set), a verified member
// certificate on the peer API (when cfg.RequireMemberCert), on unary and
// streaming calls alike, and bounds on message size and concurrent
// streams per connection.
func ServerOptions(cfg ServerConfig) []grpc.ServerOption {
	cfg = cfg.withDefaults()
	return []grpc.ServerOption{
		grpc.InitialWindowSize(flowWindow), grpc.InitialConnWindowSize(flowWindow), // transport/flow.go
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
	case strings.HasPrefix(method, publicService) && cfg.Tokens != nil:
		for _, v := range metadata.ValueFromIncomingContext(ctx, "authorization") {
			if tok, ok := bearer(v); ok && cfg.Tokens.Allowed(tok) {
				return nil
			}
		}
		return status.Error(codes.Unauthenticated, "transport: a valid bearer token is required (authorization: Bearer <token>)")
	}
	return nil
}

// requireToken guards the /v1/ endpoints of the HTTP API with cfg.Tokens.
func requireToken(cfg ServerConfig, next http.Handler) http.Handler {
	if cfg.Tokens == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			tok, ok := bearer(r.Header.Get("Authorization"))
			if !ok || !cfg.Tokens.Allowed(tok) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="drl"`)
				writeValue(w, http.StatusUnauthorized, map[string]*errorJSON{"error": {Code: "UNAUTHENTICATED",
					Message: "a valid bearer token is required (Authorization: Bearer <token>)"}})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
