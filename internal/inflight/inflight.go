// Package inflight paces the frames, or calls, that carry batches of
// checks to one destination: at most a fixed number in flight, and while
// any are, a new one leaves beside them only if it carries at least as
// many checks as they do together (or can grow no more). So a lone check
// leaves at once, and so does a second caller's beside a frame of one;
// under load, checks gather behind a large frame and leave together when
// it is answered, instead of trickling out beside it in small ones. No
// timer ever holds a check.
//
// The peer client's sender (internal/peer) and the batching client
// (package client) both pace by it.
package inflight

import (
	"runtime"
	"sync/atomic"
)

// Window is the frames in flight to one destination. Start is for one
// goroutine, the sender; End may be called from any.
type Window struct {
	slots  chan struct{} // one token per frame in flight
	ended  chan struct{} // a frame ended; one wake-up kept
	checks atomic.Int64  // in the frames in flight
}

// New returns a window of at most max frames in flight.
func New(max int) *Window {
	return &Window{slots: make(chan struct{}, max), ended: make(chan struct{}, 1)}
}

// Free reports whether a frame may start as far as the bound goes.
func (w *Window) Free() bool { return len(w.slots) < cap(w.slots) }

// Start takes a slot for a frame of n checks, if one is free and nothing
// is in flight, or the frame is full, or those in flight carry at most n
// checks; it reports whether it did.
func (w *Window) Start(n int, full bool) bool {
	if !full && len(w.slots) > 0 && w.checks.Load() > int64(n) {
		return false
	}
	select {
	case w.slots <- struct{}{}:
		w.checks.Add(int64(n))
		return true
	default:
		return false
	}
}

// End frees the slot of a frame of n checks, once it is answered, and
// wakes the sender if it waits (Wait).
func (w *Window) End(n int) {
	w.checks.Add(-int64(n))
	<-w.slots
	select {
	case w.ended <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// Wait blocks the sender until it should try Start again: with a slot free
// and room in its frame, until a check arrives on queue (returned, with
// ok) or a frame ends; otherwise until a frame ends. After an end it
// yields once: the answer that freed the slot has just woken its callers,
// whose next checks are bound here too, so that they join this frame
// rather than the next (gRPC's loopy writer yields before a small flush
// for the same reason).
func Wait[T any](w *Window, queue <-chan T, room bool) (c T, ok bool) {
	if room && w.Free() {
		select {
		case c = <-queue:
			return c, true
		case <-w.ended:
		}
	} else {
		<-w.ended
	}
	runtime.Gosched()
	return c, false
}

// Drain waits until every frame in flight has ended, and keeps every slot:
// for a sender that stops.
func (w *Window) Drain() {
	for range cap(w.slots) {
		w.slots <- struct{}{}
	}
}
