package engine

import (
	"fmt"
	"time"
)

// Algorithm names one of the rate-limit algorithms. The zero value is
// StrictWindow, the default.
//
// The numeric values are this build's own: they name an algorithm inside
// a Key and between nodes of one version, never in a public API, where
// the wire name (String, ParseAlgorithm) is used.
type Algorithm uint8

const (
	// StrictWindow never admits more than Limit hits in any rolling window
	// of length Window, whatever their spacing: an exact upper bound, O(1),
	// 24 bytes of state. It may deny a little more than an exact limiter
	// would: a hit may be held up to Window/(K-1) after it has left the
	// window (K = 37 slots for 5 per window, 16 for 100, 7 for 10⁹), and
	// from limits of 16,384 on, older hits count in units of about
	// 1/4096 of the limit, rounded up. The default.
	StrictWindow Algorithm = iota
	// TokenBucket holds Burst tokens and refills Limit tokens per Window,
	// continuously: smooth, exact about what it promises, 24 bytes of
	// state. A rolling window can see Burst plus the Limit that refills
	// during it (up to 2×Limit with the default Burst).
	TokenBucket
	// GCRA is the virtual-scheduling form of the leaky bucket. It admits
	// exactly what TokenBucket admits, from one timestamp of state.
	GCRA
	// SlidingWindow weighs the previous fixed window's count by how much of
	// it still overlaps the rolling window. Approximate, 24 bytes of state.
	SlidingWindow
	// FixedWindow counts hits in consecutive windows that start at a key's
	// first hit. Up to 2×Limit can pass across a window edge.
	FixedWindow
	// SlidingLog remembers every admitted hit for one Window. Exact, but its
	// memory grows with the number of admitted calls in a window.
	SlidingLog

	numAlgorithms
)

var algorithmNames = [numAlgorithms]string{
	StrictWindow:  "strict_window",
	TokenBucket:   "token_bucket",
	GCRA:          "gcra",
	SlidingWindow: "sliding_window",
	FixedWindow:   "fixed_window",
	SlidingLog:    "sliding_log",
}

// Algorithms lists every algorithm, in declaration order.
func Algorithms() []Algorithm {
	all := make([]Algorithm, numAlgorithms)
	for i := range all {
		all[i] = Algorithm(i)
	}
	return all
}

// String returns the algorithm's wire name, such as "strict_window".
func (a Algorithm) String() string {
	if a < numAlgorithms {
		return algorithmNames[a]
	}
	return fmt.Sprintf("algorithm(%d)", uint8(a))
}

// Known reports whether a is one of the declared algorithms.
func (a Algorithm) Known() bool { return a < numAlgorithms }

// ParseAlgorithm returns the algorithm with the given wire name. The empty
// string means StrictWindow, the default. An unknown name is an
// ErrInvalidArgument.
func ParseAlgorithm(name string) (Algorithm, error) {
	if name == "" {
		return StrictWindow, nil
	}
	for i, n := range algorithmNames {
		if n == name {
			return Algorithm(i), nil
		}
	}
	return 0, invalid("algorithm", "unknown algorithm %q", name)
}

// Engine returns the state machine that implements a.
// It panics if a is not one of the declared algorithms: callers validate
// first (Request.Validate does).
func (a Algorithm) Engine() Engine { return engines[a] }

// decide runs a's engine through a direct call, which lets st stay on the
// caller's stack (an interface call would move it to the heap).
func decide(a Algorithm, st *State, lim Limit, now time.Duration, hits int64) Decision {
	switch a {
	case TokenBucket:
		return tokenBucket{}.Decide(st, lim, now, hits)
	case GCRA:
		return gcra{}.Decide(st, lim, now, hits)
	case SlidingWindow:
		return slidingWindow{}.Decide(st, lim, now, hits)
	case FixedWindow:
		return fixedWindow{}.Decide(st, lim, now, hits)
	case SlidingLog:
		return slidingLog{}.Decide(st, lim, now, hits)
	}
	return strictWindow{}.Decide(st, lim, now, hits)
}

var engines = [numAlgorithms]Engine{
	StrictWindow:  strictWindow{},
	TokenBucket:   tokenBucket{},
	GCRA:          gcra{},
	SlidingWindow: slidingWindow{},
	FixedWindow:   fixedWindow{},
	SlidingLog:    slidingLog{},
}

// Engine is one rate-limit algorithm as a pure state machine.
//
// Decide spends hits at time now from the bucket whose state is *st and
// updates *st in place. hits == 0 spends nothing and reports whether one
// more hit would pass. now is a monotonic reading (time since some origin,
// never negative); it may go backwards between calls, which never refills
// a bucket. The zero State is a fresh, full bucket, and every engine leaves
// *st equal to State{} (with an empty Log) exactly when the bucket is fresh
// again, so a store may drop it. Decide does no I/O and is not safe for
// concurrent use on one State; lim must have passed Request.Validate.
type Engine interface {
	Decide(st *State, lim Limit, now time.Duration, hits int64) Decision
}

var (
	_ Engine = strictWindow{}
	_ Engine = tokenBucket{}
	_ Engine = gcra{}
	_ Engine = slidingWindow{}
	_ Engine = fixedWindow{}
	_ Engine = slidingLog{}
)

// State is one key's bucket. Its meaning depends on the algorithm; the
// zero value is a fresh bucket for all of them.
type State struct {
	A, B, C int64
	// Log holds SlidingLog's admitted hits; nil for the other algorithms.
	Log *Log
}

// fresh reports whether st is a fresh bucket.
func (st *State) fresh() bool {
	return st.A == 0 && st.B == 0 && st.C == 0 && st.Log.empty()
}

// Limit is the validated shape of one bucket.
type Limit struct {
	// Limit is how many hits a Window admits. Always > 0.
	Limit int64
	// Window is the period over which Limit applies. Always > 0.
	Window time.Duration
	// Burst is the bucket's capacity: how many hits may pass at once.
	// It equals Limit for the window algorithms.
	Burst int64
}

// Decision is the answer to one check. Being over the limit is a Decision
// with Allowed false, not an error.
type Decision struct {
	// Allowed reports whether the hits were admitted (and spent). For a
	// check of 0 hits, whether one more hit would be admitted now.
	Allowed bool
	// Limit is the bucket's capacity: Burst for TokenBucket and GCRA,
	// Limit for the others.
	Limit int64
	// Remaining is how many more hits would be admitted right now, in
	// [0, Limit].
	Remaining int64
	// ResetAfter is the time until the bucket is fresh (full) again if no
	// more hits arrive.
	ResetAfter time.Duration
	// RetryAfter is, when Allowed is false, the shortest wait after which
	// the same check would be admitted. Zero when Allowed.
	RetryAfter time.Duration
	// Shadowed is set by a node, never by an engine: the check ran in
	// shadow (dry-run enforcement) mode and was over the limit, so Allowed
	// was turned to true. Remaining and RetryAfter still tell the truth.
	Shadowed bool
	// DecidedBy is set by a node, never by an engine: what decided the
	// check (its owner, the deny cache, a lease or the fail policy).
	DecidedBy DecidedBy
	// FallbackReason is set by a node when DecidedBy is
	// DecidedByFailPolicy: why no owner decided.
	FallbackReason FallbackReason
}
