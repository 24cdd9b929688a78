package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/internal/ownership"
	"github.com/drlimit/drl/internal/peer"
	"github.com/drlimit/drl/ring"
	"github.com/drlimit/drl/transport"
)

// How a check finds its answer while ownership moves (DESIGN.md §8):
//
//   - A node that holds a live bucket for a key it owns answers from it.
//   - At a ring change every member fences off the keys it lost (the store
//     refuses them), hands their buckets to their new owners, and then
//     tells every member it is done for that ring. A new owner that holds
//     nothing for a key it gained waits, for at most HandoffWait, until
//     every member has said so: only then can it know no bucket for the key
//     is still on its way, or still being spent by a member whose view is
//     behind.
//   - A node that neither owns nor holds the key forwards it once, as
//     MODE_PROXIED, to the owner in its own ring (or, while it leaves, in
//     the ring without itself). A proxied check is never forwarded again.

// Check spends req.Hits from the bucket of (req.UserID, req.Action) at the
// key's owner, which may be this node, and returns the decision. It is
// CheckWith with the node's configured drl.FailPolicy.
func (n *Node) Check(ctx context.Context, req bucket.Request) (bucket.Decision, error) {
	return n.CheckWith(ctx, req, drl.CheckOptions{})
}

// CheckWith is Check with options for this check: what to answer if the
// owner cannot be reached within the check's deadline (CheckTimeout, or
// ctx's if earlier; drl.FailDefault means Config.FailPolicy), and shadow mode.
// The decision says what decided it (DecidedBy: the owner, this node's
// deny cache or lease, or the fail policy, with FallbackReason saying why),
// and its ResetAfter is never more than req.Window.
// Errors: bucket.ErrInvalidArgument (bad input; nothing is spent),
// drl.ErrClosed, ctx's cancellation, or drl.ErrNoOwner only when the fallback
// itself cannot decide. It implements drl.Limiter.
func (n *Node) CheckWith(ctx context.Context, req bucket.Request, opts drl.CheckOptions) (bucket.Decision, error) {
	var d bucket.Decision
	err := n.checkPolicy(ctx, req, opts.FailPolicy, &d)
	n.metrics.count(req.Algorithm, d, err)
	if err == nil && !d.Allowed {
		n.topDenied.Record(req.UserID, req.Action)
		if opts.Shadow {
			n.stats.shadowDenied.Add(1)
			d.Allowed, d.Shadowed = true, true
		}
	}
	return d, err
}

// CheckAll checks several limits as one request, such as 10 per second
// and 1000 per hour: it is allowed only if every limit admits (a limit in
// shadow mode always does), and a denied request spends nothing, except
// in a race described at checkAllWith. It takes one round trip
// for a single limit and two otherwise. It implements drl.Limiter.
func (n *Node) CheckAll(ctx context.Context, checks []drl.LimitCheck) (drl.MultiDecision, error) {
	if len(checks) == 0 || len(checks) > drl.MaxLimitsPerCheck {
		return drl.MultiDecision{}, &bucket.ArgumentError{Field: "limits",
			Reason: fmt.Sprintf("%d limits; want 1 to %d", len(checks), drl.MaxLimitsPerCheck)}
	}
	allowed, ds, err := checkAllWith(ctx, checks, func(ctx context.Context, req bucket.Request, opts drl.CheckOptions) (bucket.Decision, error) {
		if !req.DryRun || len(checks) == 1 {
			d, err := n.CheckWith(ctx, req, opts)
			if err == nil && !d.Allowed && len(checks) > 1 {
				// Its dry run admitted: concurrent checks spent the limit
				// between the rounds, and the other limits stay spent.
				n.stats.multiRaces.Add(1)
			}
			return d, err
		}
		// A dry run that admits is not a check of its own: the second
		// round counts it. One that denies decides the request, and is
		// counted as the denial it is.
		var d bucket.Decision
		err := n.checkPolicy(ctx, req, opts.FailPolicy, &d)
		if err == nil && !d.Allowed {
			if opts.Shadow {
				d.Allowed, d.Shadowed = true, true
			} else {
				n.metrics.count(req.Algorithm, d, nil)
				n.topDenied.Record(req.UserID, req.Action)
			}
		}
		return d, err
	}, n.decidesLocally)
	return drl.MultiDecision{Allowed: allowed, Decisions: ds}, err
}

