package engine

import (
	"math"
	"math/bits"
	"time"
)

// strictWindow never admits more than Limit hits in any rolling window of
// length Window: an exact upper bound, from 24 bytes of state. It counts
// hits in K consecutive slots of length g, with (K-1)·g >= Window-1, and
// counts a slot in full for as long as any of it overlaps the rolling
// window (now-Window, now]. Each hit is so held as if it had come at the
// last nanosecond of its slot: never earlier than it did, so never released
// early, and at most g-1 later. DESIGN.md §1 has the proof and the bound on
// needless denials.
//
//	A: when slot 0, the newest, opened; slot i covers [A-i·g, A-i·g+g)
//	B, C: slot 0's count, exact, in the low width bits (width: Limit's bit
//	      length); then K-1 fields, field i-1 holding the hits of slots 1
//	      to i (in units, see below), so the hits held now are two reads
//
// C's top 16 bits name the layout (width and g), so that a state can be
// merged without its Limit (Absorb) and repacked when its key's shape
// changes. The fields share 112 bits, so a smaller limit gets more and
// shorter slots: K = 37 for 5 per window, 16 for 100. From width 15 on
// (limits from 16,384) the older slots count in units of 2^(width-12)
// hits, each slot's count rounded up once, when it stops being the newest:
// fields of 13 bits, K = 8 up to about 2·10⁶, 7 for 10⁹, 6 for 10¹²,
// for at most (K-1)/2^11 of the limit counted too much. (So, at such
// limits, a check that would pass now may be denied a moment later with
// no new hit, when slot 0 is rounded up; RetryAfter is still the earliest
// time the check passes.)
//
// The first hit into a fresh bucket ends a slot, so a burst at once is
// held exactly Window. The zero State (no hits held) is fresh.
type strictWindow struct{}

const (
	strictCountBits = 112 // B and C's low 48 bits
	strictCodeShift = 48  // the layout's place in C
	strictMaxWidth  = 56  // the widest slot-0 count the layout code admits
	strictPrecision = 12  // an older slot's unit is 1/2^12 of Limit's power of two, or 1
	strictMaxSlots  = strictCountBits
)

// strictLayout is how a strictWindow state packs its counts.
type strictLayout struct {
	*strictFields        // what the width decides
	g             int64  // slot length in ns: (16+mantissa) << exponent
	code          uint64 // width<<10 | exponent<<4 | mantissa: C's top 16 bits
}

// strictFields is the part of a layout that slot 0's width decides.
type strictFields struct {
	width uint   // bits of slot 0's count
	shift uint   // older slots count in units of 2^shift hits
	field uint   // bits per older field
	slots uint   // K
	recip uint64 // ceil(2^64/(K-1)), to divide by K-1 with a multiplication
	ones  u128   // a 1 in each older field
}

// strictWidths[w] is the layout of a slot 0 of w bits: exact counts of w
// bits each, unless units of 2^(w-12) in 13-bit fields give more slots.
var strictWidths = func() (ws [strictMaxWidth + 1]strictFields) {
	for w := uint(1); w <= strictMaxWidth; w++ {
		f := strictFields{width: w, field: w, slots: strictCountBits / w}
		if rounded := 1 + (strictCountBits-w)/(strictPrecision+1); w > strictPrecision && rounded > f.slots {
			f.shift, f.field, f.slots = w-strictPrecision, strictPrecision+1, rounded
		}
		if n := uint64(f.slots - 1); n > 1 {
			f.recip = ^uint64(0)/n + 1
		}
		for i := range f.slots - 1 {
			f.ones = f.ones.or(u128{0, 1}.shl(i * f.field))
		}
		ws[w] = f
	}
	return ws
}()

