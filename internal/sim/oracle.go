package sim

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// The oracle. What it holds every run to:
//
//   - Over-admission. For every key and every rolling window (of the
//     key's length, shortened by the fastest clock drift, so that no
//     owner's clock can count it as longer than a window), the hits
//     admitted are at most B·f: B is what one exact limiter of the key's
//     algorithm admits in a window (L for strict_window and sliding_log;
//     burst+L for token_bucket and gcra; 2L for fixed_window and
//     sliding_window), and f is DESIGN §6's factor for the faults whose
//     influence (from when each began to convergeWithin after it ended)
//     touches the window: 1 for none, and for a join, a graceful leave or
//     a rolling restart ("L, plus refill"); 2−1/N for any other single
//     fault (the loosest of its rows: L·(1+m/N) ≤ L·(2−1/N)), except 2
//     for a partition, one-way cut or pause when the key's window is
//     shorter than a cut-off owner takes to step down (stepDownWithin).
//     A handoff that lost the key's bucket (a cut, or a peer gone) counts
//     as a fault of its own, of factor 2: the new owner starts fresh after
//     HandoffWait. Two or more faults add what each costs beyond L:
//     1 + Σ (f_i − 1). A window that saw gossip split-brained (two
//     members, each with a majority, each counting the other failed: after
//     a cut heals, the death claims either side made can spread so, one
//     member on both rings) gets one L more, for the second owner that
//     decides the key until views converge.
//   - Deadlines. Every check is answered within CheckTimeout of its
//     start, unless the node it entered was paused or crashed meanwhile.
//   - Convergence. convergeWithin after the last fault ends, every
//     running node holds the same ring, of exactly the running nodes, and
//     has settled it (every peer reported its handoff done); or, if the
//     crashed members still counted leave the running ones no majority,
//     every running node says it has none.
//   - Under-admission. In a quiet stretch (no fault's influence for the
//     window before it), an owner's denial of a strict_window or
//     sliding_log key is needed: the callers were admitted at least
//     capacity−hits+1 in the window (lengthened by the drift, by
//     strict_window's early denial of one slot, ≤ window/6, and by the
//     network's delay).

// convergeWithin is how long after the last fault ends every node holds
// the same ring, settled: a crash is noticed within a probe round and a
// suspicion timeout (≤ 3 s), a heal within a rejoin round (2 s), and
// handoffs settle within HandoffWait (2 s).
const convergeWithin = 10 * time.Second

type recorder struct {
	s       *sim
	checks  []*check
	began   []time.Duration
	ended   []time.Duration
	nEnded  int
	answers int
	failed_ int
	bad     []Violation
	convAt  time.Duration
	// brains are when gossip was seen split-brained (splitBrain).
	brains []time.Duration
	// missed are when a handoff lost each key's bucket, by the key's
	// hash (missedHandoff).
	missed map[uint64][]time.Duration
}

// missedHandoff notes that a handoff lost these buckets: it could not be
// sent, or its stream broke, or nothing listened at the peer any more.
func (r *recorder) missedHandoff(buckets []engine.Moved) {
	for _, m := range buckets {
		if r.missed == nil {
			r.missed = map[uint64][]time.Duration{}
		}
		r.missed[m.Key.Hi] = append(r.missed[m.Key.Hi], r.s.w.now)
	}
}

// missedFor returns a missed handoff for each of key's buckets a handoff
// lost within convergeWithin before [from, to) or during it.
func (r *recorder) missedFor(key bucket.Key, from, to time.Duration) (faults []faultSpan) {
	for _, at := range r.missed[key.Hi] {
		if at < to && from < at+convergeWithin {
			faults = append(faults, faultSpan{kind: missedHandoff})
		}
	}
	return faults
}

func newRecorder(s *sim) *recorder {
	r := &recorder{s: s, convAt: -1}
	r.began = make([]time.Duration, len(s.sch.Faults))
	r.ended = make([]time.Duration, len(s.sch.Faults))
	for i := range r.began {
		r.began[i], r.ended[i] = -1, -1
	}
	if len(s.sch.Faults) == 0 {
		r.scheduleConvergence(0)
	}
	return r
}

func (r *recorder) started(c *check) { r.checks = append(r.checks, c) }

func (r *recorder) faultBegan(i int) { r.began[i] = r.s.w.now }

func (r *recorder) faultEnded(i int) {
	if r.ended[i] >= 0 {
		return
	}
	r.ended[i] = r.s.w.now
	r.nEnded++
	if r.nEnded == len(r.ended) {
		r.scheduleConvergence(r.s.w.now)
	}
}

func (r *recorder) scheduleConvergence(from time.Duration) {
	at := from + convergeWithin
	if at > r.s.cfg.Duration {
		return
	}
	r.convAt = at
	r.s.w.at(at, func() {
		if ok, unsettled, why := r.s.converged(); !ok {
			kind := "convergence"
			if unsettled {
				kind = "unsettled"
			}
			r.bad = append(r.bad, Violation{kind, fmt.Sprintf("%v after the last fault ended (at %v): %s", convergeWithin, from, why)})
		}
	})
}

