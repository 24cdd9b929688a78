package bucket

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

// retryAfter finds, by binary search over later times, the shortest wait
// after which a check of want hits would pass, given no other hits.
func retryAfter(m model, now, want int64, lim Limit) time.Duration {
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
