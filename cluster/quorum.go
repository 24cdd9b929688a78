package cluster

import (
	"errors"
	"fmt"
	"slices"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/internal/ownership"
)

// A node acts as the authority for keys only while it sees a majority of
// the cluster (DESIGN.md §6); the count and its forgetting are the
// ownership core's (internal/ownership, quorum.go).

// Forget stops counting the failed member called name toward the
// cluster's size at once, instead of after Config.ForgetFailedAfter: the
// operator's word that it is gone for good (drlctl forget). A member that
// comes back under that name counts again. It returns drl.ErrNotFound if
// no member by that name is counted as failed.
func (n *Node) Forget(name string) error {
	members := n.describe(n.gossip.Members())
	n.own.mu.Lock()
	err := n.own.core.Forget(name, members, n.cfg.Clock.Now())
	n.own.mu.Unlock()
	if errors.Is(err, ownership.ErrNotFailed) {
		return fmt.Errorf("forget %q: %w: %w", name, drl.ErrNotFound, err)
	}
	if err != nil {
		return fmt.Errorf("forget %q: %w", name, err)
	}
	n.log.Info("failed member forgotten by the operator", "member", name)
	n.signalRebuild()
	return nil
}

// Quorum returns this node's count of the cluster as of its current ring.
func (n *Node) Quorum() drl.Quorum {
	q := n.own.view.Load().Quorum
	return drl.Quorum{Majority: q.OK(), Alive: len(q.Alive), Size: q.Size(), Failed: slices.Clone(q.Failed)}
}
