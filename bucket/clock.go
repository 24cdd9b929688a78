package bucket

import (
	"time"

	"github.com/drlimit/drl/internal/engine"
)

// Clock is a monotonic time source: Now returns the time elapsed since some
// origin of the clock's choosing. Readings are never negative. A Clock is
// safe for concurrent use. Only durations between readings of one Clock
// mean anything, so two nodes' clocks may differ by any offset.
//
// Everything timed in a store or a node reads one Clock. A node also waits
// on it while ownership moves: by the clock's own After(d) <-chan struct{}
// method if it has one (ManualClock and SystemClock's do), and otherwise
// by the process's timers.
type Clock = engine.Clock

// SystemClock returns a Clock that reads the process's monotonic clock,
// counting from the call. Wall-clock steps (NTP, a changed time zone, a
// leap second) do not move it.
func SystemClock() Clock { return engine.SystemClock() }

// ManualClock is a Clock that moves only when told to, for tests. The zero
// value reads 0. It is safe for concurrent use.
type ManualClock struct {
	c engine.ManualClock
}

var _ engine.TimerClock = (*ManualClock)(nil)

// Now returns the clock's current reading.
func (c *ManualClock) Now() time.Duration { return c.c.Now() }

// Set moves the clock to t, forwards or backwards. t must not be negative.
func (c *ManualClock) Set(t time.Duration) { c.c.Set(t) }

// Advance moves the clock forward by d and returns the new reading.
func (c *ManualClock) Advance(d time.Duration) time.Duration { return c.c.Advance(d) }

// After returns a channel that is closed when Set or Advance move the
// clock d past its reading now. A node waits on it while ownership moves,
// so a test that drives a node's clock drives those waits too.
func (c *ManualClock) After(d time.Duration) <-chan struct{} { return c.c.After(d) }
