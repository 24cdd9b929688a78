package engine

import (
	"testing"
	"time"
)

// A ManualClock's After fires when Set or Advance reach its deadline, and
// not before; a wait of zero or less is over at once.
func TestManualClockAfter(t *testing.T) {
	var c ManualClock
	c.Set(time.Hour)
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	if !closed(c.After(0)) || !closed(c.After(-time.Second)) {
		t.Fatal("After(<=0) did not fire at once")
	}
	soon, later := c.After(time.Second), c.After(time.Minute)
	c.Advance(999 * time.Millisecond)
	if closed(soon) || closed(later) {
		t.Fatal("fired before its deadline")
	}
	c.Advance(time.Millisecond)
	if !closed(soon) || closed(later) {
		t.Fatal("after 1 s: want only the 1 s wait over")
	}
	c.Set(2 * time.Hour)
	if !closed(later) {
		t.Fatal("Set past the deadline did not fire it")
	}
}
