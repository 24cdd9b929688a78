package cluster

import (
	"fmt"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/transport"
)

// FailPolicy says what a check answers when the key's owner cannot be
// reached in time. Config.FailPolicy sets it per node; CheckWith (and
// the API's fail_policy field) per check.
type FailPolicy = transport.FailPolicy

// The policies.
const (
	// FailDefault means the node's configured policy.
	FailDefault = transport.FailDefault
	// FailLocal, the default, decides on a provisional bucket kept by the
	// node that received the check, with limit (and burst) divided by the
	// cluster size it last saw, until the ring changes. A service stays
	// limited, roughly at its limit, through an owner's outage, instead of
	// refusing everything (FailClosed) or nothing (FailOpen).
	FailLocal = transport.FailLocal
	// FailOpen allows the check.
	FailOpen = transport.FailOpen
	// FailClosed denies the check.
	FailClosed = transport.FailClosed
)

// fallback answers a check whose owner could not be reached (cause).
func (n *Node) fallback(req bucket.Request, policy FailPolicy, cause error) (bucket.Decision, error) {
	if policy == FailDefault {
		policy = n.cfg.FailPolicy
	}
	n.log.Debug("owner unreachable; fail policy decides", "policy", policy, "err", cause)
	capacity := req.Limit
	if req.Burst > 0 {
		capacity = req.Burst
	}
	switch policy {
	case FailOpen:
		n.fallbackOpen.Add(1)
		return bucket.Decision{Allowed: true, Limit: capacity, Remaining: max(capacity-req.Hits, 0)}, nil
	case FailClosed:
		n.fallbackClosed.Add(1)
		// Nothing can be known about when the owner returns; suggest the
		// time one token takes, at most a second.
		retry := min(req.Window/time.Duration(req.Limit), time.Second)
		return bucket.Decision{Limit: capacity, RetryAfter: max(retry, time.Millisecond)}, nil
	}
	n.fallbackLocal.Add(1)
	v := n.view.Load()
	share := int64(max(v.ring.Len(), 1))
	local := req
	local.Limit = max(req.Limit/share, 1)
	if req.Burst > 0 {
		local.Burst = max(req.Burst/share, 1)
	}
	if local.Algorithm != bucket.TokenBucket && local.Algorithm != bucket.GCRA {
		local.Burst = 0
	}
	localCap := local.Limit
	if local.Burst > 0 {
		localCap = local.Burst
	}
	if local.Hits > localCap {
		// More than the provisional bucket can ever hold: deny, as the
		// real owner might well have.
		return bucket.Decision{Limit: localCap, RetryAfter: req.Window}, nil
	}
	d, err := v.fallback.Check(local)
	if err != nil {
		return bucket.Decision{}, fmt.Errorf("%w (and the local fallback failed: %w)", cause, err)
	}
	return d, nil
}
