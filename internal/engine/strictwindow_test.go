package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// strictLimit draws a shape for the strict window: limits from 1 to 10¹²,
// windows from 1 s to 1 h.
func strictLimit(rng *rand.Rand) Limit {
	limits := []int64{1, 2, 5, 7, 100, 1 + rng.Int64N(1000), 1 + rng.Int64N(1_000_000_000), 1_000_000_000, MaxLimit}
	windows := []time.Duration{time.Second, 1500 * time.Millisecond, time.Minute, time.Hour,
		time.Second + time.Duration(rng.Int64N(int64(time.Hour-time.Second)))}
	l := limits[rng.IntN(len(limits))]
	return Limit{Limit: l, Window: windows[rng.IntN(len(windows))], Burst: l}
}

// strictStep is randomStep with, when back is set, the clock sometimes
// going back by up to two windows.
func strictStep(rng *rand.Rand, lim Limit, back bool) (time.Duration, int64) {
	dt, hits := randomStep(rng, lim)
	if back && rng.IntN(12) == 0 {
		dt = -time.Duration(rng.Int64N(2*int64(lim.Window) + 1))
	}
	if hits > 1 && rng.IntN(3) == 0 {
		hits = 1 + rng.Int64N(min(hits, 8)) // a few hits at a time, even under huge limits
	}
	return dt, hits
}

// The strict window's promise, on random traces with peeks, hits > 1, idle
// gaps and (for odd seeds) a clock that goes back: no rolling window of
// length Window ever holds more than Limit admitted hits.
//
// With a clock that goes back, times are the running maximum of the
// readings (a reading lower than the last counts as the last, as a clock
// that stood still would give), taken while the bucket holds anything:
// once a check leaves it fresh, it remembers nothing, like every engine's
// zero State, and a later lower reading starts afresh.
//
// The engine and the Store around it agree on every decision; RetryAfter
// and ResetAfter are exact; and every denial is explained by hits at most
// one slot older than the window (the bound on needless denials).
func TestStrictWindowNeverExceedsLimit(t *testing.T) {
	seeds, steps := 400, 300
	if testing.Short() {
		seeds = 60
	}
	admitted, denied, needless := 0, 0, 0
	for seed := range seeds {
		back := seed%2 == 1
		rng := rand.New(rand.NewPCG(uint64(seed), 1212))
		lim := strictLimit(rng)
		slot, unit := refStrictShape(lim)
		// The most the older slots' rounding to units can count too much.
		rounding := int64(strictLayoutFor(lim).slots-1) * (unit - 1)
		w := int64(lim.Window)
		clock := &ManualClock{}
		store := newTestStore(t, Config{Clock: clock})
		req := Request{UserID: "u", Action: "a", Limit: lim.Limit, Window: lim.Window}
		var st State
		now := 10*time.Hour + time.Duration(rng.Int64N(int64(time.Hour)))
		eff := int64(0)
		exact := rollingLog{w: w}
		for step := range steps {
			dt, hits := strictStep(rng, lim, back)
			now = max(now+dt, 0)
			clock.Set(now)
			before := st
			got := StrictWindow.Engine().Decide(&st, lim, now, hits)
			req.Hits = hits
			viaStore, err := store.Check(req)
			if err != nil {
				t.Fatal(err)
			}
			where := fmt.Sprintf("seed %d step %d %+v t=%v hits=%d", seed, step, lim, now, hits)
			if viaStore != got {
				t.Fatalf("%s: Store.Check = %+v, engine %+v", where, viaStore, got)
			}
			eff = max(eff, int64(now))
			if got.Allowed && hits > 0 {
				if in := exact.add(eff, hits); in > lim.Limit {
					t.Fatalf("%s: %d admitted in one rolling window of %v, limit %d", where, in, lim.Window, lim.Limit)
				}
			}
			if back && st.fresh() {
				eff, exact = 0, rollingLog{w: w}
			}
			if got.Remaining < 0 || got.Remaining > lim.Limit || got.Allowed != (got.RetryAfter == 0) || got.ResetAfter < 0 {
				t.Fatalf("%s: decision out of range: %+v", where, got)
			}
			checkStrictWaits(t, where, before, lim, now, hits, got)
			if got.Allowed {
				admitted++
				continue
			}
			denied++
			if back {
				continue
			}
			// Forward time: the hits held are those of (t-W-slot+1, t]
			// at most, plus the rounding, so the room lost is what the
			// slot before the window holds and the rounding.
			want := max(hits, 1)
			if in := exact.sum(int64(now)-w-slot+1, int64(now)); in+rounding+want <= lim.Limit {
				t.Fatalf("%s: denied with %d admitted in the window widened by a slot (%v), rounding up to %d",
					where, in, time.Duration(slot), rounding)
			}
			if exact.sum(int64(now)-w+1, int64(now))+want <= lim.Limit {
				needless++
			}
		}
	}
	if denied < seeds || admitted < seeds {
		t.Errorf("%d admitted, %d denied: traces too one-sided", admitted, denied)
	}
	t.Logf("%d admitted, %d denied, of which %d needless", admitted, denied, needless)
}

