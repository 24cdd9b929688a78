package cluster

import (
	"fmt"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// fallback answers a check whose owner could not be reached (cause).
func (n *Node) fallback(req bucket.Request, policy drl.FailPolicy, cause error) (bucket.Decision, error) {
	if policy == drl.FailDefault {
		policy = n.cfg.FailPolicy
	}
	n.log.Debug("owner unreachable; fail policy decides", "policy", policy, "err", cause)
	whole := capacity(req)
	switch policy {
	case drl.FailOpen:
		n.fallbackOpen.Add(1)
		return bucket.Decision{Allowed: true, Limit: whole, Remaining: max(whole-req.Hits, 0)}, nil
	case drl.FailClosed:
		n.fallbackClosed.Add(1)
		// Nothing can be known about when the owner returns; suggest the
		// time one token takes, at most a second.
		retry := min(req.Window/time.Duration(req.Limit), time.Second)
		return bucket.Decision{Limit: whole, RetryAfter: max(retry, time.Millisecond)}, nil
	}
	n.fallbackLocal.Add(1)
	v := n.view.Load()
	if v.ring.Len() == 0 || n.closed.Load() {
		// A node that has not seen its cluster yet cannot size a share of
		// it (a share of one would be the whole limit), and one that is
		// leaving has handed its buckets away: both deny.
		return bucket.Decision{Limit: whole, RetryAfter: time.Second}, nil
	}
	share := int64(max(v.quorum.size(), v.ring.Len(), 1))
	local := req
	local.Limit = max(req.Limit/share, 1)
	if req.Burst > 0 {
		local.Burst = max(req.Burst/share, 1)
	}
	if local.Algorithm != bucket.TokenBucket && local.Algorithm != bucket.GCRA {
		local.Burst = 0
	}
	localCap := capacity(local)
	if local.Hits > localCap {
		// More than the provisional bucket can ever hold: deny, as the
		// real owner might well have.
		return bucket.Decision{Limit: localCap, RetryAfter: req.Window}, nil
	}
	key := n.hash(req.UserID, req.Action)
	rep, held, err := v.fallback.CheckKeyIfHeld(key, local, 1)
	if err == nil && !held {
		// A new provisional bucket holds no more than the owner last said
		// was left, in the same share: a key its owner had exhausted stays
		// exhausted. The start is spent up front, once per bucket (Seed).
		start := localCap
		left, known := n.lastAnswers.Remaining(key, req)
		if known {
			start = min(start, left/share)
		}
		if v.ring.Owner(key.Hi) == n.id {
			// The owner itself, without a majority: it knows what is left.
			peek := req
			peek.Hits, peek.DryRun = 0, true
			if own, held, err := n.store.CheckKeyIfHeld(key, peek, 1); err == nil && held {
				start, known = min(start, single(own).Remaining/share), true
			}
		}
		if !known && v.unsettled() {
			// The ring is changing and nothing is known of the key: its
			// bucket is most likely on its way to a new owner, not lost. A
			// fresh share now is the over-admission of a rolling restart.
			return bucket.Decision{Limit: localCap, RetryAfter: reroutePause}, nil
		}
		if spent := localCap - start; spent > 0 {
			_, err = v.fallback.Seed(key, local, spent)
		}
		if err == nil {
			rep, err = v.fallback.CheckKey(key, local, 1)
		}
	}
	if err != nil {
		return bucket.Decision{}, fmt.Errorf("%w (and the local fallback failed: %w)", cause, err)
	}
	return single(rep), nil
}

// capacity is the most a bucket of req's shape holds: its burst, or else
// its limit.
func capacity(req bucket.Request) int64 {
	if req.Burst > 0 {
		return req.Burst
	}
	return req.Limit
}
