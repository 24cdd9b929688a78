package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/hotkeys"
)

// With leases on, a forwarder hammering a hot key answers most admitted
// checks itself, admits no more than the limit, and at most one lease's
// worth less.
func TestLeasesCutHopsWithoutOverAdmission(t *testing.T) {
	nodes := startCluster(t, 2, func(c *Config) { c.Leases = true })
	a := nodes[0]
	user := userOwnedBy(t, a, "node-1")
	const limit, callers, each = 2000, 16, 200
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range each {
				d, err := a.Check(context.Background(), bucket.Request{UserID: user, Action: "api", Limit: limit,
					Window: time.Minute, Hits: 1, Algorithm: bucket.FixedWindow})
				if err != nil {
					t.Errorf("Check: %v", err)
					return
				}
				if d.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	st := a.Stats()
	t.Logf("%d checks: %d admitted, %d forwarded, %d answered from leases (%d granted by the owner)",
		callers*each, admitted.Load(), st.Forwarded, st.LeaseHits, nodes[1].Stats().LeasesGranted)
	if got := admitted.Load(); got > limit || got < limit-hotkeys.LeaseMax {
		t.Fatalf("admitted %d, want between %d and %d", got, limit-hotkeys.LeaseMax, limit)
	}
	if st.LeaseHits == 0 || st.Forwarded >= callers*each {
		t.Fatalf("leases answered %d checks and %d were forwarded: no hops saved", st.LeaseHits, st.Forwarded)
	}
}
