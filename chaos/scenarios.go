package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// lostShare is the share of the limit a fault may add on a cluster of n:
// the side that lost a key's owner, n−1 members of n at most.
func lostShare(n int) func(Run) float64 {
	return func(Run) float64 { return float64(n-1) / float64(n) }
}

func none(Run) float64 { return 0 }

// Scenarios is the suite, in the order of the report.
func Scenarios() []Scenario {
	return []Scenario{
		{
			Name: "split-2/1", Description: "3 nodes split into n0,n1 | n2 for the fault's length, then healed",
			Nodes: 3, After: 3, Extra: lostShare(3),
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.Partition([]string{"n0", "n1"}, []string{"n2"})
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "split-3/2", Description: "5 nodes split into n0,n1,n2 | n3,n4, then healed",
			Nodes: 5, After: 5, Extra: lostShare(5),
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.Partition([]string{"n0", "n1", "n2"}, []string{"n3", "n4"})
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "owner-isolated", Description: "5 nodes; n0, owner of a fifth of the keys, cut off alone while its callers keep calling it",
			Nodes: 5, After: 5, Extra: lostShare(5),
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.Partition([]string{"n0"}, []string{"n1", "n2", "n3", "n4"})
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "one-way-cut", Description: "3 nodes; traffic from n0 to n1 dropped, n1 to n0 still flows",
			Nodes: 3, After: 3, Extra: lostShare(3),
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.Cut("n0", "n1")
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "loss-10%", Description: "3 nodes; 10% of packets lost on every link (lost stream segments arrive 200 ms late)",
			Nodes: 3, After: 3, Extra: lostShare(3),
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.SetAll(c.Names(), Link{Loss: 0.10})
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "latency-100ms", Description: "3 nodes; 100 ms ± 50 ms one-way on every link",
			Nodes: 3, After: 3, Extra: lostShare(3),
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.SetAll(c.Names(), Link{Latency: 50 * time.Millisecond, Jitter: 100 * time.Millisecond})
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "flapping", Description: "3 nodes; n2 cut off and back every second",
			Nodes: 3, After: 3,
			Extra: func(r Run) float64 { return float64(flaps(r)) * lostShare(3)(r) },
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				for range flaps(r) {
					c.Net.Partition([]string{"n0", "n1"}, []string{"n2"})
					sleep(ctx, time.Second)
					c.Net.Heal()
					sleep(ctx, time.Second)
				}
				return nil
			},
		},
		{
			Name: "crash-restart", Description: "3 nodes; n1 crashes (no leave, no handoff) and restarts after the fault's length",
			Nodes: 3, After: 3, Extra: lostShare(3),
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				if err := c.Kill("n1"); err != nil {
					return err
				}
				sleep(ctx, r.FaultFor)
				return c.Restart("n1")
			},
		},
		{
			Name: "rolling-restart", Description: "3 nodes; each leaves gracefully and restarts in turn",
			Nodes: 3, After: 3, Extra: none,
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				return rollingRestart(ctx, c)
			},
		},
		{
			Name: "node-added", Description: "3 nodes; a fourth joins under load",
			Nodes: 3, After: 4, Extra: none,
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				return c.Add("n3")
			},
		},
		{
			Name: "pause-5s", Description: "3 nodes; n1 stalls for 5 s (nothing in or out), then resumes",
			Nodes: 3, After: 3, Extra: lostShare(3),
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				return c.Pause(ctx, "n1", 5*time.Second)
			},
		},
	}
}

// flaps is how many cut-and-restore cycles of 2 s fit the fault.
func flaps(r Run) int { return max(int(r.FaultFor/(2*time.Second)), 1) }

// HotKeyRun is DefaultRun on one hot key, 1000 per hour, the shape of an
// operator's login limit under attack: refill is negligible, so every
// admission beyond the limit is the fault's.
func HotKeyRun(seed uint64) Run {
	r := DefaultRun(seed)
	r.Load = Load{Keys: 1, Limit: 1000, Window: time.Hour, Callers: 8, Interval: 4 * time.Millisecond}
	return r
}