// checkStrictWaits replays the check at now+RetryAfter (and just before)
// and peeks at now+ResetAfter (and just before), from the state before
// the check: RetryAfter is the earliest time the same check passes, and
// ResetAfter the earliest time the bucket is fresh.
func checkStrictWaits(t *testing.T, where string, before State, lim Limit, now time.Duration, hits int64, got Decision) {
	t.Helper()
	e := StrictWindow.Engine()
	after := before
	e.Decide(&after, lim, now, hits)
	if !got.Allowed {
		early, onTime := before, before
		if e.Decide(&early, lim, now+got.RetryAfter-1, hits).Allowed {
			t.Fatalf("%s: %+v, but admitted 1 ns before RetryAfter", where, got)
		}
		if !e.Decide(&onTime, lim, now+got.RetryAfter, hits).Allowed {
			t.Fatalf("%s: %+v, but denied at RetryAfter", where, got)
		}
	}
	if got.ResetAfter > 0 {
		early, onTime := after, after
		e.Decide(&early, lim, now+got.ResetAfter-1, 0)
		e.Decide(&onTime, lim, now+got.ResetAfter, 0)
		if early.fresh() || !onTime.fresh() {
			t.Fatalf("%s: %+v, but fresh 1 ns before ResetAfter (%v) or not at it (%v)", where, got, early.fresh(), onTime.fresh())
		}
	} else if !after.fresh() {
		t.Fatalf("%s: %+v with ResetAfter 0, but the state %+v is not fresh", where, got, after)
	}
}

// sum returns the hits recorded in [from, to].
func (r *rollingLog) sum(from, to int64) int64 {
	var n int64
	for _, e := range r.events {
		if e.at >= from && e.at <= to {
			n += e.n
		}
	}
	return n
}

// When a key's limit or window changes, the state is repacked for the new
// shape and the promise holds for the new shape against every hit still
// held: a hit admitted at r counts at t while r > t - (the shortest window
// in force from r to t), and Limit is the one in force at t.
func TestStrictWindowShapeChanges(t *testing.T) {
	type admit struct {
		at, n int64
		epoch int
	}
	for seed := range 200 {
		rng := rand.New(rand.NewPCG(uint64(seed), 1313))
		shapes := []Limit{strictLimit(rng), strictLimit(rng), strictLimit(rng)}
		if seed%3 == 0 { // the same limit under different windows: the same width
			shapes[1].Limit, shapes[1].Burst = shapes[0].Limit, shapes[0].Limit
		}
		var windows []int64 // window of each epoch
		var admits []admit
		var st State
		now := int64(time.Hour)
		lim := shapes[0]
		for step := range 300 {
			if step%25 == 0 {
				lim = shapes[rng.IntN(len(shapes))]
				windows = append(windows, int64(lim.Window))
			}
			dt, hits := strictStep(rng, lim, false)
			now += int64(dt)
			d := StrictWindow.Engine().Decide(&st, lim, time.Duration(now), hits)
			if d.Remaining < 0 || d.Remaining > lim.Limit {
				t.Fatalf("seed %d step %d: Remaining %d of %d", seed, step, d.Remaining, lim.Limit)
			}
			if !d.Allowed || hits == 0 {
				continue
			}
			admits = append(admits, admit{now, hits, len(windows) - 1})
			in := int64(0)
			for _, a := range admits {
				if now-a.at < slices.Min(windows[a.epoch:]) {
					in += a.n
				}
			}
			if in > lim.Limit {
				t.Fatalf("seed %d step %d %+v: %d held in the window, limit %d (windows %v)", seed, step, lim, in, lim.Limit, windows)
			}
		}
	}
}

