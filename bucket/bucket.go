package bucket

import (
	"time"

	"github.com/drlimit/drl/internal/engine"
)

// The engine is implemented in internal/engine, which also serves the
// cluster's handoff operations (fencing, moving buckets between nodes,
// snapshots). This package is its public face: the value types are
// aliases, so a bucket.Request is the engine's own and crosses into it
// for free, and Store exposes only the methods an embedding application
// calls.

// Request is one check: spend Hits from the bucket of (UserID, Action).
//
// UserID and Action are each 1 to MaxKeyLen bytes of valid UTF-8. Limit
// (1 to MaxLimit) is how many hits each Window admits; Window lies within
// the store's window range (1 s to 1 h unless configured otherwise).
// Burst is the capacity of TokenBucket and GCRA, 0 meaning Limit; the
// window algorithms take only 0 or Limit. Hits is the cost, 0 to the
// bucket's capacity, and 0 spends nothing and reports whether one more hit
// would pass. Algorithm picks the algorithm (the zero value is
// StrictWindow). DryRun spends nothing: the decision says whether Hits
// would pass now, and Remaining and ResetAfter describe the bucket as it
// stands.
type Request = engine.Request

// Decision is the answer to one check. Being over the limit is a Decision
// with Allowed false, not an error.
//
// Allowed reports whether the hits were admitted (and spent); for a check
// of 0 hits, whether one more would be. Limit is the bucket's capacity.
// Remaining, in [0, Limit], is how many more hits would be admitted now.
// ResetAfter is the time until the bucket is full again if no more hits
// arrive, and RetryAfter, when Allowed is false, the shortest wait after
// which the same check would be admitted. Shadowed is set by a node that
// ran the check in shadow mode and admitted it although it was over the
// limit. DecidedBy, and FallbackReason when the fail policy decided, are
// set by a node to say what decided the check; an engine leaves them zero.
type Decision = engine.Decision

// Algorithm names one of the rate-limit algorithms: StrictWindow (the
// zero value and the default), TokenBucket, GCRA, SlidingWindow,
// FixedWindow and SlidingLog. Its String method gives the wire name
// ("strict_window"), which ParseAlgorithm reads back; Known reports
// whether it is a declared algorithm; Engine returns its state machine.
// The numeric values are this build's own, never part of a public
// protocol.
type Algorithm = engine.Algorithm

// The algorithms.
const (
	// StrictWindow never admits more than Limit hits in any rolling window
	// of length Window, whatever their spacing: an exact upper bound, O(1),
	// 24 bytes of state. It may deny a little more than an exact limiter
	// would: a hit may be held up to Window/(K-1) after it has left the
	// window (K = 37 slots for 5 per window, 16 for 100, 7 for 10⁹), and
	// from limits of 16,384 on, older hits count in units of about
	// 1/4096 of the limit, rounded up. The default.
	StrictWindow = engine.StrictWindow
	// TokenBucket holds Burst tokens and refills Limit tokens per Window,
	// continuously: smooth, exact about what it promises, 24 bytes of
	// state. A rolling window can see Burst plus the Limit that refills
	// during it (up to 2×Limit with the default Burst).
	TokenBucket = engine.TokenBucket
	// GCRA is the virtual-scheduling form of the leaky bucket. It admits
	// exactly what TokenBucket admits, from one timestamp of state.
	GCRA = engine.GCRA
	// SlidingWindow weighs the previous fixed window's count by how much of
	// it still overlaps the rolling window. Approximate, 24 bytes of state.
	SlidingWindow = engine.SlidingWindow
	// FixedWindow counts hits in consecutive windows that start at a key's
	// first hit. Up to 2×Limit can pass across a window edge.
	FixedWindow = engine.FixedWindow
	// SlidingLog remembers every admitted hit for one Window. Exact, but its
	// memory grows with the number of admitted calls in a window.
	SlidingLog = engine.SlidingLog
)

