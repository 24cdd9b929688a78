// Package transport is the public wire: the RateLimiter gRPC service of
// api/drlv1, its HTTP/JSON mapping, the conversions between its messages
// and bucket's values, and the mapping of errors to gRPC codes, HTTP
// statuses and back to drl's sentinels. Package client speaks it; the
// node-to-node protocol is internal/peer's.
//
// It imports drl and bucket for plain value types and never ring or
// cluster: the node side is reached through drl.Limiter and the small
// interfaces declared here (Directory, Admin).
package transport
