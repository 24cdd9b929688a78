package engine

import "time"

// fixedWindow counts hits in windows of length Window; a key's first hit
// opens its window, and the count drops to zero when the window ends.
//
//	A: when the current window opened
//	B: hits admitted in it
//
// The zero State (no hits) is fresh. Memory: 16 bytes. Across a window
// edge up to 2×Limit hits can pass within one Window.
type fixedWindow struct{}

func (fixedWindow) Decide(st *State, lim Limit, now time.Duration, hits int64) Decision {
	t, w := int64(now), int64(lim.Window)
	if st.B > 0 && t-st.A >= w {
		*st = State{}
	}
	want := max(hits, 1)
	allowed := st.B+want <= lim.Limit
	if allowed && hits > 0 {
		if st.B == 0 {
			st.A = t
		}
		st.B += hits
	}

	d := Decision{Allowed: allowed, Limit: lim.Limit, Remaining: max(lim.Limit-st.B, 0)}
	if st.B > 0 {
		d.ResetAfter = time.Duration(st.A + w - t)
	}
	if !allowed {
		d.RetryAfter = d.ResetAfter
	}
	return d
}
