package sim

import (
	"testing"

	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
	"github.com/drlimit/drl/internal/ownership"
)

// The simulator must show that it can fail: each test plants a known bug
// in the shell's calls to the core, through Config.Hooks, and asserts the
// oracle catches it within 1,000 seeds, on a seed where the same schedule
// without the bug passes.

// plantedSeeds bounds each search; -short looks at the first 100 seeds,
// where the bugs the oracle catches are caught today (seeds 1, 22, 64).
const plantedSeeds = 1000

func catch(t *testing.T, nodes int, hooks Hooks) {
	t.Helper()
	limit := uint64(plantedSeeds)
	if testing.Short() {
		limit = 100
	}
	for seed := uint64(1); seed <= limit; seed++ {
		bad, err := Run(Config{Nodes: nodes, Hooks: hooks, IgnoreUnsettled: true}, seed)
		if err != nil {
			t.Fatal(err)
		}
		if !hasOver(bad) {
			continue
		}
		good, err := Run(Config{Nodes: nodes, IgnoreUnsettled: true}, seed)
		if err != nil {
			t.Fatal(err)
		}
		if hasOver(good) {
			continue // this schedule fails without the bug too
		}
		t.Logf("caught at seed %d: %v", seed, firstOver(bad))
		return
	}
	t.Fatalf("planted bug not caught in %d seeds", limit)
}

func hasOver(r Result) bool { return firstOver(r) != "" }

func firstOver(r Result) string {
	for _, v := range r.Violations {
		if v.Kind == "over-admission" {
			return v.String()
		}
	}
	return ""
}

// A fresh bucket per side of a split: the fail policy admits from a whole
// bucket of the node's own instead of a share.
func TestPlantedFreshBucketPerSide(t *testing.T) {
	catch(t, 5, Hooks{Lend: func(_ *ownership.Provisional, side *engine.Store, _ *ownership.View, key bucket.Key, req bucket.Request, _ ownership.Knowledge, _ bool) (bucket.Decision, error) {
		rep, err := side.CheckKey(key, req, 1)
		return ownership.Single(rep), err
	}})
}

// A provisional share that starts over on every ring change.
func TestPlantedShareStartsOver(t *testing.T) {
	catch(t, 3, Hooks{ViewChanged: func(p *ownership.Provisional, fresh func() *ownership.Provisional) *ownership.Provisional {
		p.Close()
		return fresh()
	}})
}

// A takeover before the new ring is confirmed: DecideOwned is told every
// peer confirmed it.
func TestPlantedTakeoverBeforeConfirmed(t *testing.T) {
	catch(t, 5, Hooks{Owned: func(o ownership.Owned) ownership.Owned {
		o.Settled, o.Waited = true, true
		return o
	}})
}

// A healed minority answering from its old buckets: the view forgets it
// healed.
//
// Not caught yet: the bug's excess is what the healed node admits from its
// old bucket between its own heal and the majority's handoff (a gossip
// round, ~100 ms here), and that stays within the partition's 2−1/N slack
// in 1,000 seeds of 3-node clusters. Catching it needs an oracle that
// looks at who decided (a node deciding a key before its healed view
// settled), not only at totals.
func TestPlantedHealedAnswersFromOldBuckets(t *testing.T) {
	t.Skip("not caught within 1,000 seeds by the totals oracle; see the comment")
	catch(t, 3, Hooks{View: func(v *ownership.View) *ownership.View {
		if !v.Healed {
			return v
		}
		cp := *v
		cp.Healed = false
		return &cp
	}})
}
