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

// plantedSeeds bounds each search. -short replays only the seed where
// each bug is caught today, which must still catch it.
const plantedSeeds = 1000

func catch(t *testing.T, nodes int, caughtAt uint64, hooks Hooks) {
	t.Helper()
	from, limit := uint64(1), uint64(plantedSeeds)
	if testing.Short() {
		from, limit = caughtAt, caughtAt
	}
	for seed := from; seed <= limit; seed++ {
		bad, err := Run(Config{Nodes: nodes, Hooks: hooks}, seed)
		if err != nil {
			t.Fatal(err)
		}
		if len(bad.Violations) == 0 {
			continue
		}
		good, err := Run(Config{Nodes: nodes}, seed)
		if err != nil {
			t.Fatal(err)
		}
		if len(good.Violations) > 0 {
			continue // this schedule fails without the bug too
		}
		t.Logf("caught at seed %d: %v", seed, bad.Violations[0])
		return
	}
	t.Fatalf("planted bug not caught in seeds %d to %d", from, limit)
}

// A fresh bucket per side of a split: the fail policy admits from a whole
// bucket of the node's own instead of a share.
func TestPlantedFreshBucketPerSide(t *testing.T) {
	catch(t, 5, 1, Hooks{Lend: func(_ *ownership.Provisional, side *engine.Store, _ *ownership.View, key bucket.Key, req bucket.Request, _ ownership.Knowledge, _ bool) (bucket.Decision, error) {
		rep, err := side.CheckKey(key, req, 1)
		return ownership.Single(rep), err
	}})
}

// A provisional share that starts over on every ring change.
func TestPlantedShareStartsOver(t *testing.T) {
	catch(t, 3, 7, Hooks{ViewChanged: func(p *ownership.Provisional, fresh func() *ownership.Provisional) *ownership.Provisional {
		p.Close()
		return fresh()
	}})
}

// A takeover before the new ring is confirmed: DecideOwned is told every
// peer confirmed it.
func TestPlantedTakeoverBeforeConfirmed(t *testing.T) {
	catch(t, 5, 1, Hooks{Owned: func(o ownership.Owned) ownership.Owned {
		o.Settled, o.Waited = true, true
		return o
	}})
}

// A healed minority answering from its old buckets: the view forgets it
// healed. Its excess hides in a split's slack, but the oracle also holds
// a node that regained its majority to deciding nothing before its ring
// settles or HandoffWait passes, and callers come back at once as a cut
// heals (the load's herd).
func TestPlantedHealedAnswersFromOldBuckets(t *testing.T) {
	catch(t, 3, 3, Hooks{View: func(v *ownership.View) *ownership.View {
		if !v.Healed {
			return v
		}
		cp := *v
		cp.Healed = false
		return &cp
	}})
}
