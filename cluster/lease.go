package cluster

import (
	"github.com/drlimit/drl/internal/hotkeys"
	"github.com/drlimit/drl/internal/ownership"
	"github.com/drlimit/drl/internal/peer"
)

// grantLease spends up to want more identical checks on a key this node
// owns and has just admitted, for the forwarder to answer itself.
func (n *Node) grantLease(c peer.OwnedCheck, want int) int {
	want = min(want, int(ownership.Capacity(c.Request)/hotkeys.LeaseShareOfBurst/max(c.Request.Hits, 1)), hotkeys.LeaseMax)
	if want <= 0 {
		return 0
	}
	rep, err := n.store.CheckKey(c.Key, c.Request, want)
	if err != nil {
		return 0
	}
	n.stats.leasesGranted.Add(uint64(rep.Admitted))
	return rep.Admitted
}
