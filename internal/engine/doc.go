// Package engine is the rate-limit engine: the algorithms and the sharded,
// expiring in-memory store that holds one bucket per (user, action) key.
//
// Package bucket is its public face: it aliases the value types (Request,
// Decision, Algorithm, Clock, ...) and wraps Store with the methods an
// embedding application calls. What only a cluster node needs stays here:
// the fence (SetFence, ErrFenced), checks on a key by its hash (CheckKey,
// CheckKeyIfHeld, Seed), moving buckets between nodes (Extract, Absorb,
// Moved), snapshots (Buckets), CheckID, and TimerClock, the waits of a
// check while ownership moves.
//
// It imports only the standard library. Nothing here reads the wall clock
// inside a decision: every algorithm is a pure state machine over
// (state, now, hits), and the Store takes its time from an injected Clock.
package engine
