package engine

import (
	"iter"
	"slices"
	"time"
)

// A key moves to another node when ownership changes. Its state travels in
// relative form: every absolute time in it (a window start, a last update,
// a theoretical arrival time, a log entry) is sent as its offset from the
// sender's "now", and the receiver adds its own "now". Two nodes' monotonic
// clocks have unrelated origins and may run at slightly different rates;
// relative state makes the origins irrelevant, and the offsets are short.

// Moved is one key's bucket in relative form, as Extract returns it and
// Absorb takes it.
type Moved struct {
	// Key names the bucket, algorithm included.
	Key Key
	// A, B and C are the State's numbers, with the algorithm's time fields
	// as offsets from the sender's now.
	A, B, C int64
	// FreshIn is how long until the bucket is fresh again, at most.
	FreshIn time.Duration
	// Log is SlidingLog's entries, oldest first, times as offsets.
	Log []LogEntry
}

// LogEntry is one SlidingLog entry: N hits at offset At.
type LogEntry struct {
	At time.Duration
	N  int64
}

// Algorithm returns the algorithm of the moved bucket.
func (m Moved) Algorithm() Algorithm { return m.Key.algorithm() }

// timeFields says which of A, B and C hold absolute times, per algorithm.
var timeFields = [numAlgorithms][3]bool{
	StrictWindow:  {true, false, false}, // A: when the newest slot opened (B, C: counts)
	TokenBucket:   {false, false, true}, // C: last update
	GCRA:          {true, false, false}, // A: TAT (B is a fraction of a ns)
	SlidingWindow: {true, false, false}, // A: window start
	FixedWindow:   {true, false, false}, // A: window start
	SlidingLog:    {},
}

// shift adds d to the time fields of (a, b, c) for algorithm alg.
func shift(alg Algorithm, a, b, c, d int64) (int64, int64, int64) {
	if alg >= numAlgorithms {
		return a, b, c
	}
	f := timeFields[alg]
	if f[0] {
		a += d
	}
	if f[1] {
		b += d
	}
	if f[2] {
		c += d
	}
	return a, b, c
}

// Extract removes the buckets whose keys move reports true and returns
// them in relative form. Buckets that are already fresh are dropped, not
// returned. move is called with each shard locked; it must be quick and
// must not call the store.
func (s *Store) Extract(move func(Key) bool) []Moved {
	var out []Moved
	for i := range s.shards {
		sh := &s.shards[i]
		now := s.clock.Now()
		sh.mu.Lock()
		for j := 0; j < len(sh.tab.slots); {
			if sh.tab.tags[j] == 0 || !move(sh.tab.slots[j].key) {
				j++
				continue
			}
			if sh.tab.slots[j].freshAt > now {
				out = append(out, sh.moved(j, now))
			}
			sh.removeAt(j) // the next entry may shift into j: look again
		}
		sh.mu.Unlock()
	}
	return out
}

// Buckets yields every live bucket in relative form, as Extract returns
// them, without removing any: a snapshot to save (package snapshot). It
// copies one shard at a time under its lock and yields outside it, so
// checks wait at most for one shard's copy. Each bucket is relative to the
// moment its shard was copied.
func (s *Store) Buckets() iter.Seq[Moved] {
	return func(yield func(Moved) bool) {
		var batch []Moved
		for i := range s.shards {
			sh := &s.shards[i]
			batch = batch[:0]
			now := s.clock.Now()
			sh.mu.Lock()
			for j := range sh.tab.slots {
				if sh.tab.tags[j] == 0 || sh.tab.slots[j].freshAt <= now {
					continue
				}
				batch = append(batch, sh.moved(j, now))
			}
			sh.mu.Unlock()
			for _, m := range batch {
				if !yield(m) {
					return
				}
			}
		}
	}
}

// moved returns slot j in relative form at now. Requires sh.mu held.
func (sh *shard) moved(j int, now time.Duration) Moved {
	sl := sh.tab.slots[j]
	m := Moved{Key: sl.key, FreshIn: sl.freshAt - now}
	m.A, m.B, m.C = shift(sl.key.algorithm(), sl.a, sl.b, sl.c, -int64(now))
	if lg := sh.logs[sl.key]; lg != nil {
		for _, ev := range lg.events[lg.head:] {
			m.Log = append(m.Log, LogEntry{At: time.Duration(ev.at) - now, N: ev.n})
		}
	}
	return m
}