// strictLayoutFor returns the layout for lim: the slots of its width, and
// the shortest g of the form m·2^e (16 <= m < 32) with (K-1)·g >=
// Window-1. Rounding g up to that form (by less than 1/16) lets 10 bits
// name it exactly.
func strictLayoutFor(lim Limit) strictLayout {
	width := uint(bits.Len64(uint64(lim.Limit)))
	f := &strictWidths[width]
	// need = ceil((Window-1)/(K-1)); the multiplication is exact for a
	// dividend under 2^57 and a divisor under 2^7.
	need := uint64(lim.Window) - 1
	if f.recip != 0 {
		need, _ = bits.Mul64(need+uint64(f.slots-2), f.recip)
	}
	exp, mant := uint(0), uint64(16)
	if need > 16 {
		exp = uint(bits.Len64(need)) - 5
		mant = (need + 1<<exp - 1) >> exp
		if mant == 32 {
			exp, mant = exp+1, 16
		}
	}
	return strictLayout{f, int64(mant << exp), uint64(width)<<10 | uint64(exp)<<4 | (mant - 16)}
}

// strictLayoutOf decodes a layout code; ok is false for a code no layout
// has (a state from a corrupt or newer peer).
func strictLayoutOf(code uint64) (strictLayout, bool) {
	width, exp, mant := uint(code>>10&63), uint(code>>4&63), 16+code&15
	if width == 0 || width > strictMaxWidth || exp > 55 {
		return strictLayout{}, false
	}
	lay := strictLayout{&strictWidths[width], int64(mant << exp), code}
	if lay.g > math.MaxInt64/int64(2*lay.slots) {
		return strictLayout{}, false
	}
	return lay, true
}

// strictCounts is a decoded strictWindow state.
type strictCounts struct {
	lay strictLayout
	a   int64 // when slot 0 opened
	x   u128  // slot 0's count, then the older fields
}

// first returns slot 0's count.
func (c *strictCounts) first() int64 { return int64(c.x.lo & (1<<c.lay.width - 1)) }

// older returns the older fields alone, field 0 in the low bits.
func (c *strictCounts) older() u128 { return c.x.shr(c.lay.width) }

// units returns the hits of slots 1 to i, in units; 0 for i == 0.
func (c *strictCounts) units(i uint) int64 {
	if i == 0 {
		return 0
	}
	return int64(c.x.shr(c.lay.width+(i-1)*c.lay.field).lo & (1<<c.lay.field - 1))
}

// held returns the hits counted for slots 0 to i.
func (c *strictCounts) held(i uint) int64 { return c.first() + c.units(i)<<c.lay.shift }

// last returns the last nanosecond of slot i: its hits count until the
// rolling window starts after it, at last(i)+Window.
func (c *strictCounts) last(i uint) int64 { return c.a - int64(i)*c.lay.g + c.lay.g - 1 }

func (strictWindow) Decide(st *State, lim Limit, now time.Duration, hits int64) Decision {
	t, w, l := int64(now), int64(lim.Window), lim.Limit
	lay := strictLayoutFor(lim)
	c := strictCounts{lay: lay}
	switch {
	case st.fresh():
	case strictCode(*st) == lay.code:
		// unpackStrict and pack spelled out: through the calls a check took
		// 7% longer (BenchmarkCheckExistingKeyStrict, 120 against 131 ns).
		c.a, c.x = st.A, u128{uint64(st.C) & (1<<strictCodeShift - 1), uint64(st.B)}
	default:
		c = repackStrictState(st, lay, t, w, l)
	}
	live := !c.x.isZero()
	if live && subSat(t, c.a) >= lay.g {
		c.advance(subSat(t, c.a) / lay.g)
		live = !c.x.isZero()
	}

	// Slot i overlaps (t-W, t] while last(i) >= t-W+1; top is the oldest
	// that does. Slots past it can never count again: drop them.
	top, held := uint(0), int64(0)
	if live {
		top = c.top(t, w)
		held = c.held(top)
		if held == 0 {
			c.x, live = u128{}, false
		} else {
			c.dropAfter(top)
		}
	}

	want := max(hits, 1)
	allowed := held+want <= l
	if allowed && hits > 0 {
		if !live {
			// Slot 0 ends at this first hit: a burst into a fresh bucket
			// is held exactly as long as the rule needs, not a slot more.
			c.a, live = t-lay.g+1, true
			top = c.top(t, w)
		}
		c.x = c.x.addU(uint64(hits)) // slot 0's count stays <= Limit: no carry
		held += hits
	}
	if live {
		st.A, st.B, st.C = c.a, int64(c.x.lo), int64(c.x.hi|lay.code<<strictCodeShift)
	} else {
		*st = State{}
	}

	d := Decision{Allowed: allowed, Limit: l, Remaining: max(l-held, 0)}
	if live {
		// The newest slot with hits is the last to leave the window.
		newest := uint(0)
		if c.first() == 0 {
			newest = 1 + c.older().trailingZeros()/lay.field
		}
		d.ResetAfter = time.Duration(c.last(newest) + w - t)
	}
	switch {
	case allowed:
	case !live: // hits > Limit, which validation rules out: never
		d.RetryAfter = maxDuration
	default:
		// The oldest slots leave first: wait for the fewest to go.
		first := c.first()
		at := c.last(c.mustLeave(top, first, want, l)) + w
		if unit := int64(1) << lay.shift; unit > 1 && at >= c.a+lay.g {
			// By then slot 0 is no longer the newest: its count is rounded
			// up to units, which may keep one more slot in the way.
			first = (first + unit - 1) / unit * unit
			at = c.last(c.mustLeave(top, first, want, l)) + w
		}
		d.RetryAfter = time.Duration(at - t)
	}
	return d
}