// decidesLocally reports whether a check on (userID, action) needs no hop
// now: this node owns the key, or the ids are bad and the check fails at
// once. It is a hint (the ring may change before the check runs).
func (n *Node) decidesLocally(userID, action string) bool {
	if bucket.ValidateIDs(userID, action) != nil {
		return true
	}
	return n.own.view.Load().Ring.Owner(n.hash(userID, action).Hi) == n.id
}

// checkPolicy is a check with the fail policy to answer it when no owner
// can. Its decision says who decided it, and never gives a ResetAfter
// longer than the window.
func (n *Node) checkPolicy(ctx context.Context, req bucket.Request, policy drl.FailPolicy, out *bucket.Decision) error {
	routed := n.own.view.Load()
	if err := n.check(ctx, req, out); err != nil {
		if !errors.Is(err, drl.ErrNoOwner) && !errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(ctx.Err(), context.Canceled) { // a caller that left needs no answer
			*out = bucket.Decision{}
			return err
		}
		why := out.FallbackReason
		if why == bucket.FallbackNone {
			why = bucket.FallbackOwnerUnreachable
		}
		d, err := n.fallback(req, policy, err, routed)
		if err != nil {
			*out = bucket.Decision{}
			return err
		}
		d.DecidedBy, d.FallbackReason = bucket.DecidedByFailPolicy, why
		*out = d
	}
	// A bucket may count a hit a little past its window (the strict window
	// rounds the newest hits up to their slot's end; the sliding window
	// weighs the previous window for one window more), and says so in the
	// ResetAfter its store expires it by. A caller reads ResetAfter as
	// "when this window ends" and must never see more than the window.
	if out.ResetAfter > req.Window && req.Window > 0 {
		out.ResetAfter = req.Window
	}
	return nil
}

// noOwner is check's answer when no owner can decide: err, which wraps
// drl.ErrNoOwner, with only why in the decision, for the fail policy's
// answer to say.
func noOwner(out *bucket.Decision, why bucket.FallbackReason, err error) error {
	out.FallbackReason = why
	return err
}

