package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/internal/ownership"
)

// A check goes the way cluster/check.go sends it: route on the entry
// node's view; decide an owned key with View.DecideOwned and its waits;
// forward any other to its owner, whose answer or NOT_OWNER comes back;
// route again on a newer view (or after ownership.ReroutePause), 64 routes at most;
// and at the deadline, the local fail policy (Provisional.Lend). Every
// wait is an event; the first of them to fire wins (gen).

var (
	errNotOwner    = errors.New("not owner")
	errViewChanged = errors.New("view changed")
	errDeadline    = errors.New("deadline")
)

// How an answer was reached.
const (
	byOwner = iota
	byFallback
)

type check struct {
	s        *sim
	k        *keyState
	entry    *node
	req      bucket.Request
	key      bucket.Key
	start    time.Duration
	deadline time.Duration
	routed   *sview // the entry's view when the check began
	v        *sview // the view of the latest route
	routes   int
	gen      int
	done     bool
	failed   error // the check got an error, not a decision
}

// waiter is a check parked on a node's view.
type waiter struct {
	v  *sview
	fn func()
}

// park calls fn once v settles or is replaced.
func (n *node) park(v *sview, fn func()) { n.waiters = append(n.waiters, &waiter{v: v, fn: fn}) }

// wake runs the waiters whose view settled or was replaced.
func (n *node) wake() {
	if len(n.waiters) == 0 {
		return
	}
	var due []*waiter
	keep := n.waiters[:0]
	for _, w := range n.waiters {
		if w.v.settled || w.v.replaced {
			due = append(due, w)
		} else {
			keep = append(keep, w)
		}
	}
	clear(n.waiters[len(keep):])
	n.waiters = keep
	for _, w := range due {
		w.fn()
	}
}

// begin starts c at its entry node.
func (c *check) begin() {
	n := c.entry
	c.routed = n.view
	c.gen++
	g := c.gen
	_ = g
	n.at(c.deadline, func() {
		if !c.done {
			c.gen++
			c.fallback()
		}
	})
	if n.closed {
		c.viaLeaving()
		return
	}
	c.route()
}

// route routes c once more on the entry's current view.
func (c *check) route() {
	n := c.entry
	if c.routes >= MaxRoutes {
		c.fallback()
		return
	}
	c.routes++
	c.gen++
	v := n.view
	c.v = v
	owner, why := v.Route(c.key)
	switch {
	case why != ownership.Routed:
		c.fallback()
		return
	case owner == n.id:
		g := c.gen
		n.decideOwned(v, c.key, c.req, c.deadline, func(rep engine.Repeated, err error) {
			if c.gen != g || c.done {
				return
			}
			c.settle(rep, err, n, time.Duration(0), false)
		})
		return
	}
	if _, ok := slices.BinarySearch(v.Peers, owner); !ok {
		c.fallback()
		return
	}
	c.forward(owner, false)
}

// forward sends c to owner and handles its answer.
func (c *check) forward(owner string, proxied bool) {
	n := c.entry
	g := c.gen
	sentAt := n.clock.Now()
	key, req, deadline := c.key, c.req, c.deadline
	back := func(rep engine.Repeated, err error, decidedAt time.Duration) {
		if c.gen != g || c.done {
			return
		}
		if err == nil {
			n.last.Store(key, req, ownership.Single(rep), sentAt)
		}
		c.settle(rep, err, n, decidedAt, true)
	}
	n.send(owner, false, func(dst *node) {
		dst.serve(key, req, proxied, deadline, func(rep engine.Repeated, err error) {
			decidedAt := dst.s.w.now
			dst.send(n.id, false, func(*node) { back(rep, err, decidedAt) }, nil)
		})
	}, func() { back(engine.Repeated{}, errNotOwner, 0) })
}

