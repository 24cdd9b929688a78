package engine

import (
	"math/big"
	"slices"
	"time"
)

// Slow reference models, written for clarity rather than speed: exact
// rationals from math/big and explicit lists of admitted hits. The property
// tests run each engine against its model on random traces.

// model is a reference implementation of one algorithm for one key.
type model interface {
	// decide applies a check at now (non-decreasing across calls) and
	// returns every field of the Decision but RetryAfter.
	decide(now int64, hits int64) Decision
	clone() model
}

func newModel(a Algorithm, lim Limit) model {
	switch a {
	case StrictWindow:
		return newRefStrict(lim)
	case TokenBucket:
		return &refTokenBucket{lim: lim}
	case GCRA:
		return &refGCRA{lim: lim}
	case FixedWindow:
		return &refFixedWindow{lim: lim}
	case SlidingWindow:
		return &refSlidingWindow{lim: lim}
	case SlidingLog:
		return &refSlidingLog{lim: lim}
	}
	panic("no model for " + a.String())
}

// retrySearcher is a model that finds its own RetryAfter.
type retrySearcher interface {
	retryAfter(now, want int64) time.Duration
}

// retryAfter finds, by binary search over later times, the shortest wait
// after which a check of want hits would pass, given no other hits. A
// model whose answer is not monotone in time finds it itself.
func retryAfter(m model, now, want int64, lim Limit) time.Duration {
	if r, ok := m.(retrySearcher); ok {
		return r.retryAfter(now, want)
	}
	lo := now
	hi := now + 3*int64(lim.Window) + int64(lim.Window)*(lim.Burst/lim.Limit+1)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if m.clone().decide(mid, want).Allowed {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return time.Duration(lo - now)
}

func rat(n int64) *big.Rat { return new(big.Rat).SetInt64(n) }

func floorRat(r *big.Rat) int64 {
	q := new(big.Int).Quo(r.Num(), r.Denom()) // truncates; our values are >= 0
	return q.Int64()
}

func ceilRat(r *big.Rat) int64 {
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q.Int64()
}

// refTokenBucket: tokens as an exact rational; a full bucket forgets when
// it was last touched.
type refTokenBucket struct {
	lim    Limit
	tokens *big.Rat // nil: full
	last   int64
}

func (m *refTokenBucket) clone() model {
	c := *m
	if m.tokens != nil {
		c.tokens = new(big.Rat).Set(m.tokens)
	}
	return &c
}

func (m *refTokenBucket) rate() *big.Rat { return big.NewRat(m.lim.Limit, int64(m.lim.Window)) }

func (m *refTokenBucket) decide(now, hits int64) Decision {
	burst := rat(m.lim.Burst)
	if m.tokens != nil && now > m.last {
		m.tokens.Add(m.tokens, new(big.Rat).Mul(rat(now-m.last), m.rate()))
		m.last = now
		if m.tokens.Cmp(burst) >= 0 {
			m.tokens = nil
		}
	}
	cur := burst
	if m.tokens != nil {
		cur = m.tokens
	}
	want := max(hits, 1)
	d := Decision{Allowed: cur.Cmp(rat(want)) >= 0, Limit: m.lim.Burst}
	if d.Allowed && hits > 0 {
		if m.tokens == nil {
			m.last = now
		}
		m.tokens = new(big.Rat).Sub(cur, rat(hits))
		cur = m.tokens
	}
	d.Remaining = floorRat(cur)
	if m.tokens != nil {
		wait := new(big.Rat).Quo(new(big.Rat).Sub(burst, cur), m.rate())
		d.ResetAfter = time.Duration(m.last + ceilRat(wait) - now)
	}
	return d
}

// refGCRA: the theoretical arrival time as an exact rational.
type refGCRA struct {
	lim Limit
	tat *big.Rat // nil: no TAT, a full bucket
}

func (m *refGCRA) clone() model {
	c := *m
	if m.tat != nil {
		c.tat = new(big.Rat).Set(m.tat)
	}
	return &c
}

func (m *refGCRA) decide(now, hits int64) Decision {
	interval := big.NewRat(int64(m.lim.Window), m.lim.Limit)
	tolerance := new(big.Rat).Mul(rat(m.lim.Burst), interval)
	base := rat(now)
	if m.tat != nil && m.tat.Cmp(base) > 0 {
		base = m.tat
	}
	want := max(hits, 1)
	next := new(big.Rat).Add(base, new(big.Rat).Mul(rat(want), interval))
	ahead := new(big.Rat).Sub(next, rat(now))
	d := Decision{Allowed: ahead.Cmp(tolerance) <= 0, Limit: m.lim.Burst}
	m.tat = base
	if d.Allowed && hits > 0 {
		m.tat = next
	}
	used := new(big.Rat).Sub(m.tat, rat(now))
	if used.Sign() <= 0 {
		m.tat, used = nil, rat(0)
	}
	d.Remaining = floorRat(new(big.Rat).Quo(new(big.Rat).Sub(tolerance, used), interval))
	d.ResetAfter = time.Duration(ceilRat(used))
	return d
}

type event struct{ at, n int64 }

func sumEvents(evs []event, from, to int64) int64 { // hits with from <= at < to
	var n int64
	for _, e := range evs {
		if e.at >= from && e.at < to {
			n += e.n
		}
	}
	return n
}

// refFixedWindow: a window opens at the first hit after the last one closed.
type refFixedWindow struct {
	lim    Limit
	events []event
	open   *int64 // start of the open window, if any
}

func (m *refFixedWindow) clone() model {
	c := *m
	c.events = slices.Clone(m.events)
	return &c
}

func (m *refFixedWindow) decide(now, hits int64) Decision {
	w := int64(m.lim.Window)
	if m.open != nil && now >= *m.open+w {
		m.open = nil
	}
	var count int64
	if m.open != nil {
		count = sumEvents(m.events, *m.open, *m.open+w)
	}
	want := max(hits, 1)
	d := Decision{Allowed: count+want <= m.lim.Limit, Limit: m.lim.Limit}
	if d.Allowed && hits > 0 {
		if m.open == nil {
			m.open = &now
		}
		m.events = append(m.events, event{now, hits})
		count += hits
	}
	d.Remaining = m.lim.Limit - count
	if m.open != nil {
		d.ResetAfter = time.Duration(*m.open + w - now)
	}
	return d
}

// refSlidingWindow: the two-window estimate, recomputed from every admitted
// hit.
type refSlidingWindow struct {
	lim    Limit
	events []event
	start  *int64 // start of the current fixed window, if any
}

func (m *refSlidingWindow) clone() model {
	c := *m
	c.events = slices.Clone(m.events)
	if m.start != nil {
		s := *m.start
		c.start = &s
	}
	return &c
}

func (m *refSlidingWindow) decide(now, hits int64) Decision {
	w := int64(m.lim.Window)
	var prev, curr int64
	if m.start != nil {
		for now >= *m.start+w {
			*m.start += w
		}
		prev = sumEvents(m.events, *m.start-w, *m.start)
		curr = sumEvents(m.events, *m.start, *m.start+w)
		if prev == 0 && curr == 0 {
			m.start = nil
		}
	}
	estimate := func() *big.Rat {
		if m.start == nil {
			return rat(0)
		}
		e := now - *m.start
		weight := big.NewRat(w-e, w)
		return new(big.Rat).Add(new(big.Rat).Mul(rat(prev), weight), rat(curr))
	}
	want := max(hits, 1)
	est := estimate()
	d := Decision{Allowed: new(big.Rat).Add(est, rat(want)).Cmp(rat(m.lim.Limit)) <= 0, Limit: m.lim.Limit}
	if d.Allowed && hits > 0 {
		if m.start == nil {
			s := now
			m.start = &s
		}
		m.events = append(m.events, event{now, hits})
		curr += hits
		est = estimate()
	}
	d.Remaining = min(max(floorRat(new(big.Rat).Sub(rat(m.lim.Limit), est)), 0), m.lim.Limit)
	switch {
	case curr > 0:
		d.ResetAfter = time.Duration(*m.start + 2*w - now)
	case prev > 0:
		d.ResetAfter = time.Duration(*m.start + w - now)
	}
	return d
}

// refSlidingLog: the exact count of admitted hits in (now-Window, now].
type refSlidingLog struct {
	lim    Limit
	events []event
}

func (m *refSlidingLog) clone() model {
	c := *m
	c.events = slices.Clone(m.events)
	return &c
}

func (m *refSlidingLog) decide(now, hits int64) Decision {
	w := int64(m.lim.Window)
	count := sumEvents(m.events, now-w+1, now+1)
	want := max(hits, 1)
	d := Decision{Allowed: count+want <= m.lim.Limit, Limit: m.lim.Limit}
	if d.Allowed && hits > 0 {
		m.events = append(m.events, event{now, hits})
		count += hits
	}
	d.Remaining = m.lim.Limit - count
	if count > 0 {
		d.ResetAfter = time.Duration(m.events[len(m.events)-1].at + w - now)
	}
	return d
}

// refStrictWindow: every admitted hit is kept, stamped with the last
// nanosecond of its slot on a grid of slot length refStrictShape on which
// the hit that found the bucket empty ends a slot. A check counts the hits
// whose stamp is inside the rolling window (now-Window, now] or after it:
// those of the slot that holds now exactly, those of each earlier slot
// rounded up to a whole number of units.
type refStrictWindow struct {
	lim        Limit
	slot, unit int64
	origin     *int64  // start of a slot of the grid; nil while nothing is held
	events     []event // at: the stamp
}

func newRefStrict(lim Limit) *refStrictWindow {
	m := &refStrictWindow{lim: lim}
	m.slot, m.unit = refStrictShape(lim)
	return m
}

// refStrictShape returns the slot length and the unit of the older slots,
// found by search. Limit's bit length w says how 112 bits of counts are
// shared: K slots of w bits each, or, when that gives more slots, one of w
// bits and K-1 of 13 bits counting units of 2^(w-12). The slot is the least
// m·2^e, 16 <= m < 32, with (K-1)·slot >= Window-1.
func refStrictShape(lim Limit) (slot, unit int64) {
	w := int64(0)
	for new(big.Int).Lsh(big.NewInt(1), uint(w)).Cmp(big.NewInt(lim.Limit)) <= 0 {
		w++
	}
	k, unit := 112/w, int64(1)
	if rounded := 1 + (112-w)/13; w > 12 && rounded > k {
		k, unit = rounded, int64(1)<<(w-12)
	}
	need := big.NewRat(int64(lim.Window)-1, k-1)
	for e := uint(0); ; e++ {
		for m := int64(16); m < 32; m++ {
			if rat(m<<e).Cmp(need) >= 0 {
				return m << e, unit
			}
		}
	}
}

func (m *refStrictWindow) clone() model {
	c := *m
	c.events = slices.Clone(m.events)
	if m.origin != nil {
		o := *m.origin
		c.origin = &o
	}
	return &c
}

func (m *refStrictWindow) decide(now, hits int64) Decision {
	w := int64(m.lim.Window)
	perSlot := map[int64]int64{} // stamp -> hits
	for _, e := range m.events {
		if e.at > now-w {
			perSlot[e.at] += e.n
		}
	}
	held, newest := int64(0), int64(0)
	for at, n := range perSlot {
		if at < now { // an earlier slot: rounded up
			n = (n + m.unit - 1) / m.unit * m.unit
		}
		held += n
		newest = max(newest, at)
	}
	if held == 0 {
		m.origin, m.events = nil, nil
	}
	want := max(hits, 1)
	d := Decision{Allowed: held+want <= m.lim.Limit, Limit: m.lim.Limit}
	if d.Allowed && hits > 0 {
		if m.origin == nil {
			o := now - m.slot + 1
			m.origin = &o
		}
		k := new(big.Int).Div(big.NewInt(now-*m.origin), big.NewInt(m.slot)).Int64() // floor: now >= origin
		at := *m.origin + k*m.slot + m.slot - 1
		m.events = append(m.events, event{at, hits})
		held += hits
		newest = max(newest, at)
	}
	d.Remaining = max(m.lim.Limit-held, 0)
	if held > 0 {
		d.ResetAfter = time.Duration(newest + w - now)
	}
	return d
}

// retryAfter tries every time at which the answer can change: when a slot
// leaves the window, and when the slot that holds now ends and is rounded
// up. (Rounding can turn an admission back into a denial, so a binary
// search over time could miss the earliest admission.)
func (m *refStrictWindow) retryAfter(now, want int64) time.Duration {
	var times []int64
	for _, e := range m.events {
		times = append(times, e.at+int64(m.lim.Window))
		if e.at >= now {
			times = append(times, e.at+1)
		}
	}
	slices.Sort(times)
	for _, at := range times {
		if at > now && m.clone().decide(at, want).Allowed {
			return time.Duration(at - now)
		}
	}
	panic("refStrictWindow: never admitted")
}

// rollingLog is the exact rule itself: it records admitted hits at
// non-decreasing times and reports the most that any rolling window
// (t-Window, t] ending at a recorded hit holds.
type rollingLog struct {
	w      int64
	events []event
	head   int   // events[head:] are inside the window of the last hit
	inside int64 // their sum
	worst  int64
}

// add records n hits at t, which must not be before the last recorded
// time, and returns the hits now in (t-Window, t].
func (r *rollingLog) add(t, n int64) int64 {
	r.events = append(r.events, event{t, n})
	r.inside += n
	for r.events[r.head].at <= t-r.w {
		r.inside -= r.events[r.head].n
		r.head++
	}
	r.worst = max(r.worst, r.inside)
	return r.inside
}
