package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/drlimit/drl/internal/engine"
)

// scheduleFault puts fault i of the schedule on the world's queue. A
// fault that acts on a node that is not running when it begins, or that
// would leave no node running, is skipped (and says so in the trace):
// a cluster stopped whole without snapshots loses every count, which is
// the stated behaviour, not a bound to test.
func (s *sim) scheduleFault(i int) {
	f := s.sch.Faults[i]
	net := s.net
	s.w.at(f.Start, func() {
		s.w.record('F', int64(i), int64(f.Kind))
		s.tracef("fault %s", f)
		s.rec.faultBegan(i)
	})
	switch f.Kind {
	case Partition, OneWay:
		pairs := func(fn func(a, b int)) {
			for si, side := range f.Sides {
				for sj, other := range f.Sides {
					if si == sj || f.Kind == OneWay && (si != 0 || sj != 1) {
						continue
					}
					for _, a := range side {
						for _, b := range other {
							fn(a, b)
						}
					}
				}
			}
		}
		s.w.at(f.Start, func() { pairs(func(a, b int) { net.cut[a][b]++ }) })
		s.w.at(f.End, func() { pairs(func(a, b int) { net.cut[a][b]-- }); s.rec.faultEnded(i) })
	case LinkFault:
		s.w.at(f.Start, func() {
			for _, l := range f.Links {
				net.extra[l[0]][l[1]] += f.Delay
				net.loss[l[0]][l[1]] += f.Loss
			}
		})
		s.w.at(f.End, func() {
			for _, l := range f.Links {
				net.extra[l[0]][l[1]] -= f.Delay
				net.loss[l[0]][l[1]] -= f.Loss
			}
			s.rec.faultEnded(i)
		})
	case Crash:
		s.w.at(f.Start, func() {
			if n := s.running(f.Node); n != nil && s.othersRunning(n) {
				n.crash()
			}
			s.rec.faultEnded(i)
		})
	case Restart:
		var snap []engine.Moved
		crashed := false
		s.w.at(f.Start, func() {
			n := s.running(f.Node)
			if n == nil || !s.othersRunning(n) {
				return
			}
			if f.Snapshot {
				for m := range n.store.Buckets() {
					snap = append(snap, m)
				}
			}
			n.crash()
			crashed = true
		})
		s.w.at(f.End, func() {
			if crashed {
				s.startNode(f.Node, f.Snapshot, snap, f.Start)
			}
			s.rec.faultEnded(i)
		})
	case Pause:
		var stopped *node
		s.w.at(f.Start, func() {
			if n := s.running(f.Node); n != nil && s.othersRunning(n) {
				n.status = paused
				n.pausedAt = s.w.now
				stopped = n
				s.tracef("pause %s", n.id)
			}
		})
		s.w.at(f.End, func() {
			if stopped != nil && stopped.status == paused {
				s.tracef("resume %s", stopped.id)
				stopped.resume()
			}
			s.rec.faultEnded(i)
		})
	case Leave:
		left := false
		s.w.at(f.Start, func() {
			if n := s.running(f.Node); n != nil && !n.closed && s.othersRunning(n) {
				n.leave()
				left = true
			}
		})
		s.w.at(f.End, func() {
			if left && s.slots[f.Node].status == down {
				s.startNode(f.Node, false, nil, 0)
			}
			s.rec.faultEnded(i)
		})
	case Join:
		s.w.at(f.Start, func() {
			s.startNode(f.Node, false, nil, 0)
			s.rec.faultEnded(i)
		})
	case Rolling:
		s.w.at(f.Start, func() { s.rollFrom(i, 0) })
	}
}

// running returns the running (or paused) instance of slot, if it is not
// leaving.
func (s *sim) running(slot int) *node {
	n := s.slots[slot]
	if n == nil || n.status == down || n.closed {
		return nil
	}
	return n
}

// othersRunning reports whether some node other than n runs.
func (s *sim) othersRunning(n *node) bool {
	for _, o := range s.slots {
		if o != nil && o != n && o.status == running && !o.closed {
			return true
		}
	}
	return false
}

// rollFrom restarts slot and then the ones after it, one at a time, each
// paced by readiness: the next goes only once the new instance is in the
// ring of every running node and every one of them has settled.
func (s *sim) rollFrom(i, slot int) {
	for slot < len(s.slots) && s.running(slot) == nil {
		slot++
	}
	if slot >= len(s.slots) || s.w.now >= s.cfg.Duration-convergeWithin {
		s.rec.faultEnded(i)
		return
	}
	n := s.running(slot)
	if !s.othersRunning(n) {
		s.rec.faultEnded(i)
		return
	}
	n.leave()
	s.w.at(s.w.now+LeaveDrain+500*time.Millisecond, func() {
		fresh := s.startNode(slot, false, nil, 0)
		polls := 0
		var poll func()
		poll = func() {
			polls++
			if s.ready(fresh) || polls > 80 || fresh.status == down {
				s.rollFrom(i, slot+1)
				return
			}
			s.w.at(s.w.now+250*time.Millisecond, poll)
		}
		s.w.at(s.w.now+250*time.Millisecond, poll)
	})
}

// ready reports whether n is in the ring of every running node and each
// of them has settled: what /readyz waits for.
func (s *sim) ready(n *node) bool {
	for _, o := range s.slots {
		if o == nil || o.status != running || o.closed {
			continue
		}
		if !o.view.Ring.Has(n.id) || !o.view.settled {
			return false
		}
	}
	return true
}

// converged reports whether every running node holds the same ring, of
// exactly the running nodes, and has settled it, or, when the running
// nodes are no majority, whether each of them has stepped down; if not,
// why, and whether only settling is missing.
func (s *sim) converged() (ok, unsettled bool, why string) {
	var ids []string
	for _, n := range s.slots {
		if n != nil && n.status == running && !n.closed {
			ids = append(ids, n.id)
		}
	}
	slices.Sort(ids)
	// Crashed members count toward the cluster's size for longer than a
	// schedule runs (ForgetFailedAfter): once they are half of it or more,
	// the survivors have no majority, and converging means that each of
	// them says so and decides nothing, on whatever ring it kept.
	crashed := 0
	for _, n := range s.slots {
		if n != nil && n.status == down && !n.closed {
			crashed++
		}
	}
	if 2*len(ids) <= len(ids)+crashed {
		for _, n := range s.slots {
			if n != nil && n.status == running && !n.closed && n.view.Quorum.OK() {
				return false, false, fmt.Sprintf("%s claims a majority with %d of %d members running", n.id, len(ids), len(ids)+crashed)
			}
		}
		return true, false, ""
	}
	var ring uint64
	for _, n := range s.slots {
		if n == nil || n.status != running || n.closed {
			continue
		}
		v := n.view
		switch {
		case !slices.Equal(v.Ring.Members(), ids):
			return false, false, n.id + " has ring " + join(v.Ring.Members()) + ", want " + join(ids)
		case ring != 0 && v.ID != ring:
			return false, false, n.id + " has another ring id"
		case !v.settled && why == "":
			unsettled, why = true, n.id+" has not settled; waiting for "+join(n.core.Unsettled())
		}
		ring = v.ID
	}
	return why == "", unsettled, why
}

func join(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}
