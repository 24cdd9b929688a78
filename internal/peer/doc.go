// Package peer is the node-to-node protocol: a Client that forwards
// checks to one owner, batching and coalescing them, the Peer service that
// answers them on the owner's side, and the handoff of buckets when
// ownership moves.
//
// It is internal because only the members of one cluster speak it, at the
// same version; applications use package client or embed package cluster.
// The owner side is reached through two small interfaces declared here,
// Owner and Receiver, which cluster adapts its Node to.
package peer
