package cluster

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/transport"
)

// topDenied finds the keys a node denies most often with the Space-Saving
// algorithm: it counts at most topDeniedSize keys; a denial of a key it
// does not count replaces the least-counted key, inheriting that count as
// its possible overestimate. Any key denied more than total/size times is
// always in the table. Counts halve every topDeniedHalfLife, so the list
// says what is limited lately, not since start.
//
// It lives on the node a check enters through, the only one that knows the
// key's ids (owners hold only hashes), and it never becomes a metric label.
type topDenied struct {
	clock bucket.Clock
	// mu guards everything below. It is taken only on denials.
	mu      sync.Mutex
	entries map[deniedID]*deniedCount
	halved  time.Duration // when counts last halved
}

const (
	topDeniedSize     = 128
	topDeniedHalfLife = time.Minute
)

type deniedID struct{ user, action string }

type deniedCount struct{ n, err uint64 }

func newTopDenied(clock bucket.Clock) *topDenied {
	return &topDenied{clock: clock, entries: make(map[deniedID]*deniedCount, topDeniedSize), halved: clock.Now()}
}

// record counts one denial of (user, action).
func (t *topDenied) record(user, action string) {
	id := deniedID{user, action}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.decay()
	if c := t.entries[id]; c != nil {
		c.n++
		return
	}
	if len(t.entries) < topDeniedSize {
		// The ids are copied: they may point into a request buffer.
		t.entries[deniedID{clone(user), clone(action)}] = &deniedCount{n: 1}
		return
	}
	var minID deniedID
	var minC *deniedCount
	for id, c := range t.entries {
		if minC == nil || c.n < minC.n {
			minID, minC = id, c
		}
	}
	delete(t.entries, minID)
	t.entries[deniedID{clone(user), clone(action)}] = &deniedCount{n: minC.n + 1, err: minC.n}
}

func clone(s string) string { return string([]byte(s)) }

// decay halves every count once per half-life passed. Requires t.mu held.
func (t *topDenied) decay() {
	now := t.clock.Now()
	for now-t.halved >= topDeniedHalfLife {
		t.halved += topDeniedHalfLife
		for id, c := range t.entries {
			c.n /= 2
			c.err /= 2
			if c.n == 0 {
				delete(t.entries, id)
			}
		}
		if len(t.entries) == 0 {
			t.halved = now
		}
	}
}

// top returns the n most-denied keys, most first.
func (t *topDenied) top(n int) []transport.DeniedKey {
	t.mu.Lock()
	t.decay()
	out := make([]transport.DeniedKey, 0, len(t.entries))
	for id, c := range t.entries {
		out = append(out, transport.DeniedKey{UserID: id.user, Action: id.action, Denied: c.n, Error: c.err})
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b transport.DeniedKey) int {
		if c := cmp.Compare(b.Denied, a.Denied); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.Action, b.Action))
	})
	return out[:min(n, len(out))]
}

// forget drops a key, after a reset.
func (t *topDenied) forget(user, action string) {
	t.mu.Lock()
	delete(t.entries, deniedID{user, action})
	t.mu.Unlock()
}
