package hotkeys

import (
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// LastAnswers remembers, on a node that forwards checks, how much each
// check's bucket had left when its owner last answered. When the owner
// later cannot be reached, the local fail policy starts its provisional
// bucket from that share instead of a fresh one: a key its owner had
// exhausted stays exhausted through the outage. Unlike the deny cache it
// outlives ring changes: what the owner said stays an upper bound of what
// was left, whoever owns the key next.
type LastAnswers struct {
	clock bucket.Clock
	t     *Table[engine.CheckID, lastAnswer]
}

// lastPerShard bounds the table: ~64k buckets per node (176 B each, 11.5 MB
// at most: BenchmarkLastAnswersFull); beyond that a new answer replaces a
// lapsed one or a random one, whose key falls back to a fresh share.
const lastPerShard = 4096

type lastAnswer struct {
	remaining int64
	until     time.Duration // when the answer says nothing any more: a window after it
}

// NewLastAnswers returns an empty table that reads time from clock.
func NewLastAnswers(clock bucket.Clock) *LastAnswers {
	return &LastAnswers{clock: clock, t: NewTable[engine.CheckID, lastAnswer](lastPerShard, checkShard)}
}

// Store remembers what the owner answered to a check sent at sentAt, for a
// window: later the bucket has refilled (all but strict_window's last
// slot), so the answer would only deny more than needed.
func (l *LastAnswers) Store(key bucket.Key, req bucket.Request, d bucket.Decision, sentAt time.Duration) {
	k := shapeID(key, req)
	a := lastAnswer{remaining: d.Remaining, until: sentAt + req.Window}
	sh := l.t.Lock(k)
	defer sh.Unlock()
	// sentAt stands for now (it is moments earlier, so an entry is stale a
	// little later): the forward read the clock already.
	sh.Put(k, a, func(_ engine.CheckID, e lastAnswer) bool { return sentAt >= e.until })
}

// Remaining returns what the owner last said was left for the check, if
// it said so within the last window.
func (l *LastAnswers) Remaining(key bucket.Key, req bucket.Request) (int64, bool) {
	k := shapeID(key, req)
	now := l.clock.Now()
	sh := l.t.Lock(k)
	defer sh.Unlock()
	e, ok := sh.Get(k)
	if !ok || now >= e.until {
		return 0, false
	}
	return e.remaining, true
}

// Forget drops what is known of key, after a reset.
func (l *LastAnswers) Forget(key bucket.Key) {
	l.t.DeleteIf(key.Lo, func(k engine.CheckID) bool { return k.Key == key })
}

// shapeID names a bucket, whatever the hits of the check that asked.
func shapeID(key bucket.Key, req bucket.Request) engine.CheckID {
	req.Hits, req.DryRun = 0, false
	return engine.IDOf(key, req)
}
