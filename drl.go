// Package drl holds the vocabulary shared by every way of asking the
// limiter: an embedded node (package cluster), a remote client (package
// client), the HTTP and gRPC middleware and the Envoy service. It has no
// behaviour of its own; the engine is package bucket, and the wire is
// package transport.
//
// Both *cluster.Node and *client.Client satisfy Limiter:
//
//	var l drl.Limiter = node
//	d, err := l.CheckWith(ctx, bucket.Request{UserID: "u1", Action: "login",
//		Limit: 5, Window: time.Minute, Hits: 1}, drl.CheckOptions{FailPolicy: drl.FailClosed})
package drl

import (
	"context"
	"errors"
	"fmt"

	"github.com/drlimit/drl/bucket"
)

// Limiter answers checks. *cluster.Node, *client.Client and the batching
// client implement it; the middleware, the Envoy service and the public
// gRPC and HTTP servers consume it. It is called concurrently and honours
// ctx.
type Limiter interface {
	// CheckWith spends req.Hits at the key's owner.
	CheckWith(ctx context.Context, req bucket.Request, opts CheckOptions) (bucket.Decision, error)
	// CheckAll checks several limits as one request: allowed only if every
	// one admits, and then every one is spent; denied, none is.
	CheckAll(ctx context.Context, checks []LimitCheck) (MultiDecision, error)
}

// MultiDecision is the answer to a multi-limit check (Limiter.CheckAll).
type MultiDecision struct {
	// Allowed reports whether every limit admitted, and so was spent.
	Allowed bool
	// Decisions holds one decision per limit, in the order of the checks.
	Decisions []bucket.Decision
}

// CheckOptions are the per-check choices beyond the bucket's shape.
type CheckOptions struct {
	// FailPolicy applies when the key's owner cannot be reached in time;
	// FailDefault means the node's.
	FailPolicy FailPolicy
	// Shadow spends as usual but admits a check that is over the limit,
	// marking its decision Shadowed: dry-run enforcement.
	Shadow bool
}

// LimitCheck is one limit of a multi-limit check.
type LimitCheck struct {
	Request bucket.Request
	Options CheckOptions
}

// MaxLimitsPerCheck bounds the limits in one multi-limit check.
const MaxLimitsPerCheck = 16

// FailPolicy says what a check answers when the key's owner cannot be
// reached within the check's deadline.
type FailPolicy uint8

const (
	// FailDefault means the node's configured policy (FailLocal unless
	// configured otherwise).
	FailDefault FailPolicy = iota
	// FailLocal decides on a provisional bucket kept by the node that
	// received the check, holding limit (and burst) divided by the
	// cluster's size, never more than the owner last said was left, kept
	// until the ring changes. A service stays limited, roughly at its
	// limit, through an owner's outage, instead of refusing everything
	// (FailClosed) or nothing (FailOpen).
	FailLocal
	// FailOpen allows the check.
	FailOpen
	// FailClosed denies the check.
	FailClosed
)

var failPolicyNames = []string{FailDefault: "", FailLocal: "local", FailOpen: "open", FailClosed: "closed"}

// String returns the policy's name as ParseFailPolicy reads it, or
// "default" for FailDefault.
func (p FailPolicy) String() string {
	if int(p) < len(failPolicyNames) {
		if p == FailDefault {
			return "default"
		}
		return failPolicyNames[p]
	}
	return fmt.Sprintf("fail_policy(%d)", uint8(p))
}

// ParseFailPolicy reads a policy name: "", "local", "open" or "closed". An
// unknown name is a *bucket.ArgumentError naming the field fail_policy.
func ParseFailPolicy(name string) (FailPolicy, error) {
	for i, n := range failPolicyNames {
		if n == name {
			return FailPolicy(i), nil
		}
	}
	return 0, &bucket.ArgumentError{Field: "fail_policy", Reason: fmt.Sprintf("unknown policy %q: want local, open or closed", name)}
}

// Membership is one node's view of its cluster.
type Membership struct {
	// Self is the name of the node whose view this is.
	Self string
	// Members are the members it sees, itself included.
	Members []Member
	// Quorum is its count of the cluster.
	Quorum Quorum
}

// Owner is the member that owns a key, as one node sees it.
type Owner struct {
	Member Member
	// Partition is the key's ring partition.
	Partition int
}

// Reset is the answer to forgiving a key on every member.
type Reset struct {
	// Dropped is how many live buckets the members dropped.
	Dropped int
	// ConfirmedBy names the members that confirmed the reset.
	ConfirmedBy []string
}

// TopDenied is one node's most-denied keys.
type TopDenied struct {
	// Node is the name of the node that counted them: each counts the
	// checks that entered through it.
	Node string
	// Keys are the keys it denied most often lately, most first.
	Keys []DeniedKey
}

// Member is one member of a cluster as a node sees it.
type Member struct {
	Name       string `json:"name"`
	GossipAddr string `json:"gossip_addr"`
	GRPCAddr   string `json:"grpc_addr"`
	HTTPAddr   string `json:"http_addr"`
	State      string `json:"state"` // alive, failed (crashed, cut off) or left (gracefully)
	InRing     bool   `json:"in_ring"`
}

// Quorum is one node's count of its cluster: the members alive in its
// gossip view, and the size counting also the members that failed (not
// those that left) within forget-failed-after. A node decides checks
// itself only while Majority holds; without it every check gets the fail
// policy.
type Quorum struct {
	Majority bool     `json:"majority"`
	Alive    int      `json:"alive"`
	Size     int      `json:"size"`
	Failed   []string `json:"failed"`
}

// DeniedKey is one entry of a node's most-denied keys: Denied counts its
// denials, an overestimate by at most Error.
type DeniedKey struct {
	UserID string `json:"user_id"`
	Action string `json:"action"`
	Denied uint64 `json:"denied"`
	Error  uint64 `json:"error"`
}

var (
	// ErrClosed is returned by a node's or a client's methods after Close.
	ErrClosed = errors.New("drl: closed")
	// ErrUnavailable means a node or peer could not be reached or failed
	// to answer in time.
	ErrUnavailable = errors.New("drl: unavailable")
	// ErrNoOwner means no member could answer for the key in time: the ring
	// is empty (the node has not joined yet), or the owner stayed
	// unreachable or kept moving. It wraps ErrUnavailable.
	ErrNoOwner = fmt.Errorf("drl: no owner reachable: %w", ErrUnavailable)
	// ErrUnauthenticated means the node wants a valid bearer token.
	ErrUnauthenticated = errors.New("drl: unauthenticated")
	// ErrPermissionDenied means the node refused the caller: the peer API
	// without a member certificate.
	ErrPermissionDenied = errors.New("drl: permission denied")
	// ErrNotFound means an admin call named something that is not there,
	// such as a failed member to forget.
	ErrNotFound = errors.New("drl: not found")
)
