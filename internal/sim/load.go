package sim

import (
	"math/rand/v2"
	"time"

	"github.com/drlimit/drl/bucket"
)

// The load: each key's callers enter through every running node, at the
// key's rate, as a Poisson process of its own stream. A half-spent or
// exhausted key is spent that far in one burst just before the first
// fault (a fresh one sees no traffic until then), and every key is
// hammered from then on, with a herd of checks as each cut heals.

const action = "sim"

type keyState struct {
	spec   KeySpec
	key    bucket.Key
	req    bucket.Request
	r      *rand.Rand
	admits []admit
	denies []deny
}

type admit struct {
	at   time.Duration
	hits int64
	how  int
}

type deny struct {
	at    time.Duration
	retry time.Duration
	how   int
}

// loadFrom is when steady load starts: at the first fault, or soon after
// the start in a quiet schedule.
func (s *sim) loadFrom() time.Duration {
	if len(s.sch.Faults) > 0 {
		return s.sch.Faults[0].Start
	}
	return time.Second
}

func (s *sim) startLoad() {
	from := s.loadFrom()
	for _, spec := range s.sch.Keys {
		k := &keyState{spec: spec, r: stream(s.sch.Seed, streamLoad+uint64(spec.Index))}
		k.req = bucket.Request{UserID: spec.User, Action: action, Limit: spec.Limit, Burst: spec.Burst,
			Window: spec.Window, Hits: spec.Hits, Algorithm: spec.Algorithm}
		k.key = simHasher(spec.User, action)
		s.keys = append(s.keys, k)
		capacity := k.req.Limit
		if k.req.Burst > 0 {
			capacity = k.req.Burst
		}
		var burst int64
		switch spec.State {
		case HalfSpent:
			burst = (capacity/2 + spec.Hits - 1) / spec.Hits
		case Exhausted:
			burst = capacity/spec.Hits + 2
		}
		burstAt := from - 300*time.Millisecond
		if burst > 0 {
			s.w.at(burstAt, func() {
				for range burst {
					s.newCheck(k)
				}
			})
		}
		s.w.at(from+k.gap(), func() { s.arrive(k) })
	}
}

// healed is called when a node regains its majority: the callers that
// waited out the cut come back at once, up to half of each key's capacity
// in checks over the next 200 ms, through the healed node, which may
// still hold what it knew before the cut. At most one herd a second.
func (s *sim) healed(n *node) {
	if s.w.now < s.lastHerd+time.Second || s.w.now < s.loadFrom() {
		return
	}
	s.lastHerd = s.w.now
	for _, k := range s.keys {
		capacity := k.req.Limit
		if k.req.Burst > 0 {
			capacity = k.req.Burst
		}
		for i := range min(capacity/k.spec.Hits/2, maxHerd) {
			s.w.at(s.w.now+time.Duration(i)*herdSpacing, func() {
				if n.status == running {
					s.checkAt(k, n)
				}
			})
		}
	}
}

const (
	maxHerd     = 20
	herdSpacing = 10 * time.Millisecond
)

// gap draws the time to the key's next check.
func (k *keyState) gap() time.Duration {
	return time.Duration(k.r.ExpFloat64() / k.spec.Rate * float64(time.Second))
}

func (s *sim) arrive(k *keyState) {
	if s.w.now >= s.cfg.Duration-CheckTimeout-time.Millisecond {
		return
	}
	s.newCheck(k)
	s.w.at(s.w.now+k.gap(), func() { s.arrive(k) })
}

// newCheck starts one check of k at a running node picked by k's stream.
func (s *sim) newCheck(k *keyState) {
	var up []*node
	for _, n := range s.slots {
		if n != nil && n.status == running {
			up = append(up, n)
		}
	}
	pick := k.r.IntN(max(len(up), 1))
	if len(up) == 0 {
		return
	}
	s.checkAt(k, up[pick])
}

// checkAt starts one check of k at entry.
func (s *sim) checkAt(k *keyState, entry *node) {
	c := &check{s: s, k: k, entry: entry, req: k.req, key: k.key, start: s.w.now, deadline: s.w.now + CheckTimeout}
	s.rec.started(c)
	c.begin()
}
