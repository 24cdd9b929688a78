package ownership

import (
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/ring"
)

// View is one ring as a node decides on it. It is immutable once Update
// returns it.
type View struct {
	Ring *ring.Ring
	// Members are the ring's members; Departing those leaving gracefully:
	// out of the ring, but peers until they are gone, so that the node
	// waits for their handoff.
	Members, Departing map[string]Member
	// Peers are the members of Members and Departing other than this
	// node, sorted: each must report the ring done before it settles.
	Peers   []string
	Version uint64
	// ID names the ring in handoff done marks (RingID).
	ID uint64
	// Prev is the ring keys were gained against: the ring before this one,
	// or, while that change had not settled, the one before it.
	Prev *ring.Ring
	// Quorum is the cluster's count when the view was built; without a
	// majority the node decides nothing itself.
	Quorum Quorum
	// Takeovers are the recent ring changes that dropped failed members.
	Takeovers []Takeover
	// Restoring: a member that may hold buckets of any key joined in this
	// change (one that started from a snapshot, or that was running before
	// this node started); until it settles, every key held nowhere here
	// waits.
	Restoring bool
	// Healed: the node regained a majority in this change (or in one
	// before it that has not settled). Until it settles, every key it
	// owns waits, held or not: what it holds is from before the split.
	Healed bool
	// At is when the view was built, by the node's clock.
	At time.Duration
}

// Why says why a node cannot route a key: the reason a fail policy
// answers before any owner was asked.
type Why uint8

const (
	// Routed: the key has an owner the node may decide on or forward to.
	Routed Why = iota
	// NoRing: the node has not seen its cluster yet.
	NoRing
	// NoMajority: the node sees no majority and decides nothing.
	NoMajority
)

func (w Why) String() string {
	switch w {
	case NoRing:
		return "no_ring"
	case NoMajority:
		return "no_majority"
	}
	return "routed"
}

// Route returns the owner of key in v, or why the node must not route it:
// with no ring there is no owner, and without a majority the node is no
// key's authority and forwards nothing.
func (v *View) Route(key bucket.Key) (string, Why) {
	owner := v.Ring.Owner(key.Hi)
	switch {
	case owner == "":
		return "", NoRing
	case !v.Quorum.OK():
		return owner, NoMajority
	}
	return owner, Routed
}

// Wait says what a check on a key this node owns in v must wait for before
// it is decided, while v has not settled.
type Wait uint8

const (
	// NoWait: decide at once.
	NoWait Wait = iota
	// WaitIfNotHeld: a key gained in this change, or any key while a
	// restoring member joins: if no live bucket is held here, the real one
	// may be on its way; wait for the handoffs.
	WaitIfNotHeld
	// WaitAlways: the node healed from a split; what it holds predates the
	// majority's decisions, so it waits for the handoffs either way.
	WaitAlways
)

// MustWait says what a check on key, owned by self in v, waits for while v
// is unsettled.
func (v *View) MustWait(key bucket.Key, self string) Wait {
	switch {
	case v.Healed:
		return WaitAlways
	case v.Restoring || v.Prev != nil && v.Prev.Owner(key.Hi) != self:
		return WaitIfNotHeld
	}
	return NoWait
}

// ShareCount is how many shares a provisional bucket splits a key's limit
// into: the cluster's size as this node counts it, at least the ring's.
func (v *View) ShareCount() int64 {
	return int64(max(v.Quorum.Size(), v.Ring.Len(), 1))
}
