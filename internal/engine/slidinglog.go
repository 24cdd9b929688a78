package engine

import "time"

// slidingLog keeps one entry per admitting check (hits at one instant share
// an entry) for the last Window, and admits while the entries in
// (now-Window, now] sum to at most Limit. It is the exact reference for
// "Limit per rolling Window"; its memory grows with the admitted calls in a
// window (16 bytes each), up to Limit entries. A, B and C are unused.
type slidingLog struct{}

func (slidingLog) Decide(st *State, lim Limit, now time.Duration, hits int64) Decision {
	t, w := int64(now), int64(lim.Window)
	lg := st.Log
	if lg == nil {
		lg = &Log{}
	}
	lg.expire(t - w)

	want := max(hits, 1)
	allowed := lg.total+want <= lim.Limit
	if allowed && hits > 0 {
		lg.add(t, hits)
	}
	st.Log = lg
	if lg.empty() {
		st.Log = nil
	}

	d := Decision{Allowed: allowed, Limit: lim.Limit, Remaining: max(lim.Limit-lg.total, 0)}
	if !lg.empty() {
		d.ResetAfter = time.Duration(lg.events[len(lg.events)-1].at + w - t)
	}
	if !allowed {
		// Wait until enough of the oldest entries have left the window.
		need := lg.total + want - lim.Limit
		for _, ev := range lg.events[lg.head:] {
			need -= ev.n
			if need <= 0 {
				d.RetryAfter = time.Duration(ev.at + w - t)
				break
			}
		}
	}
	return d
}

// Log is SlidingLog's record of admitted hits, oldest first. The zero value
// is an empty log. It is not safe for concurrent use.
type Log struct {
	events []logEvent // events[head:] are live
	head   int
	total  int64 // sum of n over live events
}

type logEvent struct{ at, n int64 }

func (lg *Log) empty() bool { return lg == nil || lg.total == 0 }

// clone returns a copy of lg's live entries that shares nothing with lg.
func (lg *Log) clone() *Log {
	if lg == nil {
		return nil
	}
	return &Log{events: append([]logEvent(nil), lg.events[lg.head:]...), total: lg.total}
}

// expire drops entries at or before cutoff.
func (lg *Log) expire(cutoff int64) {
	for lg.head < len(lg.events) && lg.events[lg.head].at <= cutoff {
		lg.total -= lg.events[lg.head].n
		lg.head++
	}
	switch {
	case lg.head == len(lg.events):
		lg.events, lg.head = lg.events[:0], 0
	case lg.head > 16 && lg.head*2 > len(lg.events):
		n := copy(lg.events, lg.events[lg.head:])
		lg.events, lg.head = lg.events[:n], 0
	}
}

// add records n hits at t. Entries stay in time order: a clock that went
// backwards records at the newest time seen, which keeps them in the
// window longer, never shorter.
func (lg *Log) add(t, n int64) {
	lg.total += n
	if k := len(lg.events); k > lg.head {
		last := &lg.events[k-1]
		if t <= last.at {
			last.n += n
			return
		}
	}
	lg.events = append(lg.events, logEvent{t, n})
}
