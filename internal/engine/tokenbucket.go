package engine

import "time"

// tokenBucket refills Limit tokens per Window continuously and holds at
// most Burst. Its state is the bucket's deficit (Burst minus tokens) as an
// exact rational, so refill is never rounded up:
//
//	A: whole tokens missing
//	B: a further B/Window token missing, 0 <= B < Window
//	C: when the deficit was last brought up to date
//
// The zero State is a full bucket. Memory: 24 bytes.
type tokenBucket struct{}

func (tokenBucket) Decide(st *State, lim Limit, now time.Duration, hits int64) Decision {
	w, l, burst := uint64(lim.Window), uint64(lim.Limit), uint64(lim.Burst)
	t := int64(now)

	// deficit in units of 1/Window token.
	var deficit u128
	if st.A != 0 || st.B != 0 {
		if uint64(st.A) > burst { // the limit shrank since the last check
			st.A, st.B = lim.Burst, 0
		}
		deficit = mul(uint64(st.A), w).addU(uint64(st.B))
		if t > st.C {
			deficit = deficit.sub(mul(uint64(t-st.C), l))
			st.C = t
		}
	} else {
		st.C = t
	}

	capacity := mul(burst, w)
	want := hits
	if want == 0 {
		want = 1
	}
	after := deficit.add(mul(uint64(want), w))
	allowed := after.cmp(capacity) <= 0
	if allowed && hits > 0 {
		deficit = after
	}
	st.setDeficit(deficit, w)

	d := Decision{Allowed: allowed, Limit: lim.Burst, Remaining: lim.Burst - st.A}
	if st.B > 0 {
		d.Remaining--
	}
	if !deficit.isZero() {
		// The deficit drains at Limit units per nanosecond from st.C.
		d.ResetAfter = time.Duration(st.C + deficit.ceilDiv(l) - t)
	}
	if !allowed {
		d.RetryAfter = time.Duration(st.C + after.sub(capacity).ceilDiv(l) - t)
	}
	return d
}

// setDeficit stores deficit (in 1/w token units) into st, normalising a
// zero deficit to the zero State so that a full bucket can be dropped.
func (st *State) setDeficit(deficit u128, w uint64) {
	if deficit.isZero() {
		*st = State{}
		return
	}
	q, r, _ := deficit.div(w) // deficit <= Burst*Window, so q <= Burst
	st.A, st.B = int64(q), int64(r)
}

func (x u128) isZero() bool { return x.hi == 0 && x.lo == 0 }
