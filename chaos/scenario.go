package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/drlimit/drl/cluster"
)

// Scenario is one fault, injected into a cluster under load.
type Scenario struct {
	Name        string
	Description string
	// Nodes at the start, and members expected once the fault is over.
	Nodes, After int
	// Extra is the share of a key's limit the fault may add beyond what a
	// perfect limiter admits, with the default (local) fail policy: the
	// share of the side that lost the key's owner, (N−1)/N at most
	// (DESIGN.md §6). The bound on a key's admissions adds Extra times
	// Limit plus the refill of the fault's duration.
	Extra func(r Run) float64
	// Fault injects the fault; it runs after the warm-up and returns when
	// the fault is over (healed, restarted, resumed).
	Fault func(ctx context.Context, c *Cluster, r Run) error
}

// Run is one run's settings.
type Run struct {
	Seed     uint64
	Warmup   time.Duration // load before the fault
	FaultFor time.Duration // the fault's length, for faults that take one
	Cooldown time.Duration // load after the fault
	Load     Load
	// CheckTimeout is every node's check deadline; a check that takes
	// longer than it plus Grace breaks the deadline invariant.
	CheckTimeout, Grace time.Duration
	// ConvergeWithin bounds the time after the fault until all members
	// agree on membership and ownership.
	ConvergeWithin time.Duration
	// KeyState is what is left of the keys when the fault begins.
	KeyState KeyState
	Logger   *slog.Logger
}

// KeyState says how much of every key's limit is spent when a fault
// begins. A bound must hold for all three: a key exhausted before the
// fault only tests that it stays exhausted.
type KeyState uint8

const (
	// KeyExhausted: the load runs through the warm-up, which spends the
	// hot key's whole limit before the fault.
	KeyExhausted KeyState = iota
	// KeyFresh: nothing is spent; the load starts with the fault.
	KeyFresh
	// KeyHalfSpent: half of each key's limit is spent, one check at a
	// time, before the warm-up; the load starts with the fault.
	KeyHalfSpent
)

func (k KeyState) String() string {
	switch k {
	case KeyFresh:
		return "fresh"
	case KeyHalfSpent:
		return "half-spent"
	}
	return "exhausted"
}

// DefaultRun is the short run the test suite uses.
func DefaultRun(seed uint64) Run {
	return Run{
		Seed: seed, Warmup: 2 * time.Second, FaultFor: 4 * time.Second, Cooldown: 3 * time.Second,
		Load:         Load{Keys: 30, Limit: 20, Window: 10 * time.Second, Callers: 8, Interval: 25 * time.Millisecond},
		CheckTimeout: 200 * time.Millisecond, Grace: grace(), ConvergeWithin: 15 * time.Second,
	}
}

// grace is how late past its deadline a check may answer: scheduling on a
// loaded machine, three times more under the race detector.
func grace() time.Duration {
	if raceDetector {
		return 750 * time.Millisecond
	}
	return 250 * time.Millisecond
}

// Result is one scenario's row in the report, and what its picture needs.
type Result struct {
	Scenario Scenario
	Run      Run
	Checks   int
	Admitted int
	Errors   int
	// Exact is what a perfect limiter admits per key over the run;
	// Bound what the scenario allows per key; WorstKey the most any key
	// got.
	Exact, Bound, WorstKey float64
	P99, Max               time.Duration
	OverDeadline           int           // checks slower than CheckTimeout + Grace
	Converged              time.Duration // after the fault ended
	FaultStart, FaultEnd   time.Duration // since the load began
	PerSecond              []int
	Goroutines             int // left over after the cluster closed, vs before it started
	Violations             []string
}

// Passed reports whether every invariant held.
func (r Result) Passed() bool { return len(r.Violations) == 0 }

// RunScenario runs s: a cluster, load, warm-up, the fault, cool-down, then
// the invariants.
func RunScenario(ctx context.Context, s Scenario, run Run) (Result, error) {
	res := Result{Scenario: s, Run: run}
	before := runtime.NumGoroutine()
	c, err := Start(ctx, Options{Nodes: s.Nodes, Seed: run.Seed, Logger: run.Logger, Config: func(cfg *cluster.Config) {
		cfg.CheckTimeout = run.CheckTimeout
	}})
	if err != nil {
		return res, err
	}
	faultErr := res.underLoad(ctx, c, phases{
		fault: func(ctx context.Context) error { return s.Fault(ctx, c, run) },
		heal:  c.Net.Heal,
		converge: func(ctx context.Context) (time.Duration, error) {
			return c.WaitConverged(ctx, s.After)
		},
	}, s.Extra(run))
	c.Close()
	if faultErr != nil {
		return res, fmt.Errorf("chaos: %s: fault: %w", s.Name, faultErr)
	}
	res.Goroutines = settleGoroutines(before)
	return res, nil
}

