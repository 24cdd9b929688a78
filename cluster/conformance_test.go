package cluster_test

import (
	"context"
	"testing"

	"github.com/drlimit/drl/cluster/clustertest"
	"github.com/drlimit/drl/drltest"
)

// A node of a three-node cluster keeps the contract of every limiter,
// whichever member owns each key, and refuses checks once closed.
func TestNodeConformance(t *testing.T) {
	nodes := clustertest.Start(t, 3, nil)
	drltest.TestLimiter(t, nodes[1])
	nodes[2].Close(context.Background())
	drltest.TestClosed(t, nodes[2])
}