// A merged state (Absorb, when the new owner already answered checks
// before the old owner's state arrived) holds, at every later time, every
// hit that either side admitted and still had to hold: it never admits
// what the two histories together forbid. (It may count less than the two
// sides' own counts added, when the older slots count in rounded-up units:
// the merge rounds each merged slot's sum once, not each part.) The sides
// may have been packed for different shapes.
func TestStrictWindowMergeHoldsBoth(t *testing.T) {
	for seed := range 400 {
		rng := rand.New(rand.NewPCG(uint64(seed), 1414))
		lim := strictLimit(rng)
		limY := lim
		if seed%4 == 0 {
			limY = strictLimit(rng)
		}
		var x, y State
		type hit struct {
			at, n, w int64
		}
		var hits []hit // both sides' admitted hits, with the window they are held for
		now := int64(5 * time.Hour)
		for range 1 + rng.IntN(40) {
			dt, n := strictStep(rng, lim, false)
			now += int64(dt) / 4
			side, shape := &x, lim
			if rng.IntN(2) == 0 {
				side, shape = &y, limY
			}
			if StrictWindow.Engine().Decide(side, shape, time.Duration(now), n).Allowed && n > 0 {
				hits = append(hits, hit{now, n, int64(min(shape.Window, lim.Window))})
			}
		}
		merged := combine(StrictWindow, x, y, now)
		probes := []int64{0, 1, int64(lim.Window) / 3, int64(lim.Window) - 1, int64(lim.Window),
			int64(lim.Window) + rng.Int64N(int64(lim.Window)), 2 * int64(lim.Window)}
		for _, h := range hits { // the last nanosecond each hit must be held, and the next
			probes = append(probes, h.at+h.w-1-now, h.at+h.w-now)
		}
		for _, dt := range probes {
			if dt < 0 {
				continue
			}
			t0 := now + dt
			// A hit must still be held at t0 if it came within the window
			// (the shorter of the two shapes' windows: a side forgets what
			// left its own).
			must := int64(0)
			for _, h := range hits {
				if h.at > t0-h.w {
					must += h.n
				}
			}
			held := int64(0)
			if m := merged; !m.fresh() {
				held = lim.Limit - StrictWindow.Engine().Decide(&m, lim, time.Duration(t0), 0).Remaining
			}
			if held < min(must, lim.Limit) {
				t.Fatalf("seed %d %+v (y packed for %+v), %v after the merge: merged holds %d, the two histories %d",
					seed, lim, limY, time.Duration(dt), held, must)
			}
		}
	}
}

// RateLimit's promise (at most limit in any rolling window) through the
// Store with the default algorithm: 5 logins per 60 s. Five are admitted
// however they are spaced; a sixth within 60 s of the first is denied
// whatever the spacing, and is admitted once RetryAfter has passed, which
// is never before 60 s after the first and at most one slot (1.68 s here)
// after the exact time.
func TestFiveLoginsPerMinute(t *testing.T) {
	const ms = time.Millisecond
	rng := rand.New(rand.NewPCG(5, 60))
	random := make([]time.Duration, 5)
	for i := range random {
		random[i] = time.Duration(rng.Int64N(int64(59 * s)))
	}
	slices.Sort(random)
	g, _ := refStrictShape(Limit{Limit: 5, Window: time.Minute})
	slot := time.Duration(g)
	spacings := []struct {
		name  string
		times []time.Duration
	}{
		{"all at once", []time.Duration{0, 0, 0, 0, 0}},
		{"evenly over 59 s", []time.Duration{0, 14750 * ms, 29500 * ms, 44250 * ms, 59 * s}},
		{"one a second", []time.Duration{0, 1 * s, 2 * s, 3 * s, 4 * s}},
		{"bunched at the start", []time.Duration{0, 1, 2, 3, 59 * s}},
		{"bunched at the end", []time.Duration{0, 58 * s, 58*s + 500*ms, 59 * s, 60*s - 1}},
		{"across slot edges", []time.Duration{slot - 1, slot, 2*slot - 1, 2 * slot, 30 * s}},
		{"random", random},
	}
	for _, sp := range spacings {
		t.Run(sp.name, func(t *testing.T) {
			clock := &ManualClock{}
			store := newTestStore(t, Config{Clock: clock})
			login := Request{UserID: "alice", Action: "login", Limit: 5, Window: time.Minute, Hits: 1} // zero Algorithm: the default
			base := 1000 * time.Hour
			first := base + sp.times[0]
			for i, at := range sp.times {
				clock.Set(base + at)
				if d, err := store.Check(login); err != nil || !d.Allowed || d.Remaining != int64(4-i) {
					t.Fatalf("login %d at %v: %+v, %v; want admitted with %d remaining", i+1, at, d, err, 4-i)
				}
			}
			last := base + sp.times[4]
			for _, at := range []time.Duration{last, last + 1, (last + first + time.Minute) / 2, first + time.Minute - 1} {
				if at >= first+time.Minute {
					continue // not within 60 s of the first
				}
				clock.Set(at)
				d, err := store.Check(login)
				if err != nil || d.Allowed {
					t.Fatalf("6th login %v after the first: %+v, %v; want denied", at-first, d, err)
				}
				// The exact rule admits the 6th once the first has left
				// the window (all five, if they came at once).
				exact := first + time.Minute
				if retry := at + d.RetryAfter; retry < exact || retry > exact+slot {
					t.Fatalf("6th login %v after the first: retry at %v after the first, want within [60 s, 60 s + %v]",
						at-first, retry-first, slot)
				}
			}
			d, _ := store.Check(Request{UserID: "alice", Action: "login", Limit: 5, Window: time.Minute})
			clock.Set(first + time.Minute - 1 + d.RetryAfter)
			if d, err := store.Check(login); err != nil || !d.Allowed {
				t.Fatalf("6th login after RetryAfter: %+v, %v; want admitted", d, err)
			}
		})
	}
}