// settle takes an answer (from n itself, or from a forward: remote).
func (c *check) settle(rep engine.Repeated, err error, n *node, decidedAt time.Duration, remote bool) {
	switch {
	case err == nil:
		if !remote {
			decidedAt = c.s.w.now
		}
		c.answer(ownership.Single(rep), decidedAt, byOwner)
	case errors.Is(err, errDeadline):
		c.fallback()
	case errors.Is(err, errNotOwner), errors.Is(err, errViewChanged), errors.Is(err, engine.ErrFenced):
		c.reroute()
	default:
		c.s.rec.failed(c, err)
		c.done = true
	}
}

// reroute routes c again once the entry's view changes, or after
// ownership.ReroutePause (cluster's awaitNext).
func (c *check) reroute() {
	n := c.entry
	c.gen++
	if c.routes >= MaxRoutes {
		c.fallback()
		return
	}
	if c.closedPath() {
		return
	}
	v := n.view
	if v != c.v {
		c.route()
		return
	}
	g := c.gen
	resume := func() {
		if c.gen == g && !c.done {
			c.route()
		}
	}
	n.park(v, func() {
		if v.replaced {
			resume()
		} else {
			n.park(v, func() { resume() }) // settled: still wait for the next view
		}
	})
	n.at(c.s.w.now+ownership.ReroutePause, resume)
}

// closedPath sends a check that is rerouted after its node started
// leaving the leaving way.
func (c *check) closedPath() bool {
	if !c.entry.closed {
		return false
	}
	c.viaLeaving()
	return true
}

// viaLeaving is cluster's checkLeaving: a leaving node passes the check
// on to the key's owner in the ring without itself.
func (c *check) viaLeaving() {
	n := c.entry
	if n.leaving == nil || n.leaving.Len() == 0 || n.status == down {
		c.s.rec.failed(c, errors.New("closed"))
		c.done = true
		return
	}
	owner := n.leaving.Owner(c.key.Hi)
	if _, ok := slices.BinarySearch(n.view.Peers, owner); !ok || c.routes >= MaxRoutes {
		c.fallback()
		return
	}
	c.routes++
	c.gen++
	c.v = n.view
	c.forward(owner, true)
}

// fallback answers c by the local fail policy (cluster.Node.fallback).
func (c *check) fallback() {
	if c.done {
		return
	}
	n := c.entry
	v := n.view
	whole := ownership.Capacity(c.req)
	deny := bucket.Decision{Limit: whole, RetryAfter: time.Second}
	switch {
	case v.Ring.Len() == 0 || n.closed:
		c.answer(deny, c.s.w.now, byFallback)
		return
	case v != c.routed && v.Quorum.OK():
		deny.RetryAfter = ownership.ReroutePause
		c.answer(deny, c.s.w.now, byFallback)
		return
	}
	var know ownership.Knowledge
	know.Left, know.Known = n.last.Remaining(c.key, c.req)
	if v.Ring.Owner(c.key.Hi) == n.id {
		peek := c.req
		peek.Hits, peek.DryRun = 0, true
		if own, held, err := n.store.CheckKeyIfHeld(c.key, peek, 1); err == nil && held {
			left := ownership.Single(own).Remaining
			if know.Known {
				left = min(left, know.Left)
			}
			know = ownership.Knowledge{Left: left, Known: true}
		}
	}
	var d bucket.Decision
	var err error
	if h := c.s.cfg.Hooks.Lend; h != nil {
		d, err = h(n.prov, n.side, v.View, c.key, c.req, know, !v.settled)
	} else {
		d, err = n.prov.Lend(v.View, c.key, c.req, know, !v.settled, n.clock.Now())
	}
	if err != nil {
		c.s.rec.failed(c, err)
		c.done = true
		return
	}
	c.answer(d, c.s.w.now, byFallback)
}

func (c *check) answer(d bucket.Decision, decidedAt time.Duration, how int) {
	c.done = true
	c.gen++
	c.s.rec.answer(c, d, decidedAt, how)
}