// Aged returns m as it will be after d more has passed with no checks: its
// times d further in the past. It reports false if the bucket is fresh by
// then. A negative d counts as zero, so time never runs backwards into a
// bucket: a restarted node applies the wall time it was down this way
// (package snapshot), and a wall clock that stepped back spends nothing.
func (m Moved) Aged(d time.Duration) (Moved, bool) {
	if d <= 0 {
		return m, m.FreshIn > 0
	}
	if m.FreshIn <= d || !m.Algorithm().Known() {
		return Moved{}, false
	}
	m.FreshIn -= d
	m.A, m.B, m.C = shift(m.Key.algorithm(), m.A, m.B, m.C, -int64(d))
	if len(m.Log) > 0 {
		aged := make([]LogEntry, len(m.Log))
		for i, e := range m.Log {
			aged[i] = LogEntry{At: e.At - d, N: e.N}
		}
		m.Log = aged
	}
	return m, true
}

// Absorb takes buckets moved from another node. Where this store already
// holds a bucket for the key (checks that reached the new owner before the
// handoff), the two are combined conservatively: the result has spent what
// both spent, so it never admits more than either history allows. Entries
// with an unknown algorithm are skipped; Absorb returns how many it kept.
func (s *Store) Absorb(moved []Moved) int {
	kept := 0
	for _, m := range moved {
		alg := m.Key.algorithm()
		if alg >= numAlgorithms || m.FreshIn <= 0 {
			continue
		}
		sh := &s.shards[m.Key.Hi>>s.shift]
		now := s.clock.Now()
		in := State{}
		in.A, in.B, in.C = shift(alg, m.A, m.B, m.C, int64(now))
		if len(m.Log) > 0 {
			in.Log = &Log{}
			for _, e := range m.Log {
				in.Log.add(int64(now+e.At), e.N)
			}
		}
		freshAt := now + m.FreshIn

		sh.mu.Lock()
		i := sh.tab.find(m.Key)
		if i >= 0 && sh.tab.slots[i].freshAt > now {
			e := &sh.tab.slots[i].entry
			here := State{A: e.a, B: e.b, C: e.c, Log: sh.logs[m.Key]}
			in = combine(alg, here, in, int64(now))
			// Draining both histories one after the other takes at most the
			// sum of their times.
			freshAt += e.freshAt - now
		} else if i < 0 {
			if sh.tab.used >= sh.limit {
				sh.evictOne(now)
			}
			i = sh.tab.insert(m.Key)
		}
		sh.tab.slots[i].entry = entry{a: in.A, b: in.B, c: in.C, freshAt: freshAt}
		if in.Log != nil {
			sh.logs[m.Key] = in.Log
		} else if len(sh.logs) > 0 {
			delete(sh.logs, m.Key)
		}
		sh.mu.Unlock()
		kept++
	}
	return kept
}

// combine merges two states of one bucket so that the result has spent
// what both spent. It may overstate the spending (and so deny a little
// more for a while); it never understates it.
func combine(alg Algorithm, x, y State, now int64) State {
	if x.fresh() {
		return y
	}
	if y.fresh() {
		return x
	}
	switch alg {
	case StrictWindow:
		// Every hit of both moves to the slot of x's layout that holds the
		// end of its old slot, or a later one: held at least as long as
		// before, and never past the newest end either side had, so the
		// sum of the two fresh times still bounds the result's.
		return combineStrict(x, y)
	case TokenBucket:
		// Deficits add. Each was last brought up to date at its own C; taking
		// the later C credits neither with refill it has not had yet. The
		// remainders may sum past one token; Decide normalises.
		return State{A: x.A + y.A, B: x.B + y.B, C: max(x.C, y.C)}
	case GCRA:
		// Time used ahead of now adds. Round each TAT up to a whole
		// nanosecond (the fraction is in 1/limit ns and the limit is not
		// known here): at most 1 ns more spent per merge.
		up := func(s State) int64 {
			if s.B > 0 {
				return s.A + 1
			}
			return s.A
		}
		base := max(up(x), now)
		return State{A: base + max(up(y)-now, 0)}
	case FixedWindow:
		// Counts add, in the later of the two windows: the sum lasts until
		// the later one ends.
		return State{A: max(x.A, y.A), B: x.B + y.B}
	case SlidingWindow:
		// Windows opened at different times cannot be aligned exactly, so
		// every hit of both counts as current in the later window.
		return State{A: max(x.A, y.A), C: x.B + x.C + y.B + y.C}
	case SlidingLog:
		merged := &Log{}
		events := slices.Concat(x.Log.live(), y.Log.live())
		slices.SortStableFunc(events, func(a, b logEvent) int { return int(min(max(a.at-b.at, -1), 1)) })
		for _, ev := range events {
			merged.add(ev.at, ev.n)
		}
		return State{Log: merged}
	}
	return x
}

// live returns the log's live entries.
func (lg *Log) live() []logEvent {
	if lg == nil {
		return nil
	}
	return lg.events[lg.head:]
}
