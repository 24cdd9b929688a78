package engine

import "time"

// gcra is the Generic Cell Rate Algorithm in its virtual-scheduling form.
// Each hit pushes a theoretical arrival time (TAT) forward by the emission
// interval Window/Limit; a check passes when the TAT, pushed, stays within
// Burst intervals of now. The TAT is exact:
//
//	A: whole nanoseconds of the TAT
//	B: a further B/Limit nanosecond, 0 <= B < Limit
//
// The zero State means "no TAT": a full bucket. Memory: 16 bytes. It
// admits exactly what tokenBucket admits; the tests check that.
type gcra struct{}

func (gcra) Decide(st *State, lim Limit, now time.Duration, hits int64) Decision {
	w, l, burst := uint64(lim.Window), uint64(lim.Limit), uint64(lim.Burst)
	t := int64(now)

	// base is max(TAT, now).
	baseA, baseB := t, int64(0)
	if !st.fresh() && (st.A > t || (st.A == t && st.B > 0)) {
		baseA, baseB = st.A, st.B
	}
	// used measures how far the TAT is ahead of now, in 1/Limit ns.
	used := func(a, b int64) u128 { return mul(uint64(a-t), l).addU(uint64(b)) }
	tolerance := mul(burst, w)

	want := hits
	if want == 0 {
		want = 1
	}
	q, r, _ := mul(uint64(want), w).div(l) // want*w/l <= Burst*Window/Limit, bounded by validation
	nB := uint64(baseB) + r
	nA := baseA + int64(q) + int64(nB/l)
	nB %= l
	after := used(nA, int64(nB))
	allowed := after.cmp(tolerance) <= 0
	if allowed && hits > 0 {
		baseA, baseB = nA, int64(nB)
	}
	if baseA == t && baseB == 0 {
		*st = State{}
	} else {
		st.A, st.B = baseA, baseB
	}

	d := Decision{Allowed: allowed, Limit: lim.Burst}
	u := used(baseA, baseB)
	left, _, _ := tolerance.sub(u).div(w)
	d.Remaining = int64(left)
	if !st.fresh() {
		d.ResetAfter = time.Duration(baseA - t)
		if baseB > 0 {
			d.ResetAfter++
		}
	}
	if !allowed {
		d.RetryAfter = time.Duration(after.sub(tolerance).ceilDiv(l))
	}
	return d
}
