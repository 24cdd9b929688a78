package peer

import (
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/transport"
)

// batch is the checks bound for one frame. Batches are reused (through
// Client.batches), and so are their entries' waiter slices.
type batch struct {
	entries []batchEntry
	index   map[engine.CheckID]int // entry of each distinct check
	calls   int
	size    int

	// Set when the frame is sent.
	id   uint64
	st   *stream
	sent time.Time
}

type batchEntry struct {
	key     bucket.Key
	req     bucket.Request
	waiters []*call // in arrival order
	lease   int     // leased checks asked for, by leaser
	leaser  *call
}

func newBatch(size int) *batch {
	return &batch{size: size, index: make(map[engine.CheckID]int, min(size, 64))}
}

func (b *batch) full() bool { return len(b.entries) >= b.size }

func (b *batch) add(c *call) {
	b.calls++
	k := engine.IDOf(c.key, c.req)
	if i, ok := b.index[k]; ok && len(b.entries[i].waiters) < transport.DefaultMaxRecvBatch {
		e := &b.entries[i]
		e.waiters = append(e.waiters, c)
		if c.lease > 0 && e.leaser == nil {
			e.lease, e.leaser = c.lease, c
		}
		return
	}
	b.index[k] = len(b.entries)
	n := len(b.entries)
	if n < cap(b.entries) {
		b.entries = b.entries[:n+1] // keep the old entry's waiters array
	} else {
		b.entries = append(b.entries, batchEntry{})
	}
	e := &b.entries[n]
	e.key, e.req, e.waiters = c.key, c.req, append(e.waiters[:0], c)
	e.lease, e.leaser = 0, nil
	if c.lease > 0 {
		e.lease, e.leaser = c.lease, c
	}
}

// reset empties b for reuse, dropping its references to calls, which go
// back to their pool.
func (b *batch) reset() {
	for i := range b.entries {
		clear(b.entries[i].waiters)
		b.entries[i].leaser = nil
	}
	b.entries = b.entries[:0]
	clear(b.index)
	b.calls, b.id, b.st = 0, 0, nil
}