// The layouts the documentation quotes, and the slot bounds the proof
// needs: (K-1)·slot >= Window-1, and slot within 1/16 of (Window-1)/(K-1).
func TestStrictLayouts(t *testing.T) {
	for _, c := range []struct {
		limit int64
		slots uint
	}{{1, 112}, {5, 37}, {100, 16}, {1000, 11}, {10_000, 8}, {100_000, 8}, {1_000_000, 8}, {2_000_000, 8},
		{10_000_000, 7}, {1_000_000_000, 7}, {100_000_000_000, 6}, {MaxLimit, 6}} {
		if got := strictLayoutFor(Limit{Limit: c.limit, Window: time.Minute}).slots; got != c.slots {
			t.Errorf("limit %d: %d slots, want %d", c.limit, got, c.slots)
		}
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for range 2000 {
		lim := Limit{Limit: 1 + rng.Int64N(MaxLimit), Window: 1 + time.Duration(rng.Int64N(int64(HardMaxWindow)))}
		if rng.IntN(2) == 0 {
			lim.Limit = 1 + rng.Int64N(1000)
		}
		lay := strictLayoutFor(lim)
		n, w1 := int64(lay.slots-1), int64(lim.Window)-1
		need := (w1 + n - 1) / n
		if n*lay.g < w1 || (need > 16 && 16*lay.g >= 17*need) {
			t.Fatalf("%+v: %d slots of %d ns for a window of %d ns", lim, lay.slots, lay.g, lim.Window)
		}
		if got, ok := strictLayoutOf(lay.code); !ok || got != lay {
			t.Fatalf("%+v: layout %+v decodes to %+v, %v", lim, lay, got, ok)
		}
		if slot, unit := refStrictShape(lim); lay.g != slot || int64(1)<<lay.shift != unit {
			t.Fatalf("%+v: slot %d, unit %d; the reference finds %d, %d", lim, lay.g, 1<<lay.shift, slot, unit)
		}
	}
}

// A state whose layout code no build writes (a corrupt or newer peer's)
// is read as a full window, never as room.
func TestStrictUnreadableStateDenies(t *testing.T) {
	lim := Limit{Limit: 10, Window: time.Minute, Burst: 10}
	st := State{A: 5, B: 1, C: 1 << 48} // width 0
	if d := StrictWindow.Engine().Decide(&st, lim, time.Hour, 1); d.Allowed || d.Remaining != 0 {
		t.Fatalf("unreadable state: %+v, want denied", d)
	}
	if d := StrictWindow.Engine().Decide(&st, lim, 2*time.Hour, 1); !d.Allowed {
		t.Fatalf("a window later: %+v, want admitted", d)
	}
}

// FuzzStrictWindow drives the strict window with any shape (windows from
// 1 ns to the hard maximum) and any order of times (3 bytes a check: a
// signed step of up to 8 windows, and the hits, 0 for a peek) and checks the promise as
// TestStrictWindowNeverExceedsLimit does, with the exact waits.
func FuzzStrictWindow(f *testing.F) {
	f.Add(int64(5), int64(time.Minute), []byte{0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 1})
	f.Add(int64(100), int64(10*time.Second), []byte{0, 0, 50, 0, 1, 50, 0, 0, 1, 0xff, 0xff, 3, 0, 2, 0, 0, 0x10, 1})
	f.Add(int64(1_000_000_000), int64(time.Hour), []byte{0, 0, 200, 100, 0, 255, 0, 0x80, 7, 200, 0, 255})
	f.Add(int64(MaxLimit), int64(time.Second), []byte{0, 0, 255, 0, 0x20, 255, 0xf0, 0xff, 1})
	f.Add(int64(3), int64(1500*time.Millisecond), []byte{0, 0, 2, 0x10, 0, 1, 0x00, 0xf8, 1, 0x08, 0, 1, 0x10, 0, 2})
	f.Add(int64(40), int64(100), []byte{0, 0, 9, 0x20, 0, 9, 0x00, 0xf0, 3, 0x10, 0, 9, 0x40, 0, 9})
	f.Add(int64(1<<20), int64(HardMaxWindow), []byte{0, 0, 64, 0x01, 0, 64, 0x00, 0xff, 64, 0x20, 0, 1})
	f.Fuzz(func(t *testing.T, limit, window int64, ops []byte) {
		lim := Limit{Limit: limit, Window: time.Duration(window), Burst: limit}
		if limit < 1 || limit > MaxLimit || lim.Window < 1 || lim.Window > HardMaxWindow {
			return
		}
		var st State
		now := int64(100 * time.Hour)
		eff := int64(0)
		exact := rollingLog{w: window}
		for i := 0; i+3 <= len(ops); i += 3 {
			step := int64(int16(uint16(ops[i]) | uint16(ops[i+1])<<8))
			now = max(now+step*max(window/4096, 1), 0)
			hits := int64(ops[i+2])
			if hits > 0 {
				hits = min(1+(hits-1)*max(limit/64, 1), limit)
			}
			before := st
			d := StrictWindow.Engine().Decide(&st, lim, time.Duration(now), hits)
			where := fmt.Sprintf("check %d %+v t=%d hits=%d", i/3, lim, now, hits)
			if d.Remaining < 0 || d.Remaining > limit || d.Allowed != (d.RetryAfter == 0) || d.ResetAfter < 0 {
				t.Fatalf("%s: decision out of range: %+v", where, d)
			}
			checkStrictWaits(t, where, before, lim, time.Duration(now), hits, d)
			eff = max(eff, now)
			if d.Allowed && hits > 0 {
				if in := exact.add(eff, hits); in > limit {
					t.Fatalf("%s: %d admitted in one rolling window", where, in)
				}
			}
			if st.fresh() {
				eff, exact = 0, rollingLog{w: window}
			}
		}
	})
}

// From limits of 16,384 on, a slot's count is rounded up to units once it
// is no longer the newest (here units of 8 hits, 8 slots of 22·2^26 ns =
// 1.476395008 s): the bucket can have fewer hits to spare a moment later
// without any new hit, by less than a unit, and RetryAfter counts the
// rounding of the newest slot when that happens first.
func TestStrictRoundingToUnits(t *testing.T) {
	lim := Limit{Limit: 20_000, Window: 10 * s, Burst: 20_000}
	const g = 1476395008 * time.Nanosecond
	runSteps(t, StrictWindow, lim, []step{
		{0, 19_997, allow(20_000, 3, 10*s)},
		{0, 0, allow(20_000, 3, 10*s)},
		// Slot 0 ended at 0: its 19,997 now count as 20,000.
		{1, 0, deny(20_000, 0, 10*s-1, 10*s-1)},
		// All left at 10 s: a fresh bucket, whose slot 0 ends at 10 s.
		{10 * s, 5, allow(20_000, 19_995, 10*s)},
		// The next slot, (10 s, 10 s + g]; the 5 now count as 8.
		{10*s + g, 19_990, allow(20_000, 2, 10*s)},
		// 9 more would fit once the 5 leave, at 20 s, but by then the
		// 19,990 count as 19,992: they must wait for those to leave too.
		{10*s + g, 9, deny(20_000, 2, 10*s, 10*s)},
		{20 * s, 9, deny(20_000, 8, g, g)},
		{20*s + g, 9, allow(20_000, 19_991, 10*s)},
	})
}
