// Package ownership is a drl node's ownership protocol as a deterministic
// state machine: which members count toward a majority, which ring a node
// decides on, which keys it gained or took over from failed members and
// how much of their buckets counts as spent, when a ring change has
// settled, and what a node may admit on its own while a key's owner cannot
// be reached.
//
// It does no I/O. It never sleeps or starts a goroutine, and reads no
// clock of its own: time comes in as an argument (a reading of the node's
// monotonic clock), and the bucket stores it works on, its provisional
// state's included, read the bucket.Clock the node injects (a virtual one
// in the simulator). The answers are values (a view to publish, buckets
// to send, a share to spend, a wait) that the node, package cluster,
// carries out. It imports no
// socket, gRPC or gossip package, so its tests and a simulator drive it
// with events alone, the way etcd's raft core is driven by its node.
//
// The parts:
//   - Core (core.go) turns what gossip says of the members into Views: the
//     quorum count and forgetting (quorum.go), the ring, the ring it
//     replaced, the takeovers of failed members' keys (takeover.go), and
//     the handoff "done" marks that settle a change.
//   - View (view.go) is one immutable ring with everything a check needs to
//     route and decide on it.
//   - Provisional (provisional.go) holds what a node lent itself while
//     owners could not be reached: shares that outlive views, and the hits
//     they admitted, which go to the key's owner at the next ring change.
package ownership
