package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/ring"
	"github.com/drlimit/drl/transport"
)

// How a check finds its answer while ownership moves (DESIGN.md §3):
//
//   - A node that holds a live bucket for the key answers from it, owner or
//     not: until it has handed the bucket over, it is the only one with the
//     key's history.
//   - An owner that holds nothing for a key asks the key's previous owner
//     (MODE_PREVIOUS_OWNER) for a short while after a ring change, until
//     that member says its handoff is done. The previous owner answers
//     only if it still holds the bucket, waiting for a handoff in flight.
//   - A node that neither owns nor holds the key forwards it once, as
//     MODE_PROXIED, to the owner in its own ring (or, while it leaves, in
//     the ring without itself). A proxied check is never forwarded again.

// Check spends req.Hits from the bucket of (req.UserID, req.Action) at the
// key's owner, which may be this node, and returns the decision. Errors:
// bucket.ErrInvalidArgument (bad input; nothing is spent), ErrClosed,
// ErrNoOwner (wrapping the cause), or ctx's error. A check waits at most
// CheckTimeout unless ctx has an earlier deadline.
func (n *Node) Check(ctx context.Context, req bucket.Request) (bucket.Decision, error) {
	if n.closed.Load() {
		return bucket.Decision{}, ErrClosed
	}
	if err := n.store.Validate(req); err != nil {
		return bucket.Decision{}, err
	}
	key := n.hash(req.UserID, req.Action)
	// The deadline is armed only when a check may wait on a peer: a timer
	// per check costs more than the rest of a local decision.
	var cancel context.CancelFunc
	defer func() {
		if cancel != nil {
			cancel()
		}
	}()
	arm := func() {
		if cancel != nil || n.cfg.CheckTimeout <= 0 {
			return
		}
		if deadline, ok := ctx.Deadline(); !ok || time.Until(deadline) > n.cfg.CheckTimeout {
			ctx, cancel = context.WithTimeout(ctx, n.cfg.CheckTimeout)
		}
	}
	var lastErr error
	// A receiver that can do nothing with the check answers ErrNotOwner:
	// re-read our own ring and try once more, never more.
	for range 2 {
		v := n.view.Load()
		owner := v.ring.Owner(key.Hi)
		switch {
		case owner == "":
			return bucket.Decision{}, fmt.Errorf("%w: the ring is empty", ErrNoOwner)
		case owner == n.cfg.Name:
			n.local.Add(1)
			if n.previousOwner(v, key) != nil {
				arm()
			}
			rep, err := n.decideOwned(ctx, v, key, req, 1)
			if err != nil {
				return bucket.Decision{}, fmt.Errorf("cluster: %w", err)
			}
			return rep.decision(), nil
		}
		p, ok := v.peers[owner]
		if !ok {
			return bucket.Decision{}, fmt.Errorf("%w: no client for owner %s", ErrNoOwner, owner)
		}
		arm()
		d, err := p.Check(ctx, key, req)
		switch {
		case err == nil:
			return d, nil
		case errors.Is(err, transport.ErrNotOwner), errors.Is(err, transport.ErrClosed):
			lastErr = err
			continue
		case errors.Is(err, bucket.ErrInvalidArgument):
			return bucket.Decision{}, err
		case ctx.Err() != nil:
			return bucket.Decision{}, fmt.Errorf("cluster: check forwarded to %s: %w", owner, ctx.Err())
		default:
			return bucket.Decision{}, fmt.Errorf("%w: check forwarded to %s: %w", ErrNoOwner, owner, err)
		}
	}
	return bucket.Decision{}, fmt.Errorf("%w: ownership kept moving: %w", ErrNoOwner, lastErr)
}

// decideOwned answers count identical checks on a key this node owns.
func (n *Node) decideOwned(ctx context.Context, v *view, key bucket.Key, req bucket.Request, count int) (repeated, error) {
	rep, held, err := n.store.CheckKeyIfHeld(key, req, count)
	if err != nil || held {
		return repeated(rep), err
	}
	if prev := n.previousOwner(v, key); prev != nil {
		rep, err := prev.Send(ctx, key, req, transport.ModePrevious, count)
		if err == nil {
			n.askedPrevious.Add(1)
			return repeated(rep), nil
		}
		if !errors.Is(err, transport.ErrNotOwner) {
			// Unreachable: its history of the key is lost to us for now, and
			// the key starts fresh here (the crash bound of DESIGN.md §6).
			n.log.Debug("previous owner did not answer", "peer", prev.Name(), "err", err)
		}
	}
	rep, err = n.store.CheckKey(key, req, count)
	return repeated(rep), err
}

