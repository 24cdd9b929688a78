package sim

import (
	"container/heap"
	"hash"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/drlimit/drl/bucket"
)

// The world is the simulation's one goroutine: a virtual clock, an event
// queue ordered by time then by sequence, and a trace hash over every
// event that runs.

type event struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	return q[i].at < q[j].at || q[i].at == q[j].at && q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = event{}
	*q = old[:len(old)-1]
	return e
}

type world struct {
	now    time.Duration
	seq    uint64
	queue  eventQueue
	events int
	trace  hash.Hash64
	buf    [8]byte
}

func newWorld() *world {
	return &world{trace: fnv.New64a()}
}

// at runs fn at time t (now if t is earlier).
func (w *world) at(t time.Duration, fn func()) {
	if t < w.now {
		t = w.now
	}
	w.seq++
	heap.Push(&w.queue, event{at: t, seq: w.seq, fn: fn})
}

// after runs fn d from now.
func (w *world) after(d time.Duration, fn func()) { w.at(w.now+d, fn) }

// run runs events until the queue is empty or the next is past end, at
// most maxEvents of them.
func (w *world) run(end time.Duration, maxEvents int) {
	for w.queue.Len() > 0 && w.events < maxEvents {
		if w.queue[0].at > end {
			break
		}
		e := heap.Pop(&w.queue).(event)
		w.now = e.at
		w.events++
		e.fn()
	}
	w.now = end
}

// record adds one event's facts to the trace hash.
func (w *world) record(kind byte, vals ...int64) {
	w.put(int64(w.now))
	w.buf[0] = kind
	w.trace.Write(w.buf[:1])
	for _, v := range vals {
		w.put(v)
	}
}

func (w *world) put(v int64) {
	for i := range 8 {
		w.buf[i] = byte(v >> (8 * i))
	}
	w.trace.Write(w.buf[:])
}

// nodeClock is one node's monotonic clock: the world's time, from an
// offset of its own (skew), running fast or slow by drift parts per
// million. It never goes backwards and never reads below zero.
type nodeClock struct {
	w      *world
	offset time.Duration
	ppm    int64
}

var _ bucket.Clock = (*nodeClock)(nil)

func (c *nodeClock) Now() time.Duration {
	t := int64(c.w.now)
	return c.offset + time.Duration(t+t/1_000_000*c.ppm)
}

// After is never waited on in the simulator: every wait is an event.
// It returns a channel that is closed at once for d <= 0 and never
// otherwise.
func (c *nodeClock) After(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	if d <= 0 {
		close(ch)
	}
	return ch
}

// streams derives independent random streams from one seed, so that
// dropping a fault while shrinking leaves the load's and the network's
// draws as they were.
func stream(seed uint64, id uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, id*0x9e3779b97f4a7c15+1))
}

// Stream ids.
const (
	streamSchedule = iota + 1
	streamNet
	streamGossip
	streamLoad // + key index
)
