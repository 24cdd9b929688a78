package peer

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl/internal/peerpb"
)

// Without TLS, a member proves that it holds the cluster's gossip key by
// sending, with every call to the Peer service, a proof derived from the
// key: HMAC-SHA256 of a fixed label under the key. The key itself never
// travels, and the proof cannot be turned back into it, so a captured
// proof does not decrypt gossip. It is a bearer, though: anyone who can
// read the traffic between members can replay it, as they can read the
// checks themselves. Where the network between members is not trusted,
// use TLS, whose member certificates make this proof unneeded.

// proofKey is the metadata key that carries the proof.
const proofKey = "drl-peer-proof"

// proofLabel is what the key signs; a new version of the proof gets a new
// label.
const proofLabel = "drl peer API proof v1"

// peerMethods is the prefix of every method of the Peer service.
var peerMethods = "/" + peerpb.Peer_ServiceDesc.ServiceName + "/"

// Keys returns the gossip keys in force, the one that encrypts first, or
// nil when there are none. It is called concurrently, on every call to
// the Peer service, and must not block; the caller does not change the
// slices it returns.
type Keys func() [][]byte

// Proof derives the proof of key that calls to the Peer service carry.
func Proof(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(proofLabel))
	return base64.RawStdEncoding.EncodeToString(m.Sum(nil))
}

// WithKeyProof returns the dial option that makes every call on the
// connection carry the proof of the first of keys (the one that
// encrypts gossip). Calls fail with Unauthenticated when there is none.
func WithKeyProof(keys Keys) grpc.DialOption {
	return grpc.WithPerRPCCredentials(keyProof{keys})
}

type keyProof struct{ keys Keys }

var _ credentials.PerRPCCredentials = keyProof{}

func (p keyProof) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	ks := p.keys()
	if len(ks) == 0 {
		return nil, status.Error(codes.Unauthenticated, "peer: no gossip key to prove membership with")
	}
	return map[string]string{proofKey: Proof(ks[0])}, nil
}

// RequireTransportSecurity is false: the proof is for clusters without
// TLS.
func (keyProof) RequireTransportSecurity() bool { return false }

// RequireKeyProof returns server options that refuse every call to the
// Peer service, unary or streaming, that does not carry the proof of one
// of keys (any of them, so that keys rotate without a split): without a
// proof the call fails Unauthenticated, with a wrong one PermissionDenied.
// Calls to other services pass untouched.
func RequireKeyProof(keys Keys) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if err := checkProof(ctx, keys, info.FullMethod); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if err := checkProof(ss.Context(), keys, info.FullMethod); err != nil {
				return err
			}
			return handler(srv, ss)
		}),
	}
}

func checkProof(ctx context.Context, keys Keys, method string) error {
	if !strings.HasPrefix(method, peerMethods) {
		return nil
	}
	got := metadata.ValueFromIncomingContext(ctx, proofKey)
	if len(got) == 0 {
		return status.Error(codes.Unauthenticated, "peer: not a member: the peer API needs proof of the cluster's gossip key")
	}
	for _, k := range keys() {
		want := Proof(k)
		for _, g := range got {
			if hmac.Equal([]byte(g), []byte(want)) {
				return nil
			}
		}
	}
	return status.Error(codes.PermissionDenied, "peer: not a member: the proof does not match the cluster's gossip key")
}
