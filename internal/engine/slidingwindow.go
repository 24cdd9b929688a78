package engine

import "time"

// slidingWindow estimates the hits in the last Window from two fixed
// windows: the current count plus the previous count weighted by the share
// of the previous window the rolling window still covers.
//
//	A: when the current fixed window opened
//	B: hits admitted in the previous fixed window
//	C: hits admitted in the current fixed window
//
// The comparison is exact (128-bit integer arithmetic). Windows open at a
// key's first hit; the zero State (both counts zero) is fresh. Memory: 24
// bytes. It assumes hits were spread evenly over the previous window, so it
// can over-admit when they were not; DESIGN.md measures by how much.
type slidingWindow struct{}

func (slidingWindow) Decide(st *State, lim Limit, now time.Duration, hits int64) Decision {
	t, w, l := int64(now), int64(lim.Window), lim.Limit
	if !st.fresh() && t-st.A >= w {
		if t-st.A < 2*w {
			st.A, st.B, st.C = st.A+w, st.C, 0
		} else {
			*st = State{}
		}
		if st.B == 0 && st.C == 0 {
			*st = State{}
		}
	}
	// e is how far into the current window now is.
	e := int64(0)
	if !st.fresh() && t > st.A {
		e = t - st.A
	}
	uw := uint64(w)
	// load is the estimate times Window: B*(W-e) + C*W.
	load := mul(uint64(st.B), uint64(w-e)).add(mul(uint64(st.C), uw))
	capacity := mul(uint64(l), uw)

	want := max(hits, 1)
	allowed := load.add(mul(uint64(want), uw)).cmp(capacity) <= 0
	if allowed && hits > 0 {
		if st.fresh() {
			st.A, e = t, 0
		}
		st.C += hits
		load = load.add(mul(uint64(hits), uw))
	}

	d := Decision{Allowed: allowed, Limit: l}
	left, _, _ := capacity.sub(load).div(uw)
	d.Remaining = min(int64(left), l)
	switch {
	case st.C > 0:
		d.ResetAfter = time.Duration(st.A + 2*w - t)
	case st.B > 0:
		d.ResetAfter = time.Duration(st.A + w - t)
	}
	if !allowed {
		d.RetryAfter = time.Duration(slidingRetry(st, w, l, want, e) - t)
	}
	return d
}

// slidingRetry returns the earliest time at which want hits would pass,
// given that they do not pass at offset e into the current window.
func slidingRetry(st *State, w, l, want, e int64) int64 {
	// Still inside the current window: the previous count's weight falls as
	// e grows. We need B*(W-e') <= (L-C-want)*W, so e' >= W - floor(x*W/B).
	if x := l - st.C - want; x >= 0 && st.B > 0 {
		f, _, ok := mul(uint64(x), uint64(w)).div(uint64(st.B))
		if ok && int64(f) > 0 && int64(f) < w {
			return st.A + w - int64(f)
		}
	}
	// In the next window the current count becomes the previous one:
	// C*(W-e'') <= (L-want)*W.
	next := st.A + w
	if st.C == 0 {
		return next
	}
	f, _, ok := mul(uint64(l-want), uint64(w)).div(uint64(st.C))
	if !ok || int64(f) >= w {
		return next
	}
	return next + w - int64(f)
}
