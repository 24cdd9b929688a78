// Package peerpb is the generated code of the node-to-node protocol,
// drl_peer.proto: the Peer service (Forward, ForwardStream, Handoff,
// ResetKey) and its messages. Only package peer uses it; it lives under
// internal/ because only members of one cluster, at one version, speak it.
// api/gen.sh regenerates it with api/drlv1, whose Code enum it uses.
package peerpb
