package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/drlimit/drl/client"
)

// waitPoll is how often wait asks the nodes again, and waitAsk bounds one
// question.
const (
	waitPoll = 100 * time.Millisecond
	waitAsk  = time.Second
)

// nodeView is what one -addr node said when wait last asked it.
type nodeView struct {
	Addr   string `json:"addr"`
	Self   string `json:"self,omitempty"`
	InRing int    `json:"in_ring"` // members alive and in its ring
	Ready  bool   `json:"ready"`   // itself in its ring, with enough others
	Error  string `json:"error,omitempty"`
}

// defineWait waits, within the command's deadline, until every node named
// by -addr answers and sees at least -members members alive and in its
// ring, itself among them: what a script needs before its first check. A
// node in its own ring has joined (or has no one to join), as its /readyz
// says.
func defineWait(fs *flag.FlagSet) func(g globals) error {
	members := fs.Int("members", 0, "members each node must see alive and in its ring; 0 means as many as -addr names")
	return func(g globals) error {
		want := *members
		if want == 0 {
			want = len(g.addrs)
		}
		if want < 1 {
			return fmt.Errorf("%w: wait: -members %d: want 1 or more", errUsage, want)
		}
		// One client per node, each asked on its own. A node that is not
		// listening yet is retried within 0.5 s, not after gRPC's default
		// backoff of up to 2 minutes.
		opts := append([]grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: waitAsk,
		})}, g.dialOpts...)
		clients := make([]*client.Client, len(g.addrs))
		for i, a := range g.addrs {
			c, err := client.New([]string{a}, opts...)
			if err != nil {
				return err
			}
			defer c.Close()
			clients[i] = c
		}
		start := time.Now()
		for {
			views, ready := ask(g.ctx, g.addrs, clients, want)
			if ready {
				return g.print(map[string]any{"nodes": views}, func(w io.Writer) {
					var names []string
					for _, v := range views {
						names = append(names, v.Self)
					}
					took := time.Since(start).Round(time.Millisecond)
					if len(names) == 1 {
						fmt.Fprintf(w, "ready after %v: %s sees %d alive in its ring\n", took, names[0], views[0].InRing)
						return
					}
					fmt.Fprintf(w, "ready after %v: %s each see %d or more alive in their rings\n", took, strings.Join(names, ", "), want)
				})
			}
			select {
			case <-g.ctx.Done():
				var not []string
				for _, v := range views {
					switch {
					case v.Error != "":
						not = append(not, fmt.Sprintf("%s: %s", v.Addr, v.Error))
					case !v.Ready:
						not = append(not, fmt.Sprintf("%s (%s) sees %d of %d in its ring", v.Addr, v.Self, v.InRing, want))
					}
				}
				return fmt.Errorf("wait: not ready within %v (-timeout): %s: %w", g.timeout, strings.Join(not, "; "), g.ctx.Err())
			case <-time.After(waitPoll):
			}
		}
	}
}

// ask asks every node for its members, and says whether all are ready.
func ask(ctx context.Context, addrs []string, clients []*client.Client, want int) ([]nodeView, bool) {
	views := make([]nodeView, len(addrs))
	all := true
	for i, c := range clients {
		v := &views[i]
		v.Addr = addrs[i]
		askCtx, cancel := context.WithTimeout(ctx, waitAsk)
		view, err := c.Members(askCtx)
		cancel()
		self, ms, q := view.Self, view.Members, view.Quorum
		if err != nil {
			v.Error = err.Error()
			if errors.Is(err, context.DeadlineExceeded) {
				v.Error = "no answer"
			}
			all = false
			continue
		}
		v.Self = self
		selfIn := false
		for _, m := range ms {
			if m.State == "alive" && m.InRing {
				v.InRing++
				selfIn = selfIn || m.Name == self
			}
		}
		v.Ready = selfIn && v.InRing >= want && q.Majority
		all = all && v.Ready
	}
	return views, all
}
