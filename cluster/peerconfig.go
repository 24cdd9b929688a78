package cluster

import (
	"time"

	"google.golang.org/grpc"

	"github.com/drlimit/drl/internal/peer"
)

// PeerConfig configures how a node forwards checks to the members that
// own their keys: one long-lived stream per peer, on which concurrent
// checks travel together in frames. The zero value of every field means
// its default.
type PeerConfig struct {
	// MaxBatch is the most distinct keys in one frame. Default 256, which
	// is also the most a node takes in one; 1 turns batching (and the
	// coalescing of identical checks) off.
	MaxBatch int
	// MaxInFlight bounds the frames in flight to one peer; while that many
	// are, checks queue up and go out together in the next frame, so
	// batches grow with load and an idle peer gets each check at once.
	// Default 2.
	MaxInFlight int
	// RPCTimeout bounds the wait for one frame's answer, and for opening a
	// stream. A peer that answers nothing for so long is taken to be hung
	// or cut off: its stream fails, with every frame still in flight on it.
	// Default 1 s.
	RPCTimeout time.Duration
	// QueueLen is how many checks may wait for a peer's batcher. Default
	// 4096.
	QueueLen int
	// DialOptions are added to the node's own when it dials a peer (a
	// custom dialer, say). TLS comes from Config.TLS, not from here.
	DialOptions []grpc.DialOption
}

// Validate reports the first invalid field of c, after defaults.
func (c PeerConfig) Validate() error { return c.client().Validate() }

// client returns c as the peer package takes it; the node adds its name,
// its counters and its credentials.
func (c PeerConfig) client() peer.ClientConfig {
	return peer.ClientConfig{
		MaxBatch:    c.MaxBatch,
		MaxInFlight: c.MaxInFlight,
		RPCTimeout:  c.RPCTimeout,
		QueueLen:    c.QueueLen,
		DialOptions: c.DialOptions,
	}
}