// check routes a check to its owner; errors that leave it without a
// decision are drl.ErrNoOwner or a context error. A decision says who
// made it (DecidedBy); with an error, FallbackReason may say why no owner
// could (owner_unreachable if it does not).
func (n *Node) check(ctx context.Context, req bucket.Request, out *bucket.Decision) error {
	if err := n.store.Validate(req); err != nil {
		return err
	}
	key := n.hash(req.UserID, req.Action)
	if n.life.closed.Load() {
		return n.checkLeaving(ctx, key, req, out)
	}
	// The deadline starts only when a check may wait on a peer: a timer
	// per check costs more than the rest of a local decision. A forwarded
	// check hands its deadline to the peer client, which keeps a pooled
	// timer; the rarer waits (the first ring, a reroute) derive a context
	// with the same deadline.
	var (
		// deadline is zero until the first wait, and when ctx's own
		// comes sooner.
		deadline time.Time
		started  bool
		cancel   context.CancelFunc
	)
	defer func() {
		if cancel != nil {
			cancel()
		}
	}()
	peerDeadline := func() time.Time {
		if !started && n.cfg.CheckTimeout > 0 {
			started = true
			if own, ok := ctx.Deadline(); !ok || time.Until(own) > n.cfg.CheckTimeout {
				deadline = time.Now().Add(n.cfg.CheckTimeout)
			}
		}
		return deadline
	}
	arm := func() {
		if d := peerDeadline(); cancel == nil && !d.IsZero() {
			ctx, cancel = context.WithDeadline(ctx, d)
		}
	}
	if v := n.own.view.Load(); v.Ring.Len() == 0 {
		// Just started: the first ring is moments away. Waiting for it,
		// within the check's deadline, costs one check some latency;
		// answering without it would take the fail policy with no idea of
		// the cluster's size.
		arm()
		if err := n.awaitRing(ctx); err != nil {
			return noOwner(out, bucket.FallbackNoRing, fmt.Errorf("%w: the node has no ring yet: %w", drl.ErrNoOwner, err))
		}
	}
	var lastErr error
	// A receiver that can do nothing with the check answers ErrNotOwner
	// (its ring differs from ours). Route again, but only on a newer view
	// (or after a short pause): a check never bounces between two fixed
	// views, and gives up after a few rounds, within its deadline.
	var v *view
	for attempt := range maxRoutes {
		if attempt > 0 {
			arm()
			if err := v.awaitNext(ctx, ownership.ReroutePause); err != nil {
				return fmt.Errorf("%w: ownership kept moving: %w", drl.ErrNoOwner, err)
			}
		}
		v = n.own.view.Load()
		owner, why := v.Route(key)
		switch {
		case why == ownership.NoRing:
			return noOwner(out, bucket.FallbackNoRing, fmt.Errorf("%w: the ring is empty", drl.ErrNoOwner))
		case why == ownership.NoMajority:
			return noOwner(out, bucket.FallbackNoMajority, fmt.Errorf("%w: no majority: this node sees %v", drl.ErrNoOwner, v.Quorum))
		case owner == n.id:
			n.stats.local.Add(1)
			if v.unsettled() || len(v.Takeovers) > 0 {
				arm() // the core may ask it to wait for the ring to settle
			}
			rep, err := n.decideOwned(ctx, v, key, req, 1)
			if errors.Is(err, engine.ErrFenced) || errors.Is(err, errViewChanged) {
				lastErr = err // the ring changed under this check; route it again
				continue
			}
			if err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
			d := ownership.Single(rep)
			d.DecidedBy = bucket.DecidedByOwner
			*out = d
			return nil
		}
		p, ok := v.peers[owner]
		if !ok {
			return fmt.Errorf("%w: no client for owner %s", drl.ErrNoOwner, owner)
		}
		if v.deny != nil {
			if d, ok := v.deny.Lookup(key, req); ok {
				n.stats.denyHits.Add(1)
				d.DecidedBy = bucket.DecidedByDenyCache
				*out = d
				return nil
			}
		}
		lease := 0
		if v.leases != nil && !req.DryRun {
			if d, ok := v.leases.Take(key, req); ok {
				n.stats.leaseHits.Add(1)
				d.DecidedBy = bucket.DecidedByLease
				*out = d
				return nil
			}
			lease = v.leases.Want(key, req)
		}
		n.stats.forwarded.Add(1)
		sentAt := n.cfg.Clock.Now()
		d, leased, err := p.CheckLease(ctx, peerDeadline(), key, req, lease)
		n.metrics.forwardTook(n.cfg.Clock.Now() - sentAt)
		if err != nil && lease > 0 {
			v.leases.Failed(key, req)
		}
		switch {
		case err == nil:
			d.DecidedBy = ownerUnlessSaid(d.DecidedBy)
			n.lastAnswers.Store(key, req, d, sentAt)
			if v.deny != nil && !d.Allowed {
				v.deny.Store(key, req, d, sentAt)
			}
			if v.leases != nil {
				if d.Allowed {
					v.leases.Admitted(key, req, d, leased)
				} else if lease > 0 {
					v.leases.Failed(key, req)
				}
			}
			*out = d
			return nil
		case errors.Is(err, bucket.ErrInvalidArgument):
			return err
		case ctx.Err() != nil:
			return fmt.Errorf("%w: check forwarded to %s: %w", drl.ErrNoOwner, owner, ctx.Err())
		case errors.Is(err, peer.ErrDeadline):
			// The check's own deadline, not a stream's: a frame that ran
			// out of RPCTimeout is routed again like any broken stream.
			return fmt.Errorf("%w: check forwarded to %s: %w", drl.ErrNoOwner, owner, err)
		default:
			// Not the owner (its ring differs), closed, or unreachable (a
			// member that just left, or died): our view is about to change,
			// so route again on the newer one.
			lastErr = fmt.Errorf("check forwarded to %s: %w", owner, err)
			continue
		}
	}
	return fmt.Errorf("%w: ownership kept moving: %w", drl.ErrNoOwner, lastErr)
}

const (
	// maxRoutes bounds how often one check is routed. The check's deadline
	// ends it sooner: ownership that keeps moving for a while (a rolling
	// restart on a loaded machine) is waited out within the deadline, not
	// handed to the fail policy after a few bounces.
	maxRoutes = 64
)

