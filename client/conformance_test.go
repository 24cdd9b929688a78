package client

import (
	"testing"

	"github.com/drlimit/drl/cluster/clustertest"
	"github.com/drlimit/drl/drltest"
)

// The client, plain and batching, keeps the contract of every limiter
// against a three-node cluster, and refuses checks once closed.
func TestClientConformance(t *testing.T) {
	addrs := clustertest.GRPCAddrs(clustertest.Start(t, 3, nil))
	for name, open := range map[string]func() (*Client, error){
		"plain":    func() (*Client, error) { return New(addrs) },
		"batching": func() (*Client, error) { return NewBatching(addrs, Batching{}) },
	} {
		t.Run(name, func(t *testing.T) {
			c, err := open()
			if err != nil {
				t.Fatal(err)
			}
			drltest.TestLimiter(t, c)
			c.Close()
			drltest.TestClosed(t, c)
		})
	}
}
