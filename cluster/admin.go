package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/transport"
)

var _ transport.Admin = (*Node)(nil)

// Reset forgives (userID, action): every member of this node's ring drops
// its buckets for the key under every algorithm, its cached denials and
// its leases, so the next check starts from a full bucket. It returns how
// many live buckets were dropped and the members that confirmed; a member
// that could not be reached within ctx is left out, and the error says
// which, beside the partial answer. A bucket on its way in a handoff at that moment survives the
// reset (DESIGN.md §13).
func (n *Node) Reset(ctx context.Context, userID, action string) (drl.Reset, error) {
	if err := bucket.ValidateIDs(userID, action); err != nil {
		return drl.Reset{}, err
	}
	if n.life.closed.Load() {
		return drl.Reset{}, drl.ErrClosed
	}
	key := n.hash(userID, action)
	n.topDenied.Forget(userID, action)
	v := n.own.view.Load()
	var (
		mu        sync.Mutex
		dropped   = n.resetKey(key)
		confirmed = []string{n.cfg.Name}
		errs      []error
		wg        sync.WaitGroup
	)
	for id, p := range v.peers {
		wg.Go(func() {
			k, err := p.ResetKey(ctx, key)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			dropped += k
			confirmed = append(confirmed, v.Members[id].Name)
		})
	}
	wg.Wait()
	slices.Sort(confirmed)
	if len(errs) > 0 {
		return drl.Reset{Dropped: dropped, ConfirmedBy: confirmed}, fmt.Errorf("%w: reset reached %d of %d members: %w", drl.ErrNoOwner, len(confirmed), len(v.peers)+1, errs[0])
	}
	n.log.Info("key reset", "dropped", dropped, "members", len(confirmed))
	return drl.Reset{Dropped: dropped, ConfirmedBy: confirmed}, nil
}

// resetKey drops everything this node keeps for key, for a Reset here or
// at another member.
func (n *Node) resetKey(key bucket.Key) int {
	v := n.own.view.Load()
	dropped := n.store.Reset(key)
	n.lastAnswers.Forget(key)
	n.own.prov.Reset(key)
	if v.deny != nil {
		v.deny.Forget(key)
	}
	if v.leases != nil {
		v.leases.Forget(key)
	}
	return dropped
}

// TopDenied returns this node's name and the up to limit keys it denied
// most often lately, most first: counted where checks enter, from the
// last few minutes (counts halve every minute).
func (n *Node) TopDenied(limit int) (string, []drl.DeniedKey) {
	return n.cfg.Name, n.topDenied.Top(limit)
}
