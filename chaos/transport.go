package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrUnreachable is what a dial across a cut link returns.
var ErrUnreachable = errors.New("chaos: no route to host")

// gossipTransport is memberlist's transport for the node self, with its
// outgoing traffic shaped by the network: packets to a node across a cut
// link or lost at random vanish, others arrive late by the link's latency;
// streams are shaped like gRPC's.
type gossipTransport struct {
	memberlist.NodeAwareTransport
	nw   *Network
	self string
}

// GossipTransport returns a memberlist transport for the node named self,
// bound to bind ("127.0.0.1:0" picks a port), shaped by nw.
func (nw *Network) GossipTransport(self, bind string) (memberlist.NodeAwareTransport, string, error) {
	host, port, err := splitHostPort(bind)
	if err != nil {
		return nil, "", err
	}
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port})
	if err != nil {
		return nil, "", fmt.Errorf("chaos: gossip transport on %s: %w", bind, err)
	}
	addr := net.JoinHostPort(host, fmt.Sprint(nt.GetAutoBindPort()))
	return &gossipTransport{NodeAwareTransport: nt, nw: nw, self: self}, addr, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var port int
	_, err = fmt.Sscan(p, &port)
	return host, port, err
}

// sendPacket sends b to addr now, later, or never, as the link says.
func (t *gossipTransport) sendPacket(b []byte, addr string, send func([]byte) (time.Time, error)) (time.Time, error) {
	to := t.nw.nodeAt(addr)
	if to == "" {
		return send(b)
	}
	l, _ := t.nw.link(t.self, to)
	d, lost := t.nw.delay(t.self, to, l)
	switch {
	case l.Cut || lost:
		return time.Now(), nil // gone, as UDP goes
	case d <= 0:
		return send(b)
	}
	late := append([]byte(nil), b...)
	time.AfterFunc(d, func() { send(late) }) // an error means the node stopped meanwhile
	return time.Now(), nil
}

func (t *gossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.sendPacket(b, addr, func(b []byte) (time.Time, error) { return t.NodeAwareTransport.WriteTo(b, addr) })
}

func (t *gossipTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.sendPacket(b, a.Addr, func(b []byte) (time.Time, error) { return t.NodeAwareTransport.WriteToAddress(b, a) })
}

func (t *gossipTransport) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	return t.dial(addr, func() (net.Conn, error) { return t.NodeAwareTransport.DialTimeout(addr, d) })
}

func (t *gossipTransport) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	return t.dial(a.Addr, func() (net.Conn, error) { return t.NodeAwareTransport.DialAddressTimeout(a, d) })
}

func (t *gossipTransport) dial(addr string, dial func() (net.Conn, error)) (net.Conn, error) {
	to := t.nw.nodeAt(addr)
	if to == "" {
		return dial()
	}
	if l, _ := t.nw.link(t.self, to); l.Cut {
		return nil, fmt.Errorf("%w: %s -> %s", ErrUnreachable, t.self, to)
	}
	c, err := dial()
	if err != nil {
		return nil, err
	}
	return shape(c, t.nw, t.self, to), nil
}

// Dialer returns a gRPC context dialer (grpc.WithContextDialer) for the
// node named from: its connections to other nodes are shaped by the
// network, and a dial across a cut link fails.
func (nw *Network) Dialer(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		to := nw.nodeAt(addr)
		if l, _ := nw.link(from, to); to != "" && l.Cut {
			return nil, fmt.Errorf("%w: %s -> %s", ErrUnreachable, from, to)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil || to == "" {
			return c, err
		}
		return shape(c, nw, from, to), nil
	}
}
