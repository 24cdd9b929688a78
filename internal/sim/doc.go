// Package sim is a deterministic simulator of a drl cluster: a second
// shell over the ownership core (package internal/ownership), beside the
// production one (package cluster), that runs N nodes in one goroutine
// over a virtual clock and a virtual network and tries to break every
// bound DESIGN.md §6 states.
//
// One seed fixes everything: the fault schedule (partitions of any shape,
// one-way cuts, delay and loss per link, crashes, pauses, restarts with
// and without a snapshot, graceful leaves, joins, rolling restarts, clock
// skew and drift), the load (keys fresh, half-spent or exhausted when a
// fault begins, across algorithms, limits and windows), and every draw of
// the network and of gossip. The same seed makes the same run, event for
// event; Result.Trace is a hash of every event that identifies it.
//
// What the simulator drives and what it models:
//   - The core is called as package cluster calls it: membership becomes
//     Core.Update; a ring change becomes PlanHandoff and handoff messages
//     with done marks, which the receiver passes to View.Absorb and
//     Core.Done; a check is View.Route, then View.DecideOwned with its
//     AwaitSettled and AwaitConfirmed steps, or a forward to the owner,
//     then the local fail policy (Provisional.Lend) at the deadline.
//   - Gossip is a small SWIM model (probes, indirect probes, suspicion,
//     refutation by incarnation, dissemination, the background rejoin
//     that heals a split), not memberlist itself: each node's view of who
//     is alive lags and differs as memberlist's does.
//
// The oracle (oracle.go) checks every run: per key and rolling window,
// admitted at most the bound of the faults that touched the window; no
// check unanswered past its deadline; one ring, settled, a stated time
// after the last fault; no needless denial on a quiet key. A run that
// fails is shrunk (shrink.go) to the fewest faults and keys that still
// fail, and printed with the command that replays it.
package sim
