package peer

import (
	"testing"
	"time"
)

// BenchmarkTimerWait is how long a time.Timer of the batcher's default
// delay (200 µs) takes to fire on this machine: the reason the batcher
// waits by yielding instead (DESIGN.md §13). ns/op is the wait.
func BenchmarkTimerWait(b *testing.B) {
	for b.Loop() {
		t := time.NewTimer(DefaultBatchDelay)
		<-t.C
	}
}
