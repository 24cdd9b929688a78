package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/transport"
)

// eventLog keeps the last few things worth telling a person: ring changes
// and fallbacks. Repeats of the last event within a second are counted on
// it rather than added.
type eventLog struct {
	// mu guards list.
	mu   sync.Mutex
	list []transport.Event // oldest first
}

const maxEvents = 20

func (e *eventLog) add(what string) {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := len(e.list); n > 0 && e.list[n-1].What == what && now.Sub(e.list[n-1].At) < time.Second {
		e.list[n-1].Count++
		return
	}
	e.list = append(e.list, transport.Event{At: now, What: what, Count: 1})
	if len(e.list) > maxEvents {
		e.list = slices.Delete(e.list, 0, len(e.list)-maxEvents)
	}
}

func (e *eventLog) newestFirst() []transport.Event {
	e.mu.Lock()
	out := slices.Clone(e.list)
	e.mu.Unlock()
	slices.Reverse(out)
	return out
}

// rates samples the node's check counters every second, so that the status
// page can show rates without keeping state per viewer. It keeps the last
// historyLen+1 samples in a fixed ring: the rate now is over the newest
// rateWindow seconds of it, and the page's chart draws all of it.
type rates struct {
	// mu guards ring, next and n.
	mu   sync.Mutex
	ring [historyLen + 1]rateSample
	next int // where the next sample goes
	n    int // how many of ring hold samples; the oldest is n before next
}

type rateSample struct {
	at             time.Time
	checks, denied uint64
}

const (
	rateWindow = 5   // seconds
	historyLen = 300 // seconds: the status page's chart spans five minutes
)

// sampleLoop samples until ctx ends, and turns the fallbacks of each
// second into one event: the fallback path itself takes no lock and makes
// no string. Owned by the node's wait group.
func (n *Node) sampleLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last [3]uint64
	for {
		n.rates.sample(n.metrics)
		st := n.Stats()
		now := [3]uint64{st.FallbackLocal, st.FallbackOpen, st.FallbackClosed}
		for i, policy := range []drl.FailPolicy{drl.FailLocal, drl.FailOpen, drl.FailClosed} {
			if d := now[i] - last[i]; d > 0 {
				n.events.add(fmt.Sprintf("owner unreachable: fail policy %v answered %d checks", policy, d))
			}
		}
		last = now
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *rates) sample(m *metrics) {
	s := rateSample{at: time.Now()}
	if m != nil {
		s.checks, s.denied = m.totals()
	}
	r.add(s)
}

func (r *rates) add(s rateSample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ring[r.next] = s
	r.next = (r.next + 1) % len(r.ring)
	r.n = min(r.n+1, len(r.ring))
}

// newest returns the i-th newest sample, 0 being the newest. Requires mu
// held and i < n.
func (r *rates) newest(i int) rateSample {
	return r.ring[(r.next-1-i+2*len(r.ring))%len(r.ring)]
}

// now returns checks per second and the share denied over the window.
func (r *rates) now() (perSecond, denied float64) {
	r.mu.Lock()
	if r.n < 2 {
		r.mu.Unlock()
		return 0, 0
	}
	first, last := r.newest(min(rateWindow, r.n-1)), r.newest(0)
	r.mu.Unlock()
	p := ratePoint(first, last)
	return p.PerSecond, p.DeniedShare
}

// history returns one point per pair of successive samples, oldest first:
// up to historyLen. It is never nil, so that the JSON says [].
func (r *rates) history() []transport.RatePoint {
	samples := make([]rateSample, 0, len(r.ring)) // allocated outside the lock
	r.mu.Lock()
	for i := r.n - 1; i >= 0; i-- {
		samples = append(samples, r.newest(i))
	}
	r.mu.Unlock()
	out := make([]transport.RatePoint, 0, len(samples))
	for i := 1; i < len(samples); i++ {
		out = append(out, ratePoint(samples[i-1], samples[i]))
	}
	return out
}

// ratePoint is the rates between two samples, a before b. They stay finite
// (the JSON encoder refuses NaN and Inf) and in range, even if the clock
// or the counters went backwards: a sample was taken from counters read
// one after the other, not at one instant.
func ratePoint(a, b rateSample) transport.RatePoint {
	p := transport.RatePoint{At: b.at}
	secs := b.at.Sub(a.at).Seconds()
	if b.checks <= a.checks || secs <= 0 {
		return p
	}
	checks := float64(b.checks - a.checks)
	p.PerSecond = checks / secs
	if b.denied > a.denied {
		p.DeniedShare = min(float64(b.denied-a.denied)/checks, 1)
	}
	return p
}

// Status is what the status page shows about this node and the members it
// sees.
func (n *Node) Status() transport.Status {
	v := n.own.view.Load()
	shares := v.Ring.Shares()
	self, members := n.Members()
	st := transport.Status{Node: self, Ready: n.Ready(), Quorum: n.Quorum(), Keys: n.store.Len(), Now: time.Now(), Events: n.events.newestFirst()}
	for _, m := range members {
		ms := transport.MemberStatus{Member: m}
		for id, share := range shares {
			if id == m.Name || strings.HasPrefix(id, m.Name+"/") {
				ms.Share = share
			}
		}
		st.Members = append(st.Members, ms)
	}
	st.ChecksPerSecond, st.DeniedShare = n.rates.now()
	st.RateHistory = n.rates.history()
	s := n.Stats()
	st.Fallbacks = map[string]uint64{"local": s.FallbackLocal, "open": s.FallbackOpen, "closed": s.FallbackClosed}
	st.Warnings = n.warnings()
	return st
}
