package engine

import "math/bits"

// The algorithms keep exact rational state (a whole part and a remainder)
// and do their products in 128 bits, so no rounding can ever admit more
// than the configured rate. All operands here are non-negative.

// u128 is an unsigned 128-bit integer.
type u128 struct{ hi, lo uint64 }

// mul returns a*b.
func mul(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

// add returns x+y, saturating at the maximum (never reached with our bounds).
func (x u128) add(y u128) u128 {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	hi, c2 := bits.Add64(x.hi, y.hi, c)
	if c2 != 0 {
		return u128{^uint64(0), ^uint64(0)}
	}
	return u128{hi, lo}
}

// addU returns x+y.
func (x u128) addU(y uint64) u128 { return x.add(u128{0, y}) }

// sub returns x-y, or zero when y > x.
func (x u128) sub(y u128) u128 {
	if x.cmp(y) <= 0 {
		return u128{}
	}
	lo, b := bits.Sub64(x.lo, y.lo, 0)
	hi, _ := bits.Sub64(x.hi, y.hi, b)
	return u128{hi, lo}
}

// cmp returns -1, 0 or +1 as x is less than, equal to or greater than y.
func (x u128) cmp(y u128) int {
	switch {
	case x.hi < y.hi:
		return -1
	case x.hi > y.hi:
		return 1
	case x.lo < y.lo:
		return -1
	case x.lo > y.lo:
		return 1
	}
	return 0
}

// div returns x/d and x%d. ok is false when the quotient does not fit in
// 63 bits; callers treat that as "more than any bucket can hold".
func (x u128) div(d uint64) (q, r uint64, ok bool) {
	if x.hi >= d {
		return 0, 0, false
	}
	q, r = bits.Div64(x.hi, x.lo, d)
	if q > 1<<63-1 {
		return 0, 0, false
	}
	return q, r, true
}

// ceilDiv returns ceil(x/d), capped at maxDuration when it would not fit.
func (x u128) ceilDiv(d uint64) int64 {
	q, r, ok := x.div(d)
	if !ok {
		return maxDuration
	}
	if r != 0 {
		q++
	}
	if q > maxDuration {
		return maxDuration
	}
	return int64(q)
}

// maxDuration caps computed waits; validation keeps real values far below.
const maxDuration = 1<<63 - 1

// The bit operations below serve strictWindow, which packs its counts
// into 128 bits.

// mulU returns x*y, truncated to 128 bits.
func (x u128) mulU(y uint64) u128 {
	hi, lo := bits.Mul64(x.lo, y)
	return u128{x.hi*y + hi, lo}
}

// shl returns x<<n; n may be 128 or more (the result is then zero).
func (x u128) shl(n uint) u128 {
	if n >= 64 {
		return u128{x.lo << (n - 64), 0}
	}
	return u128{x.hi<<n | x.lo>>(64-n), x.lo << n}
}

// shr returns x>>n; n may be 128 or more (the result is then zero).
func (x u128) shr(n uint) u128 {
	if n >= 64 {
		return u128{0, x.hi >> (n - 64)}
	}
	return u128{x.hi >> n, x.lo>>n | x.hi<<(64-n)}
}

func (x u128) and(y u128) u128 { return u128{x.hi & y.hi, x.lo & y.lo} }
func (x u128) or(y u128) u128  { return u128{x.hi | y.hi, x.lo | y.lo} }
func (x u128) not() u128       { return u128{^x.hi, ^x.lo} }

// trailingZeros returns the number of trailing zero bits of x; 128 for 0.
func (x u128) trailingZeros() uint {
	if x.lo != 0 {
		return uint(bits.TrailingZeros64(x.lo))
	}
	return 64 + uint(bits.TrailingZeros64(x.hi))
}

// lowBits returns a mask of the n low bits, n <= 128.
func lowBits(n uint) u128 {
	if n >= 64 {
		return u128{1<<(n-64) - 1, ^uint64(0)}
	}
	return u128{0, 1<<n - 1}
}
