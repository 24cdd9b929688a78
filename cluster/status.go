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
// page can show rates without keeping state per viewer.
type rates struct {
	// mu guards samples.
	mu      sync.Mutex
	samples []rateSample // the last rateWindow+1, oldest first
}

type rateSample struct {
	at             time.Time
	checks, denied uint64
}

const rateWindow = 5 // seconds

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
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, s)
	if len(r.samples) > rateWindow+1 {
		r.samples = r.samples[1:]
	}
}

// now returns checks per second and the share denied over the window.
func (r *rates) now() (perSecond, denied float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) < 2 {
		return 0, 0
	}
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	checks := float64(last.checks - first.checks)
	if checks == 0 {
		return 0, 0
	}
	return checks / last.at.Sub(first.at).Seconds(), float64(last.denied-first.denied) / checks
}

// Status is what the status page shows about this node and the members it
// sees.
func (n *Node) Status() transport.Status {
	v := n.view.Load()
	shares := v.ring.Shares()
	self, members := n.Members()
	st := transport.Status{Node: self, Ready: n.Ready(), Keys: n.store.Len(), Now: time.Now(), Events: n.events.newestFirst()}
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
	s := n.Stats()
	st.Fallbacks = map[string]uint64{"local": s.FallbackLocal, "open": s.FallbackOpen, "closed": s.FallbackClosed}
	return st
}
