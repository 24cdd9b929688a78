// Package gcfloor paces a process's garbage collector so that the heap may
// grow by at least a fixed amount between collections.
//
// GOGC=100 lets the heap grow by the live heap before the next collection.
// A node with few keys has a small live heap but makes garbage at the rate
// it serves checks (gRPC allocates per call), so it collects many times a
// second for little memory; a node with millions of keys collects rarely,
// and a larger GOGC would only cost it memory. With a floor, the heap goal
// after a collection is about live + max(live, floor): GOGC above 100 while
// the live heap is under the floor, 100 once it is over (DESIGN.md §5).
// GOGC is at most 400, so under a quarter of the floor the goal is five
// times the live heap, or the runtime's smallest (4 MiB × GOGC/100).
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// maxPercent bounds the GOGC set. The runtime's smallest heap goal, 4 MiB
// at GOGC=100, scales with GOGC; this keeps it near a floor of 16 MiB.
const maxPercent = 400

// Percent is the GOGC whose heap goal is live + max(live, floor), within
// [100, 400].
func Percent(live, floor uint64) int {
	if live == 0 || floor >= live*maxPercent/100 {
		return maxPercent
	}
	return max(100, int(floor*100/live))
}

// Start sets GOGC after every collection from the live heap it found,
// until stop, which puts GOGC back as Start found it. Only a process's
// owner should call it: GOGC is the whole process's.
func Start(floor uint64) (stop func()) {
	t := &tuner{floor: floor, samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/gogc:percent"}}}
	metrics.Read(t.samples)
	t.found = int(t.samples[1].Value.Uint64())
	t.cycle()
	return t.stop
}

type tuner struct {
	floor uint64

	mu      sync.Mutex // serializes cycle (the runtime's cleanup goroutine) and stop
	stopped bool
	found   int              // GOGC when Start was called
	samples []metrics.Sample // the live heap, and GOGC now
}

// cycle sets GOGC from the live heap of the last collection and arms a
// sentinel whose cleanup calls cycle again after the next one.
func (t *tuner) cycle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	metrics.Read(t.samples)
	if p := Percent(t.samples[0].Value.Uint64(), t.floor); p != int(t.samples[1].Value.Uint64()) {
		debug.SetGCPercent(p)
	}
	// A pointer makes it an object of its own, not one packed by the tiny
	// allocator with others that may outlive it.
	runtime.AddCleanup(&sentinel{}, (*tuner).cycle, t)
}

type sentinel struct{ _ *byte }

func (t *tuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		debug.SetGCPercent(t.found)
	}
}
