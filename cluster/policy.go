package cluster

import (
	"fmt"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/ownership"
)

// fallback answers a check whose owner could not be reached (cause); the
// check was first routed on the view routed.
func (n *Node) fallback(req bucket.Request, policy drl.FailPolicy, cause error, routed *view) (bucket.Decision, error) {
	if policy == drl.FailDefault {
		policy = n.cfg.FailPolicy
	}
	n.log.Debug("owner unreachable; fail policy decides", "policy", policy, "err", cause)
	whole := ownership.Capacity(req)
	switch policy {
	case drl.FailOpen:
		n.stats.fallbackOpen.Add(1)
		return bucket.Decision{Allowed: true, Limit: whole, Remaining: max(whole-req.Hits, 0)}, nil
	case drl.FailClosed:
		n.stats.fallbackClosed.Add(1)
		// Nothing can be known about when the owner returns; suggest the
		// time one token takes, at most a second.
		retry := min(req.Window/time.Duration(req.Limit), time.Second)
		return bucket.Decision{Limit: whole, RetryAfter: max(retry, time.Millisecond)}, nil
	}
	n.stats.fallbackLocal.Add(1)
	v := n.own.view.Load()
	if v.Ring.Len() == 0 || n.life.closed.Load() {
		// A node that has not seen its cluster yet cannot size a share of
		// it (a share of one would be the whole limit), and one that is
		// leaving has handed its buckets away: both deny.
		return bucket.Decision{Limit: whole, RetryAfter: time.Second}, nil
	}
	if v != routed && v.Quorum.OK() {
		// Ownership moved while the check waited: its key may have been
		// taken over, or handed over, with what this node lent itself
		// for it already counted there. A share now would be lent past
		// that count; deny, and let the retry find the new owner.
		return bucket.Decision{Limit: whole, RetryAfter: ownership.ReroutePause}, nil
	}
	key := n.hash(req.UserID, req.Action)
	var know ownership.Knowledge
	know.Left, know.Known = n.lastAnswers.Remaining(key, req)
	if v.Ring.Owner(key.Hi) == n.id {
		// The owner itself, without a majority: it knows what is left.
		peek := req
		peek.Hits, peek.DryRun = 0, true
		if own, held, err := n.store.CheckKeyIfHeld(key, peek, 1); err == nil && held {
			left := ownership.Single(own).Remaining
			if know.Known {
				left = min(left, know.Left)
			}
			know = ownership.Knowledge{Left: left, Known: true}
		}
	}
	d, err := n.own.prov.Lend(v.View, key, req, know, v.unsettled(), n.cfg.Clock.Now())
	if err != nil {
		return bucket.Decision{}, fmt.Errorf("%w (and the local fallback failed: %w)", cause, err)
	}
	return d, nil
}
