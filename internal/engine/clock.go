package engine

import (
	"sync"
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

// TimerClock is a Clock that can also wait on its own time. Everything
// timed in a node reads one Clock: the buckets, the hot-key tables, and
// the waits of a check while ownership moves, which go through After, so
// that a test with a ManualClock drives all of it. A Clock that is only a
// Clock waits by the process's timers.
type TimerClock interface {
	Clock
	// After returns a channel that is closed once d of the clock's time
	// has passed; at once for d <= 0.
	After(d time.Duration) <-chan struct{}
}

// After returns c.After(d) if c is a TimerClock, and otherwise a channel
// closed once d has passed by the process's clock.
func After(c Clock, d time.Duration) <-chan struct{} {
	if t, ok := c.(TimerClock); ok {
		return t.After(d)
	}
	return after(d)
}

// SystemClock returns a Clock that reads the process's monotonic clock,
// counting from the call. Wall-clock steps (NTP, a changed time zone, a
// leap second) do not move it.
func SystemClock() Clock { return systemClock{origin: time.Now()} }

type systemClock struct{ origin time.Time }

func (c systemClock) Now() time.Duration { return time.Since(c.origin) }

func (systemClock) After(d time.Duration) <-chan struct{} { return after(d) }

// after closes its channel d from now, by the process's clock.
func after(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	if d <= 0 {
		close(ch)
		return ch
	}
	time.AfterFunc(d, func() { close(ch) })
	return ch
}

// ManualClock is a Clock that moves only when told to, for tests. The zero
// value reads 0. It is safe for concurrent use.
type ManualClock struct {
	now atomic.Int64

	// mu guards waiters: the channels of After, with their deadlines.
	mu      sync.Mutex
	waiters []manualWaiter
}

type manualWaiter struct {
	at time.Duration
	ch chan struct{}
}

var (
	_ TimerClock = (*ManualClock)(nil)
	_ TimerClock = systemClock{}
)

// Now returns the clock's current reading.
func (c *ManualClock) Now() time.Duration { return time.Duration(c.now.Load()) }

// After returns a channel that is closed when Set or Advance move the
// clock d past its reading now.
func (c *ManualClock) After(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	c.mu.Lock()
	defer c.mu.Unlock()
	if d <= 0 {
		close(ch)
		return ch
	}
	c.waiters = append(c.waiters, manualWaiter{at: c.Now() + d, ch: ch})
	return ch
}

// Set moves the clock to t, forwards or backwards. t must not be negative.
func (c *ManualClock) Set(t time.Duration) {
	c.now.Store(int64(t))
	c.wake(t)
}

// Advance moves the clock forward by d and returns the new reading.
func (c *ManualClock) Advance(d time.Duration) time.Duration {
	t := time.Duration(c.now.Add(int64(d)))
	c.wake(t)
	return t
}

// wake closes the channels of the waiters due at now.
func (c *ManualClock) wake(now time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if now >= w.at {
			close(w.ch)
		} else {
			keep = append(keep, w)
		}
	}
	clear(c.waiters[len(keep):])
	c.waiters = keep
}
