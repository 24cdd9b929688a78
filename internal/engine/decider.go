package engine

import "strconv"

// DecidedBy names what decided a check, as a node's answer says it. An
// engine never sets it: a node does, as it sets Decision.Shadowed. The
// zero value, DecidedByUnknown, is an engine's own decision, or the answer
// of a node too old to say.
type DecidedBy uint8

const (
	// DecidedByUnknown: nobody said.
	DecidedByUnknown DecidedBy = iota
	// DecidedByOwner: the key's owner, from its bucket.
	DecidedByOwner
	// DecidedByDenyCache: the node that took the check, from a denial the
	// owner gave it moments before for the same bucket, until that
	// denial's RetryAfter passes.
	DecidedByDenyCache
	// DecidedByLease: the node that took the check, from hits the owner
	// spent in advance and lent it (a hot key's lease).
	DecidedByLease
	// DecidedByFailPolicy: the node that took the check, by its fail
	// policy, because no owner could decide; Decision.FallbackReason says
	// why.
	DecidedByFailPolicy
)

var decidedByNames = [...]string{"", "owner", "deny_cache", "lease", "fail_policy"}

// String returns the name an answer gives: owner, deny_cache, lease or
// fail_policy, and "" for DecidedByUnknown.
func (d DecidedBy) String() string {
	if int(d) < len(decidedByNames) {
		return decidedByNames[d]
	}
	return "decided_by(" + strconv.Itoa(int(d)) + ")"
}

// FallbackReason says why a check was decided by the fail policy.
type FallbackReason uint8

const (
	// FallbackNone: the check was not decided by the fail policy.
	FallbackNone FallbackReason = iota
	// FallbackNoRing: the node has not seen its cluster yet (it has not
	// joined anyone), so no member owns the key.
	FallbackNoRing
	// FallbackNoMajority: the node sees no majority of its cluster, so it
	// is no key's authority.
	FallbackNoMajority
	// FallbackOwnerUnreachable: the key's owner did not answer within the
	// check's deadline, or ownership kept moving until it ended.
	FallbackOwnerUnreachable
	// FallbackLeaving: the node is leaving its cluster and could not pass
	// the check on to the key's next owner.
	FallbackLeaving
)

var fallbackReasonNames = [...]string{"", "no_ring", "no_majority", "owner_unreachable", "leaving"}

// String returns the name an answer gives: no_ring, no_majority,
// owner_unreachable or leaving, and "" for FallbackNone.
func (r FallbackReason) String() string {
	if int(r) < len(fallbackReasonNames) {
		return fallbackReasonNames[r]
	}
	return "fallback_reason(" + strconv.Itoa(int(r)) + ")"
}
