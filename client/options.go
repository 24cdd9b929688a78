package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// WithToken sends token as "authorization: Bearer <token>" on every call,
// for nodes started with -auth-token-file.
func WithToken(token string) grpc.DialOption {
	return grpc.WithPerRPCCredentials(bearerToken(token))
}

// WithTLS speaks TLS to the nodes, verifying them with cfg (its RootCAs
// holding the cluster's CA, say).
func WithTLS(cfg *tls.Config) grpc.DialOption {
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg))
}

// WithoutOwnerRouting makes New send every check to any node, round-robin,
// instead of to its key's owner: each node then forwards the checks on
// keys it does not own, a second hop. For comparison, and for nodes that
// predate WatchRing (owner routing falls back to round-robin with them
// anyway).
func WithoutOwnerRouting() grpc.DialOption { return noOwnerRouting{} }

// noOwnerRouting is a client option carried among the dial options, so
// that New keeps its signature; New takes it out before dialing.
type noOwnerRouting struct{ grpc.EmptyDialOption }

// ownerRouting returns opts without the client's own options, and whether
// owner routing is on.
func ownerRouting(opts []grpc.DialOption) ([]grpc.DialOption, bool) {
	on := true
	dial := make([]grpc.DialOption, 0, len(opts))
	for _, o := range opts {
		if _, off := o.(noOwnerRouting); off {
			on = false
			continue
		}
		dial = append(dial, o)
	}
	return dial, on
}

type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity is false so that tests and loopback setups
// may send tokens without TLS; in production, use WithTLS too.
func (bearerToken) RequireTransportSecurity() bool { return false }

// TLSFromFiles builds a client TLS configuration that verifies nodes with
// the CA in caFile and, when certFile and keyFile are given, presents that
// certificate (for nodes that want client certificates).
func TLSFromFiles(caFile, certFile, keyFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("client: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("client: CA %s holds no certificate", caFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client: certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