// fallback answers a check whose owner could not be reached (cause); the
// check was first routed on the view routed.
func (n *Node) fallback(req bucket.Request, policy drl.FailPolicy, cause error, routed *view) (bucket.Decision, error) {
	if policy == drl.FailDefault {
		policy = n.cfg.FailPolicy
	}
	n.log.Debug("owner unreachable; fail policy decides", "policy", policy, "err", cause)
	whole := ownership.Capacity(req)
	switch policy {
	case drl.FailOpen:
		n.stats.fallbackOpen.Add(1)
		return bucket.Decision{Allowed: true, Limit: whole, Remaining: max(whole-req.Hits, 0)}, nil
	case drl.FailClosed:
		n.stats.fallbackClosed.Add(1)
		// Nothing can be known about when the owner returns; suggest the
		// time one token takes, at most a second.
		retry := min(req.Window/time.Duration(req.Limit), time.Second)
		return bucket.Decision{Limit: whole, RetryAfter: max(retry, time.Millisecond)}, nil
	}
	n.stats.fallbackLocal.Add(1)
	v := n.own.view.Load()
	if v.Ring.Len() == 0 || n.life.closed.Load() {
		// A node that has not seen its cluster yet cannot size a share of
		// it (a share of one would be the whole limit), and one that is
		// leaving has handed its buckets away: both deny.
		return bucket.Decision{Limit: whole, RetryAfter: time.Second}, nil
	}
	if v != routed && v.Quorum.OK() {
		// Ownership moved while the check waited: its key may have been
		// taken over, or handed over, with what this node lent itself
		// for it already counted there. A share now would be lent past
		// that count; deny, and let the retry find the new owner.
		return bucket.Decision{Limit: whole, RetryAfter: ownership.ReroutePause}, nil
	}
	key := n.hash(req.UserID, req.Action)
	var know ownership.Knowledge
	know.Left, know.Known = n.lastAnswers.Remaining(key, req)
	if v.Ring.Owner(key.Hi) == n.id {
		// The owner itself, without a majority: it knows what is left.
		peek := req
		peek.Hits, peek.DryRun = 0, true
		if own, held, err := n.store.CheckKeyIfHeld(key, peek, 1); err == nil && held {
			left := ownership.Single(own).Remaining
			if know.Known {
				left = min(left, know.Left)
			}
			know = ownership.Knowledge{Left: left, Known: true}
		}
	}
	d, err := n.own.prov.Lend(v.View, key, req, know, v.unsettled(), n.cfg.Clock.Now())
	if err != nil {
		return bucket.Decision{}, fmt.Errorf("%w (and the local fallback failed: %w)", cause, err)
	}
	return d, nil
}

