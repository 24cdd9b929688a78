// Package transport is the only package that knows the wire: the gRPC
// services and messages of api/drlv1, their HTTP/JSON mapping, status
// codes, and the batching client that forwards checks to a key's owner.
//
// It imports bucket for plain value types and never ring or cluster: the
// node side is reached through the small interfaces declared here
// (Directory, Owner, and drl.Limiter), which cluster.Node implements.
package transport