// mustLeave returns the newest slot that must leave the window before want
// more hits fit under l, with slot 0 counting first: the least j <= top
// with first + units(j)·unit + want > l. It requires that j = top is one.
func (c *strictCounts) mustLeave(top uint, first, want, l int64) uint {
	lo, hi := -1, int(top) // lo fits (-1: no slot at all), hi does not
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if first+c.units(uint(mid))<<c.lay.shift+want <= l {
			lo = mid
		} else {
			hi = mid
		}
	}
	return uint(hi)
}

// advance moves slot 0 on by k slots: the oldest k leave, k empty ones
// open, and the old slot 0 becomes slot k, its count rounded up to units.
// Requires k >= 1.
func (c *strictCounts) advance(k int64) {
	lay := c.lay
	if k >= int64(lay.slots) {
		c.x = u128{}
		return
	}
	v := (uint64(c.first()) + 1<<lay.shift - 1) >> lay.shift
	old := c.older().shl(uint(k) * lay.field).and(lowBits((lay.slots - 1) * lay.field))
	// Fields k-1 on (slots k on) now hold the old slot 0 as well.
	old = old.add(lay.ones.and(lowBits(uint(k-1) * lay.field).not()).mulU(v))
	c.x = old.shl(lay.width)
	c.a += k * lay.g
}

// top returns the oldest slot that overlaps the rolling window at t.
func (c *strictCounts) top(t, w int64) uint {
	k := int64(c.lay.slots - 1)
	e := subSat(t, c.a) // < g; negative when the clock went back
	if e < -k*c.lay.g {
		return uint(k)
	}
	// last(i) >= t-W+1 is i·g <= Window + g - 2 - e.
	r := w + c.lay.g - 2 - e
	if r >= k*c.lay.g {
		return uint(k)
	}
	return uint(r / c.lay.g)
}

// dropAfter empties the slots after top: their fields take top's.
func (c *strictCounts) dropAfter(top uint) {
	lay := c.lay
	if top+1 == lay.slots || c.units(lay.slots-1) == c.units(top) {
		return
	}
	keep := lowBits(top * lay.field) // fields of slots 1 to top
	old := c.older().and(keep).or(lay.ones.and(keep.not()).mulU(uint64(c.units(top))))
	c.x = old.shl(lay.width).or(u128{0, uint64(c.first())})
}