// phases are what a run does to its target between warm-up and
// cool-down.
type phases struct {
	fault    func(ctx context.Context) error
	heal     func()
	converge func(ctx context.Context) (time.Duration, error)
}

// underLoad drives res.Run's load on target through warm-up, the fault,
// the heal, convergence and cool-down, records the times in res, and
// checks the invariants with extra shares of the limit allowed. It returns the
// fault's error; the load has stopped when it returns.
func (res *Result) underLoad(ctx context.Context, target Target, p phases, extra float64) error {
	run := res.Run
	loadCtx, stopLoad := context.WithCancel(ctx)
	var rec *Record
	var wg sync.WaitGroup
	var spent []int
	if run.KeyState != KeyExhausted {
		// The keys are fresh or half spent when the fault begins: the
		// hammering starts with it.
		if run.KeyState == KeyHalfSpent {
			spent = run.Load.Spend(ctx, target, run.Load.Limit/2)
		}
		sleep(ctx, run.Warmup)
	}
	wg.Go(func() { rec = run.Load.Run(loadCtx, target, run.Seed) })
	began := time.Now()
	if run.KeyState == KeyExhausted {
		sleep(ctx, run.Warmup)
	}
	res.FaultStart = time.Since(began)
	faultErr := p.fault(ctx)
	p.heal()
	res.FaultEnd = time.Since(began)
	convCtx, cancel := context.WithTimeout(ctx, run.ConvergeWithin)
	var err error
	res.Converged, err = p.converge(convCtx)
	cancel()
	if err != nil {
		res.Violations = append(res.Violations, fmt.Sprintf("members did not agree within %v: %v", run.ConvergeWithin, err))
	}
	sleep(ctx, run.Cooldown)
	stopLoad()
	wg.Wait()
	for key, n := range spent {
		rec.Admitted[key] += n
	}
	res.evaluate(rec, extra)
	return faultErr
}

// evaluate fills in what rec says and checks the invariants: no key over
// the bound that extra shares of the limit allow, no check past its deadline,
// no check without a decision.
func (res *Result) evaluate(rec *Record, extra float64) {
	run := res.Run
	res.Checks, res.Errors, res.PerSecond = rec.Checks, rec.Errors, rec.PerSecond
	res.P99, res.Max = rec.Quantile(0.99), rec.Quantile(1)
	elapsed := rec.End.Sub(rec.Start)
	l := run.Load
	perWindow := float64(l.Limit) / l.Window.Seconds()
	res.Exact = float64(l.Limit) + perWindow*elapsed.Seconds()
	fault := (res.FaultEnd - res.FaultStart + res.Converged).Seconds()
	res.Bound = math.Floor(res.Exact + extra*(float64(l.Limit)+perWindow*fault))
	for key, n := range rec.Admitted {
		res.Admitted += n
		res.WorstKey = max(res.WorstKey, float64(n))
		if float64(n) > res.Bound {
			res.Violations = append(res.Violations, fmt.Sprintf("key %d: %d admitted, bound %.0f", key, n, res.Bound))
		}
	}
	for _, d := range rec.Latencies {
		if d > run.CheckTimeout+run.Grace {
			res.OverDeadline++
		}
	}
	if res.OverDeadline > 0 {
		res.Violations = append(res.Violations, fmt.Sprintf("%d checks took longer than %v (max %v)",
			res.OverDeadline, run.CheckTimeout+run.Grace, res.Max))
	}
	if res.Errors > 0 {
		res.Violations = append(res.Violations, fmt.Sprintf("%d checks got no decision", res.Errors))
	}
}

// settleGoroutines waits a little for goroutines of a closed cluster to
// end and returns how many more there are than before.
func settleGoroutines(before int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		extra := runtime.NumGoroutine() - before
		if extra <= 0 || time.Now().After(deadline) {
			return max(extra, 0)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
