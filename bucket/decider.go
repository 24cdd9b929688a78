package bucket

import "github.com/drlimit/drl/internal/engine"

// DecidedBy names what decided a check, as a node's answer says it
// (Decision.DecidedBy). An engine never sets it: a node does, as it sets
// Decision.Shadowed. Its String method gives the name an answer carries:
// owner, deny_cache, lease or fail_policy, and "" for DecidedByUnknown.
type DecidedBy = engine.DecidedBy

// What decided a check.
const (
	// DecidedByUnknown: nobody said: an engine's own decision, or the
	// answer of a node too old to say.
	DecidedByUnknown = engine.DecidedByUnknown
	// DecidedByOwner: the key's owner, from its bucket.
	DecidedByOwner = engine.DecidedByOwner
	// DecidedByDenyCache: the node that took the check, from a denial the
	// owner gave it moments before for the same bucket, until that
	// denial's RetryAfter passes.
	DecidedByDenyCache = engine.DecidedByDenyCache
	// DecidedByLease: the node that took the check, from hits the owner
	// spent in advance and lent it (a hot key's lease).
	DecidedByLease = engine.DecidedByLease
	// DecidedByFailPolicy: the node that took the check, by its fail
	// policy, because no owner could decide; Decision.FallbackReason says
	// why.
	DecidedByFailPolicy = engine.DecidedByFailPolicy
)

// FallbackReason says why a check was decided by the fail policy
// (Decision.FallbackReason). Its String method gives the name an answer
// carries: no_ring, no_majority, owner_unreachable or leaving, and "" for
// FallbackNone.
type FallbackReason = engine.FallbackReason

// Why the fail policy decided a check.
const (
	// FallbackNone: the check was not decided by the fail policy.
	FallbackNone = engine.FallbackNone
	// FallbackNoRing: the node has not seen its cluster yet (it has not
	// joined anyone), so no member owns the key.
	FallbackNoRing = engine.FallbackNoRing
	// FallbackNoMajority: the node sees no majority of its cluster, so it
	// is no key's authority.
	FallbackNoMajority = engine.FallbackNoMajority
	// FallbackOwnerUnreachable: the key's owner did not answer within the
	// check's deadline, or ownership kept moving until it ended.
	FallbackOwnerUnreachable = engine.FallbackOwnerUnreachable
	// FallbackLeaving: the node is leaving its cluster and could not pass
	// the check on to the key's next owner.
	FallbackLeaving = engine.FallbackLeaving
)
