package chaos

import (
	"context"
	"fmt"
	"time"
)

func one(Run) int  { return 1 }
func none(Run) int { return 0 }

// Scenarios is the suite, in the order of the report.
func Scenarios() []Scenario {
	return []Scenario{
		{
			Name: "split-2/1", Description: "3 nodes split into n0,n1 | n2 for the fault's length, then healed",
			Nodes: 3, After: 3, FreshStarts: one,
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.Partition([]string{"n0", "n1"}, []string{"n2"})
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "split-3/2", Description: "5 nodes split into n0,n1,n2 | n3,n4, then healed",
			Nodes: 5, After: 5, FreshStarts: one,
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.Partition([]string{"n0", "n1", "n2"}, []string{"n3", "n4"})
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "owner-isolated", Description: "5 nodes; n0, owner of a fifth of the keys, cut off alone while its callers keep calling it",
			Nodes: 5, After: 5, FreshStarts: one,
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.Partition([]string{"n0"}, []string{"n1", "n2", "n3", "n4"})
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "one-way-cut", Description: "3 nodes; traffic from n0 to n1 dropped, n1 to n0 still flows",
			Nodes: 3, After: 3, FreshStarts: one,
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.Cut("n0", "n1")
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "loss-10%", Description: "3 nodes; 10% of packets lost on every link (lost stream segments arrive 200 ms late)",
			Nodes: 3, After: 3, FreshStarts: one,
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.SetAll(c.Names(), Link{Loss: 0.10})
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "latency-100ms", Description: "3 nodes; 100 ms ± 50 ms one-way on every link",
			Nodes: 3, After: 3, FreshStarts: one,
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				c.Net.SetAll(c.Names(), Link{Latency: 50 * time.Millisecond, Jitter: 100 * time.Millisecond})
				sleep(ctx, r.FaultFor)
				return nil
			},
		},
		{
			Name: "flapping", Description: "3 nodes; n2 cut off and back every second",
			Nodes: 3, After: 3,
			FreshStarts: func(r Run) int { return flaps(r) },
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
			Nodes: 3, After: 3, FreshStarts: one,
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
			Nodes: 3, After: 3, FreshStarts: none,
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
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
			},
		},
		{
			Name: "node-added", Description: "3 nodes; a fourth joins under load",
			Nodes: 3, After: 4, FreshStarts: none,
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				return c.Add("n3")
			},
		},
		{
			Name: "pause-5s", Description: "3 nodes; n1 stalls for 5 s (nothing in or out), then resumes",
			Nodes: 3, After: 3, FreshStarts: one,
			Fault: func(ctx context.Context, c *Cluster, r Run) error {
				return c.Pause(ctx, "n1", 5*time.Second)
			},
		},
	}
}

// flaps is how many cut-and-restore cycles of 2 s fit the fault.
func flaps(r Run) int { return max(int(r.FaultFor/(2*time.Second)), 1) }