// Algorithms lists every algorithm, in declaration order.
func Algorithms() []Algorithm { return engine.Algorithms() }

// ParseAlgorithm returns the algorithm with the given wire name. The empty
// string means StrictWindow, the default. An unknown name is an
// ErrInvalidArgument.
func ParseAlgorithm(name string) (Algorithm, error) { return engine.ParseAlgorithm(name) }

// Engine is one rate-limit algorithm as a pure state machine, for callers
// that keep their own state:
//
//	Decide(st *State, lim Limit, now time.Duration, hits int64) Decision
//
// Decide spends hits at time now from the bucket whose state is *st and
// updates *st in place. hits == 0 spends nothing and reports whether one
// more hit would pass. now is a monotonic reading; it may go backwards
// between calls, which never refills a bucket. The zero State is a fresh,
// full bucket, and every engine leaves *st equal to State{} (with an empty
// Log) exactly when the bucket is fresh again. Decide does no I/O and is
// not safe for concurrent use on one State.
type Engine = engine.Engine

// State is one key's bucket for an Engine: three numbers whose meaning
// depends on the algorithm, and SlidingLog's Log. The zero value is a
// fresh bucket for every algorithm.
type State = engine.State

// Log is SlidingLog's record of admitted hits. The zero value is an empty
// log. It is not safe for concurrent use.
type Log = engine.Log

// Limit is the validated shape of one bucket, as an Engine takes it:
// Limit hits per Window, and Burst, the capacity (equal to Limit for the
// window algorithms).
type Limit = engine.Limit

// Hard bounds on a request, whatever the configuration.
const (
	// MaxKeyLen is the longest UserID or Action, in bytes.
	MaxKeyLen = 256
	// MaxLimit is the largest Limit or Burst.
	MaxLimit = 1_000_000_000_000
	// HardMaxWindow is the longest window a store may be configured for.
	HardMaxWindow = 366 * 24 * time.Hour
)

// ValidateWithin checks req as a store with the window range
// [minWindow, maxWindow] would, for callers that validate limits before
// any store sees them (a rules file at start-up, say).
func ValidateWithin(req Request, minWindow, maxWindow time.Duration) error {
	return engine.ValidateWithin(req, minWindow, maxWindow)
}

// ValidateIDs checks a user id and an action as Check does, for callers
// that need a key's place before they have a whole request.
func ValidateIDs(userID, action string) error { return engine.ValidateIDs(userID, action) }

// ErrInvalidArgument is matched (errors.Is) by every error that reports
// bad input. Use errors.As with *ArgumentError to learn which field.
var ErrInvalidArgument = engine.ErrInvalidArgument

// ErrClosed is returned by a Store's methods after Close.
var ErrClosed = engine.ErrClosed

// ArgumentError names the request field that failed validation (Field,
// its wire name, such as "user_id" or "window") and why (Reason). It
// matches ErrInvalidArgument.
type ArgumentError = engine.ArgumentError

// Key identifies a bucket by a 128-bit hash of (userID, action); a Store's
// Key method computes it. The store keeps only the hash, never the
// strings. Two different (userID, action) pairs share a bucket only if all
// 125 bits collide (three bits name the algorithm).
type Key = engine.Key

// KeyHasher maps (userID, action) to a Key. It must be deterministic for
// the life of a store, and the same on every node that hands keys to
// another. The parts must be length-prefixed or hashed separately so that
// ("a_b", "c") and ("a", "b_c") differ.
type KeyHasher = engine.KeyHasher

// NewKeyHasher returns a KeyHasher built on hash/maphash with random
// seeds: fast, and private to this process.
func NewKeyHasher() KeyHasher { return engine.NewKeyHasher() }

// KeyOf builds a Key from independent 64-bit hashes of the user id and of
// the action, for hashers built on other hash functions.
func KeyOf(userHash, actionHash uint64) Key { return engine.KeyOf(userHash, actionHash) }
