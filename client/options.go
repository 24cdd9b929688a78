package client

import (
	"context"
	"crypto/tls"

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

type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity is false so that tests and loopback setups
// may send tokens without TLS; in production, use WithTLS too.
func (bearerToken) RequireTransportSecurity() bool { return false }