func (r *recorder) answer(c *check, d bucket.Decision, decidedAt time.Duration, how int) {
	r.answers++
	k := c.k
	if d.Allowed {
		k.admits = append(k.admits, admit{at: decidedAt, hits: c.req.Hits, how: how})
	} else {
		k.denies = append(k.denies, deny{at: decidedAt, retry: d.RetryAfter, how: how})
	}
	now := r.s.w.now
	if now > c.deadline && !r.excused(c) {
		r.bad = append(r.bad, Violation{"deadline", fmt.Sprintf("key %d: check at %v on %s answered at %v, past its deadline", k.spec.Index, c.start, c.entry.id, now)})
	}
	r.s.w.record('A', int64(k.spec.Index), int64(c.entry.slot), b2i(d.Allowed), int64(how), d.Remaining)
	if r.s.cfg.Trace != nil {
		r.s.tracef("key %d %s on %s allowed=%v remaining=%d decided at %v", k.spec.Index, [...]string{"owner", "fallback"}[how], c.entry.id, d.Allowed, d.Remaining, decidedAt)
	}
}

func (r *recorder) failed(c *check, err error) {
	r.failed_++
	r.s.w.record('E', int64(c.k.spec.Index))
	c.failed = err
}

// excused: the check's node was paused or crashed while it ran.
func (r *recorder) excused(c *check) bool {
	n := c.entry
	return n.status == down || n.pausedAt >= c.start
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// finish runs the oracle's end-of-run checks into res.
func (s *sim) finish(res *Result) {
	r := s.rec
	res.Worst = map[string]Worst{}
	for _, c := range r.checks {
		if !c.done && c.failed == nil && !r.excused(c) && c.deadline < s.cfg.Duration {
			r.bad = append(r.bad, Violation{"deadline", fmt.Sprintf("key %d: check at %v on %s never answered", c.k.spec.Index, c.start, c.entry.id)})
		}
	}
	res.Checks = r.answers
	nodes := s.sch.Slots
	for _, k := range s.keys {
		// Answers are recorded as they reach their callers; the windows
		// are of when the owner decided, so order by that (seed 54952: an
		// admission decided before a denial, answered after it, was left
		// out of the denial's window).
		slices.SortStableFunc(k.admits, func(a, b admit) int { return cmp.Compare(a.at, b.at) })
		slices.SortStableFunc(k.denies, func(a, b deny) int { return cmp.Compare(a.at, b.at) })
		for _, a := range k.admits {
			res.Admitted += a.hits
		}
		s.checkOver(k, nodes, res)
		s.checkUnder(k)
	}
	res.Violations = r.bad
}

// exactBound is what one exact limiter of req's shape admits in a
// window.
func exactBound(req bucket.Request) int64 {
	switch req.Algorithm {
	case bucket.StrictWindow, bucket.SlidingLog:
		return req.Limit
	case bucket.TokenBucket, bucket.GCRA:
		b := req.Burst
		if b == 0 {
			b = req.Limit
		}
		return b + req.Limit
	}
	return 2 * req.Limit
}

// influence returns the faults whose influence touches [from, to), with
// how long each lasted.
func (s *sim) influence(from, to time.Duration) (faults []faultSpan) {
	r := s.rec
	for i, f := range s.sch.Faults {
		b, e := r.began[i], r.ended[i]
		if b < 0 {
			continue
		}
		if e < 0 {
			e = s.cfg.Duration
		}
		if b < to && from < e+convergeWithin {
			faults = append(faults, faultSpan{f.Kind, e - b})
		}
	}
	return faults
}

// splitBrain notes, after n's view changed, whether n and another running
// member each hold a majority while each counts the other failed.
func (r *recorder) splitBrain(n *node) {
	if !n.view.Quorum.OK() {
		return
	}
	for _, o := range r.s.slots {
		if o != nil && o != n && o.status == running && o.view != nil && o.view.Quorum.OK() &&
			n.view.Quorum.FailedIDs[o.id] && o.view.Quorum.FailedIDs[n.id] {
			r.brains = append(r.brains, r.s.w.now)
			return
		}
	}
}

// splitBrained reports whether gossip was split-brained within
// convergeWithin before [from, to) or during it.
func (r *recorder) splitBrained(from, to time.Duration) bool {
	for _, at := range r.brains {
		if at < to && from < at+convergeWithin {
			return true
		}
	}
	return false
}

// faultSpan is a fault that happened: its kind and how long it lasted.
type faultSpan struct {
	kind FaultKind
	dur  time.Duration
}

// maxSuspicion is the longest suspicion timeout a schedule draws.
const maxSuspicion = 3 * time.Second

// stepDownWithin is how long a member cut off from the others may go on
// deciding, as the owner of its keys, after the cut: until it has declared
// enough of them dead to see no majority. It probes one member per
// ProbeInterval, and must lose half of them, each after its suspicion
// timeout.
func stepDownWithin(nodes int) time.Duration {
	return time.Duration(nodes/2+1)*ProbeInterval + ProbeTimeout + maxSuspicion
}

// factor is DESIGN §6's bound, as a multiple of one exact limiter's, for
// the faults that touch a window of length w, and the class it is
// reported under. Faults compose by adding what each costs beyond L:
// each loses at most what its own row says (an owner lost twice in one
// window, paused and then crashed, forgets twice).
func factor(faults []faultSpan, nodes int, w time.Duration) (float64, string) {
	switch len(faults) {
	case 0:
		return 1, "none"
	case 1:
		return single(faults[0], nodes, w)
	}
	f := 1.0
	for _, fs := range faults {
		one, _ := single(fs, nodes, w)
		f += one - 1
	}
	return f, "compound"
}

// single is factor for one fault.
func single(f faultSpan, nodes int, w time.Duration) (float64, string) {
	n := float64(nodes)
	k := f.kind
	switch k {
	case missedHandoff:
		// The new owner starts fresh after HandoffWait: one extra L.
		return 2, k.String()
	case Join, Leave, Rolling:
		// "L, plus refill", less the one fresh share §6 owns up to: a
		// node that missed its deadline while it knew nothing of the key
		// yet.
		return 1 + 1/n, k.String()
	case Partition, OneWay, Pause:
		if w < stepDownWithin(nodes) {
			// A cut-off owner decides on until it steps down, and its
			// successor's takeover share lasts one window: for windows
			// shorter than that overlap both sides admit a whole L in some
			// window.
			return 2, k.String() + " (short window)"
		}
	}
	return 2 - 1/n, k.String()
}

// windowOf is the rolling window the over-admission check uses: the
// key's, shortened by the fastest drift.
func windowOf(w time.Duration) time.Duration {
	return time.Duration(int64(w) / (1_000_000 + MaxDrift) * 1_000_000)
}

func (s *sim) checkOver(k *keyState, nodes int, res *Result) {
	b := exactBound(k.req)
	w := windowOf(k.req.Window)
	var sum int64
	j := 0
	reported := false
	for i, a := range k.admits {
		for j < len(k.admits) && k.admits[j].at < a.at+w {
			sum += k.admits[j].hits
			j++
		}
		faults := append(s.influence(a.at, a.at+w), s.rec.missedFor(k.key, a.at, a.at+w)...)
		f, class := factor(faults, nodes, k.req.Window)
		if class != "none" && s.rec.splitBrained(a.at, a.at+w) {
			// A second owner until views converge: one more L.
			f, class = f+1, "split-brain"
		}
		bound := int64(float64(b) * f)
		if f > 1 && k.req.Limit < int64(nodes) {
			// A share is never less than one hit (Provisional.Lend), so
			// for limits below N each other node may lend itself a whole
			// hit a window, one more for the burst algorithms: §6's
			// formulas hold only from L ≥ N.
			bound = max(bound, b+2*(int64(nodes)-1))
		}
		report := class
		if f > 1 && k.req.Limit < int64(nodes) {
			report += ", L < N" // shares of one hit: §6's formulas hold from L ≥ N
		}
		if ratio := float64(sum) / float64(b); ratio > res.Worst[report].Factor {
			res.Worst[report] = Worst{Admitted: sum, Limit: b, Factor: ratio, Key: k.spec.Index}
		}
		if sum > bound && !reported {
			reported = true
			s.rec.bad = append(s.rec.bad, Violation{"over-admission", fmt.Sprintf("key %d (%s): %d admitted in the window from %v, bound %d (%s: %.3f × %d; %d by fallback)",
				k.spec.Index, k.spec, sum, a.at, bound, class, f, b, fallbacks(k.admits[i:j]))})
		}
		sum -= a.hits
	}
}

func fallbacks(as []admit) int {
	n := 0
	for _, a := range as {
		if a.how == byFallback {
			n++
		}
	}
	return n
}

func (s *sim) checkUnder(k *keyState) {
	if k.req.Algorithm != bucket.StrictWindow && k.req.Algorithm != bucket.SlidingLog {
		return
	}
	w := k.req.Window
	long := w + w*2*MaxDrift/1_000_000 + w/6 + 10*time.Millisecond
	capacity := k.req.Limit
	need := capacity - k.req.Hits + 1
	j, i := 0, 0 // admits in (d.at-long, d.at]
	var sum int64
	for _, d := range k.denies {
		for j < len(k.admits) && k.admits[j].at <= d.at {
			sum += k.admits[j].hits
			j++
		}
		for i < j && k.admits[i].at <= d.at-long {
			sum -= k.admits[i].hits
			i++
		}
		if d.how != byOwner || d.at-long < s.loadFrom() || len(s.influence(d.at-long, d.at+1)) > 0 {
			continue
		}
		if sum < need {
			s.rec.bad = append(s.rec.bad, Violation{"under-admission", fmt.Sprintf("key %d (%s): denied at %v with %d admitted in the %v before, want at least %d",
				k.spec.Index, k.spec, d.at, sum, long, need)})
			return
		}
	}
}
