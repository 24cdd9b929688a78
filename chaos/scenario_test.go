package chaos

import (
	"context"
	"flag"
	"testing"
	"time"
)

var (
	long     = flag.Bool("chaos.long", false, "run the chaos scenarios with long faults (20 s) instead of 4 s")
	deadline = flag.Duration("chaos.deadline", 0, "the nodes' check deadline, if not the run's 200 ms (50ms: the product's default)")
)

// Every scenario of the suite, under load, with its invariants: no key
// over its bound, no check past its deadline, agreement after the fault.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos suite takes minutes")
	}
	for _, s := range Scenarios() {
		t.Run(s.Name, func(t *testing.T) {
			run := DefaultRun(1)
			if *long {
				run.FaultFor = 20 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			res, err := RunScenario(ctx, s, run)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d checks, %d admitted; worst key %.0f (exact %.1f, bound %.0f); p99 %v, max %v; converged in %v",
				res.Checks, res.Admitted, res.WorstKey, res.Exact, res.Bound, res.P99, res.Max, res.Converged)
			for _, v := range res.Violations {
				t.Error(v)
			}
		})
	}
}

// One hot key, its owner where the fault hurts most, with the default
// fail policy: no fault adds more than the lost side's share of the limit
// (DESIGN.md §6).
func TestHotKeyScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos suite takes minutes")
	}
	for _, s := range HotKeyScenarios() {
		t.Run(s.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			run := HotKeyRun(1)
			if *deadline > 0 {
				run.CheckTimeout = *deadline
			}
			res, err := RunScenario(ctx, s, run)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d checks, %d admitted (exact %.1f, bound %.0f, so %.2f of the limit beyond exact); p99 %v, max %v; converged in %v",
				res.Checks, res.Admitted, res.Exact, res.Bound, (res.WorstKey-res.Exact)/float64(res.Run.Load.Limit), res.P99, res.Max, res.Converged)
			for _, v := range res.Violations {
				t.Error(v)
			}
		})
	}
}
