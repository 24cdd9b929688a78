package bucket

import (
	"sync/atomic"
	"time"
)

// Clock is a monotonic time source: Now returns the time elapsed since some
// origin of the clock's choosing. Readings are never negative. A Clock is
// safe for concurrent use. Only durations between readings of one Clock
// mean anything, so two nodes' clocks may differ by any offset.
type Clock interface {
	Now() time.Duration
}

// SystemClock returns a Clock that reads the process's monotonic clock,
// counting from the call. Wall-clock steps (NTP, a changed time zone, a
// leap second) do not move it.
func SystemClock() Clock { return systemClock{origin: time.Now()} }

type systemClock struct{ origin time.Time }

func (c systemClock) Now() time.Duration { return time.Since(c.origin) }

// ManualClock is a Clock that moves only when told to, for tests. The zero
// value reads 0. It is safe for concurrent use.
type ManualClock struct {
	now atomic.Int64
}

var _ Clock = (*ManualClock)(nil)

// Now returns the clock's current reading.
func (c *ManualClock) Now() time.Duration { return time.Duration(c.now.Load()) }

// Set moves the clock to t, forwards or backwards. t must not be negative.
func (c *ManualClock) Set(t time.Duration) { c.now.Store(int64(t)) }

// Advance moves the clock forward by d and returns the new reading.
func (c *ManualClock) Advance(d time.Duration) time.Duration {
	return time.Duration(c.now.Add(int64(d)))
}
