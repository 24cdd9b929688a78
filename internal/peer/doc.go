// Package peer is the node-to-node protocol: a Client that forwards
// checks to one owner, batching and coalescing them, the Peer service that
// answers them on the owner's side, and the handoff of buckets when
// ownership moves.
//
// A Client forwards on one long-lived ForwardStream per peer (sender.go):
// each frame is a batch with an id, several frames are in flight at once,
// and checks that arrive while MaxInFlight frames are in flight go out
// together in the next one, so batches grow with load and cost no wait at
// low load. Checks and results travel as fixed-size records in a bytes
// field (record.go), which the owner decodes and answers with reused
// buffers (stream.go). Unary Forward remains for Client.Send.
//
// It is internal because only the members of one cluster speak it, at the
// same version; applications use package client or embed package cluster.
// The owner side is reached through two small interfaces declared here,
// Owner and Receiver, which cluster adapts its Node to.
package peer