// repackStrictState decodes st, a state packed for another layout than
// lay (the key's limit or window changed, or it came from a node that used
// another), and repacks it conservatively into lay.
func repackStrictState(st *State, lay strictLayout, t, w, l int64) strictCounts {
	src, ok := strictLayoutOf(strictCode(*st))
	if !ok {
		// Nothing can be read from it: hold a full window from now.
		return strictCounts{lay: lay, a: t - lay.g + 1, x: u128{0, uint64(l)}}
	}
	return repackStrict(lay, l, t-w+1, unpackStrict(*st, src))
}

// repackStrict packs the hits of srcs into one state of layout lay. Every
// slot's hits (older ones as the units they were counted in) move to the
// slot of lay that holds the last nanosecond of their old slot, or a later
// one, never an earlier one: so they are held at least as long as before.
// Slots that ended before cutoff are dropped. The counts are capped where
// they reach limit, which still denies whatever they denied before (a check
// needs held + want <= limit, want >= 1). The result's slot 0 ends where
// the newest slot with hits ended.
func repackStrict(lay strictLayout, limit, cutoff int64, srcs ...strictCounts) strictCounts {
	newest, any := int64(math.MinInt64), false
	for _, s := range srcs {
		for i := range s.lay.slots {
			if s.count(i) > 0 && s.last(i) >= cutoff {
				newest, any = max(newest, s.last(i)), true
			}
		}
	}
	out := strictCounts{lay: lay}
	if !any {
		return out
	}
	var counts [strictMaxSlots]int64
	for _, s := range srcs {
		for i := range s.lay.slots {
			if n := s.count(i); n > 0 && s.last(i) >= cutoff {
				j := min(uint64(newest-s.last(i))/uint64(lay.g), uint64(lay.slots-1))
				counts[j] = min(counts[j]+n, limit)
			}
		}
	}
	out.a = newest - lay.g + 1
	first := counts[0]
	unit := int64(1) << lay.shift
	room := (limit - first + unit - 1) / unit // units that fill up to limit
	sum := int64(0)
	for j := uint(1); j < lay.slots; j++ {
		sum = min(sum+(counts[j]+unit-1)/unit, room)
		out.x = out.x.or(u128{0, uint64(sum)}.shl((j - 1) * lay.field))
	}
	out.x = out.x.shl(lay.width).or(u128{0, uint64(first)})
	return out
}

// count returns the hits counted for slot i alone (0 for a malformed
// field).
func (c *strictCounts) count(i uint) int64 {
	if i == 0 {
		return c.first()
	}
	return max(c.units(i)-c.units(i-1), 0) << c.lay.shift
}

// combineStrict merges two states of one bucket into x's layout (Absorb).
// Neither side's Limit is known here, so the counts are capped at what
// slot 0's width holds, which is at least the Limit.
func combineStrict(x, y State) State {
	lx, ok := strictLayoutOf(strictCode(x))
	if !ok {
		return x // repackStrictState reads it as a full window
	}
	ly, ok := strictLayoutOf(strictCode(y))
	if !ok {
		return y
	}
	c := repackStrict(lx, 1<<lx.width-1, math.MinInt64, unpackStrict(x, lx), unpackStrict(y, ly))
	if c.x.isZero() {
		return State{}
	}
	return c.pack()
}

// A strict window's State holds the newest slot's start in A, and the
// packed slot counts in B (low 64 bits) and C (high bits, below the
// layout's code at strictCodeShift).

// strictCode returns the code of the layout st is packed in.
func strictCode(st State) uint64 { return uint64(st.C) >> strictCodeShift }

// unpackStrict reads st's counts as packed in lay.
func unpackStrict(st State, lay strictLayout) strictCounts {
	return strictCounts{lay: lay, a: st.A, x: u128{uint64(st.C) & (1<<strictCodeShift - 1), uint64(st.B)}}
}

// pack returns c as a State, tagged with its layout's code.
func (c strictCounts) pack() State {
	return State{A: c.a, B: int64(c.x.lo), C: int64(c.x.hi | c.lay.code<<strictCodeShift)}
}

// subSat returns a-b, saturated to the int64 range.
func subSat(a, b int64) int64 {
	d := a - b
	if (d < a) != (b > 0) {
		if b > 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return d
}
