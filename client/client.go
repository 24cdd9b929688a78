// Package client talks to a drl cluster over gRPC, for services that do not
// embed a node. It learns the cluster's ring from a node (WatchRing) and
// sends each check straight to its key's owner, saving the hop a node
// makes to forward a check it does not own (owners.go). Other calls, and
// checks while it has no ring or the owner's connection is down, are
// spread over the node addresses it is given (any node answers any
// check), skipping nodes that are down.
//
//	c, err := client.New([]string{"10.0.0.1:7947", "10.0.0.2:7947"})
//	ok, err := c.RateLimit(ctx, "user-42", "login", 10, time.Minute)
//
// A *Client is a drl.Limiter, as an embedded *cluster.Node is, so the
// middleware package takes either.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/transport"
)

// Client is a connection to a cluster. It is safe for concurrent use.
type Client struct {
	conn   *grpc.ClientConn // round-robin over the nodes given to New
	api    drlv1.RateLimiterClient
	batch  *batcher // on conn; nil without batching
	owners *router  // nil without owner routing
	closed atomic.Bool
}

// schemes are unique per client: a manual resolver is registered with its
// ClientConn only, but its scheme names it.
var schemes atomic.Uint64

// New connects to the nodes at addrs (host:port of their gRPC listeners).
// It sends each check to its key's owner, as the ring it watches on one
// of the nodes says, and balances other calls round-robin among the nodes
// that are up; WithoutOwnerRouting makes every call round-robin. It dials
// lazily: a node that is down now is tried again later. opts are added to
// the defaults (plaintext) and also apply to the connections to owners.
func New(addrs []string, opts ...grpc.DialOption) (*Client, error) {
	return newClient(addrs, nil, opts)
}

// newClient is New, batching checks when b is not nil.
func newClient(addrs []string, b *Batching, opts []grpc.DialOption) (*Client, error) {
	opts, routing := ownerRouting(opts)
	if len(addrs) == 0 {
		return nil, errors.New("client: no node addresses")
	}
	r := manual.NewBuilderWithScheme("drl" + strconv.FormatUint(schemes.Add(1), 10))
	state := resolver.State{}
	for _, a := range addrs {
		// Each node's certificate is checked against its own host, not the
		// shared target's name.
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("client: node address %q: %w", a, err)
		}
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: host})
	}
	r.InitialState(state)
	// Every connection, to the cluster and to each owner, dials the same
	// way; the caller's options come last and win.
	dial := func(extra ...grpc.DialOption) []grpc.DialOption {
		all := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()), transport.CodecDialOption()},
			transport.FlowDialOptions()...)
		return append(append(all, extra...), opts...)
	}
	conn, err := grpc.NewClient(r.Scheme()+":///cluster", dial(
		grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
	)...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{conn: conn, api: drlv1.NewRateLimiterClient(conn)}
	if b != nil {
		c.batch = newBatcher(c.api, *b)
	}
	if routing {
		c.owners = startRouter(c.api, dial(), b)
	}
	return c, nil
}

// Close stops watching the ring and batching, answering queued checks
// with an error, and closes the connections.
func (c *Client) Close() error {
	c.closed.Store(true)
	c.owners.close()
	if c.batch != nil {
		c.batch.close()
	}
	return c.conn.Close()
}

// callError says which call failed and why, as one of drl's sentinels
// where it is one: drl.ErrClosed after Close.
func (c *Client) callError(call string, err error) error {
	if c.closed.Load() {
		return fmt.Errorf("client: %s: %w", call, drl.ErrClosed)
	}
	return fmt.Errorf("client: %s: %w", call, transport.ErrorFromGRPC(err))
}

// RateLimit spends one hit of (userID, action) under limit per window,
// with the default algorithm, and reports whether it was allowed.
func (c *Client) RateLimit(ctx context.Context, userID, action string, limit int64, window time.Duration) (bool, error) {
	d, err := c.Check(ctx, bucket.Request{UserID: userID, Action: action, Limit: limit, Window: window, Hits: 1})
	return d.Allowed, err
}

// Check spends req.Hits and returns the decision.
func (c *Client) Check(ctx context.Context, req bucket.Request) (bucket.Decision, error) {
	return c.CheckWith(ctx, req, drl.CheckOptions{})
}

// CheckWith is Check with a fail policy and shadow mode. Errors match
// bucket.ErrInvalidArgument (with the field at fault), drl.ErrUnavailable
// or, after Close, drl.ErrClosed.
func (c *Client) CheckWith(ctx context.Context, req bucket.Request, opts drl.CheckOptions) (bucket.Decision, error) {
	m := transport.LimitCheckToProto(drl.LimitCheck{Request: req, Options: opts})
	if o := c.owners.owner(req.UserID, req.Action); o != nil {
		r := c.checkOn(ctx, o.api, o.batch, m)
		if r.err == nil || !c.ownerFailed(o, r) {
			return r.d, r.err
		}
	}
	r := c.checkOn(ctx, c.api, c.batch, m)
	return r.d, r.err
}

