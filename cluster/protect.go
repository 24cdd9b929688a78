package cluster

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"google.golang.org/grpc"

	"github.com/drlimit/drl/internal/peer"
	"github.com/drlimit/drl/transport"
)

// ErrUnprotected is matched by the error of Validate and New for a node
// that would listen off loopback with neither GossipKeys nor TLS, and
// without Insecure: anyone who reaches such a node could join its ring,
// take a share of the keys and call the node-to-node API.
var ErrUnprotected = errors.New("cluster: a listener off loopback with neither a gossip key nor TLS")

// UnprotectedError names the first listener that makes a node
// unprotected. It matches ErrUnprotected.
type UnprotectedError struct {
	// Field is the Config field of the listener: GossipAddr, GRPCAddr
	// (or GRPCListener) or HTTPAddr.
	Field string
	// Addr is its address.
	Addr string
}

func (e *UnprotectedError) Error() string {
	return fmt.Sprintf("cluster: %s %s is not a loopback address, and the node has neither GossipKeys nor TLS; set one, or Insecure to accept the risk", e.Field, e.Addr)
}

// Is makes an UnprotectedError match ErrUnprotected.
func (e *UnprotectedError) Is(target error) bool { return target == ErrUnprotected }

// unprotected returns the first listener of c that leaves loopback, or nil,
// when c has neither gossip keys nor TLS. Loopback, where a single machine
// is the whole network, needs neither. A listener handed in ready-made
// (GossipTransport, GRPCListener) is judged by its own address, or not at
// all when it has none to give (an in-memory gossip transport).
func (c Config) unprotected() *UnprotectedError {
	if len(c.GossipKeys) > 0 || c.TLS != nil {
		return nil
	}
	type listener struct{ field, addr string }
	var ls []listener
	if c.GossipTransport == nil {
		ls = append(ls, listener{"GossipAddr", c.GossipAddr})
	}
	if c.GRPCListener != nil {
		ls = append(ls, listener{"GRPCListener", c.GRPCListener.Addr().String()})
	} else {
		ls = append(ls, listener{"GRPCAddr", c.GRPCAddr})
	}
	if c.HTTPAddr != "" {
		ls = append(ls, listener{"HTTPAddr", c.HTTPAddr})
	}
	for _, l := range ls {
		if !isLoopback(l.addr) {
			return &UnprotectedError{Field: l.field, Addr: l.addr}
		}
	}
	return nil
}

// isLoopback reports whether the listen address addr (host:port) binds
// only a loopback interface: an IP in 127.0.0.0/8 or ::1, or the name
// localhost. Any other name counts as off loopback, since what it
// resolves to may change; so does an empty host (every interface), and so
// does an address that does not parse.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	host, _, _ = strings.Cut(host, "%") // an IPv6 zone
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// insecureWarning is the warning an Insecure node that needed it gives at
// start and on its status; "" when it has nothing to warn of.
func (c Config) insecureWarning() string {
	if !c.Insecure {
		return ""
	}
	u := c.unprotected()
	if u == nil {
		return ""
	}
	return fmt.Sprintf("insecure: %s %s is off loopback with neither a gossip key nor TLS; anyone who reaches this node can join its cluster and call the node-to-node API", u.Field, u.Addr)
}

// warnings are what Status shows the operator first: the Insecure
// warning, if any.
func (n *Node) warnings() []string {
	if w := n.cfg.insecureWarning(); w != "" {
		return []string{w}
	}
	return nil
}

// secure applies the node's security to what New builds, before it
// serves: the tokens on serverCfg, the member
// certificate or, without TLS, the proof of the gossip key that the peer
// API requires, and that proof on the node's own peer clients. It returns
// the gRPC server options, transport's included, and logs the Insecure
// warning.
func (n *Node) secure(serverCfg *transport.ServerConfig) []grpc.ServerOption {
	cfg := n.cfg
	serverCfg.Tokens, serverCfg.AdminTokens, serverCfg.RequireMemberCert = cfg.Tokens, cfg.AdminTokens, cfg.TLS != nil
	opts := transport.ServerOptions(*serverCfg)
	if cfg.TLS == nil && len(cfg.GossipKeys) > 0 {
		// The keys in force, rotated by SetGossipKeys; n.gossip is set
		// before the server serves or any peer client is made.
		keys := func() [][]byte { return n.gossip.Keys() }
		opts = append(opts, peer.RequireKeyProof(keys)...)
		n.cfg.Peer.DialOptions = append(slices.Clip(cfg.Peer.DialOptions), peer.WithKeyProof(keys))
	}
	if w := cfg.insecureWarning(); w != "" {
		n.log.Warn(w)
	}
	return opts
}
