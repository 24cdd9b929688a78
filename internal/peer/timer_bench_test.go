package peer

import (
	"testing"
	"time"
)

// BenchmarkTimerWait is how long a time.Timer of the old batcher's
// default delay (200 µs) takes to fire on this machine: the reason that
// batcher waited by yielding instead, and one reason the stream's batcher
// waits on no timer at all (docs/adr/0005-streaming-peer-wire.md). ns/op is the wait.
func BenchmarkTimerWait(b *testing.B) {
	for b.Loop() {
		t := time.NewTimer(200 * time.Microsecond)
		<-t.C
	}
}