// awaitNext waits until v is replaced by a newer view, or pause passes.
// The pause is a back-off in real time, not a span of the node's clock:
// it only keeps a check from spinning while the ring settles.
func (v *view) awaitNext(ctx context.Context, pause time.Duration) error {
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-v.next:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// decideOwned answers count identical checks on a key this node owns in
// v: the core decides (ownership.View.DecideOwned), and the node waits
// where it says so.
func (n *Node) decideOwned(ctx context.Context, v *view, key bucket.Key, req bucket.Request, count int) (engine.Repeated, error) {
	settled := !v.unsettled()
	if settled && len(v.Takeovers) == 0 && !n.own.prov.Pending() {
		// What the core answers for every key of a settled view with no
		// takeovers and no lent hits waiting, without building its
		// question: one store call.
		return n.store.CheckKey(key, req, count)
	}
	o := ownership.Owned{Key: key, Req: req, Count: count, Settled: settled, Waited: settled, Now: n.cfg.Clock.Now()}
	if len(v.Takeovers) > 0 {
		o.Gone.Left, o.Gone.Known = n.lastAnswers.Remaining(key, req)
	}
	for {
		rep, step, err := v.DecideOwned(n.store, n.own.prov, n.id, o)
		switch {
		case err != nil || step == ownership.Decided:
			return rep, err
		case step == ownership.AwaitSettled:
			o.Settled, err = n.awaitSettled(ctx, v)
			o.Waited = true
		case step == ownership.AwaitConfirmed:
			err = v.awaitConfirmed(ctx)
			o.Settled, o.Waited = true, true
		}
		if err != nil {
			return engine.Repeated{}, err
		}
	}
}

// unsettled reports whether some peer of v has not yet reported its
// handoff for v's ring done: ownership is still moving.
func (v *view) unsettled() bool { return !v.done.Load() }

// awaitConfirmed waits until every peer of v reported v's ring, with no
// HandoffWait to cut it short: without that, the check is answered by the
// fail policy (drl.ErrNoOwner).
func (v *view) awaitConfirmed(ctx context.Context) error {
	select {
	case <-v.settled:
		return nil
	case <-v.next:
		return errViewChanged
	case <-ctx.Done():
		return fmt.Errorf("%w: taking over a failed member's key: not every member confirmed the ring: %w", drl.ErrNoOwner, ctx.Err())
	}
}

// errViewChanged says a newer view replaced the one a check was waiting
// on: the check must be routed again.
var errViewChanged = errors.New("cluster: the ring changed while the check waited")

// awaitSettled waits until v's handoffs are done, HandoffWait after the
// change at most, and reports whether they were. After that the key
// starts fresh here: a member that has not reported is unreachable or has
// not seen the change, and its history of the key is lost (the crash
// bound of DESIGN.md §6). The first check to see that warns, once per
// view. If a newer view replaces v first, it returns errViewChanged.
func (n *Node) awaitSettled(ctx context.Context, v *view) (bool, error) {
	n.stats.waitedHandoff.Add(1)
	select {
	case <-v.settled:
		return true, nil
	case <-v.waitOver:
		return false, nil // HandoffWait has passed: start fresh, without a word
	default:
	}
	select {
	case <-v.settled:
		return true, nil
	case <-v.next:
		return false, errViewChanged
	case <-v.waitOver:
		if v.warned.CompareAndSwap(false, true) {
			n.log.Warn("handoffs of a ring change did not settle in time; new keys start fresh", "ring", v.Version, "waiting_for", n.unsettledPeers())
		}
		return false, nil
	case <-ctx.Done():
		return false, fmt.Errorf("waiting for the handoffs of a ring change: %w", ctx.Err())
	}
}

// checkOwned applies checks other nodes forwarded here.
func (n *Node) checkOwned(ctx context.Context, checks []peer.OwnedCheck, results []peer.OwnedResult) {
	v := n.own.view.Load()
	leaving := n.own.leaving.Load()
	if !v.Quorum.OK() && leaving == nil {
		// Without a majority this node is no key's authority: the sender
		// routes again, and answers by its fail policy if it must.
		for i := range results {
			results[i].Err = transport.ErrNotOwner
		}
		return
	}
	for i, c := range checks {
		var rep engine.Repeated
		var err error
		switch {
		case c.Mode == peer.ModeProxied || (leaving == nil && v.Ring.Owner(c.Key.Hi) == n.id):
			rep, err = n.decideOwned(ctx, v, c.Key, c.Request, c.Count)
			if err == nil && c.Lease > 0 && rep.Admitted == c.Count && c.Request.Hits > 0 && !c.Request.DryRun {
				results[i].Leased = n.grantLease(c, c.Lease)
			}
		default:
			rep, err = n.answerNotOwned(ctx, v, leaving, c)
		}
		if errors.Is(err, engine.ErrFenced) || errors.Is(err, errViewChanged) {
			err = transport.ErrNotOwner
		}
		if err == nil {
			// The sender's answer says who decided: this node, from the
			// key's bucket, or the owner it passed the check on to.
			rep.LastAdmitted.DecidedBy = ownerUnlessSaid(rep.LastAdmitted.DecidedBy)
			rep.Denied.DecidedBy = ownerUnlessSaid(rep.Denied.DecidedBy)
		}
		results[i].Repeated, results[i].Err = rep, err
	}
}

// ownerUnlessSaid is what decided an answer from a member: what it says,
// or, from a member too old to say, the owner.
func ownerUnlessSaid(by bucket.DecidedBy) bucket.DecidedBy {
	if by == bucket.DecidedByUnknown {
		return bucket.DecidedByOwner
	}
	return by
}

// answerNotOwned handles a direct check on a key this node does not own in
// its ring (or is leaving): answer from a bucket it still holds, else pass
// the check on once to the owner it knows.
func (n *Node) answerNotOwned(ctx context.Context, v *view, leaving *ring.Ring, c peer.OwnedCheck) (engine.Repeated, error) {
	rep, held, err := n.store.CheckKeyIfHeld(c.Key, c.Request, c.Count)
	if err != nil || held {
		return rep, err
	}
	n.waitForMove(ctx, c.Key)
	r := v.Ring
	if leaving != nil {
		r = leaving
	}
	owner := r.Owner(c.Key.Hi)
	p := v.peers[owner]
	if owner == n.id || p == nil {
		return engine.Repeated{}, transport.ErrNotOwner
	}
	n.stats.proxied.Add(1)
	got, err := p.Send(ctx, c.Key, c.Request, peer.ModeProxied, c.Count)
	if err != nil && !errors.Is(err, bucket.ErrInvalidArgument) {
		// Whatever stopped the owner we know, the sender should route the
		// check again on its own, perhaps newer, view.
		return engine.Repeated{}, transport.ErrNotOwner
	}
	return got, err
}

// awaitRing waits until the node has a ring, for HandoffWait at most: the
// bound on a wait for ownership that moves rather than fails.
func (n *Node) awaitRing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.HandoffWait)
	defer cancel()
	for {
		v := n.own.view.Load()
		if v.Ring.Len() > 0 {
			return nil
		}
		select {
		case <-v.next:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// checkLeaving answers a check that entered a node on its way out: until
// its listeners close it passes the check on, once, to the key's owner in
// the ring without itself, after the handoff that carries the key's
// bucket there. A node that is gone (or halted) answers drl.ErrClosed.
func (n *Node) checkLeaving(ctx context.Context, key bucket.Key, req bucket.Request, out *bucket.Decision) error {
	leaving := n.own.leaving.Load()
	if leaving == nil || leaving.Len() == 0 || n.life.gone.Load() {
		return drl.ErrClosed
	}
	if n.cfg.CheckTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.CheckTimeout)
		defer cancel()
	}
	n.waitForMove(ctx, key)
	owner := leaving.Owner(key.Hi)
	p := n.own.view.Load().peers[owner]
	if p == nil {
		return noOwner(out, bucket.FallbackLeaving, fmt.Errorf("%w: leaving, and no member is left to ask", drl.ErrNoOwner))
	}
	var err error
	for attempt := range maxRoutes {
		if attempt > 0 {
			// The new owner refused: its ring still names this node, and
			// the leave will reach it in a moment.
			if waitErr := n.own.view.Load().awaitNext(ctx, ownership.ReroutePause); waitErr != nil {
				err = waitErr // the deadline, not the last refusal, ended it
				break
			}
		}
		n.stats.proxied.Add(1)
		var rep engine.Repeated
		rep, err = p.Send(ctx, key, req, peer.ModeProxied, 1)
		switch {
		case err == nil:
			d := ownership.Single(rep)
			d.DecidedBy = ownerUnlessSaid(d.DecidedBy)
			*out = d
			return nil
		case errors.Is(err, bucket.ErrInvalidArgument):
			return err
		case n.life.gone.Load():
			return drl.ErrClosed
		case !errors.Is(err, transport.ErrNotOwner):
			return noOwner(out, bucket.FallbackLeaving, fmt.Errorf("%w: leaving; check passed on to %s: %w", drl.ErrNoOwner, owner, err))
		}
	}
	return noOwner(out, bucket.FallbackLeaving, fmt.Errorf("%w: leaving; check passed on to %s: %w", drl.ErrNoOwner, owner, err))
}

// waitForMove waits, within ctx, for a handoff in flight that carries key.
func (n *Node) waitForMove(ctx context.Context, key bucket.Key) {
	ms := n.own.moving.Load()
	if ms == nil || ms.ring.Owner(key.Hi) == n.id {
		return
	}
	select {
	case <-ms.done:
	case <-ctx.Done():
	}
}

// unsettledPeers names the peers that have not reported done for the
// current ring.
func (n *Node) unsettledPeers() []string {
	n.own.mu.Lock()
	defer n.own.mu.Unlock()
	return n.own.core.Unsettled()
}