// HotKeyScenarios put the fault where it hurts the hot key most: they find
// its owner first. Run them with HotKeyRun.
func HotKeyScenarios() []Scenario {
	third := func(Run) float64 { return 1.0 / 3 }
	return []Scenario{
		{
			Name: "hot-split-2/1-owner-majority", Description: "3 nodes; the hot key's owner and one other | the third",
			Nodes: 3, After: 3, Extra: third,
			Fault: splitAroundOwner(func(owner string, others []string) [][]string {
				return [][]string{{owner, others[0]}, others[1:]}
			}),
		},
		{
			Name: "hot-split-2/1-owner-alone", Description: "3 nodes; the hot key's owner cut off alone",
			Nodes: 3, After: 3, Extra: lostShare(3),
			Fault: splitAroundOwner(func(owner string, others []string) [][]string {
				return [][]string{{owner}, others}
			}),
		},
		{
			Name: "hot-split-1/1/1", Description: "3 nodes; every node cut off from the others",
			Nodes: 3, After: 3, Extra: lostShare(3),
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.Partition([]string{"n0"}, []string{"n1"}, []string{"n2"})
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "hot-split-2/2", Description: "4 nodes split in halves, the hot key's owner in one",
			Nodes: 4, After: 4, Extra: lostShare(4),
			Fault: splitAroundOwner(func(owner string, others []string) [][]string {
				return [][]string{{owner, others[0]}, others[1:]}
			}),
		},
		{
			Name: "hot-owner-killed", Description: "3 nodes; the hot key's owner crashes under load, and restarts after the fault",
			Nodes: 3, After: 3, Extra: lostShare(3),
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				owner, _, err := hotOwner(c)
				if err != nil {
					return err
				}
				if err := c.Kill(owner); err != nil {
					return err
				}
				sleep(ctx, r.FaultFor)
				return c.Restart(owner)
			},
		},
		{
			Name: "hot-rolling-restart", Description: "3 nodes; each leaves, restarts, and the next goes once all are ready",
			Nodes: 3, After: 3, Extra: none,
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				return rollingRestart(ctx, c)
			},
		},
	}
}

// splitAroundOwner partitions the cluster, for the fault's length, into
// the groups that place makes of the hot key's owner and the others.
func splitAroundOwner(place func(owner string, others []string) [][]string) func(context.Context, *Cluster, Run) error {
	return func(ctx context.Context, c *Cluster, r Run) error {
		owner, others, err := hotOwner(c)
		if err != nil {
			return err
		}
		c.Net.Partition(place(owner, others)...)
		sleep(ctx, r.FaultFor)
		return nil
	}
}

// hotOwner names the owner of the hot key (key 0 of a Load) and the other
// members.
func hotOwner(c *Cluster) (owner string, others []string, err error) {
	live := c.Live()
	if len(live) == 0 {
		return "", nil, errors.New("chaos: no live node")
	}
	o, err := c.Node(live[0]).OwnerOf("key-0", "chaos")
	if err != nil {
		return "", nil, err
	}
	for _, name := range c.Names() {
		if name != o.Member.Name {
			others = append(others, name)
		}
	}
	return o.Member.Name, others, nil
}

// rollingRestart restarts every node in turn, as a StatefulSet update
// does: the next goes down once every node is ready again.
func rollingRestart(ctx context.Context, c *Cluster) error {
	for _, name := range c.Names() {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.Leave(lctx, name)
		cancel()
		if err != nil {
			return fmt.Errorf("leave %s: %w", name, err)
		}
		if err := c.Restart(name); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err = c.WaitConverged(wctx, len(c.Names()))
		cancel()
		if err != nil {
			return fmt.Errorf("after restarting %s: %w", name, err)
		}
	}
	return nil
}