// serve is cluster's checkOwned for one check forwarded to n.
func (n *node) serve(key bucket.Key, req bucket.Request, proxied bool, deadline time.Duration, reply func(engine.Repeated, error)) {
	v := n.view
	if !v.Quorum.OK() && n.leaving == nil {
		reply(engine.Repeated{}, errNotOwner)
		return
	}
	toNotOwner := func(rep engine.Repeated, err error) {
		if errors.Is(err, engine.ErrFenced) || errors.Is(err, errViewChanged) {
			err = errNotOwner
		}
		if errors.Is(err, errDeadline) {
			return // the sender has given up too
		}
		reply(rep, err)
	}
	if proxied || n.leaving == nil && v.Ring.Owner(key.Hi) == n.id {
		n.decideOwned(v, key, req, deadline, toNotOwner)
		return
	}
	// answerNotOwned: from a bucket still held, else pass it on once.
	rep, held, err := n.store.CheckKeyIfHeld(key, req, 1)
	if err != nil || held {
		toNotOwner(rep, err)
		return
	}
	r := v.Ring
	if n.leaving != nil {
		r = n.leaving
	}
	owner := r.Owner(key.Hi)
	if _, ok := slices.BinarySearch(v.Peers, owner); owner == n.id || !ok {
		reply(engine.Repeated{}, errNotOwner)
		return
	}
	n.send(owner, false, func(dst *node) {
		dst.serve(key, req, true, deadline, func(rep engine.Repeated, err error) {
			dst.send(n.id, false, func(*node) {
				if err != nil {
					err = errNotOwner
				}
				reply(rep, err)
			}, nil)
		})
	}, func() { reply(engine.Repeated{}, errNotOwner) })
}

// decideOwned answers a check on a key n owns in v, the core deciding
// (View.DecideOwned) and the node waiting where it says so, as cluster's
// decideOwned does; reply gets the answer, errViewChanged, or
// errDeadline.
func (n *node) decideOwned(v *sview, key bucket.Key, req bucket.Request, deadline time.Duration, reply func(engine.Repeated, error)) {
	s := n.s
	o := ownership.Owned{Key: key, Req: req, Count: 1, Now: n.clock.Now()}
	o.Settled = v.settled
	o.Waited = o.Settled
	if len(v.Takeovers) > 0 {
		o.Gone.Left, o.Gone.Known = n.last.Remaining(key, req)
	}
	finished := false
	finish := func(rep engine.Repeated, err error) {
		if !finished {
			finished = true
			reply(rep, err)
		}
	}
	var step func()
	step = func() {
		for range 8 {
			if finished {
				return
			}
			oo := o
			if s.cfg.Hooks.Owned != nil {
				oo = s.cfg.Hooks.Owned(oo)
			}
			rep, st, err := v.DecideOwned(n.store, n.prov, n.id, oo)
			if err != nil || st == ownership.Decided {
				if err == nil && req.Hits > 0 && n.healing && s.w.now < n.healedAt+HandoffWait {
					s.rec.bad = append(s.rec.bad, Violation{"healed-early", fmt.Sprintf(
						"%s decided key %x at %v, %v after it regained its majority, before its ring settled",
						n.id, key.Hi, s.w.now, s.w.now-n.healedAt)})
				}
				finish(rep, err)
				return
			}
			switch {
			case v.replaced:
				finish(engine.Repeated{}, errViewChanged)
				return
			case v.settled:
				o.Settled, o.Waited = true, true
				continue
			case st == ownership.AwaitSettled && s.w.now >= v.waitOver:
				o.Settled, o.Waited = false, true
				continue
			}
			// Park until the view settles or is replaced, HandoffWait
			// passes (AwaitSettled only), or the deadline.
			n.park(v, func() {
				if v.replaced {
					finish(engine.Repeated{}, errViewChanged)
					return
				}
				step()
			})
			if st == ownership.AwaitSettled {
				n.at(v.waitOver, func() {
					if !finished && !v.replaced && !v.settled {
						o.Waited = true
						step()
					}
				})
			}
			n.at(deadline, func() { finish(engine.Repeated{}, errDeadline) })
			return
		}
		finish(engine.Repeated{}, errors.New("sim: DecideOwned kept asking to wait"))
	}
	step()
}