// ownerFailed reports whether a check sent to o failed for want of o
// rather than by o's decision: the call failed Unavailable (o's connection
// broke, or o is stopping), or o left the client's ring and its
// connection closed under the check. Any node can answer the check
// instead. o has then most likely not spent it; if the connection broke
// after o had, the retry spends the hits a second time, which takes an
// owner that crashes mid-call (and so loses all its counts anyway) or a
// check that outlasts retireAfter.
func (c *Client) ownerFailed(o *member, r checkResult) bool {
	switch {
	case c.closed.Load():
		return false
	case r.call == codes.Unavailable:
		// Whether the connection is still marked up says nothing: it
		// learns of a peer's crash only as this very call fails.
		return true
	}
	return o.retired.Load() && (r.call == codes.Canceled || errors.Is(r.err, drl.ErrClosed))
}

// checkOn sends one check through batch, or through api when batch is nil.
func (c *Client) checkOn(ctx context.Context, api drlv1.RateLimiterClient, batch *batcher, m *drlv1.CheckRequest) checkResult {
	if batch != nil {
		return batch.check(ctx, m)
	}
	resp, err := api.Check(ctx, m)
	if err != nil {
		return checkResult{err: c.callError("check", err), call: status.Code(err)}
	}
	return checkResult{d: transport.DecisionFromProto(resp)}
}

// CheckAll checks several limits as one request: allowed only if all
// admit; a denied request spends nothing (see cluster.Node.CheckAll). It
// goes to any node: its limits may have different owners.
func (c *Client) CheckAll(ctx context.Context, checks []drl.LimitCheck) (drl.MultiDecision, error) {
	m := &drlv1.CheckAllRequest{Limits: make([]*drlv1.CheckRequest, len(checks))}
	for i, ch := range checks {
		m.Limits[i] = transport.LimitCheckToProto(ch)
	}
	resp, err := c.api.CheckAll(ctx, m)
	if err != nil {
		return drl.MultiDecision{}, c.callError("check all", err)
	}
	ds := make([]bucket.Decision, len(resp.GetDecisions()))
	for i, d := range resp.GetDecisions() {
		ds[i] = transport.DecisionFromProto(d)
	}
	return drl.MultiDecision{Allowed: resp.GetAllowed(), Decisions: ds}, nil
}

// Members returns the answering node's view of the cluster: its name, the
// members it sees, and its count of the cluster (whether it sees a
// majority).
func (c *Client) Members(ctx context.Context) (drl.Membership, error) {
	resp, err := c.api.Members(ctx, &drlv1.MembersRequest{})
	if err != nil {
		return drl.Membership{}, c.callError("members", err)
	}
	members := make([]drl.Member, len(resp.GetMembers()))
	for i, m := range resp.GetMembers() {
		members[i] = transport.MemberFromProto(m)
	}
	return drl.Membership{Self: resp.GetSelf(), Members: members, Quorum: transport.QuorumFromProto(resp.GetQuorum())}, nil
}

// Owner returns the member that owns (userID, action) and the key's ring
// partition, as the answering node sees it.
func (c *Client) Owner(ctx context.Context, userID, action string) (drl.Owner, error) {
	resp, err := c.api.Owner(ctx, &drlv1.OwnerRequest{UserId: userID, Action: action})
	if err != nil {
		return drl.Owner{}, c.callError("owner", err)
	}
	return drl.Owner{Member: transport.MemberFromProto(resp.GetOwner()), Partition: int(resp.GetPartition())}, nil
}

// Reset forgives (userID, action) on every member; it returns how many
// live buckets were dropped and which members confirmed.
func (c *Client) Reset(ctx context.Context, userID, action string) (drl.Reset, error) {
	resp, err := c.api.Reset(ctx, &drlv1.ResetRequest{UserId: userID, Action: action})
	if err != nil {
		return drl.Reset{}, c.callError("reset", err)
	}
	return drl.Reset{Dropped: int(resp.GetDropped()), ConfirmedBy: resp.GetMembers()}, nil
}

// Forget asks the node that answers to stop counting the failed member
// called name toward the cluster's size (cluster.Node.Forget). Each node
// counts for itself: ask every member. drl.ErrNotFound if that node counts
// no failed member by that name.
func (c *Client) Forget(ctx context.Context, name string) error {
	if _, err := c.api.Forget(ctx, &drlv1.ForgetRequest{Name: name}); err != nil {
		return c.callError("forget", err)
	}
	return nil
}

// TopDenied returns the answering node's name and the up to n keys it
// denied most often lately. Each node counts the checks that entered
// through it; ask every member for the whole picture.
func (c *Client) TopDenied(ctx context.Context, n int) (drl.TopDenied, error) {
	resp, err := c.api.TopDenied(ctx, &drlv1.TopDeniedRequest{Limit: uint32(n)})
	if err != nil {
		return drl.TopDenied{}, c.callError("top denied", err)
	}
	keys := make([]drl.DeniedKey, len(resp.GetKeys()))
	for i, k := range resp.GetKeys() {
		keys[i] = drl.DeniedKey{UserID: k.GetUserId(), Action: k.GetAction(), Denied: k.GetDenied(), Error: k.GetError()}
	}
	return drl.TopDenied{Node: resp.GetNode(), Keys: keys}, nil
}
