package cluster

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/drlimit/drl/internal/membership"
)

// With TLS on, gossip's word is not enough to enter the ring: a member
// enters this node's ring only once its gRPC endpoint has shown, in a
// handshake, a certificate from the cluster's CA. Without that, a node
// holding only the gossip key would join and own a share of the keys,
// whose checks would then fall back (members cannot reach it over mutual
// TLS). Each member is checked once per address, off the ring loop; a
// failed check is retried every certifyRetry while gossip says it is
// alive.
type certifier struct {
	// mu guards both maps.
	mu     sync.Mutex
	passed map[string]string // member instance -> the gRPC address it passed at
	trying map[string]bool   // checks in flight
}

const (
	certifyTimeout = 2 * time.Second
	certifyRetry   = 2 * time.Second
)

// certified reports whether id passed at addr; if not, it starts a check
// (unless one is running), which asks for a rebuild when it ends.
func (n *Node) certified(id, addr string) bool {
	c := &n.certs
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.passed[id] == addr {
		return true
	}
	if c.trying[id] || n.life.closed.Load() {
		return false
	}
	if c.trying == nil {
		c.trying, c.passed = map[string]bool{}, map[string]string{}
	}
	c.trying[id] = true
	n.life.wg.Go(func() { n.certify(id, addr) })
	return false
}

// certify makes one handshake with the member's gRPC endpoint. Owned by
// n.life.wg.
func (n *Node) certify(id, addr string) {
	ctx, cancel := context.WithTimeout(n.life.stopCtx, certifyTimeout)
	defer cancel()
	err := handshake(ctx, n.cfg.TLS.ClientConfig(), addr)
	if err != nil {
		n.log.Warn("member kept out of the ring: its gRPC endpoint showed no certificate from the cluster's CA",
			"peer", id, "addr", addr, "err", err)
		select { // retry later, unless the node stops
		case <-time.After(certifyRetry):
		case <-n.life.stopCtx.Done():
		}
	}
	c := &n.certs
	c.mu.Lock()
	delete(c.trying, id)
	if err == nil {
		c.passed[id] = addr
	}
	c.mu.Unlock()
	n.signalRebuild()
}

func handshake(ctx context.Context, cfg *tls.Config, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	cfg.ServerName = host
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// forgetCertified drops what it knows of members no longer known, so that
// the maps do not grow with every restart.
func (n *Node) forgetCertified(known map[string]membership.Member) {
	c := &n.certs
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.passed {
		if _, ok := known[id]; !ok {
			delete(c.passed, id)
		}
	}
}
