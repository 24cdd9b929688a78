package inflight

import "testing"

// TestStartSizesFramesByTheQueue: a frame leaves at once when nothing is
// in flight; beside frames in flight only if it carries as many checks as
// they do together, or is full; never past the bound.
func TestStartSizesFramesByTheQueue(t *testing.T) {
	w := New(2)
	if !w.Start(1, false) {
		t.Fatal("a lone check waited with nothing in flight")
	}
	if !w.Start(1, false) {
		t.Fatal("a second caller's check waited beside a frame of one")
	}
	if w.Free() || w.Start(500, true) {
		t.Fatal("a third frame started past the bound of 2")
	}
	w.End(1)
	if !w.Free() {
		t.Fatal("no slot free after a frame ended")
	}
	select {
	case <-w.ended:
	default:
		t.Fatal("End woke no one")
	}
	w.End(1)
	if !w.Start(10, false) {
		t.Fatal("a frame of 10 waited with nothing in flight")
	}
	if w.Start(9, false) {
		t.Fatal("a frame of 9 left beside one of 10")
	}
	if !w.Start(9, true) {
		t.Fatal("a full frame waited with a slot free")
	}
	w.End(10)
	w.End(9)
	done := make(chan struct{})
	w.Start(3, false)
	go func() { w.Drain(); close(done) }()
	w.End(3)
	<-done
	if w.Free() {
		t.Error("Drain left a slot free")
	}
}

// Wait hands the sender a queued check while its frame has room and a
// slot is free, and otherwise returns only once a frame has ended.
func TestWaitTakesChecksOrEnds(t *testing.T) {
	w := New(1)
	queue := make(chan int, 1)
	queue <- 7
	if c, ok := Wait(w, queue, true); !ok || c != 7 {
		t.Fatalf("Wait with a slot free and a check queued: %d, %v", c, ok)
	}
	// No slot free: Wait takes no check, even with room in the frame, and
	// returns on a frame's end. The end's wake-up is posted here without
	// freeing the slot, so that no interleaving frees it first; twenty
	// times, since a select that offered the queue too would pick at random.
	w.Start(1, false)
	queue <- 8
	for range 20 {
		w.ended <- struct{}{}
		if _, ok := Wait(w, queue, true); ok {
			t.Fatal("Wait took a check with no slot free instead of waiting for the end")
		}
	}
	if len(queue) != 1 {
		t.Fatal("the queued check was taken with no slot free")
	}
	// A full frame takes no more checks: Wait returns at the end of the
	// frame in flight, however the two goroutines interleave.
	go w.End(1)
	if _, ok := Wait(w, queue, false); ok {
		t.Fatal("Wait took a check into a full frame instead of waiting for the end")
	}
	if len(queue) != 1 {
		t.Fatal("the queued check was taken")
	}
}