// previousOwner returns the client of the member that owned key before the
// last ring change, if it may still hold the key's bucket: it is still a
// member, it has not said its handoff is done, and the change is recent.
func (n *Node) previousOwner(v *view, key bucket.Key) *transport.Peer {
	if v.prev == nil || time.Since(v.changed) > n.cfg.HandoffWait {
		return nil
	}
	prev := v.prev.Owner(key.Hi)
	if prev == "" || prev == n.cfg.Name {
		return nil
	}
	p := v.peers[prev]
	if p == nil {
		return nil
	}
	n.doneMu.Lock()
	done := n.doneFrom[prev].After(v.changed)
	n.doneMu.Unlock()
	if done {
		return nil
	}
	return p
}

// CheckOwned applies checks other nodes forwarded here. It implements
// transport.Owner.
func (n *Node) CheckOwned(ctx context.Context, checks []transport.OwnedCheck, results []transport.OwnedResult) {
	v := n.view.Load()
	leaving := n.leaving.Load()
	for i, c := range checks {
		var rep repeated
		var err error
		switch {
		case c.Mode == transport.ModePrevious:
			rep, err = n.answerAsPrevious(ctx, c)
		case c.Mode == transport.ModeProxied || (leaving == nil && v.ring.Owner(c.Key.Hi) == n.cfg.Name):
			rep, err = n.decideOwned(ctx, v, c.Key, c.Request, c.Count)
		default:
			rep, err = n.answerNotOwned(ctx, v, leaving, c)
		}
		results[i] = transport.OwnedResult{Repeated: bucket.Repeated(rep), Err: err}
	}
}

// answerAsPrevious answers the new owner's question: do you still hold this
// key? A bucket that is being handed over right now is waited for.
func (n *Node) answerAsPrevious(ctx context.Context, c transport.OwnedCheck) (repeated, error) {
	rep, held, err := n.store.CheckKeyIfHeld(c.Key, c.Request, c.Count)
	if err != nil || held {
		return repeated(rep), err
	}
	n.waitForMove(ctx, c.Key)
	return repeated{}, transport.ErrNotOwner
}

// answerNotOwned handles a direct check on a key this node does not own in
// its ring (or is leaving): answer from a bucket it still holds, else pass
// the check on once to the owner it knows.
func (n *Node) answerNotOwned(ctx context.Context, v *view, leaving *ring.Ring, c transport.OwnedCheck) (repeated, error) {
	rep, held, err := n.store.CheckKeyIfHeld(c.Key, c.Request, c.Count)
	if err != nil || held {
		return repeated(rep), err
	}
	n.waitForMove(ctx, c.Key)
	r := v.ring
	if leaving != nil {
		r = leaving
	}
	owner := r.Owner(c.Key.Hi)
	p := v.peers[owner]
	if owner == n.cfg.Name || p == nil {
		return repeated{}, transport.ErrNotOwner
	}
	n.proxied.Add(1)
	got, err := p.Send(ctx, c.Key, c.Request, transport.ModeProxied, c.Count)
	return repeated(got), err
}

// waitForMove waits, within ctx, for a handoff in flight that carries key.
func (n *Node) waitForMove(ctx context.Context, key bucket.Key) {
	ms := n.moving.Load()
	if ms == nil || ms.ring.Owner(key.Hi) == n.cfg.Name {
		return
	}
	select {
	case <-ms.done:
	case <-ctx.Done():
	}
}

// repeated adds a helper to bucket.Repeated.
type repeated bucket.Repeated

// decision is the answer to a single check (count 1).
func (r repeated) decision() bucket.Decision {
	if r.Admitted > 0 {
		return r.LastAdmitted
	}
	return r.Denied
}
